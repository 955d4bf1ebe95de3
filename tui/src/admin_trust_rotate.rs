//! `cm-tui admin trust rotate-owner` and `retire-old-root` (issue #20): an owner replaces the
//! root key hosts pinned at enrollment without re-enrolling them. On the laptop that holds the
//! root, in order:
//!
//! 1. fetch what the relay holds (certificates, the rotations already published);
//! 2. draw the new key; the **old** root signs the rotation statement (old → new, the owner's
//!    next sequence number, the time); the certificates the old root signed that still count
//!    are signed again by the new key; this laptop's revocation list is signed by the new key;
//! 3. store the new key in the secret store **before** anything is published (a rotation to a
//!    key this laptop lost would lock the owner out); if the publish fails the old key is put
//!    back and nothing changed;
//! 4. publish statement, new root, re-signed certificates and list in one `trust_publish`; the
//!    relay pushes the statement to every agent, which pins the new root and keeps the old one
//!    for its `[trust] root_overlap`.
//!
//! `retire-old-root` ends that overlap early: the current root's revocation list names the old
//! root, and hosts that take it retire the old root at once.

use crate::admin_trust_local::{Local, fetch, out, publish, publish_revocations, trust_err};
use crate::commands::CommandError;
use crate::profile::Profile;
use crate::remote::Remote;
use crate::trust::{TrustFileError, admin, device};
use crate::view::text::sanitize;
use cm_client::time::{now_ms, random_u64, random32};
use proto::trust::{DeviceKey, PublicKey, Root, RootRotation, RotationBody, TrustBundle};
use serde::Serialize;

/// What a rotation did.
#[derive(Debug, Serialize)]
struct Rotated {
    old: String,
    new: String,
    seq: u64,
    resigned: usize,
}

fn not_a_root(key: &PublicKey) -> CommandError {
    CommandError::BadInput(format!(
        "this laptop's device key {} is not a current owner root; run this on the laptop that ran `cm-tui admin trust init` (or the last `rotate-owner`)",
        key.fingerprint()
    ))
}

/// `cm-tui admin trust rotate-owner` (see the module docs).
///
/// # Errors
/// Not a current root here, no randomness, store, transport or trust file failures.
pub async fn rotate_owner(
    remote: &Remote,
    profile: &Profile,
    json: bool,
) -> Result<(), CommandError> {
    let mut local = Local::load(profile)?;
    let bundle = fetch(remote).await?;
    let served = bundle.rotations.clone();
    let now = now_ms();
    local.trust.merge_bundle(bundle, now);
    let me = profile.user.clone();
    let old = local.trust.key.public();
    if !local
        .trust
        .pins
        .active
        .iter()
        .any(|r| r.key == old && r.user == me)
    {
        return Err(not_a_root(&old));
    }
    let seed = random32().map_err(|e| trust_err(TrustFileError::Random(e.to_string())))?;
    let new = DeviceKey::from_seed(seed).map_err(|e| trust_err(e.into()))?;
    let seq = local.trust.pins.next_seq(&me, &served);
    let statement = RootRotation::sign(
        &RotationBody {
            user: me.clone(),
            old_key: old,
            new_key: new.public(),
            seq,
            issued_ms: now,
        },
        &local.trust.key,
    );
    let certs = admin::resign(
        &local.trust.certs,
        &local.trust.revoked,
        &old,
        &new,
        now,
        random_u64,
    );
    let secrets = profile.home.secrets().map_err(|e| trust_err(e.into()))?;
    let account = profile.account();
    device::store(&secrets, &account, &new).map_err(trust_err)?;
    let old_key = std::mem::replace(&mut local.trust.key, new);
    let list = admin::sign_own_list(&local.trust, &mut local.file.own_list, now);
    let new_root = Root {
        user: me.clone(),
        key: local.trust.key.public(),
    };
    let published = publish(
        remote,
        &TrustBundle {
            roots: vec![new_root.clone()],
            certs: certs.clone(),
            revocations: vec![list],
            rotations: vec![statement.clone()],
            ..TrustBundle::default()
        },
    )
    .await;
    if let Err(e) = published {
        // Nothing was stored at the relay: this laptop keeps the old root.
        device::store(&secrets, &account, &old_key).map_err(trust_err)?;
        return Err(CommandError::BadInput(format!(
            "the rotation was not published ({e}); nothing changed, this laptop keeps its root {}",
            old.fingerprint()
        )));
    }
    local.trust.take_rotations(&[statement], now);
    local.trust.merge_bundle(
        TrustBundle {
            certs: certs.clone(),
            ..TrustBundle::default()
        },
        now,
    );
    local.save(profile)?;
    let r = Rotated {
        old: old.fingerprint(),
        new: new_root.key.fingerprint(),
        seq,
        resigned: certs.len(),
    };
    let text = format!(
        "owner root rotated: {} -> {} (rotation {})\n\
         re-signed {} certificate(s) the old root signed; published with the rotation\n\
         hosts pin the new root when the relay delivers the rotation (at once to connected agents) and trust the old one until their [trust] root_overlap ends (default 7 days)\n\
         hosts you add and invites you make from now on carry the new root\n\
         certificates other owners' laptops signed are not affected; to stop trusting the old root before the overlap ends, run `cm-tui admin trust retire-old-root`\n",
        r.old, r.new, r.seq, r.resigned
    );
    out(json, &r, text)
}

/// `cm-tui admin trust retire-old-root` (see the module docs).
///
/// # Errors
/// Not a current root here, no replaced root to retire, transport or trust file failures.
pub async fn retire_old_root(
    remote: &Remote,
    profile: &Profile,
    json: bool,
) -> Result<(), CommandError> {
    let mut local = Local::load(profile)?;
    let bundle = fetch(remote).await?;
    let now = now_ms();
    local.trust.merge_bundle(bundle, now);
    let me = profile.user.clone();
    let current = local.trust.key.public();
    if !local
        .trust
        .pins
        .active
        .iter()
        .any(|r| r.key == current && r.user == me)
    {
        return Err(not_a_root(&current));
    }
    let old: Vec<PublicKey> = local
        .trust
        .pins
        .retiring
        .iter()
        .filter(|r| r.root.user == me)
        .map(|r| r.root.key)
        .collect();
    if old.is_empty() {
        return Err(CommandError::BadInput(format!(
            "{} has no replaced root still trusted here; nothing to retire",
            sanitize(me.as_str())
        )));
    }
    for k in &old {
        local.trust.pins.retire(k, &current);
    }
    local.trust.roots = local.trust.pins.trusted(now);
    publish_revocations(remote, profile, &mut local, &[], &old, now).await?;
    let fps: Vec<String> = old.iter().map(PublicKey::fingerprint).collect();
    let text = format!(
        "retired {}: this laptop's signed revocation list names it; hosts stop trusting it when the relay delivers the list\n",
        fps.join(", ")
    );
    out(json, &serde_json::json!({ "retired": fps }), text)
}
