//! `cm-agent`: the daemon on a managed host. It dials the relay (no inbound port),
//! authenticates with the host's enrollment secret, heartbeats its status, and reconnects on
//! its own, forever.

pub mod backoff;
pub mod config;
pub mod enroll;
pub mod link;
pub mod status;
