//! README.md's "Set it up for real", followed literally by `scripts/readme-setup-test.sh` with
//! the real binaries: relay, enrollment, the agent.toml lines (with this test model as the
//! provider), doctor, login, and the first prompt's answer.

#![allow(clippy::unwrap_used, reason = "test code")]

use std::path::Path;
use std::process::Command;

#[test]
fn readme_setup_gets_a_first_answer() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new("bash")
        .arg(repo.join("scripts/readme-setup-test.sh"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("You said: explain src/main.rs"),
        "{stdout}\n{stderr}"
    );
}
