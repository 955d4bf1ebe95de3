//! Bodies of the port operations: `port_list` (the TCP ports listening on the host's loopback
//! or wildcard addresses that a workspace's OpenCode started or that the host lets be
//! forwarded, and whose they are) and `port_forward` (one relayed TCP connection to
//! one of them).
//!
//! | op | body | answer `T` in `Reply<T>` |
//! | --- | --- | --- |
//! | `port_list` | none (header workspace optional: only that workspace's ports) | `Vec<`[`ListeningPort`]`>` |
//! | `port_forward` | required [`ForwardTarget`] | [`ForwardOpened`], then raw bytes both ways |
//!
//! # The `port_forward` stream
//! 1. operator → relay → agent: the stream header, then one [`ForwardTarget`] frame, and the
//!    operator keeps its send side open;
//! 2. agent → operator: one `Reply<ForwardOpened>` frame once it has connected to the port on
//!    `127.0.0.1` (or `::1`), or a `Reply` error (refused by the host's `[forward]` policy,
//!    nothing listening) after which the stream ends;
//! 3. after an `ok` reply the stream is no longer framed: every byte the operator sends is
//!    written to the TCP connection and every byte read from it is sent back, until either side
//!    finishes (a half-close is passed on) or resets. [`RawBytes`] names that phase in the
//!    operation list; it is never encoded.
//!
//! One stream is one TCP connection: a client forwarding a port opens a new stream per
//! accepted connection.

use serde::{Deserialize, Serialize};

/// One TCP port listening on the host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListeningPort {
    /// The port.
    pub port: u16,
    /// The address it listens on (`127.0.0.1`, `::1`, `0.0.0.0` or `::`).
    pub addr: String,
    /// The process holding the socket, when the agent may see it.
    #[serde(default)]
    pub pid: Option<u32>,
    /// That process's name (`/proc/<pid>/comm`).
    #[serde(default)]
    pub process: Option<String>,
    /// The workspace whose OpenCode started that process, if any.
    #[serde(default)]
    pub workspace: Option<String>,
    /// Whether the host's `[forward]` policy allows forwarding it.
    #[serde(default)]
    pub forwardable: bool,
}

/// Body of `port_forward`: the port on the host's loopback to connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardTarget {
    /// The TCP port.
    pub port: u16,
}

/// First answer of `port_forward`: the agent is connected; raw bytes follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ForwardOpened {
    /// The port.
    pub port: u16,
    /// The loopback address the agent connected to (`127.0.0.1` or `::1`).
    pub addr: String,
}

/// The phase of a `port_forward` stream after its first reply: unframed bytes, both ways.
/// Never encoded; it only names that phase in the operation list.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RawBytes;

/// The QUIC send priority of `port_forward` streams, below every other stream's default (0):
/// a large download through a forward never holds back events, prompts or heartbeats.
pub const STREAM_PRIORITY: i32 = -10;
