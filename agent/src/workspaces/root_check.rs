//! Whether a workspace's folder can be worked in right now: the one check every remote
//! operation and `cm-agent attach` make before touching it.

use super::WorkspaceRuntime;

impl WorkspaceRuntime {
    /// Why the workspace's folder cannot be used (`None`: it can): it must be a readable
    /// folder, and an added workspace's folder still the real folder directly in its root
    /// (the root workspace's OpenCode could have swapped in a link to elsewhere).
    pub fn root_problem(&self) -> Option<String> {
        let root = &self.workspace.root;
        if self.added.is_some() && !super::added::still_in_place(root) {
            return Some("no longer a real folder directly in its root".into());
        }
        match std::fs::metadata(root) {
            Ok(m) if m.is_dir() => std::fs::read_dir(root).err().map(|e| e.to_string()),
            Ok(_) => Some("not a directory".into()),
            Err(e) => Some(e.to_string()),
        }
    }
}
