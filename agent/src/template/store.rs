//! The template each workspace runs, kept at `<state>/templates/<workspace>.json` (written
//! atomically: a temporary file renamed over it) and read at start. A file that cannot be read,
//! does not parse, does not match its hash, or no longer passes the host's policy is ignored
//! with a warning in the agent's log: the workspace then runs the host's config alone.

use super::{HostLimits, TemplatePolicy};
use crate::config::{OpencodeConfig, Workspace};
use parking_lot::Mutex;
use proto::template::{Template, TemplateRef};
use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The applied templates of every workspace.
#[derive(Debug)]
pub struct AppliedTemplates {
    dir: PathBuf,
    policy: TemplatePolicy,
    applied: Mutex<HashMap<String, Template>>,
    /// Serialises the applies (write, then restart) of each workspace.
    apply: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl AppliedTemplates {
    /// `<state_dir>/templates`.
    pub fn dir(state_dir: &Path) -> PathBuf {
        state_dir.join("templates")
    }

    /// The file of `workspace`.
    pub fn file(state_dir: &Path, workspace: &str) -> PathBuf {
        Self::dir(state_dir).join(format!("{workspace}.json"))
    }

    /// Reads the applied template of each workspace, keeping those that still pass `policy`.
    pub fn load(
        state_dir: &Path,
        workspaces: &[Workspace],
        policy: TemplatePolicy,
        opencode: &OpencodeConfig,
    ) -> Self {
        let mut applied = HashMap::new();
        for w in workspaces {
            let path = Self::file(state_dir, &w.name);
            let text = match std::fs::read(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    tracing::warn!(workspace = %w.name, path = %path.display(), error = %e, "cannot read the applied template; the workspace runs without it");
                    continue;
                }
            };
            let t: Template = match serde_json::from_slice(&text) {
                Ok(t) => t,
                Err(e) => {
                    tracing::warn!(workspace = %w.name, path = %path.display(), error = %e, "the applied template file is corrupt; the workspace runs without it (apply it again)");
                    continue;
                }
            };
            let limits = HostLimits {
                policy: &policy,
                allowed_models: &opencode.allowed_models,
                permissions: &w.permissions,
            };
            if let Err(e) = super::check(&t, &limits) {
                tracing::warn!(workspace = %w.name, path = %path.display(), error = %e, "the applied template is not used");
                continue;
            }
            applied.insert(w.name.clone(), t);
        }
        Self {
            dir: Self::dir(state_dir),
            policy,
            applied: Mutex::new(applied),
            apply: Mutex::new(HashMap::new()),
        }
    }

    /// The host's template rules.
    pub fn policy(&self) -> &TemplatePolicy {
        &self.policy
    }

    /// The template `workspace` runs.
    pub fn get(&self, workspace: &str) -> Option<Template> {
        self.applied.lock().get(workspace).cloned()
    }

    /// Which template `workspace` runs.
    pub fn reference(&self, workspace: &str) -> Option<TemplateRef> {
        self.applied.lock().get(workspace).map(|t| t.id.clone())
    }

    /// Held while one apply to `workspace` writes and restarts.
    pub async fn apply_lock(&self, workspace: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = Arc::clone(self.apply.lock().entry(workspace.to_owned()).or_default());
        lock.lock_owned().await
    }

    /// Forgets what `workspace` runs (its file, then memory): a removed workspace's template
    /// must not follow its name to another folder.
    ///
    /// # Errors
    /// The file exists and cannot be removed.
    pub fn forget(&self, workspace: &str) -> std::io::Result<()> {
        match std::fs::remove_file(self.dir.join(format!("{workspace}.json"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        self.applied.lock().remove(workspace);
        Ok(())
    }

    /// Records `t` as what `workspace` runs (the file first, then memory). `t` must have
    /// passed the check.
    ///
    /// # Errors
    /// The file cannot be written.
    pub fn save(&self, workspace: &str, t: &Template) -> std::io::Result<()> {
        use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let body = serde_json::to_vec_pretty(t).map_err(std::io::Error::other)?;
        let path = self.dir.join(format!("{workspace}.json"));
        let tmp = self.dir.join(format!(".{workspace}.json.tmp"));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&body)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        self.applied.lock().insert(workspace.to_owned(), t.clone());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::template::{TemplateContent, content_hash};
    use serde_json::json;

    fn ws(name: &str) -> Workspace {
        Workspace {
            name: name.into(),
            root: "/nonexistent".into(),
            permissions: Default::default(),
            sandbox: Default::default(),
        }
    }

    fn template(content: serde_json::Value) -> Template {
        let content: TemplateContent = serde_json::from_value(content).unwrap();
        Template {
            id: TemplateRef {
                name: "team".into(),
                version: 2,
                hash: content_hash(&content),
            },
            author: "alice".into(),
            published_ms: 1,
            content,
        }
    }

    #[test]
    fn a_saved_template_is_loaded_at_the_next_start() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = OpencodeConfig::default();
        let s = AppliedTemplates::load(tmp.path(), &[ws("a")], TemplatePolicy::default(), &cfg);
        assert!(s.get("a").is_none());
        let t = template(json!({"opencode": {"permission": {"bash": "deny"}}}));
        s.save("a", &t).unwrap();
        assert_eq!(s.reference("a"), Some(t.id.clone()));
        use std::os::unix::fs::PermissionsExt;
        let file = AppliedTemplates::file(tmp.path(), "a");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o077,
            0
        );
        let again = AppliedTemplates::load(
            tmp.path(),
            &[ws("a"), ws("b")],
            TemplatePolicy::default(),
            &cfg,
        );
        assert_eq!(again.get("a"), Some(t));
        assert!(again.get("b").is_none());
    }

    #[test]
    fn corrupt_altered_or_no_longer_allowed_files_are_ignored() {
        let tmp = tempfile::tempdir().unwrap();
        let cfg = OpencodeConfig::default();
        let s = AppliedTemplates::load(tmp.path(), &[], TemplatePolicy::default(), &cfg);
        let t = template(json!({"opencode": {"permission": {"bash": "deny"}}}));
        for w in ["corrupt", "altered", "policy"] {
            s.save(w, &t).unwrap();
        }
        std::fs::write(AppliedTemplates::file(tmp.path(), "corrupt"), "{not json").unwrap();
        let mut altered = t.clone();
        altered
            .content
            .opencode
            .insert("permission".into(), json!({"bash": "allow"}));
        std::fs::write(
            AppliedTemplates::file(tmp.path(), "altered"),
            serde_json::to_vec(&altered).unwrap(),
        )
        .unwrap();
        let names = [ws("corrupt"), ws("altered"), ws("policy")];
        let loaded = AppliedTemplates::load(tmp.path(), &names, TemplatePolicy::default(), &cfg);
        assert!(loaded.get("corrupt").is_none());
        assert!(loaded.get("altered").is_none());
        assert!(loaded.get("policy").is_some());
        let off = TemplatePolicy {
            enabled: false,
            ..TemplatePolicy::default()
        };
        let loaded = AppliedTemplates::load(tmp.path(), &names, off, &cfg);
        assert!(loaded.get("policy").is_none(), "templates = false since");
    }
}
