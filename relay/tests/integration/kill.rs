//! The kill switch and credential lifetime on live connections: revoking closes the live
//! connection (waited for by its close event), expiry does too, and bystanders keep working.

use crate::forward::{fake_agent, user_with_grant};
use crate::harness::*;
use anyhow::Result;
use cm_relay::cli::{self, KillArgs};
use cm_relay::time::now_ms;
use proto::handshake::{IssuedCredential, Key};
use proto::ids::{CredId, UserId};
use proto::message::CloseReason;
use proto::rbac::Role;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_user_and_host_close_live_connections() -> Result<()> {
    let relay = TestRelay::start().await?;
    let owner = relay.login_owner().await?;
    let owner_op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    let mallory = user_with_grant(&relay, "mallory", "*", Role::Operator)?;
    let mallory_op = operator(&relay.addr_str(), &relay.state.pin, &mallory).await?;
    let agent = fake_agent(&relay, "box").await?;

    let summary = cli::kill(
        &relay.state.dir,
        &KillArgs {
            user: Some("mallory".into()),
            ..kill_args()
        },
    )?;
    assert_eq!(summary, "revoked 1 credential(s) of mallory");
    let (reason, text) = closed_reason(&mallory_op.conn).await?;
    assert_eq!(reason, CloseReason::Revoked);
    assert_eq!(text, "credential revoked");
    // Mallory cannot come back with it.
    assert!(
        operator(&relay.addr_str(), &relay.state.pin, &mallory)
            .await
            .is_err()
    );

    cli::kill(
        &relay.state.dir,
        &KillArgs {
            host: Some("box".into()),
            ..kill_args()
        },
    )?;
    let (reason, _) = closed_reason(&agent.conn).await?;
    assert_eq!(reason, CloseReason::Revoked);

    // The owner was never touched.
    assert!(owner_op.conn.close_reason().is_none());
    let list = watch_until(&owner_op, "box gone from the list", |l| l.hosts.is_empty()).await?;
    assert!(list.hosts.is_empty(), "a revoked host is not listed");
    // Both kills are in the audit trail.
    let rows = relay.state.store()?.audit_tail(20)?;
    assert!(
        rows.iter()
            .any(|r| r.event.op == "kill" && r.event.target.as_deref() == Some("revoked host box"))
    );
    assert!(
        rows.iter().any(|r| r.event.op == "disconnect"
            && r.event.reason.as_deref() == Some("credential revoked"))
    );
    assert_eq!(relay.state.store()?.audit_verify()?, None);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_credential_expiring_mid_connection_closes_it() -> Result<()> {
    let relay = TestRelay::start().await?;
    let store = relay.state.store()?;
    let user = UserId::from("shortlived");
    store.add_user(&user, now_ms())?;
    store.grant(&user, "*", Role::Viewer)?;
    let cred = IssuedCredential {
        cred_id: CredId::from("c-short"),
        secret: Key::from_bytes([3; 32]),
        expires_at_ms: now_ms() + 1_500,
        user,
    };
    store.add_credential(
        &cred.cred_id,
        &cred.user,
        &cred.secret,
        cred.expires_at_ms,
        None,
        now_ms(),
    )?;
    let op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;
    let (reason, text) = closed_reason(&op.conn).await?;
    assert_eq!(reason, CloseReason::Revoked);
    assert_eq!(text, "credential expired; log in again");
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_owner_cannot_be_removed_from_the_cli() -> Result<()> {
    let relay = TestRelay::start().await?;
    let err = cli::admin_change(
        &relay.state.dir,
        cli::AdminChange::RemoveUser { user: "owner" },
    )
    .unwrap_err();
    assert!(err.to_string().contains("last owner"), "{err}");
    let invite = cli::user_add(&relay.state.dir, "bob", "admin", "box")?;
    assert_eq!(invite.user.as_str(), "bob");
    let err = cli::user_add(&relay.state.dir, "eve", "root", "*").unwrap_err();
    assert!(err.to_string().contains("unknown role"), "{err}");
    relay.shutdown().await;
    Ok(())
}
