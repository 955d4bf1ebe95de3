//! The trust operations the relay answers itself (`trust_fetch`, `trust_publish`): it stores
//! and serves certificates, revocation lists, host key claims and pending device keys, and
//! cannot make any of them (see `proto::trust`).
//!
//! - `trust_publish` (admin): every signed object (root rotation statements among them: signed
//!   by the root they replace, published by its owner) is checked (`Signed::open`) before it is
//!   stored, so garbage is refused with a clear `bad_request`; the relay cannot tell whether a
//!   signer is trusted (it holds no root), hosts and operators check that themselves. A root
//!   is taken only from an owner, for their own name. Each stored object gets its audit row
//!   (what, signer fingerprint) in the same writer job. A new revocation list is pushed to
//!   every agent connected here at once ([`push_revocations`]).
//! - `trust_fetch` (viewer): everything stored, narrowed to one host on request.
//!
//! Revocation lists reach agents after each handshake, whenever one is published here, and
//! every [`REVOCATION_PUSH_EVERY`] (so relays of a fleet pass on lists published elsewhere, and
//! an agent stays fresh after the store was away); always through `Tamper::revocations`.

use super::Shared;
use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use crate::admin::AdminError;
use crate::audit_event::Audit;
use crate::time::now_ms;
use proto::admin::AdminDone;
use proto::frame::MAX_FRAME_LEN;
use proto::header::{Op, StreamHeader};
use proto::ids::{HostId, UserId};
use proto::message::Control;
use proto::op;
use proto::rbac::Role;
use proto::text::printable_id;
use proto::trust::{
    Cert, CertBody, HeaderAuth, RevocationBody, RevocationList, Root, RootRotation, RotationBody,
    SignedFields, Subject, TrustBundle, TrustQuery,
};
use std::sync::Arc;
use std::time::Duration;

/// How often every agent connection is sent the newest revocation lists again.
pub(crate) const REVOCATION_PUSH_EVERY: Duration = Duration::from_secs(60);

/// Most objects one `trust_publish` may carry.
pub(crate) const MAX_PUBLISHED: usize = 1024;

/// The fields an operator signed in a stream header, decoded but NOT verified (the relay
/// only records and routes on them; the host verifies).
pub(crate) fn signed_fields(auth: &HeaderAuth) -> Option<SignedFields> {
    let bytes = auth.payload_bytes().ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// What a relay notes of a stream's signed header (zero-trust): its audit note and whether
/// everything after the header is sealed end to end (a channel is named), in which case the
/// relay must not read the stream's body. `None` for an unsigned header. The signed fields are
/// decoded once, and not verified (the host verifies; this is metadata as claimed).
pub(crate) fn signed_header(header: &StreamHeader) -> Option<(String, bool)> {
    let auth = header.auth.as_ref()?;
    let fields = signed_fields(auth);
    let sealed = fields.as_ref().is_some_and(|f| f.channel.is_some());
    Some((signed_note(auth, fields), sealed))
}

/// Whether everything after this header is sealed end to end.
/// Stores a host's end-to-end key claim for an owner's laptop to check and certify, when it
/// is about the host this agent authenticated as; a claim for another host is logged and
/// ignored (an agent cannot put keys on other hosts' names).
pub(super) async fn record_host_key_claim(
    shared: &std::sync::Arc<Shared>,
    host: &HostId,
    claim: proto::trust::HostKeyClaim,
) {
    if claim.host != *host {
        tracing::warn!(
            %host,
            claimed = %printable_id(claim.host.as_str()),
            "ignoring a host key claim for another host"
        );
        return;
    }
    let key = claim.host_key.fingerprint();
    match shared
        .store
        .call(move |s| s.trust_put_claim(&claim, now_ms()))
        .await
    {
        Ok(()) => tracing::info!(%host, %key, "host key claim recorded"),
        Err(e) => tracing::error!(%host, error = %e, "could not record a host key claim"),
    }
}

#[cfg(test)]
pub(crate) fn is_sealed_stream(header: &StreamHeader) -> bool {
    signed_header(header).is_some_and(|(_, sealed)| sealed)
}

/// What a forwarded stream's audit row says about its signature: the signer's fingerprint and
/// the signed body hash (metadata only; as claimed, the host verifies it).
fn signed_note(auth: &HeaderAuth, fields: Option<SignedFields>) -> String {
    let fp = auth.signer().fingerprint();
    match fields {
        Some(f) => {
            let mut note = format!("signed by {fp}");
            if let Some(body) = f.body {
                note.push_str(&format!(" body blake3:{}", printable_id(&body)));
            }
            if f.channel.is_some() {
                note.push_str(" sealed");
            }
            note
        }
        None => format!("signed by {fp} (unreadable signed fields)"),
    }
}

/// What a publish stores, every signature checked.
#[derive(Debug, Default)]
pub(crate) struct Checked {
    pub(crate) certs: Vec<(CertBody, Cert)>,
    pub(crate) revocations: Vec<(RevocationBody, RevocationList)>,
    pub(crate) roots: Vec<Root>,
    pub(crate) rotations: Vec<(RotationBody, RootRotation)>,
}

fn bad(detail: String) -> RequestError {
    RequestError::BadBody {
        op: Op::TrustPublish,
        detail,
    }
}

fn valid_serial(serial: &str) -> bool {
    (1..=64).contains(&serial.len()) && serial.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Checks a publish by `publisher` (whose global role is `role`): every signature, serials,
/// expiry, and that roots come from an owner for their own name; hosts' claims and pending
/// device keys are never published (agents and logins make them). An empty bundle stores
/// nothing and is no error.
///
/// # Errors
/// [`RequestError::BadBody`] saying which object is wrong and what to do.
pub(crate) fn check_publish(
    bundle: TrustBundle,
    publisher: &UserId,
    role: Option<Role>,
    now_ms: u64,
) -> Result<Checked, RequestError> {
    let TrustBundle {
        roots,
        certs,
        revocations,
        rotations,
        claims,
        pending,
    } = bundle;
    if !claims.is_empty() || !pending.is_empty() {
        return Err(bad(
            "host key claims and pending device keys are recorded by the relay itself (from agents and logins); publish only certificates, revocation lists and roots".into(),
        ));
    }
    let total = roots.len() + certs.len() + revocations.len() + rotations.len();
    if total > MAX_PUBLISHED {
        return Err(bad(format!(
            "{total} objects in one publish (at most {MAX_PUBLISHED}); publish them in parts"
        )));
    }
    let mut out = Checked::default();
    for (i, cert) in certs.into_iter().enumerate() {
        let body = cert.open().map_err(|e| {
            bad(format!(
                "certificate {} (signed by {}): {e}; publish certificates exactly as cm-tui signed them",
                i + 1,
                cert.signer().fingerprint()
            ))
        })?;
        if !valid_serial(&body.serial) {
            return Err(bad(format!(
                "certificate {}: serial {} is not 1 to 64 letters and digits",
                i + 1,
                printable_id(&body.serial)
            )));
        }
        if body.not_after_ms <= now_ms {
            return Err(bad(format!(
                "certificate {} has expired; sign a new one",
                body.serial
            )));
        }
        out.certs.push((body, cert));
    }
    for (i, list) in revocations.into_iter().enumerate() {
        let body = list.open().map_err(|e| {
            bad(format!(
                "revocation list {} (signed by {}): {e}; publish lists exactly as cm-tui signed them",
                i + 1,
                list.signer().fingerprint()
            ))
        })?;
        out.revocations.push((body, list));
    }
    for (i, statement) in rotations.into_iter().enumerate() {
        out.rotations
            .push(check_rotation(i, statement, publisher, role)?);
    }
    for root in roots {
        if !crate::authz::may_announce_root(publisher, role, &root.user) {
            return Err(bad(format!(
                "a root is announced only by an owner (on every host) for their own name, not {} for {}; the owner runs `cm-tui admin trust init`",
                printable_id(publisher.as_str()),
                printable_id(root.user.as_str())
            )));
        }
        out.roots.push(root);
    }
    Ok(out)
}

/// A rotation statement in a publish: its signature by the root it replaces, published by
/// that owner (the relay cannot tell whether the old key is a root: hosts check that).
fn check_rotation(
    i: usize,
    statement: RootRotation,
    publisher: &UserId,
    role: Option<Role>,
) -> Result<(RotationBody, RootRotation), RequestError> {
    let body = statement.open().map_err(|e| {
        bad(format!(
            "root rotation {} (signed by {}): {e}; publish statements exactly as cm-tui signed them",
            i + 1,
            statement.signer().fingerprint()
        ))
    })?;
    if body.old_key != *statement.signer() {
        return Err(bad(format!(
            "root rotation {} is not signed by the root it replaces; it must be made with `cm-tui admin trust rotate-owner` on the laptop holding that root",
            i + 1
        )));
    }
    if !crate::authz::may_announce_root(publisher, role, &body.user) {
        return Err(bad(format!(
            "a root rotation is published only by an owner (on every host) for their own root, not {} for {}",
            printable_id(publisher.as_str()),
            printable_id(body.user.as_str())
        )));
    }
    Ok((body, statement))
}

fn fingerprints(keys: &[proto::trust::PublicKey]) -> String {
    keys.iter()
        .map(proto::trust::PublicKey::fingerprint)
        .collect::<Vec<_>>()
        .join(",")
}

/// The audit summary of a certificate.
fn cert_summary(body: &CertBody, cert: &Cert) -> (String, Option<String>) {
    let signer = cert.signer().fingerprint();
    let serial = printable_id(&body.serial);
    match &body.subject {
        Subject::User {
            user,
            device_keys,
            host,
            role,
        } => (
            format!(
                "certificate {serial}: {} is {} on {} with keys {} until {} ms, signed by {signer}",
                printable_id(user.as_str()),
                role.as_str(),
                printable_id(host),
                fingerprints(device_keys),
                body.not_after_ms
            ),
            (host != "*").then(|| printable_id(host)),
        ),
        Subject::Host { host, host_key } => (
            format!(
                "certificate {serial}: host {} has key {} until {} ms, signed by {signer}",
                printable_id(host.as_str()),
                host_key.fingerprint(),
                body.not_after_ms
            ),
            Some(printable_id(host.as_str())),
        ),
    }
}

fn revocation_summary(body: &RevocationBody, list: &RevocationList) -> String {
    format!(
        "revocation list {} of {} issued at {} ms: {} serials, {} keys, signed by {}",
        body.seq,
        printable_id(body.issuer_user.as_str()),
        body.issued_ms,
        body.serials.len(),
        body.keys.len(),
        list.signer().fingerprint()
    )
}

/// What a publish stored (objects already stored are not counted).
#[derive(Debug, Default)]
struct Stored {
    certs: usize,
    revocations: usize,
    roots: usize,
    rotations: usize,
}

impl LocalHandler for op::TrustPublish {
    async fn handle(cx: &mut Cx<'_>, bundle: TrustBundle) -> Result<AdminDone, RequestError> {
        let now = now_ms();
        let checked = check_publish(bundle, &cx.principal.user, cx.role, now)?;
        let actor = cx.principal.user.0.clone();
        let change = move |summary: String, host: Option<String>| {
            Audit::Change {
                actor: actor.clone(),
                op: "trust_publish",
                summary,
                host,
            }
            .row()
        };
        // Stored and audited in one writer job: each object stored has its row.
        let stored = cx
            .shared
            .store
            .call(move |s| {
                let mut stored = Stored::default();
                for (body, cert) in &checked.certs {
                    if s.trust_put_cert(&body.serial, cert, now)? {
                        let (summary, host) = cert_summary(body, cert);
                        s.audit(now, &change(summary, host))?;
                        stored.certs += 1;
                    }
                }
                for (body, list) in &checked.revocations {
                    if s.trust_put_revocation(body, list)? {
                        s.audit(now, &change(revocation_summary(body, list), None))?;
                        stored.revocations += 1;
                    }
                }
                for (body, statement) in &checked.rotations {
                    if s.trust_put_rotation(body, statement)? {
                        let summary = format!(
                            "root rotation {} of {}: {} replaced by {}",
                            body.seq,
                            printable_id(body.user.as_str()),
                            body.old_key.fingerprint(),
                            body.new_key.fingerprint()
                        );
                        s.audit(now, &change(summary, None))?;
                        stored.rotations += 1;
                    }
                }
                for root in &checked.roots {
                    if s.trust_add_root(root, now)? {
                        let summary = format!(
                            "root of {}: {}",
                            printable_id(root.user.as_str()),
                            root.key.fingerprint()
                        );
                        s.audit(now, &change(summary, None))?;
                        stored.roots += 1;
                    }
                }
                Ok(stored)
            })
            .await
            .map_err(|e| RequestError::Admin(AdminError::Store(e)))?;
        if stored.revocations > 0 || stored.rotations > 0 {
            push_revocations(cx.shared).await;
        }
        let rotations = if stored.rotations > 0 {
            format!(", {} root rotations", stored.rotations)
        } else {
            String::new()
        };
        let summary = format!(
            "stored {} certificates, {} revocation lists, {} roots{rotations} (the rest were stored already or older)",
            stored.certs, stored.revocations, stored.roots
        );
        cx.done.target = Some(summary.clone());
        Ok(AdminDone {
            summary,
            invite: None,
        })
    }
}

/// What `trust_fetch` answers for `host`: its own certificate and claim, every user
/// certificate, and everything else (revocations, roots, pending keys) whole.
pub(crate) fn narrow(mut bundle: TrustBundle, host: Option<&HostId>) -> TrustBundle {
    let Some(host) = host else {
        return bundle;
    };
    bundle.claims.retain(|c| c.host == *host);
    bundle.certs.retain(|cert| {
        // Decoded without verifying: the reader verifies; a host filter needs only the subject.
        let body = cert
            .payload_bytes()
            .ok()
            .and_then(|b| serde_json::from_slice::<CertBody>(&b).ok());
        match body.map(|b| b.subject) {
            Some(Subject::Host { host: h, .. }) => h == *host,
            Some(Subject::User { .. }) => true,
            None => false,
        }
    });
    bundle
}

impl LocalHandler for op::TrustFetch {
    async fn handle(cx: &mut Cx<'_>, q: TrustQuery) -> Result<TrustBundle, RequestError> {
        let bundle = cx.shared.store.read(|s| s.trust_bundle()).await?;
        Ok(cx
            .shared
            .tamper
            .trust_bundle(narrow(bundle, q.host.as_ref())))
    }
}

/// The control messages that carry `pushed` to an agent: the root rotations first (an agent
/// must pin a new root before it can take the lists that root signed), then one list each (a
/// list fits a frame: it came in one), through the tamper hook. Messages too large to send are
/// logged and left out.
pub(crate) fn revocation_messages(shared: &Shared, pushed: Pushed) -> Vec<Control> {
    let Pushed { lists, rotations } = pushed;
    let rotations = (!rotations.is_empty()).then(|| Control::Revocations {
        lists: Vec::new(),
        rotations,
    });
    rotations
        .into_iter()
        .chain(
            shared
                .tamper
                .revocations(lists)
                .into_iter()
                .map(|list| Control::Revocations {
                    lists: vec![list],
                    rotations: Vec::new(),
                }),
        )
        .filter_map(|message| {
            let len = serde_json::to_vec(&message).map_or(usize::MAX, |v| v.len());
            if len >= MAX_FRAME_LEN {
                tracing::error!(len, "a revocation list is too large to send to agents");
                return None;
            }
            Some(message)
        })
        .collect()
}

/// How long lists read for one agent's push serve the others' (a fleet of agents pushes every
/// [`REVOCATION_PUSH_EVERY`] each, spread over that time; a publish here clears it).
const REVOCATION_CACHE_FOR: Duration = Duration::from_secs(5);

/// What is pushed to agents: the newest revocation list of each signer and every root
/// rotation statement.
#[derive(Debug, Clone, Default)]
pub(crate) struct Pushed {
    pub(crate) lists: Vec<RevocationList>,
    pub(crate) rotations: Vec<RootRotation>,
}

/// What was pushed as last read, and when.
pub(crate) type RevocationCache = parking_lot::Mutex<Option<(std::time::Instant, Arc<Pushed>)>>;

/// The newest revocation lists and the root rotations (read at most every
/// [`REVOCATION_CACHE_FOR`]), or the last ones read (logged) while the store is away.
pub(crate) async fn current_revocations(shared: &Shared) -> Pushed {
    let cached = shared.revocation_cache.lock().clone();
    if let Some((at, pushed)) = &cached
        && at.elapsed() < REVOCATION_CACHE_FOR
    {
        return Pushed::clone(pushed);
    }
    let read = shared
        .store
        .read(|s| {
            Ok(Pushed {
                lists: s.revocation_lists()?,
                rotations: s.root_rotations()?,
            })
        })
        .await;
    match read {
        Ok(pushed) => {
            *shared.revocation_cache.lock() =
                Some((std::time::Instant::now(), Arc::new(pushed.clone())));
            pushed
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot read revocation lists to push to agents");
            cached.map(|(_, p)| Pushed::clone(&p)).unwrap_or_default()
        }
    }
}

/// Sends the newest revocation lists to every agent connected to this relay (after a
/// publish).
pub(crate) async fn push_revocations(shared: &Arc<Shared>) {
    shared.revocation_cache.lock().take();
    let pushed = current_revocations(shared).await;
    let messages = revocation_messages(shared, pushed);
    if messages.is_empty() {
        return;
    }
    let agents: Vec<_> = shared
        .live
        .lock()
        .values()
        .filter_map(|l| l.notify.clone())
        .collect();
    tracing::info!(agents = agents.len(), "pushing revocation lists to agents");
    for tx in agents {
        for m in &messages {
            tx.send(m.clone());
        }
    }
}

#[cfg(test)]
mod tests;
