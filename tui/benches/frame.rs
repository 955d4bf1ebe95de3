//! Frame time and memory of the session screen with a long transcript (not a test: it prints
//! numbers). The app is driven only through its public API, the way the runtime drives it:
//! connect, host list, Enter to a workspace, its sessions and a session, whose `messages` reply
//! carries N messages; then the screen is drawn on a ratatui `TestBackend` of 140×40.
//!
//! `rows ms` is the median time of laying the whole transcript out from scratch
//! (`view::transcript::Layout::sync` on an empty layout: what a resize costs). Frames use the
//! app's layout cache, which lays out only the messages that changed and materializes only the
//! visible rows. Three cases per size, each timed over many frames
//! (p50 / p99 / max):
//! - `idle`:   drawing the screen as it is (following the bottom);
//! - `stream`: one text delta of the answer being streamed, then a frame (what every delta of
//!   a live answer costs);
//! - `scroll`: one `k` (scroll up a row), then a frame.
//!
//! Every size runs in a child process of its own (this binary with `--size N`), so the resident
//! memory it prints belongs to that size alone: `VmRSS` from /proc/self/status at the start
//! (`RSS0`) and once the transcript is loaded and drawn (`RSS`; `KiB/msg` is the difference per
//! message, the history as received included).
//!
//! Run: `cargo bench -p cm-tui --bench frame` (release). Options: `--sizes 1000,5000,10000`,
//! `--frames 200`. Goal: at most 16 ms per frame at 10,000 messages.

use anyhow::{Context, Result, bail};
use cm_tui::app::App;
use cm_tui::call::{Request, Response};
use cm_tui::effect::Effect;
use cm_tui::event::{Event, KeyCode, KeyPress, NetEvent};
use cm_tui::profile::Profile;
use cm_tui::ui::{self, theme::Theme};
use proto::event::{Event as WsEvent, EventFrame};
use proto::header::Op;
use proto::ids::{ConnId, CredId, HostId, UserId};
use proto::message::{HostInfo, HostList, HostStatus};
use proto::ops::{
    Message, OpencodeInfo, OpencodeState, Part, Pending, SessionInfo, SessionStatus, WorkspaceInfo,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::process::Command;
use std::time::{Duration, Instant};

const WIDTH: u16 = 140;
const HEIGHT: u16 = 40;
const GOAL: Duration = Duration::from_millis(16);
const T0: u64 = 1_700_000_000_000;
const SESSION: &str = "ses_bench";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let value = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let frames: usize = value("--frames").map_or(Ok(200), |v| v.parse())?;
    if let Some(size) = value("--size") {
        return run_size(size.parse()?, frames);
    }
    let sizes = value("--sizes").unwrap_or_else(|| "1000,5000,10000".into());
    println!(
        "cm-tui frame bench: session screen {WIDTH}x{HEIGHT}, {frames} frames per case, goal \
         {} ms",
        GOAL.as_millis()
    );
    println!(
        "{:>8} {:>8} {:>7} {:>7} | {:>21} | {:>21} | {:>21} | {:>9} {:>9} {:>9}",
        "messages",
        "rows",
        "load ms",
        "rows ms",
        "idle p50/p99/max ms",
        "stream p50/p99/max ms",
        "scroll p50/p99/max ms",
        "RSS0 MiB",
        "RSS MiB",
        "KiB/msg"
    );
    let exe = std::env::current_exe()?;
    let mut missed = false;
    for size in sizes.split(',') {
        let out = Command::new(&exe)
            .args(["--size", size.trim(), "--frames", &frames.to_string()])
            .output()?;
        if !out.status.success() {
            bail!(
                "size {size}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        let line = String::from_utf8(out.stdout)?;
        missed |= line.contains("MISS");
        print!("{line}");
    }
    if missed {
        println!(
            "MISS: some frame p99 is over the {} ms goal",
            GOAL.as_millis()
        );
    }
    Ok(())
}

/// Builds the app for `size` messages, times the three cases, prints one table row.
fn run_size(size: usize, frames: usize) -> Result<()> {
    let rss0 = rss_kib()?;
    let history = transcript(size);
    let started = Instant::now();
    let mut bench = Bench::at_session(history)?;
    let load = started.elapsed();
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT))?;
    bench.draw(&mut terminal)?;
    let rss = rss_kib()?;
    let rows = bench.rendered_rows();

    // The whole transcript laid out from scratch (what a resize costs; frames and keys use
    // the app's layout cache, which lays out only changed messages).
    let layout = time(frames.min(50), || {
        std::hint::black_box(bench.full_layout());
        Ok(())
    })?;
    let idle = time(frames, || bench.draw(&mut terminal))?;
    let mut seq = 1;
    let stream = time(frames, || {
        seq += 1;
        bench.delta(seq, "word ");
        bench.draw(&mut terminal)
    })?;
    let scroll = time(frames, || {
        bench.key(KeyPress::char('k'));
        bench.draw(&mut terminal)
    })?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let cell = |s: &Stats| format!("{:>6.2} {:>6.2} {:>7.2}", ms(s.p50), ms(s.p99), ms(s.max));
    let miss = [&idle, &stream, &scroll].iter().any(|s| s.p99 > GOAL);
    let mib = |k: u64| k as f64 / 1024.0;
    let per_message = rss.saturating_sub(rss0) as f64 / size as f64;
    println!(
        "{size:>8} {rows:>8} {:>7.1} {:>7.2} | {} | {} | {} | {:>9.1} {:>9.1} {:>9.2}{}",
        ms(load),
        ms(layout.p50),
        cell(&idle),
        cell(&stream),
        cell(&scroll),
        mib(rss0),
        mib(rss),
        per_message,
        if miss { "  MISS" } else { "" }
    );
    Ok(())
}

struct Stats {
    p50: Duration,
    p99: Duration,
    max: Duration,
}

fn time(frames: usize, mut frame: impl FnMut() -> Result<()>) -> Result<Stats> {
    let mut samples = Vec::with_capacity(frames);
    for _ in 0..frames {
        let start = Instant::now();
        frame()?;
        samples.push(start.elapsed());
    }
    samples.sort();
    let at = |q: f64| {
        let i = ((samples.len() as f64 - 1.0) * q).round() as usize;
        samples.get(i).copied().unwrap_or_default()
    };
    Ok(Stats {
        p50: at(0.50),
        p99: at(0.99),
        max: samples.last().copied().unwrap_or_default(),
    })
}

/// Resident memory of this process, KiB.
fn rss_kib() -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS in /proc/self/status")?;
    Ok(line
        .split_whitespace()
        .nth(1)
        .context("VmRSS value")?
        .parse()?)
}

/// The app plus the requests it asked for, answered like the connection task would.
struct Bench {
    app: App,
    pending: Vec<Request>,
}

impl Bench {
    fn send(&mut self, event: Event) {
        for effect in self.app.update(event) {
            if let Effect::Request(r) = effect {
                self.pending.push(r);
            }
        }
    }

    fn key(&mut self, key: KeyPress) {
        self.send(Event::Key(key));
    }

    fn answer(&mut self, op: Op, response: Response) -> Result<()> {
        let i = self
            .pending
            .iter()
            .position(|r| r.call.op() == op)
            .with_context(|| format!("the app did not ask for {op:?}"))?;
        let request = self.pending.remove(i);
        self.send(Event::Net(NetEvent::Reply {
            request,
            result: Ok(response),
        }));
        Ok(())
    }

    /// Connected, host `box` → workspace `demo` → session `ses_bench` with `history` loaded.
    fn at_session(history: Vec<Message>) -> Result<Self> {
        let profile = Profile {
            relay: "relay.example.com:7443".into(),
            pin: "blake3:00".into(),
            user: UserId::from("alice"),
            cred_id: CredId::from("c1"),
            expires_at_ms: T0 + 8 * 3_600_000,
            home: Default::default(),
        };
        let mut bench = Self {
            app: App::new(&profile, T0).with_bell(false),
            pending: Vec::new(),
        };
        bench.send(Event::Resize {
            width: WIDTH,
            height: HEIGHT,
        });
        bench.send(Event::Net(NetEvent::Connected {
            conn_id: ConnId::from("k1"),
        }));
        bench.send(Event::Net(NetEvent::Hosts(HostList {
            now_ms: T0,
            hosts: vec![HostInfo {
                host: HostId::from("box"),
                online: true,
                last_heartbeat_ms: Some(T0 - 1_000),
                status: Some(HostStatus {
                    hostname: "box".into(),
                    os: "linux 6.1.0".into(),
                    workspaces: vec!["demo".into()],
                    ..HostStatus::default()
                }),
            }],
            roles: Default::default(),
            global_role: None,
        })));
        bench.key(KeyPress::plain(KeyCode::Enter));
        bench.answer(
            Op::WorkspaceList,
            Response::Workspaces(vec![WorkspaceInfo {
                sandbox: None,
                template: None,
                name: "demo".into(),
                available: true,
                opencode: OpencodeInfo {
                    workspace: "demo".into(),
                    state: OpencodeState::Ready,
                    version: Some("1.2.3".into()),
                    restarts: 0,
                    last_error: None,
                },
            }]),
        )?;
        bench.key(KeyPress::plain(KeyCode::Enter));
        bench.answer(
            Op::SessionList,
            Response::Sessions(vec![SessionInfo {
                id: SESSION.into(),
                title: "A very long conversation".into(),
                created_ms: T0 - 3_600_000,
                updated_ms: T0,
                status: SessionStatus::Idle,
                parent: None,
            }]),
        )?;
        bench.answer(Op::PermissionList, Response::Pending(Pending::default()))?;
        bench.key(KeyPress::plain(KeyCode::Enter));
        bench.answer(Op::Messages, Response::Messages(history))?;
        let loaded = bench
            .app
            .session()
            .is_some_and(|s| s.loaded && !s.transcript.messages().is_empty());
        if !loaded {
            bail!("the session screen did not load the history");
        }
        Ok(bench)
    }

    /// A delta of the answer being streamed (a new last message).
    fn delta(&mut self, seq: u64, text: &str) {
        let watch = self
            .app
            .session()
            .map(cm_tui::app::SessionView::watch)
            .expect("a session is open");
        self.send(Event::Net(NetEvent::WatchFrame {
            watch,
            frame: EventFrame {
                seq,
                event: WsEvent::TextDelta {
                    session: SESSION.into(),
                    message_id: "msg_streaming".into(),
                    part_id: "prt_streaming".into(),
                    delta: text.into(),
                },
            },
        }));
    }

    fn draw(&self, terminal: &mut Terminal<TestBackend>) -> Result<()> {
        terminal.draw(|frame| ui::render(frame, &self.app, Theme::new(true)))?;
        Ok(())
    }

    /// Transcript rows as the screen lays them out (for the table).
    fn rendered_rows(&self) -> usize {
        self.app.session().map_or(0, |s| s.layout().len())
    }

    /// Lays the whole transcript out into a fresh layout; returns its rows.
    fn full_layout(&self) -> usize {
        self.app.session().map_or(0, |s| {
            let mut layout = cm_tui::view::transcript::Layout::default();
            layout.sync(&s.transcript, cm_tui::view::inner_width(WIDTH));
            layout.len()
        })
    }
}

const PARAGRAPH: &str = "The failing assertion compares the **rendered** width with the \
    terminal width, but `unicode-width` counts the emoji as two columns while the test \
    expected one. Changing the fixture keeps the test meaningful and makes it pass on every \
    platform we build for.";

const CODE: &str = "```rust\nfn width(s: &str) -> usize {\n    s.chars().map(|c| c.width().unwrap_or(0)).sum()\n}\n```";

/// `size` messages alternating user and assistant; the answers mix markdown paragraphs, lists,
/// code blocks, tool calls (some with output), reasoning and changed-file notes.
fn transcript(size: usize) -> Vec<Message> {
    (0..size)
        .map(|i| {
            let id = format!("msg_{i:06}");
            let part = |n: usize| format!("prt_{i:06}_{n}");
            let (role, parts) = if i % 2 == 0 {
                let text = format!("Question {i}: why does the width test fail on CI?");
                ("user", vec![Part::Text { id: part(0), text }])
            } else {
                let mut parts = vec![Part::Text {
                    id: part(0),
                    text: format!("Answer {i}. {PARAGRAPH}\n\n- first point\n- second point"),
                }];
                if i % 3 == 0 {
                    parts.push(Part::Tool {
                        id: part(1),
                        tool: "bash".into(),
                        status: "completed".into(),
                        title: None,
                        input: serde_json::json!({ "command": "cargo test -p cm-tui" }),
                        output: Some("running 12 tests\ntest result: ok".into()),
                        error: None,
                    });
                }
                if i % 5 == 0 {
                    parts.push(Part::Reasoning {
                        id: part(2),
                        text: "Look at the width function first, then the fixture.".into(),
                    });
                }
                if i % 7 == 0 {
                    parts.push(Part::Text {
                        id: part(3),
                        text: CODE.into(),
                    });
                    parts.push(Part::Patch {
                        id: part(4),
                        files: vec!["tui/src/view/text.rs".into()],
                    });
                }
                ("assistant", parts)
            };
            Message {
                id,
                role: role.into(),
                created_ms: T0,
                finish: (role == "assistant").then(|| "stop".into()),
                error: None,
                parts,
            }
        })
        .collect()
}
