//! (c') Moving back to QUIC is a hand-over, not a cut: an answer streaming to `cm-tui send
//! --wait` through the agent's TCP connection when UDP comes back keeps streaming to its end,
//! while the agent's new work goes over QUIC; the TCP connection closes once it is done.

use crate::harness::{Proc, WAIT};
use crate::lab::Lab;
use crate::observe::{is_quic, is_tcp, wait_agent_transport, wait_tcp_links};
use crate::watcher::Watcher;
use anyhow::{Result, bail, ensure};
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// Long enough that the agent's QUIC probe (every 5 s in the lab) answers mid-stream, shorter
/// than the hand-over's bound (30 s).
const ANSWER: &str = "SLOW 80 250ms";
const LAST_CHUNK: &str = "chunk 79";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_streaming_over_tcp_when_quic_comes_back_streams_to_its_end() -> Result<()> {
    let Some(mut lab) = Lab::start().await? else {
        return Ok(());
    };
    lab.wait_relay_tcp()?;
    let no_udp = lab.net.drop_udp_to_relay()?;
    lab.start_agent()?;
    lab.login()?;
    lab.wait_online()?;
    wait_agent_transport(&lab, "cm-agent status on TCP", is_tcp)?;
    let session = lab.new_session()?;
    let mut watch = Watcher::spawn(&lab)?;
    let mut send = lab.tui_spawn(&[
        "send",
        "box",
        "demo",
        "--session",
        &session,
        ANSWER,
        "--wait",
    ])?;
    watch.until_text(&session, "chunk 2 ")?;

    // UDP is back while the answer streams: the agent hands its link over to QUIC.
    no_udp.remove()?;
    wait_agent_transport(&lab, "cm-agent status back on QUIC", is_quic)?;
    let status = wait_exit(&mut send)?;
    let (_, lines, stderr) = send.finish()?;
    let out = lines.join("\n");
    ensure!(
        status.success(),
        "the streamed answer was cut by the move to QUIC: {stderr}\n{out}"
    );
    ensure!(out.contains(LAST_CHUNK), "the answer is incomplete: {out}");
    let log = lab.agent_log();
    ensure!(
        log.contains("open streams finish first"),
        "the agent did not hand over (the answer ended before QUIC came back?):\n{log}"
    );
    ensure!(
        !log.contains("still open; closing it"),
        "the hand-over hit its bound:\n{log}"
    );
    // The TCP connection closes once its stream is done; the host stays online, once.
    wait_tcp_links(&lab.net.host, "the agent's TCP connection closed", |n| {
        n == 0
    })?;
    lab.wait_online()?;
    watch.until_text(&session, LAST_CHUNK)?;
    watch.assert_gapless();
    Ok(())
}

/// Waits (bounded: the answer's length and the hang guard) for `proc` to exit.
fn wait_exit(proc: &mut Proc) -> Result<ExitStatus> {
    let deadline = Instant::now() + WAIT * 2;
    loop {
        if let Some(status) = proc.child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            bail!(
                "cm-tui send never ended:\n{}",
                proc.stderr_log.lock().unwrap().join("\n")
            );
        }
        // Polling a process we do not control the timing of; bounded by the deadline.
        std::thread::park_timeout(Duration::from_millis(50));
    }
}
