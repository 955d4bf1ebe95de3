//! `cm-agent`: the daemon on a managed host. It dials the relay (no inbound port),
//! authenticates with the host's enrollment secret, heartbeats its status, reconnects on its
//! own, forever, and serves operators' requests by driving one `opencode serve` per workspace
//! (started on demand, supervised, stopped when idle).

pub mod added_workspaces;
pub mod attach;
pub mod attention;
pub mod config;
pub mod core_tasks;
pub mod doctor;
pub mod e2e_state;
pub mod enroll;
pub mod env_refs;
pub mod forward;
pub mod fs;
pub mod git;
pub mod grants;
pub mod hub;
pub mod idempotency;
pub mod lease;
pub mod link;
pub mod local_notices;
pub mod model_choice;
pub mod opencode;
pub mod ops;
pub mod policy;
pub mod private_file;
pub mod runlock;
pub mod sandbox;
pub mod secret_names;
pub mod session_links;
pub mod signature_check;
pub mod state_file_name;
pub mod status;
pub mod supervisor;
pub mod template;
pub mod template_policy;
pub mod trust;
pub mod workspaces;
