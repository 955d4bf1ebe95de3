//! What the operation list expands to in this crate: the [`Op`](super::Op) enum and its tables,
//! the [`op`](super::op) types and their [`Operation`](super::Operation) impls.

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

/// `true` for operations the relay answers itself.
macro_rules! relay_local {
    (relay) => {
        true
    };
    (agent) => {
        false
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
        /// Every operation a stream can carry. Unknown names from newer peers decode as
        /// [`Op::Unknown`] and get a typed `unknown_op` error.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum Op {
            $(
                $(#[doc = $doc])*
                #[serde(rename = $wire)]
                $name,
            )*
            /// An operation this build does not know.
            #[serde(other, rename = "unknown")]
            Unknown,
        }

        /// How many operations the list has.
        pub const OP_COUNT: usize = [$($wire),*].len();

        impl Op {
            /// Every known operation, in the list's order (for the matrix test and help texts).
            pub const ALL: [Self; OP_COUNT] = [$(Self::$name),*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$name => $wire,)*
                    Self::Unknown => "unknown",
                }
            }

            /// Whether the relay answers this operation itself rather than forwarding it to an
            /// agent.
            pub fn is_relay_local(self) -> bool {
                match self {
                    $(Self::$name => relay_local!($side),)*
                    Self::Unknown => false,
                }
            }

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
