//! Everything the agent knows about OpenCode (`opencode serve`): finding the binary, generating
//! its configuration and environment, the typed HTTP client, and turning its event stream into
//! `proto` events. Process lifecycle lives in [`crate::supervisor`], not here.

pub mod binary;
pub mod client;
pub mod events;
mod http;
pub mod ids;
pub mod launch;
pub mod map;
pub use crate::model_choice as models;
pub mod provider;
pub mod sse;

/// The OpenCode release this agent is built and tested against.
pub const PINNED_VERSION: &str = "1.18.33";
