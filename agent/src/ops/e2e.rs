//! `e2e_open`: the host's side of the end-to-end channel (see `proto::trust` and
//! `cm_client::e2e`).

use super::error::OpError;
use super::handler::{Cx, Handler};
use proto::op;
use proto::trust::{E2eOpen, E2eOpened};

impl Handler for op::E2eOpen {
    async fn handle(_cx: &Cx<'_>, _body: E2eOpen) -> Result<E2eOpened, OpError> {
        Err(OpError::Unavailable(
            "this host does not open end-to-end channels yet".into(),
        ))
    }
}
