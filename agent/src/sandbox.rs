//! The kernel sandbox around OpenCode and every process it starts.
//!
//! OpenCode's own permission config decides what it *asks* about; this module decides what the
//! kernel *lets happen*, whatever an operator approved:
//!
//! - `config.rs`: the `[sandbox]` table (mode, extra folders and ports, limits), per workspace.
//! - `plan.rs`: the rules of one launch (pure; written as `<state>/sandbox/<ws>.json`, outside
//!   every folder the sandbox lets OpenCode write).
//! - `env.rs`: the environment allow-list (OpenCode never sees the agent's own variables).
//! - `kernel.rs`: Landlock, resource limits and capabilities, applied by the launcher
//!   (`cm-agent __exec-child`, see `supervisor/keeper.rs`) to itself right before `exec`.
//! - `cgroup.rs`: the per-launch cgroups, their members and the limits they counted;
//!   `report.rs`: those limits as operators see them.

pub mod cgroup;
pub mod config;
pub mod env;
pub mod kernel;
pub mod plan;
pub mod report;
pub mod seccomp;
pub mod warn;

pub use config::{Mode, SandboxConfig, SandboxSection};
pub use plan::SandboxPlan;

/// One line for operators: what holds OpenCode in a workspace, and why.
pub fn describe(mode: Mode, abi: u8) -> String {
    match (mode, abi) {
        (Mode::Off, _) => "off: [sandbox] mode = \"off\" on this host".to_owned(),
        (Mode::Warn, _) => {
            "warn: nothing is refused; what the rules would refuse is logged on the host".to_owned()
        }
        (Mode::Enforce, abi) if abi >= 4 => {
            format!("enforced: Landlock ABI {abi} (files, TCP ports), limits, no capabilities")
        }
        (Mode::Enforce, abi) => format!(
            "refused: the kernel offers Landlock ABI {abi}, so OpenCode is not started \
             (mode = \"enforce\")"
        ),
    }
}

/// The state operators see for a workspace with these settings on this kernel.
pub fn info(cfg: &SandboxConfig) -> proto::ops::SandboxInfo {
    let abi = kernel::effective_abi(cfg.pretend_abi);
    let state = match cfg.mode {
        Mode::Enforce if abi >= 4 => "enforced",
        Mode::Enforce => "refused",
        Mode::Warn => "warn",
        Mode::Off => "off",
    };
    proto::ops::SandboxInfo {
        state: state.to_owned(),
        detail: describe(cfg.mode, abi),
    }
}

/// Says at start, for one workspace, what holds its OpenCode: loudly (error) where `enforce`
/// meets a kernel without Landlock (OpenCode will not start there) and where the sandbox is off
/// or warn.
pub fn announce(workspace: &str, cfg: &SandboxConfig) {
    let i = info(cfg);
    match i.state.as_str() {
        "enforced" => tracing::info!(workspace = %workspace, "sandbox {}", i.detail),
        "refused" => tracing::error!(
            workspace = %workspace,
            "sandbox {}; set [sandbox] mode = \"warn\" or \"off\" in agent.toml to run it unconfined",
            i.detail
        ),
        _ => tracing::warn!(workspace = %workspace, "sandbox {}", i.detail),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mode_is_shown_to_operators_for_what_it_is() {
        let with = |mode, pretend_abi| SandboxConfig {
            mode,
            pretend_abi,
            ..SandboxConfig::default()
        };
        assert_eq!(info(&with(Mode::Off, None)).state, "off");
        assert!(
            info(&with(Mode::Off, None))
                .detail
                .contains("mode = \"off\"")
        );
        assert_eq!(info(&with(Mode::Warn, None)).state, "warn");
        assert_eq!(info(&with(Mode::Enforce, Some(7))).state, "enforced");
        assert_eq!(info(&with(Mode::Enforce, Some(3))).state, "refused");
        assert_eq!(info(&with(Mode::Enforce, Some(0))).state, "refused");
    }
}
