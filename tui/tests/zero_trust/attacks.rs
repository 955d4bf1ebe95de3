//! A relay that says "yes" on its own: it raises roles, rewrites and replays requests, forges
//! grants, serves revoked certificates and withholds revocation lists. The host refuses each,
//! says why, and logs it.

use crate::world::ZtWorld;
use anyhow::Result;
use proto::header::Op;
use proto::ids::UserId;
use proto::rbac::Role;
use proto::trust::{Cert, CertBody, DeviceKey, PublicKey, Subject};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_cannot_raise_a_role_rewrite_a_request_or_replay_one() -> Result<()> {
    let w = ZtWorld::start().await?;
    let bob = w.user("bob", "viewer", true)?;
    bob.ok(&["workspaces", "box"])?;

    // The relay's database says operator; bob's certificate says viewer: the host says no.
    w.owner
        .ok(&["admin", "user", "grant", "bob", "operator", "--host", "box"])?;
    let refused = bob.fails(&["new", "box", "demo"])?;
    assert!(refused.contains("you have viewer"), "{refused}");
    w.wait_agent_log(&["bob", "viewer"])?;

    // The relay claims the request is the owner's, with the owner role: still bob, still no.
    w.evil
        .set(|p| p.principal = Some((UserId::from("owner"), Role::Owner)));
    let refused = bob.fails(&["new", "box", "demo"])?;
    assert!(refused.contains("you have viewer"), "{refused}");
    w.wait_agent_log(&["user=\"bob\"", "relay_principal=owner", "relay_role=owner"])?;
    w.evil.set(|p| p.principal = None);

    // The relay turns a read into a stop: the signed header no longer matches.
    w.evil
        .set(|p| p.rewrite_op = Some((Op::OpencodeStatus, Op::OpencodeStop)));
    let refused = bob.fails(&["opencode", "box", "demo", "status"])?;
    assert!(refused.contains("tampered"), "{refused}");
    w.wait_agent_log(&["tampered"])?;
    w.evil.set(|p| p.rewrite_op = None);

    // The relay keeps the owner's signed header and puts it on the next stream.
    w.evil.set(|p| p.record = Some(Op::WorkspaceList));
    w.owner.ok(&["workspaces", "box"])?;
    w.evil.set(|p| p.replay = true);
    let refused = w.owner.fails(&["workspaces", "box"])?;
    assert!(refused.contains("replay"), "{refused}");
    w.wait_agent_log(&["replay"])?;
    assert!(
        w.evil.tampered() >= 3,
        "every attack went through the relay"
    );
    Ok(())
}

/// The device key of `user` as the relay recorded it at login: the compromised relay reads it
/// from its own database.
fn pending_key(w: &ZtWorld, user: &str) -> Result<PublicKey> {
    let store = cm_relay::state::StateDir::new(w.tmp.path().join("relay")).open_store()?;
    store
        .trust_bundle()?
        .pending
        .into_iter()
        .find(|p| p.user.as_str() == user)
        .map(|p| p.key)
        .ok_or_else(|| anyhow::anyhow!("no pending device key of {user}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_grants_and_revoked_certificates_are_refused_by_the_host() -> Result<()> {
    let w = ZtWorld::start().await?;

    // Mallory has a relay account but no certificate; the relay forges one with a key of its
    // own, granting her owner everywhere, and serves it as if an owner had signed it.
    let mallory = w.user("mallory", "operator", false)?;
    let key = pending_key(&w, "mallory")?;
    let relay_key = DeviceKey::from_seed([0x66; 32])?;
    let now = cm_client::time::now_ms();
    let forged = Cert::sign(
        &CertBody {
            serial: "f0f0f0f0f0f0f0f0".into(),
            subject: Subject::User {
                user: UserId::from("mallory"),
                device_keys: vec![key],
                host: "*".into(),
                role: Role::Owner,
            },
            not_before_ms: now - 60_000,
            not_after_ms: now + 3_600_000,
        },
        &relay_key,
    );
    w.evil.set(|p| p.extra_certs = vec![forged]);
    let refused = mallory.fails(&["workspaces", "box"])?;
    assert!(refused.contains("no valid certificate"), "{refused}");
    w.wait_agent_log(&["mallory", "no valid certificate"])?;
    w.evil.set(|p| p.extra_certs.clear());

    // Bob was certified, then revoked by the owner (a signed list reaches the host). The relay
    // gives him his grant back in its own database: the host refuses the revoked certificate.
    let bob = w.user("bob", "operator", true)?;
    bob.ok(&["workspaces", "box"])?;
    w.owner
        .ok(&["admin", "user", "revoke", "bob", "--host", "box"])?;
    w.owner
        .ok(&["admin", "user", "grant", "bob", "operator", "--host", "box"])?;
    let refused = w.until_refused(&bob, &["workspaces", "box"], "no valid certificate")?;
    assert!(refused.contains("bob"), "{refused}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_revocation_list_stops_the_host_with_a_clear_reason() -> Result<()> {
    let w = ZtWorld::start_with("4s").await?;
    w.evil.set(|p| p.withhold_revocations = true);
    // The owner signs fresh lists; the relay keeps them from the host, whose newest list ages
    // past its limit: the host refuses new work and says why.
    w.owner.ok(&["admin", "trust", "refresh"])?;
    let refused = w.until_refused(&w.owner, &["workspaces", "box"], "revocation list")?;
    assert!(refused.contains("old"), "{refused}");
    w.wait_agent_log(&["revocation list"])?;
    // Delivered again: the host works again.
    w.evil.set(|p| p.withhold_revocations = false);
    w.until_ok(&w.owner, &["workspaces", "box"], true)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_this_laptop_added_gets_nothing_in_plaintext_before_it_proves_its_key() -> Result<()>
{
    let w = ZtWorld::start().await?;
    // A second host, added from the owner's laptop; its agent never connects, so no claim
    // reaches the laptop (as when a relay withholds it).
    w.owner.ok(&["admin", "host", "add", "box2", "--json"])?;
    let refused = w
        .owner
        .fails(&["send", "box2", "demo", "zt-unproven-9c4e"])?;
    assert!(
        refused.contains("has not proven its end-to-end key"),
        "{refused}"
    );
    assert!(!w.evil.saw("zt-unproven-9c4e"), "the relay saw the prompt");
    assert!(
        !crate::world::relay_files_contain(&w, "zt-unproven-9c4e")?,
        "the relay kept the prompt"
    );
    Ok(())
}
