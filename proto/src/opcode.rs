//! The [`Op`] enum: every operation's wire name, generated from the operation list
//! ([`with_operations!`](crate::with_operations)) without its body and reply types, so the
//! stream header and the modules that define those types can name an operation without
//! depending on [`operation`](crate::operation). Reached as `header::Op` or `operation::Op`.

/// `true` for operations the relay answers itself (also used by `operation`'s table).
macro_rules! relay_local {
    (relay) => {
        true
    };
    (agent) => {
        false
    };
}

macro_rules! generate_op {
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
        }
    };
}

crate::with_operations!(generate_op);
