//! `logout`: revokes the credential this connection authenticated with; the sweeper then closes
//! the connection.

use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use proto::op;

impl LocalHandler for op::Logout {
    async fn handle(cx: &mut Cx<'_>, (): ()) -> Result<bool, RequestError> {
        let cred = cx.principal.cred_id.clone();
        cx.shared
            .store
            .call(move |s| s.kill_credential(&cred))
            .await
            .map(|_| true)
            .map_err(RequestError::Logout)
    }
}
