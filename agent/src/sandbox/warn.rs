//! `mode = "warn"`: nothing is refused, but each file tool call of OpenCode whose path the
//! rules would have refused is logged on the host (`sandbox (warn): would have refused …`).
//! Shell commands cannot be judged this way (their paths are inside the command text); the
//! launch's full rule set is logged when it starts instead.

use super::plan::SandboxPlan;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// For a `message.part.updated` event of a running tool call, what the rules would refuse.
pub fn would_refuse(plan: &SandboxPlan, event: &Value) -> Option<String> {
    if event.get("type")?.as_str()? != "message.part.updated" {
        return None;
    }
    let part = event.pointer("/properties/part")?;
    if part.get("type")?.as_str()? != "tool"
        || part.pointer("/state/status")?.as_str()? != "running"
    {
        return None;
    }
    let tool = part.get("tool")?.as_str()?;
    let writes = matches!(tool, "edit" | "write" | "patch" | "multiedit");
    let input = part.pointer("/state/input")?;
    let path = ["filePath", "path"]
        .iter()
        .find_map(|k| input.get(*k).and_then(Value::as_str))?;
    let resolved = resolve(Path::new(path));
    let allowed = if writes {
        plan.allows_write(&resolved)
    } else {
        plan.allows_read(&resolved)
    };
    (!allowed).then(|| {
        format!(
            "{tool} of {path} (resolves to {}): outside what the sandbox allows",
            resolved.display()
        )
    })
}

/// The path with its links resolved as far as it exists (a new file's folder).
fn resolve(path: &Path) -> PathBuf {
    if let Ok(p) = std::fs::canonicalize(path) {
        return p;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => path.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::SandboxConfig;
    use crate::sandbox::plan::LaunchFacts;
    use serde_json::json;

    fn running(tool: &str, input: Value) -> Value {
        json!({"type": "message.part.updated", "properties": {"part": {
            "type": "tool", "tool": tool, "state": {"status": "running", "input": input}}}})
    }

    #[test]
    fn a_read_through_a_link_out_of_the_workspace_is_reported() {
        let tmp = tempfile::tempdir().unwrap();
        let ws = tmp.path().join("ws");
        std::fs::create_dir(&ws).unwrap();
        std::os::unix::fs::symlink(tmp.path(), ws.join("up")).unwrap();
        std::fs::write(tmp.path().join("secret"), "x").unwrap();
        let ws = std::fs::canonicalize(&ws).unwrap();
        let plan = SandboxPlan::new(
            &SandboxConfig::default(),
            LaunchFacts {
                workspace: &ws,
                private: &tmp.path().join("private"),
                private_writable: &[],
                program: Path::new("/opt/oc/bin/opencode"),
                port: 4096,
                provider_ports: &[],
            },
        );
        let through = ws.join("up/secret");
        let hit = would_refuse(&plan, &running("read", json!({"filePath": through})));
        assert!(hit.is_some_and(|m| m.contains("read of")));
        let inside = ws.join("file.txt");
        assert_eq!(
            would_refuse(&plan, &running("write", json!({"filePath": inside}))),
            None
        );
        assert_eq!(
            would_refuse(
                &plan,
                &running("bash", json!({"command": "cat /etc/shadow"}))
            ),
            None
        );
    }
}
