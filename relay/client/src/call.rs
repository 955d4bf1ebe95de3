//! Typed requests: `call::<proto::op::X>(conn, header, &body)` sends `X`'s body (nothing for a
//! body-less operation) and returns `X`'s reply, as `proto`'s operation list defines them. The
//! header gives the request id and target; its operation is always `X`'s.

use crate::{LinkError, request};
use proto::header::StreamHeader;
use proto::operation::{BodyKind, Operation, Unary};

/// One request of operation `O`: `O`'s body in, `O`'s reply out.
///
/// # Errors
/// [`LinkError::Refused`] carries the typed error of a refused request; transport failures.
pub async fn call<O: Unary>(
    conn: &quinn::Connection,
    header: &StreamHeader,
    body: &O::Body,
) -> Result<O::Reply, LinkError> {
    let header = StreamHeader {
        op: O::OP,
        ..header.clone()
    };
    request(conn, &header, body_frame::<O>(body)).await
}

/// The body frame `O` sends, if any.
fn body_frame<O: Operation>(body: &O::Body) -> Option<&O::Body> {
    (O::BODY != BodyKind::None).then_some(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proto::header::Op;
    use proto::op;
    use proto::operation::Streaming;
    use std::collections::BTreeSet;

    /// Every operation of the list has a typed client call: `call::<op::X>` for a one-reply
    /// operation, its item type for a stream (a missing one does not compile).
    macro_rules! client_calls {
        ($(
            $(#[doc = $doc:literal])*
            $name:ident = $wire:literal, $side:ident, $kind:ident $b:ty => $reply:ty
                $(, then $item:ty)?;
        )*) => {
            fn callable() -> Vec<Op> {
                vec![$(client_calls!(@one $name $(, $item)?)),*]
            }
        };
        (@one $name:ident) => {{
            let _typed = call::<op::$name>;
            <op::$name as Operation>::OP
        }};
        (@one $name:ident, $item:ty) => {{
            let _item = std::marker::PhantomData::<<op::$name as Streaming>::Item>;
            <op::$name as Operation>::OP
        }};
    }
    proto::with_operations!(client_calls);

    #[test]
    fn every_operation_has_a_client_call() {
        let covered: BTreeSet<&str> = callable().iter().map(|op| op.as_str()).collect();
        let missing: Vec<&str> = Op::ALL
            .iter()
            .map(|op| op.as_str())
            .filter(|name| !covered.contains(name))
            .collect();
        assert!(
            missing.is_empty(),
            "operations without a client call: {missing:?}"
        );
    }

    #[test]
    fn a_body_less_operation_sends_no_body_frame() {
        assert!(body_frame::<op::SessionList>(&()).is_none());
        let q = proto::ops::MessagesQuery::default();
        assert!(body_frame::<op::Messages>(&q).is_some());
    }
}
