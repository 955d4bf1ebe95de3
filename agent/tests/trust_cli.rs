//! The zero-trust commands through the real `cm-agent` binary: `enroll` with a token carrying
//! owner roots makes the host zero-trust, a relay-made token cannot quietly undo it, `trust
//! show` reports it, and `trust reset --yes` (the lost-owner-key recovery) makes it
//! relay-trusted while keeping the host secret.

#![allow(
    clippy::unwrap_used,
    reason = "test code: a failed unwrap is a failed test"
)]

use proto::handshake::{Bytes32, Key};
use proto::ids::HostId;
use proto::token::EnrollmentToken;
use proto::trust::{DeviceKey, Root};
use std::path::Path;
use std::process::{Command, Output};

struct Agent {
    _tmp: tempfile::TempDir,
    config: std::path::PathBuf,
    state: std::path::PathBuf,
}

impl Agent {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        Self {
            config: tmp.path().join("agent.toml"),
            state: tmp.path().join("state"),
            _tmp: tmp,
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cm-agent"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("CM_") {
                cmd.env_remove(k);
            }
        }
        cmd.arg("--config")
            .arg(&self.config)
            .arg("--state-dir")
            .arg(&self.state)
            .env("CM_SECRET_STORE", "file")
            .args(args)
            .output()
            .unwrap()
    }

    fn show(&self) -> serde_json::Value {
        let out = self.run(&["trust", "show", "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn token(roots: Vec<Root>) -> EnrollmentToken {
    EnrollmentToken {
        relay: "127.0.0.1:7443".into(),
        pin: "blake3:abcd".into(),
        host: HostId::from("box"),
        secret: Key::from_bytes([9; 32]),
        bind: (!roots.is_empty()).then_some(Bytes32([6; 32])),
        roots,
    }
}

fn secrets_file(state: &Path) -> String {
    std::fs::read_to_string(state.join("secrets.json")).unwrap()
}

#[test]
fn enroll_with_owner_roots_then_a_relay_made_token_is_refused_and_trust_reset_recovers() {
    let agent = Agent::new();
    let owner = DeviceKey::from_seed([4; 32]).unwrap().public();
    let roots = vec![Root {
        user: "olivia".into(),
        key: owner,
    }];
    let out = agent.run(&["enroll", &token(roots).encode()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("zero-trust"), "{}", text(&out));

    let shown = agent.show();
    assert_eq!(shown["mode"], "zero-trust", "{shown}");
    assert_eq!(shown["roots"][0]["user"], "olivia", "{shown}");
    assert_eq!(
        shown["roots"][0]["fingerprint"],
        owner.fingerprint(),
        "{shown}"
    );
    assert_eq!(shown["freshness"]["state"], "none", "{shown}");
    let host_key = shown["host_key"].as_str().unwrap_or_default();
    assert!(host_key.starts_with("x25519:"), "{shown}");
    let status = agent.run(&["status", "--json"]);
    assert!(status.status.success(), "{}", text(&status));
    let status: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(status["trust"]["mode"], "zero-trust", "{status}");
    assert_eq!(status["host"], "box", "{status}");
    let human = agent.run(&["trust", "show"]);
    assert!(
        text(&human).contains(&owner.fingerprint()),
        "{}",
        text(&human)
    );

    // A relay-made token (no roots) would turn the host's checks off: refused, nothing changed.
    let out = agent.run(&["enroll", &token(Vec::new()).encode()]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--relay-trusted"), "{}", text(&out));
    assert_eq!(agent.show()["mode"], "zero-trust");

    // Reset needs --yes.
    let out = agent.run(&["trust", "reset"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("--yes"), "{}", text(&out));
    assert_eq!(agent.show()["mode"], "zero-trust");

    let secrets_before = secrets_file(&agent.state);
    let out = agent.run(&["trust", "reset", "--yes"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("cm-agent enroll"), "{}", text(&out));
    let shown = agent.show();
    assert_eq!(shown["mode"], "relay-trusted", "{shown}");
    let status = agent.run(&["status"]);
    assert!(
        text(&status).contains("mode: relay-trusted"),
        "{}",
        text(&status)
    );
    // The host secret stays.
    assert_eq!(secrets_file(&agent.state), secrets_before);
    assert!(secrets_before.contains(&Key::from_bytes([9; 32]).to_hex()));
}

#[test]
fn relay_trusted_flag_drops_zero_trust_with_a_warning() {
    let agent = Agent::new();
    let roots = vec![Root {
        user: "olivia".into(),
        key: DeviceKey::from_seed([4; 32]).unwrap().public(),
    }];
    assert!(
        agent
            .run(&["enroll", &token(roots).encode()])
            .status
            .success()
    );
    let out = agent.run(&["enroll", "--relay-trusted", &token(Vec::new()).encode()]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("relay-trusted"),
        "{}",
        text(&out)
    );
    assert_eq!(agent.show()["mode"], "relay-trusted");
}

#[test]
fn a_zero_trust_host_with_a_damaged_trust_file_or_no_key_does_not_start_relay_trusted() {
    let agent = Agent::new();
    let roots = vec![Root {
        user: "olivia".into(),
        key: DeviceKey::from_seed([4; 32]).unwrap().public(),
    }];
    let token = token(roots);
    assert!(agent.run(&["enroll", &token.encode()]).status.success());
    let trust_file = agent.state.join("trust.json");
    let pins = std::fs::read(&trust_file).unwrap();

    // Damaged pins: refusing beats silently believing the relay.
    std::fs::write(&trust_file, b"{\"version\":1").unwrap();
    let out = agent.run(&["run"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("damaged"), "{}", text(&out));
    assert!(!text(&out).contains("agent started"), "{}", text(&out));

    // Pins intact, end-to-end key gone from the secret store.
    std::fs::write(&trust_file, pins).unwrap();
    let (store, _) =
        cm_agent::enroll::open_secrets(cm_client::secrets::StoreChoice::File, &agent.state)
            .unwrap();
    let account = cm_agent::enroll::e2e_account(&token.host, &token.relay);
    assert!(
        store
            .delete(cm_agent::enroll::SECRET_SERVICE, &account)
            .unwrap()
    );
    let out = agent.run(&["run"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("no end-to-end key"), "{}", text(&out));
    assert!(!text(&out).contains("agent started"), "{}", text(&out));
}
