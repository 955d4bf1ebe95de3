//! What the app does with an administration answer before it shows it: a token or invite is
//! completed with this laptop's roots ([`super::admin_seal`]), and a user change is followed
//! by the revocations it calls for on zero-trust hosts.

use super::admin_seal;
use crate::call::{AdminCall, CallError, Response};
use crate::e2e_channels::HostStreams;
use crate::profile::Profile;
use std::sync::Arc;

/// After the administration screen changed a user at the relay (removed, a grant revoked or
/// replaced), revokes for zero-trust hosts what the change ends, as `cm-tui admin user …`
/// does (`admin_trust_cli::revoke_user`), and says so in the answer's summary.
pub(super) async fn revoke_after(
    hosts: Arc<HostStreams>,
    profile: Profile,
    admin: &AdminCall,
    response: Response,
) -> Response {
    let (AdminCall::User(_, req), Response::Done(mut done)) = (admin, response.clone()) else {
        return response;
    };
    if crate::admin_trust_cli::revocation_after(req).is_none() {
        return response;
    }
    let req = req.clone();
    let runtime = tokio::runtime::Handle::current();
    // The trust file and the device key may block on the OS keyring: off the async workers.
    let revoked = tokio::task::spawn_blocking(move || {
        let (name, which) = crate::admin_trust_cli::revocation_after(&req)?;
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
