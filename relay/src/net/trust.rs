//! The trust operations the relay answers itself (`trust_fetch`, `trust_publish`): it stores
//! and serves certificates, revocation lists, host key claims and pending device keys, and
//! cannot make any of them (see `proto::trust`).

use super::error::RequestError;
use super::local::{Cx, LocalHandler};
use proto::admin::AdminDone;
use proto::op;
use proto::trust::{TrustBundle, TrustQuery};

impl LocalHandler for op::TrustFetch {
    async fn handle(_cx: &mut Cx<'_>, _q: TrustQuery) -> Result<TrustBundle, RequestError> {
        Err(RequestError::BadBody {
            op: proto::header::Op::TrustFetch,
            detail: "not served by this relay yet".into(),
        })
    }
}

impl LocalHandler for op::TrustPublish {
    async fn handle(_cx: &mut Cx<'_>, _b: TrustBundle) -> Result<AdminDone, RequestError> {
        Err(RequestError::BadBody {
            op: proto::header::Op::TrustPublish,
            detail: "not served by this relay yet".into(),
        })
    }
}
