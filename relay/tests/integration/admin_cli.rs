//! `cm-tui admin …` against a real relay: the scripting commands of the administration
//! operations, with `--json`.

use crate::harness::*;
use anyhow::Result;
use proto::admin::{AdminDone, AuditEntry, CredInfo, HostEnrolled, HostEntry, UserInfo};
use proto::rbac::Role;
use proto::token::{EnrollmentToken, Invite};

/// `cm-tui admin …` (the real binary, `--json`): the scripting commands reach the relay's
/// administration operations, pick `grant_admin` where the change needs it, and fail clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cm_tui_admin_commands_with_json() -> Result<()> {
    use crate::keyring::{PASSWORD, text, tui};
    let relay = TestRelay::start().await?;
    cm_relay::cli::user_passwd(&relay.state.dir, "owner", PASSWORD)?;
    let root = relay.state.tmp.path();
    let (state, home) = (root.join("tui"), root.join("home"));
    let bus = format!("unix:path={}", root.join("no-bus").display());
    let run =
        |args: &[&str]| tokio::task::block_in_place(|| tui(&state, &home, &bus, "file", args));
    let json = |args: &[&str]| -> Result<serde_json::Value> {
        let out = run(args)?;
        anyhow::ensure!(out.status.success(), "{args:?}: {}", text(&out));
        Ok(serde_json::from_slice(&out.stdout)?)
    };
    let addr = relay.addr_str();
    let login = run(&[
        "login",
        &addr,
        "--user",
        "owner",
        "--pin",
        &relay.state.pin,
        "--password-stdin",
    ])?;
    assert!(login.status.success(), "{}", text(&login));

    let done: AdminDone = serde_json::from_value(json(&[
        "admin", "user", "add", "bob", "--role", "operator", "--host", "box", "--json",
    ])?)?;
    assert_eq!(done.summary, "added bob as operator on box");
    assert!(Invite::decode(done.invite.as_deref().unwrap()).is_ok());
    let done: AdminDone = serde_json::from_value(json(&[
        "admin", "user", "grant", "bob", "admin", "--host", "box", "--json",
    ])?)?;
    assert_eq!(done.summary, "bob is admin on box");
    let users: Vec<UserInfo> = serde_json::from_value(json(&["admin", "user", "list", "--json"])?)?;
    let bob = users.iter().find(|u| u.name == "bob").unwrap();
    assert_eq!(bob.grants.len(), 1);
    assert_eq!(bob.grants[0].role, Role::Admin);
    // Removing an admin goes as grant_admin (the client looks the grants up first).
    let done: AdminDone =
        serde_json::from_value(json(&["admin", "user", "remove", "bob", "--json"])?)?;
    assert_eq!(done.summary, "removed bob");

    let enrolled: HostEnrolled = serde_json::from_value(json(&[
        "admin",
        "host",
        "add",
        "box",
        "--relay-addr",
        &addr,
        // This laptop pinned no owner root: a relay-trusted enrollment, asked for explicitly.
        "--relay-trusted",
        "--json",
    ])?)?;
    assert_eq!(
        EnrollmentToken::decode(&enrolled.token)?.host.as_str(),
        "box"
    );
    let hosts: Vec<HostEntry> =
        serde_json::from_value(json(&["admin", "host", "list", "--json"])?)?;
    assert_eq!(hosts.len(), 1);
    let creds: Vec<CredInfo> = serde_json::from_value(json(&[
        "admin", "creds", "list", "--user", "owner", "--json",
    ])?)?;
    assert_eq!(creds.len(), 1);
    let rows: Vec<AuditEntry> = serde_json::from_value(json(&[
        "admin", "audit", "--user", "owner", "--limit", "5", "--json",
    ])?)?;
    assert_eq!(rows.len(), 5);
    assert!(rows.iter().all(|r| r.actor.starts_with("owner")));

    // Bad input is refused before anything is sent, naming the flag and what is allowed.
    let bad = run(&["admin", "user", "add", "eve", "--role", "root"])?;
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--role")
            && err.contains("unknown role \"root\"; use one of viewer, operator, admin, owner"),
        "{}",
        text(&bad)
    );
    assert!(!err.contains("I/O"), "{}", text(&bad));
    let bad = run(&["admin", "user", "grant", "eve", "root"])?;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("use one of viewer, operator, admin, owner"),
        "{}",
        text(&bad)
    );
    for args in [
        &["admin", "kill"][..],
        &["admin", "kill", "--user", "bob", "--all"][..],
    ] {
        let bad = run(args)?;
        assert!(!bad.status.success());
        let err = String::from_utf8_lossy(&bad.stderr);
        assert!(
            ["--user", "--host", "--cred", "--all"]
                .iter()
                .all(|f| err.contains(f)),
            "{args:?}: {}",
            text(&bad)
        );
    }
    // Relay refusals read as sentences.
    let bad = run(&["admin", "user", "revoke", "dave", "--host", "nohost"])?;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("dave has no grant on nohost"),
        "{}",
        text(&bad)
    );
    let bad = run(&["admin", "kill", "--cred", "bogus"])?;
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("no credential bogus"),
        "{}",
        text(&bad)
    );
    // Times print in UTC, not as raw milliseconds.
    let utc = |ms: u64| cm_relay::time::utc(ms);
    let out = run(&["admin", "creds", "list", "--user", "owner"])?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(&format!("expires {}", utc(creds[0].expires_ms))),
        "{}",
        text(&out)
    );
    assert!(
        !stdout.contains(&creds[0].expires_ms.to_string()),
        "{stdout}"
    );
    // Enough rows to still hold the ones read above (more have been written since).
    let out = run(&["admin", "audit", "--user", "owner", "--limit", "1000"])?;
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(&utc(rows[0].ts_ms)), "{stdout}");
    assert!(!stdout.contains(&rows[0].ts_ms.to_string()), "{stdout}");
    // The human form.
    let out = run(&["admin", "user", "list"])?;
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("owner on *"),
        "{}",
        text(&out)
    );
    relay.shutdown().await;
    Ok(())
}
