//! The name of the agent's state file, on its own so that the launch plan
//! (`opencode/launch.rs`, which tells the keeper where the file is) need not reach up into the
//! supervisor that keeps the file (`supervisor/statefile.rs`).

/// File name inside the state directory.
pub const FILE_NAME: &str = "agent-state.json";
