//! Zero-trust on the operator's laptop (issue #20) through the real `cm-tui` binary and an
//! in-process relay: the device key made at login, roots pinned from invites, and tokens and
//! invites that carry this laptop's roots (so a relay cannot slip in its own).

use super::{env, stderr, tui};
use anyhow::Result;
use proto::ids::UserId;
use proto::token::{EnrollmentToken, Invite};
use proto::trust::{DeviceKey, Root};
use std::process::Output;

fn tui_in(state: &std::path::Path, args: &[&str]) -> Result<Output> {
    Ok(std::process::Command::new(env!("CARGO_BIN_EXE_cm-tui"))
        .args(args)
        .env("CM_TUI_STATE_DIR", state)
        .env("CM_SECRET_STORE", "file")
        .output()?)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn owner_root() -> Result<(DeviceKey, Root)> {
    let key = DeviceKey::from_seed([1; 32])?;
    let root = Root {
        user: UserId::from("owner"),
        key: key.public(),
    };
    Ok((key, root))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_add_without_a_pinned_root_is_refused_and_says_what_to_run() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["login", &env.invite])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("ask an admin to certify it: they will see ed25519:"),
        "{text}"
    );
    // The device key is kept next to the credential, in the same (0600 file) store.
    let secrets = std::fs::read_to_string(env.tui_state.join("credentials.json"))?;
    assert!(secrets.contains("codemantle-device/owner@"), "{secrets}");

    let out = tui(&env, &["admin", "host", "add", "box"])?;
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("run `cm-tui admin trust init` (owner) or log in with an invite that carries the owner's root"),
        "{}",
        stderr(&out)
    );
    assert!(!stdout(&out).contains("cmh1"), "no token printed");
    // The relay-trusted escape hatch still works, and says nothing of roots.
    let out = tui(
        &env,
        &["admin", "host", "add", "box", "--relay-trusted", "--json"],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let token = EnrollmentToken::decode(v["token"].as_str().unwrap_or_default())?;
    assert!(token.roots.is_empty() && token.bind.is_none());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_pins_invite_roots_and_host_add_and_user_add_carry_them() -> Result<()> {
    let env = env().await?;
    let (_key, root) = owner_root()?;
    let mut invite = Invite::decode(&env.invite)?;
    invite.roots = vec![root.clone()];
    let out = tui(&env, &["login", &invite.encode()])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(&format!(
            "pinned owner root owner {}",
            root.key.fingerprint()
        )),
        "{text}"
    );

    // The token carries the pinned root and a fresh bind secret that stays in the trust file.
    let out = tui(&env, &["admin", "host", "add", "box", "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let token = EnrollmentToken::decode(v["token"].as_str().unwrap_or_default())?;
    assert_eq!(token.roots, vec![root.clone()]);
    let bind = token.bind.expect("token has a bind secret");
    let trust_file = std::fs::read_dir(&env.tui_state)?
        .filter_map(|e| e.ok())
        .find(|e| e.file_name().to_string_lossy().starts_with("trust-owner@"))
        .expect("trust file written")
        .path();
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&trust_file)?.permissions());
    assert_eq!(mode & 0o777, 0o600);
    let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&trust_file)?)?;
    assert_eq!(f["binds"]["box"], serde_json::json!(hex::encode(bind.0)));
    // Rotating re-enrolls zero-trust too, with a new bind secret.
    let out = tui(&env, &["admin", "host", "rotate", "box", "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let rotated = EnrollmentToken::decode(v["token"].as_str().unwrap_or_default())?;
    assert_eq!(rotated.roots, vec![root.clone()]);
    let new_bind = rotated.bind.expect("rotated token has a bind secret");
    assert_ne!(new_bind.0, bind.0);
    let f: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&trust_file)?)?;
    assert_eq!(
        f["binds"]["box"],
        serde_json::json!(hex::encode(new_bind.0))
    );

    // An invite made here carries the root; the invitee's laptop pins it at login.
    let out = tui(
        &env,
        &[
            "admin", "user", "add", "bob", "--role", "operator", "--json",
        ],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let mut bob_invite = Invite::decode(v["invite"].as_str().unwrap_or_default())?;
    // The relay's public address in the invite is the one given at init; use the bound port.
    bob_invite.relay = env.relay.local_addr().to_string();
    assert_eq!(bob_invite.roots, vec![root.clone()]);
    let bob_state = env.tui_state.with_file_name("bob");
    let out = tui_in(&bob_state, &["login", &bob_invite.encode()])?;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "pinned owner root owner {}",
            root.key.fingerprint()
        )),
        "{}",
        stdout(&out)
    );
    Ok(())
}

/// Needs the relay's `trust_fetch`/`trust_publish` (relay/src/net/trust.rs).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trust_init_then_user_certify_signs_the_pending_device_key() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["login", &env.invite])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tui(&env, &["admin", "trust", "init", "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let fp = v["fingerprint"].as_str().unwrap_or_default().to_owned();
    assert!(fp.starts_with("ed25519:"));

    let out = tui(
        &env,
        &[
            "admin", "user", "add", "bob", "--role", "operator", "--json",
        ],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let mut bob_invite = Invite::decode(v["invite"].as_str().unwrap_or_default())?;
    // The relay's public address in the invite is the one given at init; use the bound port.
    bob_invite.relay = env.relay.local_addr().to_string();
    assert_eq!(bob_invite.roots.len(), 1);
    assert_eq!(bob_invite.roots[0].key.fingerprint(), fp);
    let bob_state = env.tui_state.with_file_name("bob");
    let out = tui_in(&bob_state, &["login", &bob_invite.encode(), "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let bob_fp = v["device_key_fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    let out = tui(&env, &["admin", "trust", "show", "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    assert!(
        v["pending"]
            .as_array()
            .is_some_and(|p| p.iter().any(|x| x["key"] == bob_fp.as_str())),
        "{v}"
    );
    // Unattended, the grants to sign must come from the owner, not from the relay's list.
    let out = tui(
        &env,
        &["admin", "user", "certify", "bob", "--yes", "--json"],
    )?;
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("with --yes, name the device key (--key FINGERPRINT"),
        "{}",
        stderr(&out)
    );
    // Nor the key: the relay could list a key of its own among bob's pending ones.
    let out = tui(
        &env,
        &[
            "admin",
            "user",
            "certify",
            "bob",
            "--grant",
            "box=viewer",
            "--yes",
        ],
    )?;
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("--key FINGERPRINT"),
        "{}",
        stderr(&out)
    );
    // The relay grants bob operator on *; the owner signs viewer on box only: that is what
    // the certificate says.
    let out = tui(
        &env,
        &[
            "admin",
            "user",
            "certify",
            "bob",
            "--key",
            &bob_fp,
            "--grant",
            "box=viewer",
            "--yes",
            "--json",
        ],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    assert_eq!(v["keys"], serde_json::json!([bob_fp]));
    assert_eq!(
        v["grants"],
        serde_json::json!([{"host": "box", "role": "viewer"}])
    );
    let out = tui(&env, &["admin", "trust", "show", "--json"])?;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let bobs: Vec<_> = v["certs"]
        .as_array()
        .map(|c| c.iter().filter(|x| x["subject"] == "bob").collect())
        .unwrap_or_default();
    assert!(
        bobs.len() == 1
            && bobs[0]["valid"] == true
            && bobs[0]["role"] == "viewer"
            && bobs[0]["host"] == "box",
        "{v}"
    );
    // Lowering bob's grant on * revokes his certificate that gives more there (a host takes
    // the highest role a valid certificate gives); the one for box is not above viewer.
    let out = tui(
        &env,
        &[
            "admin",
            "user",
            "certify",
            "bob",
            "--key",
            &bob_fp,
            "--grant",
            "*=operator",
            "--yes",
            "--json",
        ],
    )?;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = tui(&env, &["admin", "user", "grant", "bob", "viewer"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stderr(&out);
    assert!(
        said.contains("revoked 1 certificate(s) and 0 device key(s) of bob")
            && said.contains("cm-tui admin user certify bob --grant *=viewer"),
        "{said}"
    );
    let out = tui(&env, &["admin", "trust", "show", "--json"])?;
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let valid = |host: &str| {
        v["certs"].as_array().and_then(|c| {
            c.iter()
                .find(|x| x["subject"] == "bob" && x["host"] == host)
                .map(|x| x["valid"] == true)
        })
    };
    assert_eq!(valid("*"), Some(false), "{v}");
    assert_eq!(valid("box"), Some(true), "{v}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotate_device_makes_a_new_key_and_says_who_must_revoke_the_old_one() -> Result<()> {
    let env = env().await?;
    let out = tui(&env, &["login", &env.invite, "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    let old = v["device_key_fingerprint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(old.starts_with("ed25519:"), "{v}");
    let out = tui(&env, &["admin", "trust", "rotate-device", "--json"])?;
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out))?;
    assert_eq!(v["old"], serde_json::json!(old));
    assert_ne!(v["new"], v["old"]);
    // Not a root nor a certified admin: it cannot revoke the old key itself.
    assert_eq!(v["old_revoked"], serde_json::json!(false));
    assert!(
        v["new"].as_str().is_some_and(|k| k.starts_with("ed25519:")),
        "{v}"
    );
    Ok(())
}
