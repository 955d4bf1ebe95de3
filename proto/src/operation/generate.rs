//! What the operation list expands to in this module: [`Op::info`](super::Op::info), the
//! [`op`](super::op) types with their [`Operation`](super::Operation) impls, and the
//! [`OPERATIONS`](super::OPERATIONS) table (the [`Op`](super::Op) enum itself is in
//! `crate::opcode`). `relay_local!` comes from `opcode`.

/// The body a receiver uses when none was sent, by body kind.
macro_rules! absent_body {
    (None, $body:ty) => {
        Some(())
    };
    (Optional, $body:ty) => {
        Some(<$body as Default>::default())
    };
    (Required, $body:ty) => {
        None
    };
}

/// The reply shape: one frame ([`Unary`](super::Unary)) or a stream
/// ([`Streaming`](super::Streaming)).
macro_rules! reply_shape {
    ($name:ident) => {
        impl Unary for op::$name {}
    };
    ($name:ident, $item:ty) => {
        impl Streaming for op::$name {
            type Item = $item;
        }
    };
}

macro_rules! item_type {
    () => {
        None
    };
    ($item:ty) => {
        Some(stringify!($item))
    };
}

macro_rules! generate_operations {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = $wire:literal, $side:ident, $kind:ident $body:ty => $reply:ty
            $(, then $item:ty)?;
    )*) => {
        impl Op {
            /// This operation as data.
            pub fn info(self) -> Option<OpInfo> {
                OPERATIONS.into_iter().find(|i| i.op == self)
            }
        }

        /// One zero-sized type per operation, implementing [`Operation`](super::Operation)
        /// (and [`Unary`](super::Unary) or [`Streaming`](super::Streaming)).
        pub mod op {
            $(
                $(#[doc = $doc])*
                #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
                pub struct $name;
            )*
        }

        $(
            impl Operation for op::$name {
                const OP: Op = Op::$name;
                const BODY: BodyKind = BodyKind::$kind;
                type Body = $body;
                type Reply = $reply;

                fn absent_body() -> Option<Self::Body> {
                    absent_body!($kind, $body)
                }
            }
            reply_shape!($name $(, $item)?);
        )*

        /// Every operation as data, in the list's order.
        pub const OPERATIONS: [OpInfo; OP_COUNT] = [$(
            OpInfo {
                op: Op::$name,
                relay_local: relay_local!($side),
                body: BodyKind::$kind,
                body_type: stringify!($body),
                reply_type: stringify!($reply),
                item_type: item_type!($($item)?),
            },
        )*];
    };
}
