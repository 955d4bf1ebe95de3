//! The TCP path (issue #21): QUIC tunnelled in TLS over TCP to a real relay's TCP listener.
//! Login, authentication (h1/h2 bound to the TLS exporter), host lists, forwarding to an agent
//! all run over it unchanged; a wrong pin is refused as on QUIC; junk on the TCP port disturbs
//! nobody; a cut TCP stream closes the QUIC connection at once and a reconnect works.

use crate::forward::header;
use crate::harness::*;
use anyhow::{Context, Result};
use cm_client::framed::FramedRecv;
use cm_client::tunnel::{dial_tcp_direct, dial_tunnel_over};
use cm_client::{self as client, LinkError, Session};
use cm_relay::config::ListenTcp;
use cm_relay::framed::send_frame;
use cm_relay::server::{Relay, SpawnError};
use proto::frame::{MAX_FRAME_LEN, MAX_HEADER_LEN};
use proto::handshake::{
    ClientHello, IssuedCredential, LoginMethod, LoginRequest, PeerKind, ServerHello,
};
use proto::header::Op;
use proto::ids::{CredId, ReqId};
use proto::message::Reply;
use proto::ops::{ForwardHeader, Prompt};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn tcp_addr(relay: &TestRelay) -> Result<SocketAddr> {
    relay
        .relay
        .as_ref()
        .and_then(Relay::tcp_local_addr)
        .context("the test relay has no TCP listener")
}

/// Logs the owner in with the init invite over `conn` (a tunnelled connection).
async fn login_over(conn: &quinn::Connection, relay: &TestRelay) -> Result<IssuedCredential> {
    let request = LoginRequest {
        v: proto::PROTOCOL_VERSION,
        user: relay.state.invite.user.clone(),
        method: LoginMethod::Invite {
            secret: relay.state.invite.secret,
            new_password: None,
        },
        ttl_s: None,
        label: Some("tcp".into()),
        device_key: None,
    };
    let (mut send, recv) = conn.open_bi().await?;
    let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
    send_frame(&mut send, &ClientHello::Login(request), MAX_HEADER_LEN).await?;
    let _ = send.finish();
    match recv.expect::<ServerHello>().await? {
        ServerHello::LoginOk(cred) => Ok(cred),
        other => anyhow::bail!("login over TCP refused: {other:?}"),
    }
}

async fn operator_over_tcp(tcp: SocketAddr, pin: &str, cred: &IssuedCredential) -> Result<Session> {
    let (_endpoint, conn) = dial_tcp_direct(tcp, pin, &quick_dial()).await?;
    Ok(client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?)
}

/// An agent on the TCP path answering each forwarded prompt with its text: its connection and
/// the receive half of its control stream (dropping that would end the agent's session).
async fn agent_over_tcp(
    relay: &TestRelay,
    tcp: SocketAddr,
    name: &str,
) -> Result<(quinn::Connection, FramedRecv)> {
    let token = relay.state.add_host(name, relay.addr)?;
    let (_endpoint, conn) = dial_tcp_direct(tcp, &relay.state.pin, &quick_dial()).await?;
    let session =
        client::authenticate(conn, PeerKind::Agent, &CredId(name.into()), &token.secret).await?;
    let conn = session.conn.clone();
    tokio::spawn(async move {
        while let Ok((mut send, recv)) = conn.accept_bi().await {
            tokio::spawn(async move {
                let mut recv = FramedRecv::new(recv, MAX_HEADER_LEN);
                let fwd: ForwardHeader = recv.expect().await?;
                recv.set_max_len(MAX_FRAME_LEN);
                let body: Option<Prompt> = recv.next().await?;
                let answer = format!(
                    "{} over tcp: {}",
                    fwd.principal,
                    body.map(|b| b.text).unwrap_or_default()
                );
                send_frame(&mut send, &Reply::Ok(answer), MAX_FRAME_LEN).await?;
                send.finish()?;
                Ok::<_, anyhow::Error>(())
            });
        }
    });
    heartbeat_forever(session.control_send, Default::default()).await?;
    Ok((session.conn, session.control_recv))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_and_an_agent_on_only_the_tcp_path_log_in_authenticate_and_forward()
-> Result<()> {
    let relay = TestRelay::start().await?;
    let tcp = tcp_addr(&relay)?;
    let pin = relay.state.pin.clone();

    let (_endpoint, conn) = dial_tcp_direct(tcp, &pin, &quick_dial()).await?;
    let cred = login_over(&conn, &relay).await?;
    conn.close(0u32.into(), b"done");

    let op = operator_over_tcp(tcp, &pin, &cred).await?;
    let _agent = agent_over_tcp(&relay, tcp, "box").await?;
    let list = watch_until(&op, "box online over TCP", |l| host_online(l, "box")).await?;
    assert_eq!(list.hosts.len(), 1);
    assert_eq!(client::host_list(&op.conn, ReqId(3)).await?.hosts.len(), 1);

    let prompt = Prompt {
        text: "hello over TCP".into(),
        idempotency_key: "k".into(),
        model: None,
        agent: None,
    };
    let answer: String =
        client::request(&op.conn, &header(Op::Prompt, "box"), Some(&prompt)).await?;
    assert_eq!(answer, "owner over tcp: hello over TCP");
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_pin_on_the_tcp_path_is_a_pin_mismatch() -> Result<()> {
    let relay = TestRelay::start().await?;
    let tcp = tcp_addr(&relay)?;
    let other = RelayState::new()?;
    let err = dial_tcp_direct(tcp, &other.pin, &quick_dial())
        .await
        .err()
        .context("dialled with another relay's pin")?;
    match &err {
        LinkError::PinMismatch {
            expected,
            presented,
        } => {
            assert_eq!(expected, &other.pin);
            assert_eq!(presented, &relay.state.pin);
        }
        e => anyhow::bail!("expected a pin mismatch, got {e}"),
    }
    assert!(err.is_fatal());
    relay.shutdown().await;
    Ok(())
}

/// A TLS handshake offering `alpn` with the right pin, on a blocking thread (plain rustls).
fn tls_with_alpn(tcp: SocketAddr, pin: &str, alpn: &[u8]) -> Result<()> {
    let provider = cm_client::tls::provider();
    let verifier =
        cm_client::tls::PinVerifier::new(pin, &provider, cm_client::tls::PinObservation::default());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let name = rustls::pki_types::ServerName::try_from(cm_client::tls::RELAY_SERVER_NAME)?;
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name)?;
    let sock = std::net::TcpStream::connect(tcp)?;
    sock.set_read_timeout(Some(WAIT))?;
    let mut tls = rustls::StreamOwned::new(conn, sock);
    std::io::Write::write_all(&mut tls, b"hello")?;
    std::io::Write::flush(&mut tls)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_and_a_wrong_alpn_on_the_tcp_port_do_not_disturb_other_clients() -> Result<()> {
    let relay = TestRelay::start().await?;
    let tcp = tcp_addr(&relay)?;
    let cred = relay.login_owner().await?;
    let op = operator_over_tcp(tcp, &relay.state.pin, &cred).await?;
    let quic_op = operator(&relay.addr_str(), &relay.state.pin, &cred).await?;

    // An HTTP request instead of TLS: the relay hangs up.
    let mut plain = tokio::net::TcpStream::connect(tcp).await?;
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: relay\r\n\r\n")
        .await?;
    let mut sink = Vec::new();
    let _ = tokio::time::timeout(WAIT, plain.read_to_end(&mut sink)).await?;
    assert!(sink.is_empty() || !sink.starts_with(b"HTTP"), "{sink:?}");

    // The relay's key, but another ALPN: refused in the handshake.
    let pin = relay.state.pin.clone();
    let refused = tokio::task::spawn_blocking(move || tls_with_alpn(tcp, &pin, b"h2")).await?;
    assert!(refused.is_err(), "a TLS client asking for h2 was served");

    assert_eq!(client::host_list(&op.conn, ReqId(4)).await?.hosts.len(), 0);
    assert_eq!(
        client::host_list(&quic_op.conn, ReqId(4))
            .await?
            .hosts
            .len(),
        0
    );
    assert!(op.conn.close_reason().is_none());
    relay.shutdown().await;
    Ok(())
}

/// A TCP path through a local forwarder the test can cut: the client end, and the forwarder.
async fn cuttable_path(
    to: SocketAddr,
) -> Result<(tokio::net::TcpStream, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let client_end = tokio::net::TcpStream::connect(listener.local_addr()?).await?;
    let (mut inner, _) = listener.accept().await?;
    let mut outer = tokio::net::TcpStream::connect(to).await?;
    let forwarder = tokio::spawn(async move {
        let _ = tokio::io::copy_bidirectional(&mut inner, &mut outer).await;
    });
    Ok((client_end, forwarder))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cut_tcp_stream_closes_the_quic_connection_at_once_and_a_reconnect_works() -> Result<()> {
    let relay = TestRelay::start().await?;
    let tcp = tcp_addr(&relay)?;
    let cred = relay.login_owner().await?;
    let (client_end, forwarder) = cuttable_path(tcp).await?;
    // A long idle timeout: were the connection left to time out, it would end as TimedOut.
    let opts = cm_client::DialOptions {
        idle_timeout: WAIT,
        ..cm_client::DialOptions::default()
    };
    let (_endpoint, conn) = dial_tunnel_over(client_end, tcp, &relay.state.pin, &opts).await?;
    let op = client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
    client::host_list(&op.conn, ReqId(5)).await?;

    forwarder.abort();
    let reason = tokio::time::timeout(WAIT, op.conn.closed()).await?;
    assert_eq!(reason, quinn::ConnectionError::LocallyClosed, "{reason}");

    // The same credential on a new TCP connection to the same listener.
    let op = operator_over_tcp(tcp, &relay.state.pin, &cred).await?;
    client::host_list(&op.conn, ReqId(6)).await?;
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen_tcp_off_binds_no_tcp_listener_and_a_taken_explicit_address_is_an_error()
-> Result<()> {
    let state = RelayState::new()?;
    let mut config = state.config("127.0.0.1:0".parse()?);
    config.listen_tcp = ListenTcp::Off;
    let relay = Relay::spawn(config).await?;
    assert_eq!(relay.tcp_local_addr(), None);
    relay.shutdown().await;

    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let mut config = state.config("127.0.0.1:0".parse()?);
    config.listen_tcp = ListenTcp::At(taken.local_addr()?);
    let err = Relay::spawn(config)
        .await
        .err()
        .context("bound a taken TCP address")?;
    assert!(matches!(err, SpawnError::BindTcp { .. }), "{err}");
    assert!(err.to_string().contains("\"off\""), "{err}");

    // The default (the UDP address) taken by something else: the relay still runs, on UDP.
    let held = std::net::TcpListener::bind("127.0.0.1:0")?;
    let relay = Relay::spawn(state.config(held.local_addr()?)).await?;
    assert_eq!(relay.tcp_local_addr(), None);
    assert_eq!(relay.local_addr(), held.local_addr()?);
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_whose_udp_address_changes_keeps_its_session() -> Result<()> {
    let relay = TestRelay::start().await?;
    let cred = relay.login_owner().await?;
    let (endpoint, conn) =
        client::dial_endpoint(&relay.addr_str(), &relay.state.pin, &quick_dial()).await?;
    let op = client::authenticate(conn, PeerKind::Operator, &cred.cred_id, &cred.secret).await?;
    client::host_list(&op.conn, ReqId(7)).await?;
    // A new local address, as when a laptop moves from Wi-Fi to a hotspot: QUIC migrates.
    let before = endpoint.local_addr()?;
    endpoint.rebind(std::net::UdpSocket::bind("127.0.0.1:0")?)?;
    assert_ne!(endpoint.local_addr()?, before);
    client::host_list(&op.conn, ReqId(8)).await?;
    assert!(op.conn.close_reason().is_none());
    relay.shutdown().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_shutdown_tells_tcp_clients_to_reconnect_now() -> Result<()> {
    let relay = TestRelay::start().await?;
    let tcp = tcp_addr(&relay)?;
    let cred = relay.login_owner().await?;
    let op = operator_over_tcp(tcp, &relay.state.pin, &cred).await?;
    client::host_list(&op.conn, ReqId(9)).await?;
    relay.shutdown().await;
    let (reason, text) = closed_reason(&op.conn).await?;
    assert_eq!(reason, proto::message::CloseReason::Restarting);
    assert_eq!(text, "relay restarting");
    Ok(())
}

/// A TCP port that was free a moment ago.
fn free_tcp_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cm_relay_run_listens_on_tcp_where_listen_tcp_says_and_logs_both_addresses() -> Result<()> {
    let state = RelayState::new()?;
    let (udp, tcp) = (free_udp_port()?, free_tcp_port()?);
    let mut child = std::process::Command::new(workspace_bin("cm-relay")?)
        .arg("--state-dir")
        .arg(state.dir.root())
        .args([
            "run",
            "--listen",
            &format!("127.0.0.1:{udp}"),
            "--listen-tcp",
            &format!("127.0.0.1:{tcp}"),
        ])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("no stderr")?;
    let _relay = Proc { child };
    LogLines::read(stderr, "relay").wait_line(&[
        "relay listening",
        &format!("local_addr=127.0.0.1:{udp}"),
        &format!("tcp_addr=127.0.0.1:{tcp}"),
    ])?;
    let tcp_addr: SocketAddr = format!("127.0.0.1:{tcp}").parse()?;
    let (_endpoint, conn) = dial_tcp_direct(tcp_addr, &state.pin, &quick_dial()).await?;
    conn.close(0u32.into(), b"done");
    Ok(())
}
