//! The kill switch and credential lifetime on live connections: revoking closes the live
//! connection (waited for by its close event), expiry does too, and bystanders keep working;
//! removing a user tells the agents that user's credentials are revoked.

use crate::forward::{fake_agent, user_with_grant};
use crate::harness::*;
use anyhow::{Context, Result};
use cm_client as client;
use cm_relay::cli::{self, KillArgs};
use cm_relay::framed::FramedRecv;
use cm_relay::time::now_ms;
use proto::admin::{AdminDone, UserRequest};
use proto::handshake::{IssuedCredential, Key};
use proto::header::{Op, StreamHeader};
use proto::ids::{CredId, ReqId, UserId};
use proto::message::{CloseReason, Control};
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
    assert_eq!(summary, "revoked 1 credential of mallory");
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
    // An owner of one host does not count as another owner of the relay.
    cli::user_add(&relay.state.dir, "hob", "owner", "box")?;
    let err = cli::admin_change(
        &relay.state.dir,
        cli::AdminChange::RemoveUser { user: "owner" },
    )
    .unwrap_err();
    assert!(err.to_string().contains("last owner"), "{err}");
    for change in [
        cli::AdminChange::Grant {
            user: "owner",
            role: "admin",
            host: "*",
        },
        cli::AdminChange::RevokeGrant {
            user: "owner",
            host: "*",
        },
    ] {
        let err = cli::admin_change(&relay.state.dir, change).unwrap_err();
        assert!(err.to_string().contains("last owner"), "{err}");
    }
    // The one-host owner may lose that grant.
    cli::admin_change(
        &relay.state.dir,
        cli::AdminChange::RevokeGrant {
            user: "hob",
            host: "box",
        },
    )?;
    let invite = cli::user_add(&relay.state.dir, "bob", "admin", "box")?;
    assert_eq!(invite.user.as_str(), "bob");
    let err = cli::user_add(&relay.state.dir, "eve", "root", "*").unwrap_err();
    assert!(err.to_string().contains("unknown role"), "{err}");
    relay.shutdown().await;
    Ok(())
}

/// A fake agent (it keeps heart-beating); returns its connection and the receive half of its
/// control stream.
async fn heartbeating_agent(
    relay: &TestRelay,
    name: &str,
) -> Result<(quinn::Connection, FramedRecv)> {
    let crate::forward::FakeAgent { conn, control_recv } = fake_agent(relay, name).await?;
    Ok((conn, control_recv))
}

/// Reads the agent's control stream until a `creds_revoked` notice names `cred` (bounded).
async fn until_told_revoked(control: &mut FramedRecv, cred: &CredId) -> Result<()> {
    tokio::time::timeout(WAIT, async {
        loop {
            match control.next::<Control>().await? {
                Some(Control::CredsRevoked { cred_ids }) if cred_ids.contains(cred) => {
                    return Ok::<_, anyhow::Error>(());
                }
                Some(_) => {}
                None => anyhow::bail!("the control stream ended"),
            }
        }
    })
    .await
    .with_context(|| format!("the agent was never told that {cred} is revoked"))?
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_user_tells_the_agents_their_credentials_are_revoked() -> Result<()> {
    let relay = TestRelay::start().await?;
    let owner = relay.login_owner().await?;
    let owner_op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    let rita = user_with_grant(&relay, "rita", "*", Role::Operator)?;
    let rita_op = operator(&relay.addr_str(), &relay.state.pin, &rita).await?;
    let ravi = user_with_grant(&relay, "ravi", "box", Role::Operator)?;
    let (_agent, mut control) = heartbeating_agent(&relay, "box").await?;
    watch_until(&owner_op, "box online", |l| host_online(l, "box")).await?;

    // Removed with the CLI (another process's store): the running relay tells the agent.
    let summary = cli::admin_change(
        &relay.state.dir,
        cli::AdminChange::RemoveUser { user: "rita" },
    )?;
    assert_eq!(summary, "removed rita");
    until_told_revoked(&mut control, &rita.cred_id).await?;
    let (reason, _) = closed_reason(&rita_op.conn).await?;
    assert_eq!(reason, CloseReason::Revoked);

    // Removed by an owner through the relay: the same notice.
    let done: AdminDone = client::request(
        &owner_op.conn,
        &StreamHeader::new(Op::UserManage, ReqId(7)),
        Some(&UserRequest::Remove {
            name: "ravi".into(),
        }),
    )
    .await?;
    assert_eq!(done.summary, "removed ravi");
    until_told_revoked(&mut control, &ravi.cred_id).await?;

    // An agent connecting later is told too (the credentials have not expired yet).
    let (_late, mut late_control) = heartbeating_agent(&relay, "late-box").await?;
    until_told_revoked(&mut late_control, &rita.cred_id).await?;
    relay.shutdown().await;
    Ok(())
}

/// Reads `creds_revoked` notices until all of `creds` were named (bounded); every id named on
/// the way.
async fn revoked_ids_until(control: &mut FramedRecv, creds: &[&CredId]) -> Result<Vec<CredId>> {
    let mut seen = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            match control.next::<Control>().await? {
                Some(Control::CredsRevoked { cred_ids }) => {
                    seen.extend(cred_ids);
                    if creds.iter().all(|c| seen.contains(c)) {
                        return Ok::<_, anyhow::Error>(());
                    }
                }
                Some(_) => {}
                None => anyhow::bail!("the control stream ended"),
            }
        }
    })
    .await
    .with_context(|| format!("the agent was never told that all of {creds:?} are revoked"))??;
    Ok(seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_notices_name_only_credentials_with_a_grant_on_the_host() -> Result<()> {
    let relay = TestRelay::start().await?;
    let owner = relay.login_owner().await?;
    let owner_op = operator(&relay.addr_str(), &relay.state.pin, &owner).await?;
    let nora = user_with_grant(&relay, "nora", "other", Role::Operator)?;
    let bert = user_with_grant(&relay, "bert", "box", Role::Operator)?;
    let wanda = user_with_grant(&relay, "wanda", "*", Role::Operator)?;
    let (_agent, mut control) = heartbeating_agent(&relay, "box").await?;
    watch_until(&owner_op, "box online", |l| host_online(l, "box")).await?;

    // nora could never reach box: her revocation is none of its business.
    for cred in [&nora, &bert, &wanda] {
        cli::admin_change(
            &relay.state.dir,
            cli::AdminChange::RevokeCred {
                id: cred.cred_id.as_str(),
            },
        )?;
    }
    let seen = revoked_ids_until(&mut control, &[&bert.cred_id, &wanda.cred_id]).await?;
    assert!(!seen.contains(&nora.cred_id), "{seen:?}");

    // The same for a removed user, and for an agent that connects later.
    cli::admin_change(
        &relay.state.dir,
        cli::AdminChange::RemoveUser { user: "nora" },
    )?;
    let (_late, mut late_control) = heartbeating_agent(&relay, "late-box").await?;
    let seen = revoked_ids_until(&mut late_control, &[&wanda.cred_id]).await?;
    assert!(!seen.contains(&nora.cred_id), "{seen:?}");
    assert!(!seen.contains(&bert.cred_id), "{seen:?}");
    relay.shutdown().await;
    Ok(())
}
