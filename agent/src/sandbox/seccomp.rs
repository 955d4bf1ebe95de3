//! A seccomp filter beside Landlock: no new Unix-domain sockets, no io_uring.
//!
//! Landlock before ABI 9 does not govern `connect` to a path-named Unix socket, so a tool could
//! reach the user's systemd manager, D-Bus (the Secret Service), gpg/ssh agents or
//! `docker.sock` and run something outside the sandbox. `socket(AF_UNIX, …)` therefore fails
//! with `EPERM` (`socketpair`, which pipes between a process and its children use, stays
//! allowed), and so does `io_uring_setup`, whose socket operations would go around the filter.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Installs the filter on the calling thread (inherited across `fork` and `exec`). Needs
/// `no_new_privs`, which the Landlock step sets first.
///
/// # Errors
/// An unsupported architecture, or the kernel refusing the filter.
pub fn deny_unix_sockets() -> Result<(), String> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|e| e.to_string())?;
    let unix = SeccompCondition::new(
        0,
        SeccompCmpArgLen::Dword,
        SeccompCmpOp::Eq,
        u64::try_from(libc::AF_UNIX).map_err(|e| e.to_string())?,
    )
    .map_err(|e| e.to_string())?;
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
    rules.insert(
        libc::SYS_socket,
        vec![SeccompRule::new(vec![unix]).map_err(|e| e.to_string())?],
    );
    rules.insert(libc::SYS_io_uring_setup, Vec::new());
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(u32::try_from(libc::EPERM).map_err(|e| e.to_string())?),
        arch,
    )
    .map_err(|e| e.to_string())?;
    let program: BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| e.to_string())?;
    seccompiler::apply_filter(&program).map_err(|e| e.to_string())
}
