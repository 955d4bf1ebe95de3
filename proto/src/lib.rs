//! The CodeMantle wire protocol, shared by `cm-relay`, `cm-agent` and `cm-tui`.
//!
//! Contract: this crate does no I/O, reads no clock and draws no randomness. Every function that
//! needs the time takes `now_ms`; nonces and ids are passed in. That keeps every rule of the
//! protocol testable exhaustively and deterministically. CI checks that the dependency tree of
//! this crate contains no tokio, quinn or rustls.
//!
//! Message flow on one QUIC connection (see `docs/protocol.md`):
//! 1. The client opens the first bidirectional stream and sends [`handshake::ClientHello`]:
//!    either `h1` (authenticate with a credential) or `login` (exchange an invite or a
//!    password for a short-lived credential).
//! 2. The relay answers with [`handshake::ServerHello`]: `h2`, `login_ok` or one generic error.
//! 3. After `h2`, that first stream stays open as the control stream (heartbeats, pings).
//!    Every other request opens its own stream, starting with a [`header::StreamHeader`].

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod admin;
pub mod bytes32;
pub mod event;
pub mod forward;
pub mod frame;
pub mod fs;
pub mod git;
pub mod grant;
pub mod handshake;
pub mod header;
pub mod host_watch;
pub mod ids;
pub mod message;
pub mod notify;
#[macro_use]
mod opcode;
pub mod operation;
pub mod ops;
pub mod queue;
pub mod rbac;
pub mod replay;
pub mod template;
pub mod text;
pub mod token;
pub mod trust;
pub mod wire_error;
pub mod workspace;

pub use operation::op;

/// The protocol version carried in `h1`, `login` and the ALPN.
pub const PROTOCOL_VERSION: u32 = 1;

/// The ALPN both sides negotiate; a peer without it is refused by TLS itself.
pub const ALPN: &[u8] = b"codemantle/1";
