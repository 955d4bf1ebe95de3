//! `cm-tui ports HOST [WORKSPACE]` (the host's listening ports, whose they are, whether they
//! may be forwarded) and `cm-tui forward HOST PORT` (a local listener whose every accepted
//! connection is carried to the port on the host's loopback by its own `port_forward` stream).

use crate::commands::CommandError;
use crate::e2e_channels::{HostRecv, HostSend, HostStream, HostStreams, OpenOptions};
use crate::remote::{Remote, Target};
use crate::view::text::sanitize;
use clap::Args;
use cm_client::LinkError;
use proto::forward::{ForwardOpened, ForwardTarget, ListeningPort, STREAM_PRIORITY};
use proto::header::{Op, StreamHeader};
use proto::message::{CloseReason, Reply};
use proto::op;
use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};

/// How often `ports --watch` asks again.
const WATCH_EVERY: Duration = Duration::from_secs(2);

/// `cm-tui ports HOST [WORKSPACE]`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cm-tui ports home-box\n  cm-tui ports home-box myproject --json\n  cm-tui ports home-box --watch\n\nA port marked `forward` may be forwarded with `cm-tui forward HOST PORT`; which ports \
                  may is the host's choice ([forward] allow in its agent.toml; by default only \
                  ports a workspace's OpenCode started)."
)]
pub struct PortsArgs {
    /// Host id.
    pub host: String,
    /// Only the ports this workspace's OpenCode started.
    pub workspace: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the list again whenever it changes (Ctrl-C stops).
    #[arg(long)]
    pub watch: bool,
}

/// `cm-tui forward HOST PORT`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  cm-tui forward home-box 8000\n  cm-tui forward home-box 5173 --local 127.0.0.1:3000\n  cm-tui forward home-box 8000 --local 127.0.0.1:0\n\nEach connection to the local address is carried to 127.0.0.1:PORT on the host (HTTP, \
                  WebSocket, any TCP). Ctrl-C ends the forward; so do a revoked login and the \
                  kill switch. Forwarding needs role operator and a port the host allows."
)]
pub struct ForwardArgs {
    /// Host id.
    pub host: String,
    /// The port on the host's loopback.
    pub port: u16,
    /// Where to listen here (default 127.0.0.1 and the same port, or one the OS picks if that
    /// is taken).
    #[arg(long, value_name = "ADDR:PORT")]
    pub local: Option<SocketAddr>,
}

/// Runs `cm-tui ports …`.
///
/// # Errors
/// Refusals and transport failures.
pub async fn run_ports(remote: &Remote, args: PortsArgs) -> Result<(), CommandError> {
    let target = Target {
        host: args.host.clone(),
        workspace: args.workspace.clone(),
        session: None,
    };
    if !args.watch {
        let ports = remote.call::<op::PortList>(&target, &()).await?;
        return print_ports(&ports, args.json);
    }
    let watch = async {
        let mut last = None;
        loop {
            let ports = remote.call::<op::PortList>(&target, &()).await?;
            if last.as_ref() != Some(&ports) {
                print_ports(&ports, args.json)?;
                last = Some(ports);
            }
            tokio::time::sleep(WATCH_EVERY).await;
        }
    };
    tokio::select! {
        r = watch => r,
        () = cm_client::signal::shutdown_signal() => Ok(()),
    }
}

fn print_ports(ports: &[ListeningPort], json: bool) -> Result<(), CommandError> {
    if json {
        // One line per list, so `--watch --json` is JSON lines.
        println!("{}", serde_json::to_string(ports)?);
    } else {
        print!("{}", render(ports));
        println!();
    }
    Ok(())
}

/// The text form: one port per line.
pub fn render(ports: &[ListeningPort]) -> String {
    if ports.is_empty() {
        return "no listening ports\n".into();
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<6} {:<16} {:<8} {:<16} {:<12} FORWARD",
        "PORT", "ADDRESS", "PID", "PROCESS", "WORKSPACE"
    );
    for p in ports {
        let _ = writeln!(
            out,
            "{:<6} {:<16} {:<8} {:<16} {:<12} {}",
            p.port,
            sanitize(&p.addr),
            p.pid.map_or_else(|| "-".to_owned(), |p| p.to_string()),
            sanitize(p.process.as_deref().unwrap_or("-")),
            sanitize(p.workspace.as_deref().unwrap_or("-")),
            if p.forwardable { "forward" } else { "-" }
        );
    }
    out
}

/// One opened `port_forward` stream, past its first reply.
struct Opened {
    send: HostSend,
    recv: HostRecv,
    reply: ForwardOpened,
}

/// A `port_forward` header for `host` with the connection's next request id.
fn header(remote: &Remote, host: &str) -> StreamHeader {
    let target = Target {
        host: host.to_owned(),
        ..Target::default()
    };
    remote.header(Op::PortForward, &target)
}

/// Opens a `port_forward` stream for `port` and reads its first reply.
async fn open(conn: &HostStreams, header: &StreamHeader, port: u16) -> Result<Opened, LinkError> {
    // Below every other stream: a download here never holds back events or prompts.
    let options = OpenOptions {
        finish: false,
        priority: Some(STREAM_PRIORITY),
    };
    let target = ForwardTarget { port };
    let HostStream { send, mut recv } = conn.open(header, Some(&target), options).await?;
    let first: Reply<ForwardOpened> = recv.expect().await?;
    let reply = first.into_result().map_err(LinkError::Refused)?;
    Ok(Opened { send, recv, reply })
}

/// Carries one accepted connection until either side ends.
async fn carry(opened: Opened, tcp: TcpStream) {
    let Opened {
        mut send, mut recv, ..
    } = opened;
    let prefix = recv.take_buffered();
    let mut recv = recv.into_inner();
    let (mut tcp_r, mut tcp_w) = tcp.into_split();
    let up = async {
        let r = tokio::io::copy(&mut tcp_r, &mut send).await;
        let _ = send.shutdown().await;
        r
    };
    let down = async {
        if !prefix.is_empty() {
            tcp_w.write_all(&prefix).await?;
        }
        let r = tokio::io::copy(&mut recv, &mut tcp_w).await;
        let _ = tcp_w.shutdown().await;
        r
    };
    if let Err(e) = tokio::try_join!(up, down) {
        tracing::debug!(error = %e, "forwarded connection ended");
    }
}

/// Binds the local listener: `local`, or 127.0.0.1 and `port`, or an OS-chosen port when that
/// one is taken.
///
/// # Errors
/// `local` cannot be bound ([`CommandError::BadInput`] saying what to do), or no local port at
/// all.
pub async fn bind(local: Option<SocketAddr>, port: u16) -> Result<TcpListener, CommandError> {
    if let Some(addr) = local {
        return TcpListener::bind(addr).await.map_err(|e| {
            CommandError::BadInput(format!(
                "cannot listen on --local {addr}: {e}; pick another address or port (port 0 lets the OS choose)"
            ))
        });
    }
    let same = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    match TcpListener::bind(same).await {
        Ok(l) => Ok(l),
        Err(_) => Ok(TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, 0))).await?),
    }
}

/// Why the relay ended the connection, in the user's terms.
fn ended(e: &quinn::ConnectionError) -> CommandError {
    let why = match e {
        quinn::ConnectionError::ApplicationClosed(c)
            if matches!(
                CloseReason::from_code(c.error_code.into_inner()),
                CloseReason::Revoked | CloseReason::AuthFailed
            ) =>
        {
            "the relay revoked this login (a revoked credential or the kill switch); run `cm-tui login` to get a new one".to_owned()
        }
        other => format!("relay connection lost ({other}); run the forward again"),
    };
    CommandError::Ended(format!("forward ended: {why}"))
}

/// Asks the host once whether it forwards `port` (before anything listens): a refused port
/// fails here, with the host's reason. Returns the loopback address the agent connected to.
///
/// # Errors
/// The host's refusal, or transport failures.
pub async fn check(remote: &Remote, host: &str, port: u16) -> Result<String, LinkError> {
    check_on(remote.streams(), &header(remote, host), port).await
}

/// [`check`] on a bare connection with the `port_forward` header given (the full-screen app
/// numbers its own requests).
///
/// # Errors
/// The host's refusal, or transport failures.
pub async fn check_on(
    conn: &HostStreams,
    header: &StreamHeader,
    port: u16,
) -> Result<String, LinkError> {
    let probe = open(conn, header, port).await?;
    Ok(probe.reply.addr)
}

/// What [`serve_on`] reports while it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Served {
    /// The number of connections carried now changed.
    Connections(usize),
    /// A connection from `peer` was not forwarded (the host refused it: a limit reached).
    NotForwarded {
        /// The local peer.
        peer: SocketAddr,
        /// Why.
        why: String,
    },
}

/// Serves a forward on `listener` (see [`bind`]) until the relay connection ends: each accepted
/// connection is its own `port_forward` stream to `port` (headers from `next_header`), carried
/// in its own task; `report` hears how many are open and which were refused. Dropping the
/// future stops the listener and every connection it carries.
///
/// # Errors
/// A failing listener; otherwise it returns why the relay connection ended.
pub async fn serve_on(
    conn: &Arc<HostStreams>,
    mut next_header: impl FnMut() -> StreamHeader,
    port: u16,
    listener: TcpListener,
    mut report: impl FnMut(Served),
) -> Result<quinn::ConnectionError, std::io::Error> {
    let mut carried = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, peer) = accepted?;
                let _ = tcp.set_nodelay(true);
                let (conn, header) = (Arc::clone(conn), next_header());
                carried.spawn(async move {
                    match open(&conn, &header, port).await {
                        Ok(opened) => {
                            carry(opened, tcp).await;
                            None
                        }
                        // A lost relay connection is reported once, by the caller.
                        Err(LinkError::Connection(_)) => None,
                        Err(e) => Some(Served::NotForwarded { peer, why: e.to_string() }),
                    }
                });
                report(Served::Connections(carried.len()));
            }
            Some(done) = carried.join_next(), if !carried.is_empty() => {
                if let Ok(Some(news)) = done {
                    report(news);
                }
                report(Served::Connections(carried.len()));
            }
            e = conn.conn().closed() => return Ok(e),
        }
    }
}

/// Serves a forward on `listener` (see [`bind`]) until the relay connection ends: each accepted
/// connection is its own `port_forward` stream to `port` on `host`, carried in its own task.
/// A connection the host refuses (a limit reached) is reported on stderr and closed.
///
/// # Errors
/// [`CommandError::Ended`] saying why the relay ended the connection (a revoked login, the
/// kill switch), or a failing listener.
pub async fn serve(
    remote: &Remote,
    host: &str,
    port: u16,
    listener: TcpListener,
) -> Result<(), CommandError> {
    let report = |news| {
        if let Served::NotForwarded { peer, why } = news {
            eprintln!("cm-tui: connection from {peer} not forwarded: {why}");
        }
    };
    let e = serve_on(
        remote.streams(),
        || header(remote, host),
        port,
        listener,
        report,
    )
    .await?;
    Err(ended(&e))
}

/// Runs `cm-tui forward …` until Ctrl-C or the relay ends it.
///
/// # Errors
/// The host refused the port, the local address is taken, or the relay ended the connection.
pub async fn run_forward(remote: &Remote, args: ForwardArgs) -> Result<(), CommandError> {
    let addr = check(remote, &args.host, args.port).await?;
    let listener = bind(args.local, args.port).await?;
    let local = listener.local_addr()?;
    if !local.ip().is_loopback() {
        eprintln!(
            "cm-tui: warning: listening on {local}: other machines that reach this address reach {} port {} with your login",
            sanitize(&args.host),
            args.port
        );
    }
    println!(
        "forwarding http://{local} to {} port {} ({}); Ctrl-C ends it",
        sanitize(&args.host),
        args.port,
        sanitize(&addr)
    );
    tokio::select! {
        r = serve(remote, &args.host, args.port, listener) => r,
        () = cm_client::signal::shutdown_signal() => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_render_one_line_each_with_what_may_be_forwarded() {
        let ports = [
            ListeningPort {
                port: 8000,
                addr: "0.0.0.0".into(),
                pid: Some(42),
                process: Some("python3".into()),
                workspace: Some("demo".into()),
                forwardable: true,
            },
            ListeningPort {
                port: 5432,
                addr: "127.0.0.1".into(),
                pid: None,
                process: Some("\u{1b}]0;x\u{7}pg".into()),
                workspace: None,
                forwardable: false,
            },
        ];
        let text = render(&ports);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("PORT"), "{text}");
        assert!(
            lines[1].starts_with("8000") && lines[1].ends_with("forward"),
            "{text}"
        );
        assert!(lines[1].contains("python3") && lines[1].contains("demo"));
        assert!(
            !text.contains('\u{1b}'),
            "names from the host are sanitized"
        );
        assert!(lines[2].ends_with(" -"), "{text}");
        assert_eq!(render(&[]), "no listening ports\n");
    }
}
