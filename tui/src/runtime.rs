//! The IO shell of the full-screen app: set up the terminal, start the connection task, then
//! loop `select! { biased; signals, keys, net, tick }` → `App::update` → execute effects →
//! draw. The terminal is restored on every way out (normal quit, error, signal, panic).
//!
//! Settings come from [`Options`] (tui.toml, `NO_COLOR`, `CM_TUI_BELL`; see `config.rs`).

use crate::app::App;
use crate::effect::{Effect, Notification};
use crate::event::{Event, KeyCode, KeyPress, NetEvent};
use crate::keymap::Keymap;
use crate::net::Net;
use crate::profile::Profile;
use crate::ui::{self, theme::Theme};
use cm_client::time::{now_ms, random_u64};
use crossterm::event::{
    Event as TermEvent, EventStream, KeyCode as TermKeyCode, KeyEvent, KeyEventKind, KeyModifiers,
    MouseEventKind,
};
use futures::StreamExt;
use proto::handshake::Key;
use ratatui::DefaultTerminal;
use std::io::{self, Write};
use std::time::Duration;
use terminal::Screen;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::mpsc;

mod terminal;

/// How often the clock ticks (heartbeat ages, countdowns); the screen shows whole seconds.
pub const TICK: Duration = Duration::from_secs(1);
/// Depth of the queue from the connection task (streamed text arrives in many small events).
const NET_QUEUE: usize = 1024;
/// Most queued net events applied before the screen is drawn again.
const NET_BATCH: usize = 256;

/// Why the full-screen app stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The terminal could not be put into full-screen mode.
    #[error("cannot set up the terminal (is this an interactive terminal?): {0}")]
    Terminal(#[source] io::Error),
    /// Drawing failed.
    #[error("cannot draw on the terminal: {0}")]
    Draw(#[source] io::Error),
    /// Reading keys failed.
    #[error("cannot read terminal input: {0}")]
    Input(#[source] io::Error),
    /// A signal handler could not be installed.
    #[error("cannot install a signal handler: {0}")]
    Signal(#[source] io::Error),
}

/// The signals that end the app: SIGTERM (stop), SIGINT (`kill -INT`; Ctrl-C in raw mode
/// arrives as a key instead) and SIGHUP (terminal closed).
#[derive(Debug)]
struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    fn install() -> Result<Self, RuntimeError> {
        let on = |kind| signal(kind).map_err(RuntimeError::Signal);
        Ok(Self {
            term: on(SignalKind::terminate())?,
            int: on(SignalKind::interrupt())?,
            hup: on(SignalKind::hangup())?,
        })
    }

    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
            _ = self.hup.recv() => {}
        }
    }
}

/// Settings the full-screen app takes from `tui.toml` and the environment.
#[derive(Debug, Clone)]
pub struct Options {
    /// Ring the bell on new attention.
    pub bell: bool,
    /// Use colour.
    pub color: bool,
    /// The colours.
    pub colors: crate::ui::theme::Colors,
    /// The keys (defaults plus `[keys]`).
    pub keymap: Keymap,
    /// Program and arguments run on new attention (empty: none).
    pub notify_command: Vec<String>,
    /// Relay profile names `:relay NAME` may switch to.
    pub relays: Vec<String>,
    /// The relay profile in use, if one was chosen.
    pub relay: Option<String>,
    /// Without a key press for this long, nobody counts as watching a session (tui.toml
    /// `presence_idle_secs`).
    pub presence_idle: Duration,
}

impl Options {
    /// Bell and colour as given, everything else default.
    pub fn new(bell: bool, color: bool) -> Self {
        Self {
            bell,
            color,
            colors: crate::ui::theme::Colors::default(),
            keymap: Keymap::default(),
            notify_command: Vec::new(),
            relays: Vec::new(),
            relay: None,
            presence_idle: Duration::from_millis(crate::notify_focus::IDLE_AFTER_MS),
        }
    }
}

/// How the app ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The user quit (or a signal arrived).
    Quit,
    /// The user asked for another relay profile (`:relay NAME`): start again with it.
    SwitchRelay(String),
}

/// What the loop does after an update's effects.
enum Flow {
    Continue,
    Stop(Exit),
}

/// Runs the full-screen app until the user quits or a signal arrives.
///
/// # Errors
/// The terminal cannot be set up, drawn on or read from, or signal handlers cannot be
/// installed. Relay trouble is not an error here: it is shown on screen and retried.
pub async fn run(profile: Profile, key: Key, options: Options) -> Result<Exit, RuntimeError> {
    let mut signals = Signals::install()?;
    let mut screen = Screen::enter()?;
    let (net_tx, net_rx) = mpsc::channel(NET_QUEUE);
    let mut app = App::new(&profile, now_ms())
        .with_key_seed(random_u64())
        .with_bell(options.bell)
        .with_keymap(options.keymap.clone())
        .with_relays(options.relays.clone(), options.relay.clone())
        .with_presence_idle(options.presence_idle);
    let net = Net::spawn(profile, key, net_tx);
    let shell = Shell {
        net: &net,
        notify_command: &options.notify_command,
    };
    let result = event_loop(
        &mut screen.terminal,
        &mut app,
        &shell,
        net_rx,
        &mut signals,
        Theme::new(options.color).with_colors(options.colors),
    )
    .await;
    drop(screen);
    net.shutdown().await;
    result
}

/// What effects act on.
struct Shell<'a> {
    net: &'a Net,
    notify_command: &'a [String],
}

async fn event_loop(
    terminal: &mut DefaultTerminal,
    app: &mut App,
    shell: &Shell<'_>,
    mut net_rx: mpsc::Receiver<NetEvent>,
    signals: &mut Signals,
    theme: Theme,
) -> Result<Exit, RuntimeError> {
    let size = terminal.size().map_err(RuntimeError::Draw)?;
    app.update(Event::Resize {
        width: size.width,
        height: size.height,
    });
    let mut input = EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        terminal
            .draw(|frame| ui::render(frame, app, theme))
            .map_err(RuntimeError::Draw)?;
        let event = tokio::select! {
            biased;
            () = signals.recv() => return Ok(Exit::Quit),
            next = input.next() => match next {
                Some(Ok(raw)) => match translate(&raw) {
                    Some(event) => event,
                    None => continue,
                },
                Some(Err(e)) => return Err(RuntimeError::Input(e)),
                None => return Ok(Exit::Quit),
            },
            Some(net_event) = net_rx.recv() => {
                // Bring the app's clock up to date so countdowns start from now.
                let now = now_ms();
                if let Flow::Stop(exit) = execute(app.update(Event::Tick { now_ms: now }), shell) {
                    return Ok(exit);
                }
                // Apply what else is queued (a burst of streamed text) before drawing once.
                let mut batch = vec![net_event];
                while batch.len() < NET_BATCH {
                    match net_rx.try_recv() {
                        Ok(more) => batch.push(more),
                        Err(_) => break,
                    }
                }
                let last = batch.pop();
                for queued in batch {
                    if let Flow::Stop(exit) = execute(app.update(Event::Net(queued)), shell) {
                        return Ok(exit);
                    }
                }
                match last {
                    Some(last) => Event::Net(last),
                    None => continue,
                }
            }
            _ = tick.tick() => Event::Tick { now_ms: now_ms() },
        };
        if let Flow::Stop(exit) = execute(app.update(event), shell) {
            return Ok(exit);
        }
    }
}

/// Carries out the app's effects; says whether to stop.
fn execute(effects: Vec<Effect>, shell: &Shell<'_>) -> Flow {
    let net = shell.net;
    for effect in effects {
        match effect {
            Effect::Quit => return Flow::Stop(Exit::Quit),
            Effect::SwitchRelay(name) => return Flow::Stop(Exit::SwitchRelay(name)),
            Effect::Reconnect => net.reconnect(),
            Effect::Request(request) => net.request(request),
            Effect::Stream(request) => net.stream(request),
            Effect::CloseStream(id) => net.close_stream(id),
            Effect::Forward(request) => net.forward(request),
            Effect::Watch { watch, after_seq } => net.watch(watch, after_seq),
            Effect::Bell => {
                // BEL moves no cursor, so it does not disturb the drawn frame.
                let mut out = io::stdout();
                let _ = out.write_all(b"\x07").and_then(|()| out.flush());
            }
            Effect::Notify(n) => notify(shell.notify_command, &n),
            Effect::Copy(text) => {
                // Like BEL, an OSC sequence moves no cursor.
                let mut out = io::stdout();
                let _ = out
                    .write_all(crate::view::clipboard::osc52(&text).as_bytes())
                    .and_then(|()| out.flush());
            }
        }
    }
    Flow::Continue
}

/// Starts the notification hook (if configured) with the details in its environment: the
/// program and arguments come from tui.toml alone, remote text only reaches it as a variable.
/// Its output is discarded; it is reaped in the background and never waited for.
fn notify(command: &[String], n: &Notification) {
    let Some((program, args)) = command.split_first() else {
        return;
    };
    let spawned = tokio::process::Command::new(program)
        .args(args)
        .envs(n.env())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    match spawned {
        Ok(mut child) => {
            tokio::spawn(async move {
                let _ = child.wait().await;
            });
        }
        Err(e) => tracing::warn!("notify_command {program:?} did not start: {e}"),
    }
}

/// The terminal's event as an app event; `None` for events the app ignores (mouse other than
/// the wheel, key releases).
fn translate(event: &TermEvent) -> Option<Event> {
    match event {
        TermEvent::Key(key) if key.kind != KeyEventKind::Release => {
            Some(Event::Key(translate_key(key)))
        }
        TermEvent::Resize(width, height) => Some(Event::Resize {
            width: *width,
            height: *height,
        }),
        TermEvent::Paste(text) => Some(Event::Paste(text.clone())),
        TermEvent::FocusGained => Some(Event::FocusGained),
        TermEvent::FocusLost => Some(Event::FocusLost),
        TermEvent::Mouse(m) => match m.kind {
            MouseEventKind::ScrollUp => Some(Event::Scroll { up: true }),
            MouseEventKind::ScrollDown => Some(Event::Scroll { up: false }),
            _ => None,
        },
        TermEvent::Key(_) => None,
    }
}

fn translate_key(key: &KeyEvent) -> KeyPress {
    let code = match key.code {
        TermKeyCode::Char(c) => KeyCode::Char(c),
        TermKeyCode::Up => KeyCode::Up,
        TermKeyCode::Down => KeyCode::Down,
        TermKeyCode::Left => KeyCode::Left,
        TermKeyCode::Right => KeyCode::Right,
        TermKeyCode::Home => KeyCode::Home,
        TermKeyCode::End => KeyCode::End,
        TermKeyCode::PageUp => KeyCode::PageUp,
        TermKeyCode::PageDown => KeyCode::PageDown,
        TermKeyCode::Enter => KeyCode::Enter,
        TermKeyCode::Esc => KeyCode::Esc,
        TermKeyCode::Tab => KeyCode::Tab,
        TermKeyCode::Backspace => KeyCode::Backspace,
        TermKeyCode::Delete => KeyCode::Delete,
        TermKeyCode::BackTab => KeyCode::BackTab,
        _ => KeyCode::Other,
    };
    KeyPress {
        code,
        ctrl: key.modifiers.contains(KeyModifiers::CONTROL),
        alt: key.modifiers.contains(KeyModifiers::ALT),
        // Shifted characters arrive as themselves ('G'); Shift only matters on other keys.
        shift: key.modifiers.contains(KeyModifiers::SHIFT)
            && !matches!(code, KeyCode::Char(_) | KeyCode::BackTab),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::{KeyEventState, MouseEvent, MouseEventKind};

    fn key(code: TermKeyCode, modifiers: KeyModifiers, kind: KeyEventKind) -> TermEvent {
        TermEvent::Key(KeyEvent {
            code,
            modifiers,
            kind,
            state: KeyEventState::NONE,
        })
    }

    #[test]
    fn ctrl_c_and_shifted_letters_translate() {
        assert_eq!(
            translate(&key(
                TermKeyCode::Char('c'),
                KeyModifiers::CONTROL,
                KeyEventKind::Press
            )),
            Some(Event::Key(KeyPress::ctrl('c')))
        );
        assert_eq!(
            translate(&key(
                TermKeyCode::Char('G'),
                KeyModifiers::SHIFT,
                KeyEventKind::Press
            )),
            Some(Event::Key(KeyPress::char('G')))
        );
        assert_eq!(
            translate(&key(
                TermKeyCode::F(5),
                KeyModifiers::NONE,
                KeyEventKind::Repeat
            )),
            Some(Event::Key(KeyPress::plain(KeyCode::Other)))
        );
    }

    #[test]
    fn alt_and_shift_enter_translate_for_the_prompt() {
        assert_eq!(
            translate(&key(
                TermKeyCode::Enter,
                KeyModifiers::ALT,
                KeyEventKind::Press
            )),
            Some(Event::Key(KeyPress::alt(KeyCode::Enter)))
        );
        assert_eq!(
            translate(&key(
                TermKeyCode::Enter,
                KeyModifiers::SHIFT,
                KeyEventKind::Press
            )),
            Some(Event::Key(KeyPress::shift(KeyCode::Enter)))
        );
        assert_eq!(
            translate(&key(
                TermKeyCode::BackTab,
                KeyModifiers::SHIFT,
                KeyEventKind::Press
            )),
            Some(Event::Key(KeyPress::plain(KeyCode::BackTab)))
        );
    }

    #[test]
    fn releases_and_mouse_are_ignored_resizes_pass() {
        assert_eq!(
            translate(&key(
                TermKeyCode::Char('q'),
                KeyModifiers::NONE,
                KeyEventKind::Release
            )),
            None
        );
        let mouse = TermEvent::Mouse(MouseEvent {
            kind: MouseEventKind::Moved,
            column: 0,
            row: 0,
            modifiers: KeyModifiers::NONE,
        });
        assert_eq!(translate(&mouse), None);
        let wheel = |kind| {
            TermEvent::Mouse(MouseEvent {
                kind,
                column: 3,
                row: 4,
                modifiers: KeyModifiers::NONE,
            })
        };
        assert_eq!(
            translate(&wheel(MouseEventKind::ScrollUp)),
            Some(Event::Scroll { up: true })
        );
        assert_eq!(
            translate(&wheel(MouseEventKind::ScrollDown)),
            Some(Event::Scroll { up: false })
        );
        assert_eq!(
            translate(&TermEvent::Resize(100, 30)),
            Some(Event::Resize {
                width: 100,
                height: 30
            })
        );
    }

    #[test]
    fn focus_changes_translate_for_the_presence_signal() {
        assert_eq!(translate(&TermEvent::FocusGained), Some(Event::FocusGained));
        assert_eq!(translate(&TermEvent::FocusLost), Some(Event::FocusLost));
    }

    /// The hook gets the details in its environment, as the program from the config; remote
    /// text with shell syntax stays inert text.
    #[tokio::test]
    async fn the_notify_hook_runs_the_configured_program_with_the_details() {
        let dir = tempfile::tempdir().expect("temp dir");
        let out = dir.path().join("hook.txt");
        let script = format!(
            "printf '%s|%s|%s|%s|%s' \"$CM_ATTENTION_KIND\" \"$CM_ATTENTION_HOST\" \
             \"$CM_ATTENTION_WORKSPACE\" \"$CM_ATTENTION_SESSION\" \"$CM_ATTENTION_TEXT\" > {}.tmp \
             && mv {}.tmp {}",
            out.display(),
            out.display(),
            out.display()
        );
        let command = vec!["sh".to_owned(), "-c".to_owned(), script];
        let n = Notification {
            kind: "permission",
            host: "box".into(),
            workspace: "demo".into(),
            session: Some("ses_1".into()),
            text: "permission bash: $ rm -rf / $(touch pwned)".into(),
        };
        notify(&command, &n);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        let written = loop {
            if let Ok(text) = std::fs::read_to_string(&out) {
                break text;
            }
            assert!(std::time::Instant::now() < deadline, "the hook did not run");
            tokio::task::yield_now().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        assert_eq!(
            written,
            "permission|box|demo|ses_1|permission bash: $ rm -rf / $(touch pwned)"
        );
        assert!(!dir.path().join("pwned").exists());
        assert!(!std::path::Path::new("pwned").exists());
        // No command configured: nothing runs, nothing fails.
        notify(&[], &n);
    }
}
