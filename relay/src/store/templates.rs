//! OpenCode config templates: every published version of each, with its author and hash.
//! Versions of a name count from 1; a new one is numbered in the same write transaction that
//! stores it, so two publishers never get the same number.

use super::{SqliteStore, StoreError, to_i64, to_u64};
use proto::template::{Template, TemplateContent, TemplateRef, TemplateSummary};
use rusqlite::{OptionalExtension, params};

/// What [`SqliteStore::publish_template`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    /// The stored version (the new one, or the latest when the content was identical).
    pub template: Template,
    /// Whether a new version was stored; `false` when the latest already had this hash.
    pub new: bool,
}

pub(super) const COLUMNS: &str = "name, version, author, hash, content, published_ms";

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(Template, String)> {
    Ok(from_columns(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
    ))
}

/// A row's columns, in [`COLUMNS`] order, as a template whose content is still text (either
/// backend's row reader).
pub(super) fn from_columns(
    name: String,
    version: i64,
    author: String,
    hash: String,
    content: String,
    published_ms: i64,
) -> (Template, String) {
    (
        Template {
            id: TemplateRef {
                name,
                version: u32::try_from(version).unwrap_or(0),
                hash,
            },
            author,
            published_ms: to_u64(published_ms),
            content: TemplateContent::default(),
        },
        content,
    )
}

/// What a publish that stored version `version` answers (either backend).
pub(super) fn new_version(
    name: &str,
    version: i64,
    author: &str,
    hash: &str,
    now_ms: u64,
    content: &TemplateContent,
) -> Published {
    Published {
        template: Template {
            id: TemplateRef {
                name: name.to_owned(),
                version: u32::try_from(version).unwrap_or(u32::MAX),
                hash: hash.to_owned(),
            },
            author: author.to_owned(),
            published_ms: now_ms,
            content: content.clone(),
        },
        new: true,
    }
}

/// The template with its stored content parsed.
pub(super) fn parsed((mut template, content): (Template, String)) -> Result<Template, StoreError> {
    template.content = serde_json::from_str(&content).map_err(|e| {
        StoreError::Corrupt(format!(
            "template {} v{}: {e}",
            template.id.name, template.id.version
        ))
    })?;
    Ok(template)
}

pub(super) fn summary(t: Template) -> TemplateSummary {
    TemplateSummary {
        author: t.author,
        published_ms: t.published_ms,
        description: t.content.description,
        mcp: t.content.mcp.into_keys().collect(),
        latest: t.id,
    }
}

impl Published {
    /// The stored version as `template_list` shows it.
    pub fn summary(self) -> TemplateSummary {
        summary(self.template)
    }
}

impl SqliteStore {
    /// Stores `content` (whose [`proto::template::content_hash`] is `hash`) as the next version
    /// of `name` by `author`, unless the latest version has the same hash: then that version is
    /// returned and nothing is stored. The lookup and the insert are one write transaction.
    ///
    /// # Errors
    /// SQLite failures.
    pub fn publish_template(
        &self,
        name: &str,
        author: &str,
        content: &TemplateContent,
        hash: &str,
        now_ms: u64,
    ) -> Result<Published, StoreError> {
        let json = serde_json::to_string(content)
            .map_err(|e| StoreError::Refused(format!("template content: {e}")))?;
        let tx = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Immediate,
        )?;
        if let Some(latest) = self.template(name, None)?
            && latest.id.hash == hash
        {
            return Ok(Published {
                template: latest,
                new: false,
            });
        }
        let version: i64 = self.conn.query_row(
            "SELECT COALESCE(MAX(version), 0) + 1 FROM templates WHERE name = ?1",
            params![name],
            |r| r.get(0),
        )?;
        self.conn.execute(
            &format!("INSERT INTO templates({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![name, version, author, hash, json, to_i64(now_ms)],
        )?;
        tx.commit()?;
        Ok(new_version(name, version, author, hash, now_ms, content))
    }

    /// The latest version of every template, by name.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for content this build cannot read.
    pub fn list_templates(&self) -> Result<Vec<TemplateSummary>, StoreError> {
        let mut st = self.conn.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM templates t WHERE version = \
             (SELECT MAX(version) FROM templates WHERE name = t.name) ORDER BY name"
        ))?;
        let rows = st.query_map([], row)?.collect::<Result<Vec<_>, _>>()?;
        rows.into_iter().map(|r| parsed(r).map(summary)).collect()
    }

    /// One version of a template (the latest when `version` is `None`), if stored.
    ///
    /// # Errors
    /// SQLite failures; [`StoreError::Corrupt`] for content this build cannot read.
    pub fn template(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<Template>, StoreError> {
        let found = match version {
            Some(v) => self
                .conn
                .query_row(
                    &format!("SELECT {COLUMNS} FROM templates WHERE name = ?1 AND version = ?2"),
                    params![name, i64::from(v)],
                    row,
                )
                .optional()?,
            None => self
                .conn
                .query_row(
                    &format!(
                        "SELECT {COLUMNS} FROM templates WHERE name = ?1 \
                         ORDER BY version DESC LIMIT 1"
                    ),
                    params![name],
                    row,
                )
                .optional()?,
        };
        found.map(parsed).transpose()
    }
}
