//! A laptop that added a host (`cm-tui admin host add`, so it holds the host's bind secret)
//! certifies the host's proven key claim by itself the first time it talks to the host, so the
//! owner does not have to run `cm-tui admin trust refresh` between enrolling a host and using
//! it. The check is the one `refresh` makes (`trust::admin::certify_claims`): the claim must
//! prove the bind secret only the token and this laptop know, so a relay cannot get its own key
//! certified this way.

use super::{HostStreams, OpenOptions, locked, protocol};
use crate::trust::OperatorTrust;
use crate::trust::admin::{self, Authority};
use cm_client::LinkError;
use cm_client::framed::StreamError;
use cm_client::time::random_u64;
use proto::admin::AdminDone;
use proto::frame::MAX_FRAME_LEN;
use proto::header::{Op, StreamHeader};
use proto::ids::HostId;
use proto::message::Reply;
use proto::trust::{HostKeyClaim, TrustBundle, X25519Public};
use std::sync::Mutex;

/// Certifies `host`'s proven claim among `claims` when this laptop added it and can sign;
/// publishes the certificate (best effort) and returns the host's key now vouched for.
pub(super) async fn certify(
    streams: &HostStreams,
    trust: &Mutex<OperatorTrust>,
    host: &HostId,
    claims: &[HostKeyClaim],
    now_ms: u64,
) -> Option<X25519Public> {
    let binds = locked(&streams.binds).clone();
    if !binds.contains_key(host) {
        return None;
    }
    let certs = {
        let t = locked(trust);
        if admin::authority(&t, now_ms) == Authority::None {
            return None;
        }
        let (certs, refused) =
            admin::certify_claims(&t, &binds, claims, Some(host), now_ms, random_u64);
        if refused.contains(host) {
            tracing::warn!(%host, "REFUSED a key claim that does not prove the enrollment's bind secret (a relay or impostor sent it)");
        }
        certs
    };
    if certs.is_empty() {
        return None;
    }
    let bundle = TrustBundle {
        certs,
        ..TrustBundle::default()
    };
    let key = {
        let mut t = locked(trust);
        t.merge_bundle(bundle.clone(), now_ms);
        t.host_key(host, now_ms).ok()
    };
    if let Some(k) = &key {
        tracing::info!(%host, key = %k.fingerprint(), "certified the key of a host this laptop added");
    }
    // Used at once from this laptop's own copy; the relay keeps it for other laptops. A failed
    // publish is not this request's failure (the next contact from a laptop without it
    // certifies again).
    if let Err(e) = publish(streams, &bundle).await {
        tracing::warn!(%host, error = %e, "could not publish the host's certificate");
    }
    key
}

/// `trust_publish` (a relay operation: unsigned, plaintext), on `open_plain` directly: through
/// `HostStreams::call` it would be an async recursion (call → open → route → this).
async fn publish(streams: &HostStreams, bundle: &TrustBundle) -> Result<(), LinkError> {
    let frame = proto::frame::to_frame(bundle, MAX_FRAME_LEN).map_err(StreamError::from)?;
    let header = StreamHeader::new(Op::TrustPublish, streams.next_req_id());
    let mut stream = streams
        .open_plain(&header, Some(&frame), OpenOptions::FINISH)
        .await?;
    let reply: Reply<AdminDone> = stream.recv.expect().await?;
    reply
        .into_result()
        .map(|_| ())
        .map_err(|e| protocol(format!("publishing the host's certificate: {e}")))
}
