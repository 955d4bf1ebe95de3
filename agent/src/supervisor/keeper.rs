//! No orphaned OpenCode outlives an agent that is gone for good, yet one survives an agent
//! *restart* long enough to be re-adopted.
//!
//! `unsafe` is forbidden, so `pre_exec` cannot set a parent-death signal between `fork` and
//! `exec`. Instead the agent binary launches OpenCode through two hidden subcommands of itself:
//!
//! ```text
//! cm-agent (supervisor) ─spawn─▶ cm-agent __keep … ─spawn─▶ cm-agent __exec-child … ─exec─▶ opencode serve
//!                                 (keeper: group leader,     (sets PR_SET_PDEATHSIG=SIGKILL,
//!                                  single-threaded spawner)   re-checks its parent, execs)
//! ```
//!
//! - OpenCode dies with its keeper (parent-death signal; the keeper's spawning thread is its
//!   main thread, which lives as long as the keeper, so the "parent thread exited" caveat of
//!   `PR_SET_PDEATHSIG` does not apply). Stopping the launch signals the keeper's process
//!   group, which holds both.
//! - The keeper watches its agent: while its parent is the agent that started it, or the
//!   agent named in the state file is alive and lists this keeper as a child (a restarted
//!   agent that re-adopted it), all is well. Otherwise, after the grace period
//!   (`CM_AGENT_ORPHAN_GRACE`, default 60 s), it stops OpenCode (SIGTERM, 3 s, SIGKILL), kills
//!   the launch's marked tool processes and exits.
//! - The keeper is a child subreaper: whatever the launch's processes orphan (a tool that
//!   double-forks with `setsid` and a scrubbed environment) stays a descendant of the keeper,
//!   so the snapshot taken before a stop holds it, and the keeper kills all of it when
//!   OpenCode exits on its own.
//! - Without it there is no sandbox: the agent refuses to start OpenCode (mode `enforce` or
//!   `warn`) rather than run it directly, unless the mode is `off` ([`launcher`]).
//! - It relays OpenCode's stdout and stderr, ignoring write errors, so OpenCode never writes
//!   into a broken pipe when the agent is gone.

use super::leftovers;
use super::statefile::StateRecord;
use crate::opencode::launch::MARKER_ENV;
use crate::sandbox::Mode;
use std::ffi::OsString;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A line on stderr that never panics: the agent reading it may be gone (a broken pipe would
/// make `eprintln!` panic, killing the keeper before it stops OpenCode and its tools).
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Hidden subcommand: the keeper.
pub const KEEP: &str = "__keep";
/// Hidden subcommand: set the parent-death signal, then exec.
pub const EXEC_CHILD: &str = "__exec-child";
/// Environment variable overriding [`DEFAULT_GRACE`] (seconds, or a duration like `500ms`).
pub const GRACE_ENV: &str = "CM_AGENT_ORPHAN_GRACE";
/// How long a keeper without a live agent waits for one to re-adopt it.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(60);
/// How often the keeper checks its child and its agent.
const POLL: Duration = Duration::from_millis(200);
/// SIGTERM → SIGKILL grace when the keeper stops OpenCode itself.
const STOP_GRACE: Duration = Duration::from_secs(3);

/// The orphan grace from the agent's environment.
pub fn grace_from_env() -> Duration {
    std::env::var(GRACE_ENV)
        .ok()
        .and_then(|v| parse_grace(&v))
        .unwrap_or(DEFAULT_GRACE)
}

/// `"90"` (seconds) or `"500ms"`/`"2s"`/`"1m"`.
pub fn parse_grace(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(s) = v.parse::<u64>() {
        return Some(Duration::from_secs(s));
    }
    let (num, unit) = v.split_at(v.find(|c: char| !c.is_ascii_digit())?);
    let n: u64 = num.parse().ok()?;
    Some(match unit {
        "ms" => Duration::from_millis(n),
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        _ => return None,
    })
}

/// The `cm-agent` binary that launches OpenCode (the keeper and the launcher that applies the
/// sandbox): this process when it is that binary ([`dispatch`] records it, first thing in
/// `main`), or the one a program embedding the agent named with [`use_launcher`].
static LAUNCHER: OnceLock<PathBuf> = OnceLock::new();

/// Names the `cm-agent` binary a program that embeds the agent (a test) launches OpenCode
/// through. Without it, such a program can only run workspaces whose sandbox is `off`.
pub fn use_launcher(cm_agent: PathBuf) {
    let _ = LAUNCHER.set(cm_agent);
}

/// OpenCode would run without the sandbox its workspace asks for: there is no launcher.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "OpenCode not started: [sandbox] mode = \"{mode}\" is applied by the cm-agent launcher \
     (`cm-agent {EXEC_CHILD}`), and this process ({exe}) is not the cm-agent binary. Run the \
     agent as `cm-agent run`, or set the workspace's sandbox mode = \"off\" to run OpenCode \
     without the kernel sandbox"
)]
pub struct NoLauncher {
    /// The workspace's sandbox mode.
    pub mode: &'static str,
    /// This process's binary.
    pub exe: String,
}

/// The launcher for a workspace whose sandbox is `mode`: `None` (run OpenCode directly) only
/// where the mode is `off` and this process is not the `cm-agent` binary.
///
/// # Errors
/// The mode is `enforce` or `warn` and there is no launcher: never run OpenCode silently
/// without the sandbox.
pub fn launcher(mode: Mode) -> Result<Option<&'static Path>, NoLauncher> {
    match (LAUNCHER.get(), mode) {
        (Some(exe), _) => Ok(Some(exe.as_path())),
        (None, Mode::Off) => Ok(None),
        (None, mode) => Err(NoLauncher {
            mode: mode.as_str(),
            exe: std::env::current_exe()
                .map_or_else(|_| "unknown".to_owned(), |e| e.display().to_string()),
        }),
    }
}

/// The command the supervisor runs for `program args…`: through the keeper and the launcher,
/// which applies the sandbox plan in `sandbox_file` to itself right before it `exec`s
/// OpenCode; directly only where [`launcher`] says so (sandbox `off`, agent embedded in a
/// test binary).
///
/// # Errors
/// See [`launcher`].
pub fn wrap(
    program: &Path,
    args: &[String],
    state_file: &Path,
    sandbox_file: &Path,
    mode: Mode,
) -> Result<(PathBuf, Vec<OsString>), NoLauncher> {
    let Some(exe) = launcher(mode)? else {
        return Ok((
            program.to_owned(),
            args.iter().map(OsString::from).collect(),
        ));
    };
    let mut v: Vec<OsString> = vec![
        KEEP.into(),
        "--agent-pid".into(),
        std::process::id().to_string().into(),
        "--grace-ms".into(),
        grace_from_env().as_millis().to_string().into(),
        "--state-file".into(),
        state_file.as_os_str().to_owned(),
        "--sandbox".into(),
        sandbox_file.as_os_str().to_owned(),
        "--".into(),
        program.as_os_str().to_owned(),
    ];
    v.extend(args.iter().map(OsString::from));
    Ok((exe.to_owned(), v))
}

/// Runs a hidden subcommand if the arguments name one (call first thing in `main`).
pub fn dispatch() -> Option<ExitCode> {
    let args: Vec<OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some(KEEP) => Some(keep(&args[2..])),
        Some(EXEC_CHILD) => Some(exec_child(&args[2..])),
        _ => {
            // This process is the cm-agent binary: it launches OpenCode through itself.
            if let Ok(exe) = std::env::current_exe() {
                use_launcher(exe);
            }
            None
        }
    }
}

fn split_command(args: &[OsString]) -> Option<(&[OsString], &OsString, &[OsString])> {
    let sep = args.iter().position(|a| a == "--")?;
    let (opts, rest) = args.split_at(sep);
    let program = rest.get(1)?;
    Some((opts, program, &rest[2..]))
}

fn opt<'a>(opts: &'a [OsString], name: &str) -> Option<&'a OsString> {
    opts.iter()
        .position(|a| a == name)
        .and_then(|i| opts.get(i + 1))
}

fn pid_raw(p: Option<rustix::process::Pid>) -> i32 {
    p.map_or(0, |p| p.as_raw_nonzero().get())
}

/// `__exec-child PARENT [--sandbox PLAN] -- PROGRAM ARGS…`
fn exec_child(args: &[OsString]) -> ExitCode {
    let Some((opts, program, rest)) = split_command(args) else {
        say!("cm-agent {EXEC_CHILD}: usage: PARENT_PID [--sandbox PLAN] -- PROGRAM ARGS…");
        return ExitCode::from(2);
    };
    let parent: i32 = opts
        .first()
        .and_then(|p| p.to_str())
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    if let Err(e) =
        rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::KILL))
    {
        say!("cm-agent {EXEC_CHILD}: cannot set the parent-death signal: {e}");
        return ExitCode::from(1);
    }
    // The keeper may have died before the signal was armed.
    if pid_raw(rustix::process::getppid()) != parent {
        return ExitCode::from(1);
    }
    if let Some(plan) = opt(opts, "--sandbox")
        && let Err(e) = apply_sandbox(Path::new(plan))
    {
        say!("cm-agent sandbox: OpenCode not started: {e}");
        return ExitCode::from(126);
    }
    let e = Command::new(program).args(rest).exec();
    say!(
        "cm-agent {EXEC_CHILD}: cannot run {}: {e}",
        Path::new(program).display()
    );
    ExitCode::from(127)
}

/// Reads the plan the agent wrote and applies it to this process (inherited across `exec`).
fn apply_sandbox(plan_file: &Path) -> Result<(), String> {
    let text = std::fs::read(plan_file)
        .map_err(|e| format!("cannot read the sandbox plan {}: {e}", plan_file.display()))?;
    let plan: crate::sandbox::SandboxPlan = serde_json::from_slice(&text)
        .map_err(|e| format!("the sandbox plan {} is not valid: {e}", plan_file.display()))?;
    let applied = crate::sandbox::kernel::apply(&plan).map_err(|e| e.to_string())?;
    say!(
        "cm-agent sandbox: mode {}, Landlock {}, {} capabilities dropped",
        plan.mode.as_str(),
        applied.landlock,
        applied.caps_dropped
    );
    Ok(())
}

fn relay(mut from: impl std::io::Read + Send + 'static, to_stderr: bool) {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        loop {
            match from.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    // Nobody reading (the agent is gone) is fine: keep draining.
                    let _ = if to_stderr {
                        std::io::stderr().write_all(&buf[..n])
                    } else {
                        std::io::stdout().write_all(&buf[..n])
                    };
                }
            }
        }
    });
}

/// Whether the agent named in the state file is alive and lists `me` as a child.
fn adopted_by_live_agent(state_file: &Path, me: i32) -> bool {
    let Ok(text) = std::fs::read_to_string(state_file) else {
        return false;
    };
    let record = StateRecord::parse(&text);
    record.agent.is_some_and(leftovers::is_alive) && record.children.values().any(|c| c.pid == me)
}

/// `__keep --agent-pid P --grace-ms N --state-file PATH -- PROGRAM ARGS…`
fn keep(args: &[OsString]) -> ExitCode {
    let Some((opts, program, rest)) = split_command(args) else {
        say!("cm-agent {KEEP}: usage: --grace-ms N --state-file PATH -- PROGRAM ARGS…");
        return ExitCode::from(2);
    };
    let grace = opt(opts, "--grace-ms")
        .and_then(|g| g.to_str())
        .and_then(|g| g.parse().ok())
        .map_or(DEFAULT_GRACE, Duration::from_millis);
    let state_file = opt(opts, "--state-file").map(PathBuf::from);
    let me = pid_raw(Some(rustix::process::getpid()));
    // Orphans of the launch (a tool that double-forks, even with `setsid` and a scrubbed
    // environment) come to the keeper instead of the agent: they stay descendants of the
    // launch, so stopping it finds them.
    if let Err(e) = rustix::process::set_child_subreaper(Some(rustix::process::getpid())) {
        say!("cm-agent {KEEP}: cannot become a child subreaper: {e}");
        return ExitCode::from(1);
    }
    // Named by the agent (its parent at spawn; `getppid` could already be a reaper if the
    // agent died at once).
    let agent = opt(opts, "--agent-pid")
        .and_then(|g| g.to_str())
        .and_then(|g| g.parse().ok())
        .unwrap_or_else(|| pid_raw(rustix::process::getppid()));
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            say!("cm-agent {KEEP}: cannot find its own binary: {e}");
            return ExitCode::from(1);
        }
    };
    let mut launcher = Command::new(exe);
    launcher.arg(EXEC_CHILD).arg(me.to_string());
    if let Some(plan) = opt(opts, "--sandbox") {
        launcher.arg("--sandbox").arg(plan);
    }
    let mut child = match launcher
        .arg("--")
        .arg(program)
        .args(rest)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            say!(
                "cm-agent {KEEP}: cannot run {}: {e}",
                Path::new(program).display()
            );
            return ExitCode::from(127);
        }
    };
    if let Some(out) = child.stdout.take() {
        relay(out, false);
    }
    if let Some(err) = child.stderr.take() {
        relay(err, true);
    }
    let mut orphaned_since: Option<Instant> = None;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                // OpenCode is gone: so is everything it left (all of it is ours now).
                kill_descendants(me);
                return exit_code(status);
            }
            Ok(None) => {}
            Err(_) => return ExitCode::from(1),
        }
        let owned = pid_raw(rustix::process::getppid()) == agent
            || state_file
                .as_deref()
                .is_some_and(|f| adopted_by_live_agent(f, me));
        if owned {
            orphaned_since = None;
        } else if orphaned_since.get_or_insert_with(Instant::now).elapsed() >= grace {
            say!(
                "cm-agent {KEEP}: no agent re-adopted this OpenCode within {grace:?}; stopping it"
            );
            stop(&mut child, me);
            return ExitCode::from(1);
        }
        pause(POLL);
    }
}

/// SIGTERM, grace, SIGKILL; then the launch's marked tool processes.
fn stop(child: &mut std::process::Child, me: i32) {
    let snapshot = leftovers::descendants(me);
    if let Some(pid) = i32::try_from(child.id())
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
    }
    let deadline = Instant::now() + STOP_GRACE;
    while Instant::now() < deadline {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        pause(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    kill_descendants(me);
    if let Ok(marker) = std::env::var(MARKER_ENV) {
        for _ in 0..5 {
            let targets = leftovers::leftovers(&marker, &snapshot);
            if targets.is_empty() {
                break;
            }
            leftovers::kill(&targets);
            pause(Duration::from_millis(50));
        }
        // No agent will: the launch's cgroups go with it.
        crate::sandbox::cgroup::remove_for(&marker);
    }
}

/// Kills and reaps every descendant of the keeper `me` (a subreaper, so every process the
/// launch left is one), in rounds until none is left.
fn kill_descendants(me: i32) {
    for _ in 0..100 {
        let left = leftovers::descendants(me);
        if left.is_empty() {
            return;
        }
        leftovers::kill(&left);
        pause(Duration::from_millis(20));
        // Killed children become ours to reap (those with a marker are reaped as adopted).
        while let Ok(Some(_)) = rustix::process::wait(rustix::process::WaitOptions::NOHANG) {}
    }
}

#[allow(
    clippy::disallowed_methods,
    reason = "the keeper is a plain single-threaded poller, outside any async runtime"
)]
fn pause(d: Duration) {
    std::thread::sleep(d);
}

fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(c), _) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        (None, Some(sig)) => ExitCode::from(u8::try_from(128 + sig).unwrap_or(1)),
        _ => ExitCode::from(1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_values() {
        assert_eq!(parse_grace("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_grace("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_grace("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grace("soon"), None);
    }

    #[test]
    fn the_command_is_split_at_the_separator() {
        let args: Vec<OsString> = ["--grace-ms", "5", "--", "opencode", "serve", "--port", "1"]
            .iter()
            .map(OsString::from)
            .collect();
        let (opts, program, rest) = split_command(&args).unwrap();
        assert_eq!(opt(opts, "--grace-ms").unwrap(), "5");
        assert_eq!(program, "opencode");
        assert_eq!(rest.len(), 3);
    }

    #[test]
    fn opencode_never_runs_without_the_launcher_unless_the_sandbox_is_off() {
        // A test binary is not cm-agent and named no launcher.
        let run = |mode| {
            wrap(
                Path::new("/usr/bin/opencode"),
                &["serve".to_owned()],
                Path::new("/state/agent-state.json"),
                Path::new("/state/sandbox/ws.json"),
                mode,
            )
        };
        for mode in [Mode::Enforce, Mode::Warn] {
            let e = run(mode).unwrap_err();
            assert_eq!(e.mode, mode.as_str());
            let text = e.to_string();
            assert!(text.contains("not the cm-agent binary"), "{text}");
            assert!(text.contains("mode = \"off\""), "{text}");
        }
        let (program, args) = run(Mode::Off).unwrap();
        assert_eq!(program, Path::new("/usr/bin/opencode"));
        assert_eq!(args, ["serve"]);
    }
}
