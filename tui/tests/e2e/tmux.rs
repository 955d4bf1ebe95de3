//! The full-screen app in a real terminal (issue 6): the real `cm-tui` binary runs in a detached
//! tmux pane of 120×35, keys go in with `tmux send-keys`, and every step is checked on the text
//! of `tmux capture-pane` (no colours). Hosts → the `:` palette → the admin screen → workspace
//! (folders, git) → new session → a streamed answer → a permission answered with `y` → the diff
//! → abort of a slow answer → `q`.
//!
//! Waiting means polling the pane until the screen shows what the step expects, bounded by the
//! harness's hang guard: the screen is an external program's output with no event to wait on.
//!
//! With `CM_TUI_SCREENS_DIR` set, each named screen is also written there as `<name>.txt` (the
//! source of docs/screens.md).

use crate::harness::*;
use anyhow::{Context, Result, bail, ensure};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Terminal size of the pane.
const WIDTH: u16 = 120;
const HEIGHT: u16 = 35;

/// One tmux server (its own socket, so nothing of the user's tmux is touched) with one session
/// running `cm-tui`. The server is killed on Drop, whatever the test's outcome.
pub(crate) struct Tmux {
    socket: PathBuf,
    session: String,
    screens: Option<PathBuf>,
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl Tmux {
    /// Starts `cm-tui` (no arguments: the full-screen app) in a detached 120×35 pane. The
    /// config is read when the server starts, before the app runs: the pane stays after the app
    /// exits (to read its exit status) and there is no tmux status line.
    pub(crate) fn start(world: &World) -> Result<Self> {
        Self::start_sized(world, WIDTH, HEIGHT)
    }

    /// Starts `cm-tui` in a detached pane of `width`×`height` (a phone's terminal is ~50 wide).
    pub(crate) fn start_sized(world: &World, width: u16, height: u16) -> Result<Self> {
        let dir = world.tmp.path();
        let conf = dir.join("tmux.conf");
        std::fs::write(
            &conf,
            "set -g remain-on-exit on\nset -g status off\nset -g history-limit 100\n",
        )?;
        let session = format!("cm-tui-e2e-{}", std::process::id());
        let tmux = Self {
            socket: dir.join("tmux.sock"),
            session,
            screens: std::env::var_os("CM_TUI_SCREENS_DIR").map(PathBuf::from),
        };
        let app = bin("cm-tui")?;
        let app = app.to_str().context("cm-tui path is not UTF-8")?;
        let mut cmd = tmux.cmd();
        cmd.arg("-f").arg(&conf).args([
            "new-session",
            "-d",
            "-x",
            &width.to_string(),
            "-y",
            &height.to_string(),
            "-s",
            &tmux.session,
        ]);
        for (name, value) in world.tui_env() {
            let value = value.to_str().context("env value is not UTF-8")?.to_owned();
            cmd.arg("-e").arg(format!("{name}={value}"));
        }
        cmd.arg(format!("exec {}", shell_quote(app)));
        tmux.run(cmd)?;
        Ok(tmux)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        // -u: the pane speaks UTF-8 whatever the test's locale (the app draws ● › ▍ …).
        cmd.arg("-u").arg("-S").arg(&self.socket).env_remove("TMUX");
        cmd
    }

    fn run(&self, mut cmd: Command) -> Result<Output> {
        let out = cmd.output().context("running tmux (is it installed?)")?;
        ensure!(
            out.status.success(),
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Ok(out)
    }

    /// Types `text` literally (no key names).
    pub(crate) fn type_text(&self, text: &str) -> Result<()> {
        let mut cmd = self.cmd();
        cmd.args(["send-keys", "-t", &self.session, "-l", text]);
        self.run(cmd).map(drop)
    }

    /// Presses one key by its tmux name (`Enter`, `Escape`, `Tab`, `q`).
    pub(crate) fn press(&self, key: &str) -> Result<()> {
        let mut cmd = self.cmd();
        cmd.args(["send-keys", "-t", &self.session, key]);
        self.run(cmd).map(drop)
    }

    /// The pane's text as shown now (no colours, trailing blanks trimmed by tmux).
    pub(crate) fn capture(&self) -> Result<String> {
        let mut cmd = self.cmd();
        cmd.args(["capture-pane", "-p", "-t", &self.session]);
        Ok(String::from_utf8(self.run(cmd)?.stdout)?)
    }

    /// `Some(exit status)` once the app has exited and tmux has reaped it (the pane stays:
    /// remain-on-exit); a death by signal N is `-N`.
    ///
    /// tmux marks a pane dead when its terminal closes and learns the status on SIGCHLD. A
    /// tmux built with libutempter can miss that SIGCHLD (utempter's helper briefly installs
    /// its own handler; tmux/tmux#311), leaving the app a zombie with no status: then this
    /// server of ours is sent SIGCHLD, so it reaps on the next poll.
    fn exited(&self) -> Result<Option<i32>> {
        let mut cmd = self.cmd();
        cmd.args([
            "list-panes",
            "-t",
            &self.session,
            "-F",
            "#{pane_dead}:#{pane_dead_status}:#{pane_dead_signal}:#{pid}",
        ]);
        let out = String::from_utf8(self.run(cmd)?.stdout)?;
        let fields: Vec<&str> = out.trim().split(':').collect();
        let number = |i: usize| fields.get(i).and_then(|s| s.parse::<i32>().ok());
        if fields.first() != Some(&"1") {
            return Ok(None);
        }
        let status = number(1).or_else(|| number(2).map(|signal| -signal));
        if status.is_none()
            && let Some(server) = number(3)
        {
            let _ = Command::new("kill")
                .args(["-CHLD", &server.to_string()])
                .status();
        }
        Ok(status)
    }

    /// The pane's process and state as tmux reports it (for failure messages).
    fn pane_state(&self) -> Result<String> {
        let mut cmd = self.cmd();
        cmd.args([
            "list-panes",
            "-t",
            &self.session,
            "-F",
            "pid #{pane_pid} dead #{pane_dead} status #{pane_dead_status} signal #{pane_dead_signal}",
        ]);
        let state = String::from_utf8(self.run(cmd)?.stdout)?.trim().to_owned();
        // What the kernel says about that process (alive, zombie, stopped), where it can.
        let process = state
            .split_whitespace()
            .nth(1)
            .and_then(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .map(|status| {
                status
                    .lines()
                    .filter(|l| l.starts_with("State:") || l.starts_with("Threads:"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_else(|| "process gone".into());
        Ok(format!("{state} ({process})"))
    }

    /// Polls the screen until `pred` holds; returns that screen. Fails with the last screen
    /// when the app exits first or the hang guard runs out.
    pub(crate) fn wait_for(&self, what: &str, pred: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.capture()?;
            if pred(&screen) {
                return Ok(screen);
            }
            if let Some(status) = self.exited()? {
                bail!("cm-tui exited ({status}) while waiting for {what}; screen:\n{screen}");
            }
            if Instant::now() > deadline {
                bail!("timed out waiting for {what}; screen:\n{screen}");
            }
            // Polling an external program's screen; bounded by the deadline above.
            std::thread::park_timeout(Duration::from_millis(100));
        }
    }

    /// Polls until every needle is on screen.
    pub(crate) fn wait_text(&self, needles: &[&str]) -> Result<String> {
        self.wait_for(&format!("{needles:?}"), |s| {
            needles.iter().all(|n| s.contains(n))
        })
    }

    /// Writes `screen` to `CM_TUI_SCREENS_DIR/<name>.txt` when that is set.
    fn keep(&self, name: &str, screen: &str) -> Result<()> {
        if let Some(dir) = &self.screens {
            std::fs::create_dir_all(dir)?;
            std::fs::write(dir.join(format!("{name}.txt")), screen)?;
        }
        Ok(())
    }

    /// Gives the prompt box the keys (`i`) unless it has them, then types `text` and sends it.
    fn prompt(&self, text: &str) -> Result<()> {
        let screen = self.capture()?;
        if !focused(&screen) {
            self.press("i")?;
            self.wait_for("the prompt box to take the keys", focused)?;
        }
        self.type_text(text)?;
        self.wait_text(&[text])?;
        self.press("Enter")
    }

    /// Takes the keys away from the prompt box (Esc), so single keys are commands again.
    fn leave_prompt(&self) -> Result<()> {
        if focused(&self.capture()?) {
            self.press("Escape")?;
        }
        self.wait_for("the session keys", |s| s.contains("i write"))
            .map(drop)
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let mut cmd = self.cmd();
        cmd.arg("kill-server");
        let _ = cmd.output();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Whether the prompt box has the keys (its hints say how to send and leave).
fn focused(screen: &str) -> bool {
    screen.contains("Enter send") && screen.contains("Esc done")
}

/// The line of `screen` holding `needle`.
pub(crate) fn line_with<'a>(screen: &'a str, needle: &str) -> Option<&'a str> {
    screen.lines().find(|l| l.contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_screen_app_in_tmux() -> Result<()> {
    let started = Instant::now();
    let world = World::start().await?;
    let tmux = Tmux::start(&world)?;

    // Hosts: `box` is online.
    // Every part is waited for, never asserted after: a capture can catch tmux half-way
    // through a redraw.
    let hosts = tmux.wait_for("box online in the host list, connected", |s| {
        line_with(s, " box ").is_some_and(|l| l.contains("● online"))
            && s.contains("HOST")
            && s.contains("1 of 1 online")
            && s.contains("connected")
    })?;
    tmux.keep("hosts", &hosts)?;

    // Help overlay, generated from the hosts key table; `?` closes it again.
    tmux.press("?")?;
    tmux.wait_text(&["keys · hosts", "quit", "Ctrl-C", "filter"])?;
    tmux.press("?")?;
    tmux.wait_for("the help to close", |s| !s.contains("keys · hosts"))?;

    // The `:` palette: fuzzy-matched actions; `help` runs the help overlay.
    tmux.press(":")?;
    tmux.wait_text(&["command", "Enter run"])?;
    tmux.type_text("hlp")?;
    let palette = tmux.wait_for("help as the best match", |s| {
        line_with(s, ": hlp").is_some() && s.contains("show / hide this help")
    })?;
    tmux.keep("palette", &palette)?;
    tmux.press("Enter")?;
    tmux.wait_text(&["keys · hosts"])?;
    tmux.press("?")?;
    tmux.wait_for("the help to close", |s| !s.contains("keys · hosts"))?;

    // Administration (the test user is the relay's owner): users with grants from the
    // relay, the enrolled host, the audit trail (which has this very read in it); Esc back.
    tmux.press("m")?;
    let admin = tmux.wait_for("the users tab", |s| {
        s.contains("relay › users") && line_with(s, "owner").is_some_and(|l| l.contains("owner@*"))
    })?;
    tmux.keep("admin", &admin)?;
    tmux.press("l")?;
    tmux.wait_for("the enrolled host", |s| {
        s.contains("relay › hosts") && line_with(s, " box ").is_some_and(|l| l.contains("active"))
    })?;
    tmux.press("l")?;
    tmux.press("l")?;
    // The relay records reads without waiting for the disk: the row of this screen's own
    // user_list read may land after the first audit read; `r` reads again (bounded).
    let deadline = Instant::now() + WAIT;
    let audit = loop {
        let screen = tmux.wait_for("the audit trail", |s| {
            s.contains("relay › audit") && s.contains("DECISION")
        })?;
        if line_with(&screen, "user_list").is_some_and(|l| l.contains("owner")) {
            break screen;
        }
        ensure!(
            Instant::now() < deadline,
            "no user_list row in the audit trail:\n{screen}"
        );
        tmux.press("r")?;
        // Polling the relay's audit trail through the screen; bounded by the deadline above.
        std::thread::park_timeout(Duration::from_millis(200));
    };
    tmux.keep("admin-audit", &audit)?;
    tmux.press("Escape")?;
    tmux.wait_text(&["1 of 1 online"])?;

    // Workspaces of `box`: `demo`, with its root folders and git summary beside the table.
    tmux.press("Enter")?;
    let workspaces = tmux.wait_for("the demo workspace", |s| {
        s.contains("box › workspaces")
            && line_with(s, "▶ demo").is_some_and(|l| l.contains("ok"))
            && s.contains("at the root")
            && (s.contains("git:") || s.contains("⎇"))
    })?;
    tmux.keep("workspaces", &workspaces)?;

    // Sessions of `demo`: none yet; `n` creates one and opens it with the prompt focused.
    tmux.press("Enter")?;
    tmux.wait_text(&["box › demo › sessions", "no sessions yet", "n starts one"])?;
    tmux.press("n")?;
    tmux.wait_for("the new session, idle, prompt focused", |s| {
        s.contains("no messages yet") && s.contains("○ idle") && focused(s)
    })?;
    // Esc then `i`: the documented way in.
    tmux.leave_prompt()?;

    // A streamed answer.
    tmux.prompt("Say hello")?;
    tmux.wait_text(&[
        "Hello from mock LLM. You said: Say hello",
        "○ idle",
        "▍you",
        "▍assistant",
    ])?;

    // A tool call that needs permission: the box shows it; nothing is written before `y`.
    tmux.prompt("WRITE_FILE: notes/tmux.txt hi")?;
    tmux.wait_text(&["⚠ permission", "y once", "A always", "r reject", "tmux.txt"])?;
    assert!(!world.workspace.join("notes/tmux.txt").exists());
    tmux.leave_prompt()?;
    let asked = tmux.wait_text(&["⚠ permission", "y once"])?;
    tmux.keep("session-permission", &asked)?;

    // The attention panel lists the same request (Tab opens and closes it).
    tmux.press("Tab")?;
    let attention = tmux.wait_text(&["attention", "1 waiting", "permission edit", "box/demo"])?;
    tmux.keep("attention", &attention)?;
    tmux.press("Tab")?;
    tmux.wait_text(&["⚠ permission", "y once"])?;

    // Help on the session screen lists its keys.
    tmux.press("?")?;
    let help = tmux.wait_text(&["keys · session", "abort"])?;
    tmux.keep("help", &help)?;
    tmux.press("Escape")?;
    tmux.wait_for("the help to close", |s| !s.contains("keys · session"))?;

    // `y`: the box goes, the tool completes, the file is in the workspace.
    tmux.press("y")?;
    let done = tmux.wait_for("the write to complete", |s| {
        !s.contains("⚠ permission")
            && line_with(s, "write").is_some_and(|l| l.contains("✓") && l.contains("completed"))
            && s.contains("Tool finished")
            && s.contains("○ idle")
    })?;
    tmux.keep("session", &done)?;
    assert_eq!(
        std::fs::read_to_string(world.workspace.join("notes/tmux.txt"))?,
        "hi\n"
    );

    // `d`: the diff names the file and shows its line. OpenCode works out a turn's diff just
    // after the turn has ended; an open diff reads again by itself when that lands, so one `d`
    // is enough even when the first read says "no changes".
    tmux.press("d")?;
    let diff = tmux.wait_for("the diff with notes/tmux.txt", |s| {
        s.contains("diff:")
            && s.contains("notes/tmux.txt")
            && s.contains("+hi")
            && s.contains("session changes")
    })?;
    tmux.keep("diff", &diff)?;
    tmux.press("Escape")?;
    tmux.wait_text(&["i write", "Tool finished"])?;

    // A slow answer: abort once chunks arrive; the turn ends as aborted.
    tmux.prompt("SLOW 200 100ms")?;
    tmux.wait_text(&["chunk 0"])?;
    tmux.leave_prompt()?;
    tmux.press("a")?;
    let aborted = tmux.wait_text(&["✗ aborted", "○ idle"])?;
    assert!(
        !aborted.contains("chunk 199"),
        "aborted before the end: {aborted}"
    );
    tmux.keep("aborted", &aborted)?;

    // Esc: back on the sessions list, which now has the session under OpenCode's title.
    tmux.press("Escape")?;
    let sessions = tmux.wait_for("the session in the list", |s| {
        s.contains(" 1 session ")
            && s.contains("TITLE")
            && line_with(s, "ses_").is_some_and(|l| l.contains("○ idle"))
    })?;
    tmux.keep("sessions", &sessions)?;

    // `q` quits: the process exits with status 0 and gives the terminal back.
    tmux.press("q")?;
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = tmux.exited()? {
            break status;
        }
        ensure!(
            Instant::now() < deadline,
            "cm-tui did not exit on q; pane {}; screen:\n{}",
            tmux.pane_state()?,
            tmux.capture()?
        );
        // Polling the pane state of an external process; bounded by the deadline.
        std::thread::park_timeout(Duration::from_millis(100));
    };
    let after = tmux.capture()?;
    assert_eq!(status, 0, "exit status; screen:\n{after}");
    assert!(
        !after.contains("? help") && !after.contains("Mock session title"),
        "the alternate screen was left: {after}"
    );
    eprintln!("tmux e2e took {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

#[test]
fn shell_quote_survives_quotes() {
    assert_eq!(shell_quote("/a b/c"), "'/a b/c'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
}
