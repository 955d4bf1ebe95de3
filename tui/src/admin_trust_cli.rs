//! `cm-tui admin trust …` and the zero-trust steps of `admin host add/certify`, `admin user
//! Over 600 lines because every signing step of the laptop (init, refresh, certify, revocation lists, sealing tokens) shares one trust-file transaction helper; splitting by command is the next step.
//! add/certify/revoke/remove` and `admin creds revoke` (issue #20): everything that is signed
//! is signed here, on the owner's or admin's laptop, with its device key; the relay only
//! stores and serves what this publishes.

use crate::admin_trust_local::{Local, fetch, out, publish, publish_revocations, trust_err};
use crate::commands::CommandError;
use crate::profile::Profile;
use crate::relay_call::{RelayConn, call};
use crate::remote::Remote;
use crate::trust::admin::{self, Authority};
use crate::trust::file::TrustFile;
use crate::trust::{self, OperatorTrust, TrustFileError, device};
use crate::view::text::sanitize;
use clap::Subcommand;
use cm_client::time::{now_ms, random_u64, utc};
use proto::admin::{AdminDone, HostEnrolled, UserInfo};
use proto::handshake::Bytes32;
use proto::ids::{HostId, UserId};
use proto::op;
use proto::rbac::Role;
use proto::token::{EnrollmentToken, Invite};
use proto::trust::{Cert, PublicKey, Root, Subject, TrustBundle};
use serde::Serialize;

/// `admin trust` subcommands.
#[derive(Debug, Subcommand)]
pub enum TrustCommand {
    /// Make this laptop's device key an owner root (owners only) and publish it.
    #[command(after_help = "Example:\n  cm-tui admin trust init")]
    Init {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Fetch certificates, certify hosts this laptop added that proved their key, and re-sign
    /// this laptop's revocation list so hosts stay fresh.
    #[command(after_help = "Example:\n  cm-tui admin trust refresh")]
    Refresh {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Roots, certificates, pending device keys, host key claims and revocation lists.
    #[command(after_help = "Example:\n  cm-tui admin trust show --json")]
    Show {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make a new device key for this laptop (the old one is revoked when this laptop can sign).
    #[command(after_help = "Example:\n  cm-tui admin trust rotate-device")]
    RotateDevice {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace this laptop's owner root with a new key: the old root signs the rotation, hosts
    /// and laptops that pin it pin the new one, and the certificates the old root signed are
    /// re-signed with the new one.
    #[command(after_help = "Example:\n  cm-tui admin trust rotate-owner")]
    RotateOwner {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Stop trusting the owner root this laptop rotated away from, before the hosts' overlap
    /// (`[trust] root_overlap`) ends.
    #[command(after_help = "Example:\n  cm-tui admin trust retire-old-root")]
    RetireOldRoot {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

async fn users(remote: &Remote) -> Result<Vec<UserInfo>, CommandError> {
    call::<op::UserList>(remote, &()).await
}

/// Runs `cm-tui admin trust …`.
///
/// # Errors
/// Refusals, transport and trust file failures.
pub async fn run(
    remote: &Remote,
    profile: &Profile,
    command: TrustCommand,
) -> Result<(), CommandError> {
    match command {
        TrustCommand::Init { json } => init(remote, profile, json).await,
        TrustCommand::Refresh { json } => refresh(remote, profile, None, json).await,
        TrustCommand::Show { json } => show(remote, profile, json).await,
        TrustCommand::RotateDevice { json } => rotate_device(remote, profile, json).await,
        TrustCommand::RotateOwner { json } => {
            crate::admin_trust_rotate::rotate_owner(remote, profile, json).await
        }
        TrustCommand::RetireOldRoot { json } => {
            crate::admin_trust_rotate::retire_old_root(remote, profile, json).await
        }
    }
}

async fn init(remote: &Remote, profile: &Profile, json: bool) -> Result<(), CommandError> {
    let mut local = Local::load(profile)?;
    let me = profile.user.clone();
    let is_owner = users(remote).await?.iter().any(|u| {
        u.name == me.as_str()
            && u.grants
                .iter()
                .any(|g| g.role == Role::Owner && g.host == "*")
    });
    if !is_owner {
        return Err(CommandError::BadInput(format!(
            "only an owner can make their device key a root; {} is not owner on * at this relay",
            sanitize(me.as_str())
        )));
    }
    let root = Root {
        user: me.clone(),
        key: local.trust.key.public(),
    };
    if !local.trust.roots.contains(&root) {
        local.trust.roots.push(root.clone());
    }
    let now = now_ms();
    let grant = admin::user_certs(
        &local.trust,
        Authority::Root,
        &me,
        &[root.key],
        &[proto::admin::GrantInfo {
            host: "*".into(),
            role: Role::Owner,
        }],
        now,
        random_u64,
    )
    .map_err(|e| CommandError::BadInput(e.to_string()))?;
    let list = admin::sign_own_list(&local.trust, &mut local.file.own_list, now);
    local.trust.certs.extend(grant.iter().cloned());
    local.save(profile)?;
    publish(
        remote,
        &TrustBundle {
            roots: vec![root.clone()],
            certs: grant,
            revocations: vec![list],
            ..TrustBundle::default()
        },
    )
    .await?;
    let fp = root.key.fingerprint();
    out(
        json,
        &serde_json::json!({"root": root, "fingerprint": fp}),
        format!(
            "this laptop's device key is now an owner root: {fp}\nhosts you add from now on pin it; invites you make carry it\n"
        ),
    )
}

/// What a refresh did.
#[derive(Debug, Serialize)]
struct Refreshed {
    certified_hosts: Vec<HostId>,
    refused_claims: Vec<HostId>,
    revocation_seq: u64,
}

/// Fetches, certifies proven host claims (all, or `only`), re-signs and publishes this
/// laptop's revocation list.
async fn refresh(
    remote: &Remote,
    profile: &Profile,
    only: Option<HostId>,
    json: bool,
) -> Result<(), CommandError> {
    let mut local = Local::load(profile)?;
    let bundle = fetch(remote).await?;
    let claims = bundle.claims.clone();
    let now = now_ms();
    local.trust.merge_bundle(bundle, now);
    local.require_signer()?;
    if let Some(h) = &only
        && !local.file.binds.contains_key(h)
    {
        return Err(CommandError::BadInput(format!(
            "this laptop did not add host {} (it holds no bind secret for it); certify it on the laptop that ran `cm-tui admin host add {}`",
            sanitize(h.as_str()),
            sanitize(h.as_str())
        )));
    }
    let (certs, bad) = admin::certify_claims(
        &local.trust,
        &local.file.binds,
        &claims,
        only.as_ref(),
        now,
        random_u64,
    );
    if let Some(h) = &only
        && certs.is_empty()
        && !bad.contains(h)
        && local.trust.host_key(h, now).is_err()
    {
        return Err(CommandError::BadInput(format!(
            "host {} has not claimed a key yet; start its agent (`cm-agent run`) so it connects, then try again",
            sanitize(h.as_str())
        )));
    }
    let list = admin::sign_own_list(&local.trust, &mut local.file.own_list, now);
    publish(
        remote,
        &TrustBundle {
            certs: certs.clone(),
            revocations: vec![list],
            ..TrustBundle::default()
        },
    )
    .await?;
    let certified: Vec<HostId> = certs
        .iter()
        .filter_map(|c| match c.open().ok()?.subject {
            Subject::Host { host, .. } => Some(host),
            Subject::User { .. } => None,
        })
        .collect();
    local.trust.merge_bundle(
        TrustBundle {
            certs,
            ..TrustBundle::default()
        },
        now,
    );
    local.save(profile)?;
    let r = Refreshed {
        certified_hosts: certified,
        refused_claims: bad,
        revocation_seq: local.file.own_list.seq,
    };
    let mut text = String::new();
    for h in &r.certified_hosts {
        let key = local
            .trust
            .host_key(h, now)
            .map(|k| k.fingerprint())
            .unwrap_or_default();
        text.push_str(&format!(
            "certified host {} key {key}\n",
            sanitize(h.as_str())
        ));
    }
    for h in &r.refused_claims {
        text.push_str(&format!(
            "REFUSED host {}'s key claim: it does not prove the enrollment's bind secret (a relay or impostor sent it); not certified\n",
            sanitize(h.as_str())
        ));
    }
    text.push_str(&format!(
        "revocation list re-signed (seq {}) and published\n",
        r.revocation_seq
    ));
    out(json, &r, text)
}

/// `cm-tui admin host certify NAME`.
///
/// # Errors
/// As refresh; a host this laptop did not add, or without a claim.
pub async fn host_certify(
    remote: &Remote,
    profile: &Profile,
    name: String,
    json: bool,
) -> Result<(), CommandError> {
    refresh(remote, profile, Some(HostId(name)), json).await
}

const NO_ROOTS: &str = "this laptop has no owner root pinned, so a host enrolled now could not verify operators; run `cm-tui admin trust init` (owner) or log in with an invite that carries the owner's root (or pass --relay-trusted for a host the relay vouches for)";

/// Adds this laptop's roots and a fresh bind secret (kept in the trust file) to the token the
/// relay made; returns the bind secret.
///
/// # Errors
/// No roots pinned, a damaged token, trust file failures.
pub fn seal_enrollment(profile: &Profile, e: &mut HostEnrolled) -> Result<Bytes32, CommandError> {
    let Some(trust) = trust::load(profile).map_err(trust_err)? else {
        return Err(CommandError::BadInput(NO_ROOTS.into()));
    };
    let file = TrustFile::read(&trust::file_path(profile)).map_err(trust_err)?;
    let mut local = Local { trust, file };
    if local.trust.roots.is_empty() {
        return Err(CommandError::BadInput(NO_ROOTS.into()));
    }
    let mut token = EnrollmentToken::decode(&e.token)
        .map_err(|err| CommandError::BadInput(format!("the relay's token is damaged: {err}")))?;
    let bind = cm_client::time::random32()
        .map_err(|err| trust_err(TrustFileError::Random(err.to_string())))?;
    token.roots.clone_from(&local.trust.roots);
    token.bind = Some(Bytes32(bind));
    local.file.binds.insert(token.host.clone(), Bytes32(bind));
    local.save(profile)?;
    e.token = token.encode();
    Ok(Bytes32(bind))
}

/// Whether this laptop has roots to put in tokens (checked before asking the relay).
///
/// # Errors
/// The message saying what to run; a damaged trust file or store.
pub fn require_roots(profile: &Profile) -> Result<(), CommandError> {
    if has_roots(profile)? {
        Ok(())
    } else {
        Err(CommandError::BadInput(NO_ROOTS.into()))
    }
}

/// Whether this laptop has pinned roots.
///
/// # Errors
/// A damaged trust file or store.
pub fn has_roots(profile: &Profile) -> Result<bool, CommandError> {
    Ok(trust::load(profile)
        .map_err(trust_err)?
        .is_some_and(|t| t.zero_trust()))
}

/// Adds this laptop's roots to an invite the relay made (unchanged when it has none).
///
/// # Errors
/// A damaged invite.
pub fn seal_invite(profile: &Profile, d: &mut AdminDone) -> Result<(), CommandError> {
    let Some(text) = &d.invite else {
        return Ok(());
    };
    let Some(t) = trust::load(profile).ok().flatten() else {
        return Ok(());
    };
    if t.roots.is_empty() {
        return Ok(());
    }
    let mut inv = Invite::decode(text)
        .map_err(|err| CommandError::BadInput(format!("the relay's invite is damaged: {err}")))?;
    inv.roots = t.roots;
    d.invite = Some(inv.encode());
    Ok(())
}

/// What `cm-tui admin user certify` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certify {
    /// The user.
    pub name: String,
    /// Only this pending device key (fingerprint or hex).
    pub key: Option<String>,
    /// `HOST=ROLE` grants to sign instead of the relay's list.
    pub grants: Vec<String>,
    /// No confirmation (only with `key` and `grants`).
    pub yes: bool,
}

/// Parses `--grant HOST=ROLE`.
///
/// # Errors
/// [`CommandError::BadInput`] saying what a grant looks like.
pub fn parse_grant(s: &str) -> Result<proto::admin::GrantInfo, CommandError> {
    let bad = || {
        CommandError::BadInput(format!(
            "--grant {}: give HOST=ROLE, e.g. home-box=operator or '*=viewer' (roles: viewer, \
             operator, admin, owner)",
            sanitize(s)
        ))
    };
    let (host, role) = s.rsplit_once('=').ok_or_else(bad)?;
    let role = Role::parse(role.trim()).ok_or_else(bad)?;
    let host = host.trim();
    if host.is_empty() || host.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(bad());
    }
    Ok(proto::admin::GrantInfo {
        host: host.to_owned(),
        role,
    })
}

/// `cm-tui admin user certify NAME`: shows the device keys and the grants to sign (those named
/// with `--key` and `--grant`, else the relay's lists for the user, shown so that a relay
/// cannot slip in a key of its own, a wider role or a host unseen), asks, signs one certificate
/// per grant and publishes them. `--yes` needs `--key` and `--grant`.
///
/// # Errors
/// Refusals, no pending key, bad grants, transport failures.
pub async fn user_certify(
    remote: &Remote,
    profile: &Profile,
    what: Certify,
    json: bool,
    confirm: impl FnOnce() -> std::io::Result<String>,
) -> Result<(), CommandError> {
    let Certify {
        name,
        key,
        grants: asked,
        yes,
    } = what;
    let asked = asked
        .iter()
        .map(|g| parse_grant(g))
        .collect::<Result<Vec<_>, _>>()?;
    if yes && (asked.is_empty() || key.is_none()) {
        return Err(CommandError::BadInput(
            "with --yes, name the device key (--key FINGERPRINT, as the user's laptop printed \
             it) and each grant to sign (--grant HOST=ROLE, repeatable): the relay's lists of \
             pending keys and grants are not enough to sign on without looking"
                .into(),
        ));
    }
    let mut local = Local::load(profile)?;
    let bundle = fetch(remote).await?;
    let now = now_ms();
    let pending: Vec<_> = bundle
        .pending
        .iter()
        .filter(|p| p.user.as_str() == name)
        .cloned()
        .collect();
    local.trust.merge_bundle(bundle, now);
    let authority = local.require_signer()?;
    let user = UserId(name.clone());
    let relay_grants = users(remote)
        .await?
        .into_iter()
        .find(|u| u.name == name)
        .map(|u| u.grants)
        .ok_or_else(|| CommandError::BadInput(format!("no user {}", sanitize(&name))))?;
    let grants = if asked.is_empty() {
        relay_grants.clone()
    } else {
        asked
    };
    let keys: Vec<PublicKey> = match &key {
        Some(fp) => {
            let k = pending
                .iter()
                .find(|p| p.key.fingerprint() == *fp || p.key.to_hex() == *fp)
                .map(|p| p.key)
                .ok_or_else(|| {
                    CommandError::BadInput(format!(
                        "{} has no pending device key {}; `cm-tui admin trust show` lists them",
                        sanitize(&name),
                        sanitize(fp)
                    ))
                })?;
            vec![k]
        }
        None => pending.iter().map(|p| p.key).collect(),
    };
    if keys.is_empty() {
        return Err(CommandError::BadInput(format!(
            "{} has no pending device key; they must log in first (`cm-tui login <invite>`)",
            sanitize(&name)
        )));
    }
    if !json || !yes {
        eprintln!(
            "{}'s device keys waiting for certification:",
            sanitize(&name)
        );
        for p in pending.iter().filter(|p| keys.contains(&p.key)) {
            eprintln!(
                "  {}  seen {}  {}",
                p.key.fingerprint(),
                utc(p.seen_ms),
                sanitize(p.label.as_deref().unwrap_or(""))
            );
        }
        eprintln!("compare these fingerprints with the ones their laptop printed at login");
        let until = utc(now + admin::USER_CERT_MS);
        eprintln!("certificates to sign (valid until {until}):");
        for g in &grants {
            eprintln!("  {} on {}", g.role, sanitize(&g.host));
        }
        if grants != relay_grants {
            let theirs: Vec<String> = relay_grants
                .iter()
                .map(|g| format!("{} on {}", g.role, sanitize(&g.host)))
                .collect();
            eprintln!(
                "the relay lists other grants for {}: {} (it still refuses what it does not grant)",
                sanitize(&name),
                if theirs.is_empty() {
                    "none".to_owned()
                } else {
                    theirs.join(", ")
                }
            );
        }
    }
    if !yes {
        eprint!("sign these certificates? [y/N] ");
        let answer = confirm()?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(CommandError::BadInput("not certified".into()));
        }
    }
    let certs = admin::user_certs(
        &local.trust,
        authority,
        &user,
        &keys,
        &grants,
        now,
        random_u64,
    )
    .map_err(|e| CommandError::BadInput(e.to_string()))?;
    publish(
        remote,
        &TrustBundle {
            certs: certs.clone(),
            ..TrustBundle::default()
        },
    )
    .await?;
    local.trust.merge_bundle(
        TrustBundle {
            certs: certs.clone(),
            ..TrustBundle::default()
        },
        now,
    );
    local.save(profile)?;
    let mut text = String::new();
    for g in &grants {
        text.push_str(&format!(
            "certified {} as {} on {}\n",
            sanitize(&name),
            g.role,
            sanitize(&g.host)
        ));
    }
    for k in &keys {
        text.push_str(&format!("  device key {}\n", k.fingerprint()));
    }
    out(
        json,
        &serde_json::json!({
            "user": name,
            "keys": keys.iter().map(PublicKey::fingerprint).collect::<Vec<_>>(),
            "grants": grants,
            "certs": certs,
        }),
        text,
    )
}

/// Which of a user's certificates a change at the relay revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revoke<'a> {
    /// Every certificate and device key (the user removed, a credential revoked or killed).
    Everything,
    /// The certificates for this host, or all with `None` (a grant revoked); keys stay.
    Certs(Option<&'a str>),
    /// The certificates for exactly `host` that give more than `role` (a grant lowered: the
    /// host takes the highest role a valid certificate gives).
    Above {
        /// Host or `*`.
        host: &'a str,
        /// The new role.
        role: Role,
    },
}

/// Whose certificates a user change at the relay revokes, and which: a removal all of them
/// and the device keys, a revoked grant those for its host (all for `*`), a grant (which
/// replaces the one on its host) those for its host that give more. `None` for other changes.
pub fn revocation_after(req: &proto::admin::UserRequest) -> Option<(&str, Revoke<'_>)> {
    use proto::admin::UserRequest;
    match req {
        UserRequest::Remove { name } => Some((name, Revoke::Everything)),
        UserRequest::Revoke { name, host } => {
            Some((name, Revoke::Certs((host != "*").then_some(host.as_str()))))
        }
        UserRequest::Grant { name, role, host } => {
            Some((name, Revoke::Above { host, role: *role }))
        }
        _ => None,
    }
}

/// After a user change at the relay: revoke the certificates (and device keys) `which` names
/// in this laptop's list, then publish it. They are looked for among the certificates that
/// chain to the roots, this laptop's own and the relay's: a relay can neither keep one alive
/// by leaving it out nor get another user's key revoked with a forged one. Returns what to tell the user (also when this laptop cannot sign); nothing when
/// there was nothing to revoke or this laptop keeps no trust state (a relay-trusted login).
/// Reads the trust file and the device key, which may block on the OS keyring.
///
/// # Errors
/// Transport or trust file failures.
pub async fn revoke_user(
    remote: &impl RelayConn,
    profile: &Profile,
    user: &str,
    which: Revoke<'_>,
) -> Result<Option<String>, CommandError> {
    let mut local = match Local::load(profile) {
        Ok(local) => local,
        Err(e) => {
            return Ok(Some(format!(
                "note: nothing revoked for zero-trust hosts: this laptop's trust state did not load ({e})"
            )));
        }
    };
    if local.trust.roots.is_empty() {
        return Ok(None);
    }
    let bundle = fetch(remote).await?;
    let now = now_ms();
    // The laptop's certificates merged with the relay's, those that chain to the roots only: a
    // relay can neither hide one (the laptop's own are kept) nor slip in a forged one naming
    // someone else's key or serial for this laptop to revoke.
    local.trust.merge_bundle(bundle, now);
    let all: Vec<Cert> = local.trust.certs.clone();
    let user = UserId(user.to_owned());
    let (serials, keys) = match which {
        Revoke::Everything => (
            admin::user_serials(&all, &user, None),
            admin::user_keys(&all, &user),
        ),
        Revoke::Certs(host) => (admin::user_serials(&all, &user, host), Vec::new()),
        Revoke::Above { host, role } => (
            admin::user_serials_above(&all, &user, host, role),
            Vec::new(),
        ),
    };
    let serials: Vec<String> = serials
        .into_iter()
        .filter(|s| !local.trust.revoked.serials.contains(s))
        .collect();
    let keys: Vec<PublicKey> = keys
        .into_iter()
        .filter(|k| !local.trust.revoked.keys.contains(k))
        .collect();
    if serials.is_empty() && keys.is_empty() {
        return Ok(None);
    }
    if local.authority() == Authority::None {
        return Ok(Some(format!(
            "note: {}; their certificates stay valid until they expire",
            admin::CANNOT_SIGN
        )));
    }
    publish_revocations(remote, profile, &mut local, &serials, &keys, now).await?;
    let mut said = format!(
        "revoked {} certificate(s) and {} device key(s) of {} in this laptop's signed revocation list",
        serials.len(),
        keys.len(),
        sanitize(user.as_str())
    );
    if let Revoke::Above { host, role } = which {
        said.push_str(&format!(
            "; certify them again for the new role: cm-tui admin user certify {} --grant {}={role}",
            sanitize(user.as_str()),
            sanitize(host)
        ));
    }
    Ok(Some(said))
}

async fn rotate_device(remote: &Remote, profile: &Profile, json: bool) -> Result<(), CommandError> {
    let mut local = Local::load(profile)?;
    let old = local.trust.key.public();
    let now = now_ms();
    if let Ok(bundle) = fetch(remote).await {
        local.trust.merge_bundle(bundle, now);
    }
    let authority = local.authority();
    if authority == Authority::Root {
        return Err(CommandError::BadInput(format!(
            "this laptop's key {} is an owner root pinned by hosts; `rotate-device` does not replace a root: run `cm-tui admin trust rotate-owner` (the old root signs its successor, hosts follow, and the certificates it signed are re-signed)",
            old.fingerprint()
        )));
    }
    let secrets = profile.home.secrets().map_err(|e| trust_err(e.into()))?;
    let new = device::create(&secrets, &profile.account()).map_err(trust_err)?;
    let new_fp = new.public().fingerprint();
    let revoked_old = if authority == Authority::Admin {
        // Signed with the old key, which this list revokes.
        publish_revocations(remote, profile, &mut local, &[], &[old], now).await?;
        true
    } else {
        false
    };
    let mut text = format!(
        "new device key {new_fp} (old {})\nask an admin to certify it: `cm-tui admin user certify {} --key {new_fp}` after you log in again\n",
        old.fingerprint(),
        sanitize(profile.user.as_str())
    );
    if revoked_old {
        text.push_str("the old key is revoked in this laptop's signed revocation list\n");
    } else {
        text.push_str(&format!(
            "an admin must revoke the old key: `cm-tui admin user revoke {} …` or remove its certificates\n",
            sanitize(profile.user.as_str())
        ));
    }
    out(
        json,
        &serde_json::json!({"new": new_fp, "old": old.fingerprint(), "old_revoked": revoked_old}),
        text,
    )
}

/// A certificate as `trust show` lists it.
#[derive(Debug, Serialize)]
struct CertRow {
    serial: String,
    kind: &'static str,
    subject: String,
    role: Option<Role>,
    host: String,
    keys: Vec<String>,
    issuer: String,
    not_after: String,
    valid: bool,
}

fn cert_row(c: &Cert, t: &OperatorTrust, now: u64) -> Option<CertRow> {
    let b = c.open().ok()?;
    let valid = b.valid_at(now)
        && !t.revoked.serials.contains(&b.serial)
        && proto::trust::Verifier::new(&t.roots, &t.revoked).is_admin_key(
            c.signer(),
            &t.certs,
            now,
        );
    Some(match b.subject {
        Subject::User {
            user,
            device_keys,
            host,
            role,
        } => CertRow {
            serial: b.serial,
            kind: "user",
            subject: user.0,
            role: Some(role),
            host,
            keys: device_keys.iter().map(PublicKey::fingerprint).collect(),
            issuer: c.signer().fingerprint(),
            not_after: utc(b.not_after_ms),
            valid,
        },
        Subject::Host { host, host_key } => CertRow {
            serial: b.serial,
            kind: "host",
            subject: host.0.clone(),
            role: None,
            host: host.0,
            keys: vec![host_key.fingerprint()],
            issuer: c.signer().fingerprint(),
            not_after: utc(b.not_after_ms),
            valid,
        },
    })
}

async fn show(remote: &Remote, profile: &Profile, json: bool) -> Result<(), CommandError> {
    let mut local = Local::load(profile)?;
    let bundle = fetch(remote).await?;
    let now = now_ms();
    local.trust.merge_bundle(bundle.clone(), now);
    local.save(profile)?;
    let t = &local.trust;
    let certs: Vec<CertRow> = bundle
        .certs
        .iter()
        .filter_map(|c| cert_row(c, t, now))
        .collect();
    let claims: Vec<serde_json::Value> = bundle
        .claims
        .iter()
        .map(|c| {
            let certified = t.host_key(&c.host, now).is_ok_and(|k| k == c.host_key);
            serde_json::json!({"host": c.host, "key": c.host_key.fingerprint(), "certified": certified,
                "bind_here": local.file.binds.contains_key(&c.host)})
        })
        .collect();
    let lists: Vec<serde_json::Value> = bundle
        .revocations
        .iter()
        .filter_map(|l| {
            let b = l.open().ok()?;
            Some(serde_json::json!({"issuer": b.issuer_user, "key": l.signer().fingerprint(),
                "seq": b.seq, "issued": utc(b.issued_ms), "age_min": now.saturating_sub(b.issued_ms) / 60_000,
                "serials": b.serials.len(), "keys": b.keys.len()}))
        })
        .collect();
    let v = serde_json::json!({
        "device_key": t.key.public().fingerprint(),
        "authority": format!("{:?}", admin::authority(t, now)).to_lowercase(),
        "roots": t.roots.iter().map(|r| serde_json::json!({"user": r.user, "key": r.key.fingerprint()})).collect::<Vec<_>>(),
        "certs": certs,
        "pending": bundle.pending.iter().map(|p| serde_json::json!({"user": p.user, "key": p.key.fingerprint(),
            "seen": utc(p.seen_ms), "label": p.label})).collect::<Vec<_>>(),
        "claims": claims,
        "revocations": lists,
    });
    let mut s = format!(
        "this laptop: {} ({})\nroots pinned here:\n",
        t.key.public().fingerprint(),
        v["authority"].as_str().unwrap_or_default()
    );
    for r in &t.roots {
        s.push_str(&format!(
            "  {} {}\n",
            sanitize(r.user.as_str()),
            r.key.fingerprint()
        ));
    }
    if t.roots.is_empty() {
        s.push_str("  none: relay-trusted (run `cm-tui admin trust init` as owner, or log in with an invite carrying the owner's root)\n");
    }
    s.push_str("certificates:\n");
    for c in &certs {
        s.push_str(&format!(
            "  {} {:<5} {:<16} {:<9} on {:<12} keys {} issuer {} until {}{}\n",
            c.serial,
            c.kind,
            sanitize(&c.subject),
            c.role.map(Role::as_str).unwrap_or("-"),
            sanitize(&c.host),
            c.keys.join(","),
            c.issuer,
            c.not_after,
            if c.valid { "" } else { " (not valid here)" }
        ));
    }
    s.push_str("pending device keys:\n");
    for p in &bundle.pending {
        s.push_str(&format!(
            "  {:<16} {} seen {} {}\n",
            sanitize(p.user.as_str()),
            p.key.fingerprint(),
            utc(p.seen_ms),
            sanitize(p.label.as_deref().unwrap_or(""))
        ));
    }
    s.push_str("host key claims:\n");
    for c in &claims {
        s.push_str(&format!(
            "  {:<16} {} {}\n",
            sanitize(c["host"].as_str().unwrap_or_default()),
            c["key"].as_str().unwrap_or_default(),
            if c["certified"].as_bool().unwrap_or(false) {
                "certified"
            } else {
                "NOT certified (`cm-tui admin host certify`)"
            }
        ));
    }
    s.push_str("revocation lists:\n");
    for l in &lists {
        s.push_str(&format!(
            "  {} {} seq {} issued {} ({} min ago)\n",
            sanitize(l["issuer"].as_str().unwrap_or_default()),
            l["key"].as_str().unwrap_or_default(),
            l["seq"],
            l["issued"].as_str().unwrap_or_default(),
            l["age_min"]
        ));
    }
    out(json, &v, s)
}

#[cfg(test)]
mod revocation_tests {
    use super::*;
    use proto::admin::UserRequest;

    #[test]
    fn each_user_change_revokes_what_it_ends() {
        let name = || "bob".to_owned();
        let remove = UserRequest::Remove { name: name() };
        assert_eq!(revocation_after(&remove), Some(("bob", Revoke::Everything)));
        let revoke = |host: &str| UserRequest::Revoke {
            name: name(),
            host: host.into(),
        };
        assert_eq!(
            revocation_after(&revoke("box")),
            Some(("bob", Revoke::Certs(Some("box"))))
        );
        assert_eq!(
            revocation_after(&revoke("*")),
            Some(("bob", Revoke::Certs(None)))
        );
        let grant = UserRequest::Grant {
            name: name(),
            role: Role::Viewer,
            host: "box".into(),
        };
        assert_eq!(
            revocation_after(&grant),
            Some((
                "bob",
                Revoke::Above {
                    host: "box",
                    role: Role::Viewer
                }
            ))
        );
        let passwd = UserRequest::Passwd {
            name: name(),
            password: "long enough password".into(),
        };
        assert_eq!(revocation_after(&passwd), None);
    }
}

#[cfg(test)]
mod grant_arg_tests {
    use super::*;

    #[test]
    fn a_grant_is_host_equals_role_and_anything_else_says_what_to_give() {
        let g = parse_grant("home-box=operator").unwrap();
        assert_eq!((g.host.as_str(), g.role), ("home-box", Role::Operator));
        assert_eq!(parse_grant("*=viewer").unwrap().host, "*");
        for bad in [
            "home-box",
            "home-box=king",
            "=viewer",
            "two words=viewer",
            "box\u{1b}=owner",
        ] {
            let e = parse_grant(bad).unwrap_err().to_string();
            assert!(e.contains("give HOST=ROLE"), "{bad:?}: {e}");
        }
    }
}
