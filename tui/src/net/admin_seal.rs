//! The administration screen's enrolment tokens and invites carry this laptop's owner roots,
//! exactly as `cm-tui admin host add` / `user add` make them: the relay's token is completed
//! here (roots and a fresh bind secret, kept in the trust file) so that a host enrolled from the
//! screen is zero-trust, and a relay cannot slip in its own root. A laptop without roots (never
//! ran `cm-tui admin trust init`, or logged in with an invite without roots) hands out the
//! relay's token unchanged: a relay-trusted host, which the screen says.

use crate::admin_trust_cli::{has_roots, seal_enrollment, seal_invite};
use crate::call::{AdminCall, CallError, Response};
use crate::commands::CommandError;
use crate::profile::Profile;
use proto::handshake::Bytes32;
use proto::ids::HostId;

/// What sealing an answer gave: the answer to show, and the bind secret of a host enrolled
/// zero-trust (for certifying its key claim on first contact).
#[derive(Debug)]
pub(crate) struct Sealed {
    pub(crate) response: Response,
    pub(crate) bind: Option<(HostId, Bytes32)>,
}

/// Completes `response` to `call` with this laptop's roots where it carries a token or invite.
/// Reads the trust file and the device key (which may block on the OS keyring): call it off
/// the async workers.
///
/// # Errors
/// A damaged token or invite, or trust file and key store failures; nothing is handed out then.
pub(crate) fn seal(
    profile: &Profile,
    call: &AdminCall,
    response: Response,
) -> Result<Sealed, CallError> {
    let failed =
        |e: CommandError| CallError::transport(format!("the token could not be completed: {e}"));
    match (call, response) {
        (AdminCall::HostAdd(_) | AdminCall::HostRotate(_), Response::Enrolled(mut e)) => {
            let bind = if has_roots(profile).map_err(failed)? {
                let bind = seal_enrollment(profile, &mut e).map_err(failed)?;
                Some((HostId::from(e.name.as_str()), bind))
            } else {
                None
            };
            Ok(Sealed {
                response: Response::Enrolled(e),
                bind,
            })
        }
        (AdminCall::User(..), Response::Done(mut done)) => {
            seal_invite(profile, &mut done).map_err(failed)?;
            Ok(Sealed {
                response: Response::Done(done),
                bind: None,
            })
        }
        (_, response) => Ok(Sealed {
            response,
            bind: None,
        }),
    }
}

#[cfg(test)]
#[path = "admin_seal_tests.rs"]
mod tests;
