//! `cm-relay`: the CodeMantle relay, and the client side of its protocol.
//!
//! Agents and operators both dial out to the relay over QUIC. The relay authenticates each
//! connection (h1/h2, see `cm_proto::handshake`), keeps presence, authorizes each stream at one
//! point ([`authz`]), and answers or forwards it. With the default `server` feature this crate
//! is the relay; without it, it is the client library `cm-agent` and `cm-tui` use
//! ([`client`], [`tls`], [`framed`], and with `secrets`, [`secrets`]).

pub mod client;
pub mod finding;
pub mod framed;
pub mod pipe;
pub mod signal;
pub mod time;
pub mod tls;
pub mod toml_file;

#[cfg(feature = "secrets")]
pub mod secrets;

#[cfg(feature = "server")]
pub mod admin;
#[cfg(feature = "server")]
pub mod audit_event;
#[cfg(feature = "server")]
pub mod authz;
#[cfg(feature = "server")]
pub mod cli;
#[cfg(feature = "server")]
pub mod config;
#[cfg(feature = "server")]
pub mod config_file;
#[cfg(feature = "server")]
pub mod doctor;
#[cfg(feature = "server")]
pub mod help_examples;
#[cfg(feature = "server")]
mod net;
#[cfg(feature = "server")]
pub mod password;
#[cfg(feature = "server")]
pub mod presence;
#[cfg(feature = "server")]
pub mod server;
#[cfg(feature = "server")]
pub mod state;
#[cfg(feature = "server")]
pub mod store;
#[cfg(feature = "server")]
mod sync;
#[cfg(feature = "server")]
pub mod totp;
