//! What the app does with an administration answer before it shows it: a token or invite is
//! completed with this laptop's roots ([`super::admin_seal`]), and a user change, a kill or a
//! revoked credential is followed by the revocations it calls for on zero-trust hosts.

use super::admin_seal;
use crate::admin_trust_cli::{Revoke, revocation_after};
use crate::call::{AdminCall, CallError, Response};
use crate::e2e_channels::HostStreams;
use crate::profile::Profile;
use proto::admin::{KillTarget, UserRequest};
use std::sync::Arc;

/// What an administration call ends for zero-trust hosts.
enum Ends {
    /// What a user change ends (`admin_trust_cli::revocation_after`).
    Change(UserRequest),
    /// Every certificate and device key of this user (killed, or a credential revoked).
    Everything(String),
}

/// After the administration screen changed a user at the relay (removed, a grant revoked or
/// replaced), killed a user or a credential, or revoked a credential, revokes for zero-trust
/// hosts what that ends, as `cm-tui admin …` does (`admin_trust_cli::revoke_user`), and says
/// so in the answer's summary.
pub(super) async fn revoke_after(
    hosts: Arc<HostStreams>,
    profile: Profile,
    admin: &AdminCall,
    response: Response,
) -> Response {
    let ends = match admin {
        AdminCall::User(_, req) if revocation_after(req).is_some() => Ends::Change(req.clone()),
        AdminCall::Kill(KillTarget::User { name }) => Ends::Everything(name.clone()),
        AdminCall::Kill(KillTarget::Cred { id }) | AdminCall::CredsRevoke(id) => {
            // Revoked ones are still listed (with `all`).
            match crate::admin_cli::cred_owner(&*hosts, id).await {
                Some(user) => Ends::Everything(user),
                None => return response,
            }
        }
        _ => return response,
    };
    let mut done = match response {
        Response::Done(done) => done,
        other => return other,
    };
    let runtime = tokio::runtime::Handle::current();
    // The trust file and the device key may block on the OS keyring: off the async workers.
    let revoked = tokio::task::spawn_blocking(move || {
        let (name, which) = match &ends {
            Ends::Change(req) => revocation_after(req)?,
            Ends::Everything(user) => (user.as_str(), Revoke::Everything),
        };
        let revoking = crate::admin_trust_cli::revoke_user(&*hosts, &profile, name, which);
        Some(runtime.block_on(revoking).map_err(|e| e.to_string()))
    })
    .await
    .unwrap_or_else(|e| Some(Err(e.to_string())));
    match revoked {
        Some(Ok(Some(said))) => done.summary.push_str(&format!("; {said}")),
        Some(Err(e)) => {
            done.summary.push_str(&format!(
                "; certificates NOT revoked for zero-trust hosts: {e}"
            ));
        }
        Some(Ok(None)) | None => {}
    }
    Response::Done(done)
}

/// An administration answer with its token or invite completed by this laptop (see
/// [`admin_seal`]); a zero-trust host's bind secret is noted for this session.
pub(super) async fn seal_admin(
    hosts: &HostStreams,
    profile: Profile,
    admin: AdminCall,
    response: Response,
) -> Result<Response, CallError> {
    let sealed = tokio::task::spawn_blocking(move || admin_seal::seal(&profile, &admin, response))
        .await
        .map_err(|e| CallError::transport(format!("completing the token failed: {e}")))??;
    if let Some((host, bind)) = sealed.bind {
        hosts.add_bind(host, bind);
    }
    Ok(sealed.response)
}
