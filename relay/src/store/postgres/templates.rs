//! OpenCode config templates on PostgreSQL (the SQLite twin is `store/templates.rs`): a new
//! version is numbered under the write lock, so two publishers (on any relays) never get the
//! same number.

use super::super::Published;
use super::super::templates::{COLUMNS, from_columns, new_version, parsed, summary};
use super::{PgStore, StoreError, to_i64};
use postgres::Row;
use proto::template::{Template, TemplateContent, TemplateSummary};

fn row(r: &Row) -> Result<(Template, String), StoreError> {
    Ok(from_columns(
        r.try_get(0)?,
        r.try_get(1)?,
        r.try_get(2)?,
        r.try_get(3)?,
        r.try_get(4)?,
        r.try_get(5)?,
    ))
}

impl PgStore {
    /// Stores the next version of `name`, or returns the latest when its hash is `hash`.
    ///
    /// # Errors
    /// PostgreSQL failures.
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
        let tx = self.begin(true)?;
        if let Some(latest) = self.template(name, None)?
            && latest.id.hash == hash
        {
            return Ok(Published {
                template: latest,
                new: false,
            });
        }
        let version: i64 = self
            .one(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM templates WHERE name = $1",
                &[&name],
            )?
            .try_get(0)?;
        self.exec(
            &format!("INSERT INTO templates({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"),
            &[&name, &version, &author, &hash, &json, &to_i64(now_ms)],
        )?;
        tx.commit()?;
        Ok(new_version(name, version, author, hash, now_ms, content))
    }

    /// The latest version of every template, by name.
    ///
    /// # Errors
    /// PostgreSQL failures, or a stored content this build cannot read.
    pub fn list_templates(&self) -> Result<Vec<TemplateSummary>, StoreError> {
        self.rows(
            &format!(
                "SELECT {COLUMNS} FROM templates t WHERE version = \
                 (SELECT MAX(version) FROM templates WHERE name = t.name) ORDER BY name"
            ),
            &[],
        )?
        .iter()
        .map(|r| row(r).and_then(parsed).map(summary))
        .collect()
    }

    /// One version of a template (the latest when `version` is `None`).
    ///
    /// # Errors
    /// PostgreSQL failures, or a stored content this build cannot read.
    pub fn template(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<Template>, StoreError> {
        let found = match version {
            Some(v) => self.opt(
                &format!("SELECT {COLUMNS} FROM templates WHERE name = $1 AND version = $2"),
                &[&name, &i64::from(v)],
            )?,
            None => self.opt(
                &format!(
                    "SELECT {COLUMNS} FROM templates WHERE name = $1 \
                     ORDER BY version DESC LIMIT 1"
                ),
                &[&name],
            )?,
        };
        found.as_ref().map(row).transpose()?.map(parsed).transpose()
    }
}
