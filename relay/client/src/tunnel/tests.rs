//! The tunnel end to end on 127.0.0.1: a quinn server endpoint on [`bind_tunnel_listener`],
//! clients through [`dial_tcp_direct`] / [`dial_tunnel_over`].

use super::*;
use crate::tls::{pin_of_certificate, provider};
use quinn::crypto::rustls::QuicServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

struct Server {
    _endpoint: quinn::Endpoint,
    addr: SocketAddr,
    pin: String,
    /// The connections the server accepted.
    accepted: tokio::sync::mpsc::UnboundedReceiver<quinn::Connection>,
}

fn cert() -> (CertificateDer<'static>, PrivateKeyDer<'static>) {
    let c = rcgen::generate_simple_self_signed(vec![RELAY_SERVER_NAME.to_owned()]).unwrap();
    (
        c.cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(c.signing_key.serialize_der())),
    )
}

fn tls_server(
    cert: &CertificateDer<'static>,
    key: &PrivateKeyDer<'static>,
    alpn: &[u8],
) -> rustls::ServerConfig {
    let mut tls = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.clone()], key.clone_key())
        .unwrap();
    tls.alpn_protocols = vec![alpn.to_vec()];
    tls
}

/// A tunnel listener with a quinn server that echoes every bidirectional stream.
async fn echo_server() -> Server {
    echo_server_with(config::ListenerLimits::default()).await
}

/// [`echo_server`] with other listener limits.
async fn echo_server_with(limits: config::ListenerLimits) -> Server {
    let (cert, key) = cert();
    let pin = pin_of_certificate(&cert).unwrap();
    let outer = Arc::new(tls_server(&cert, &key, TUNNEL_ALPN));
    let (socket, addr) = bind_tunnel_listener("127.0.0.1:0".parse().unwrap(), outer, limits)
        .await
        .unwrap();
    let mut inner = tls_server(&cert, &key, proto::ALPN);
    inner.max_early_data_size = 0;
    let mut server =
        quinn::ServerConfig::with_crypto(Arc::new(QuicServerConfig::try_from(inner).unwrap()));
    server.transport_config(Arc::new(config::transport_config(Duration::from_secs(30))));
    let endpoint = quinn::Endpoint::new_with_abstract_socket(
        config::endpoint_config(),
        Some(server),
        socket,
        Arc::new(quinn::TokioRuntime),
    )
    .unwrap();
    let e = endpoint.clone();
    let (tx, accepted) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(incoming) = e.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let Ok(conn) = incoming.await else { return };
                let _ = tx.send(conn.clone());
                while let Ok((mut send, mut recv)) = conn.accept_bi().await {
                    tokio::spawn(async move {
                        let _ = tokio::io::copy(&mut recv, &mut send).await;
                        let _ = send.finish();
                    });
                }
            });
        }
    });
    Server {
        _endpoint: endpoint,
        addr,
        pin,
        accepted,
    }
}

fn opts() -> DialOptions {
    DialOptions {
        idle_timeout: Duration::from_secs(30),
        ..DialOptions::default()
    }
}

async fn echo(conn: &quinn::Connection, data: &[u8]) -> Vec<u8> {
    let (mut send, mut recv) = conn.open_bi().await.unwrap();
    let data = data.to_vec();
    let writer = tokio::spawn(async move {
        send.write_all(&data).await.unwrap();
        send.finish().unwrap();
    });
    let back = recv.read_to_end(64 << 20).await.unwrap();
    writer.await.unwrap();
    back
}

#[tokio::test]
async fn quic_runs_through_the_tunnel_with_the_same_tls_exporter_on_both_ends() {
    let mut server = echo_server().await;
    let (_endpoint, conn) = dial_tcp_direct(server.addr, &server.pin, &opts())
        .await
        .unwrap();
    // 4 MiB: many full-size tunnel packets and the send queue's backpressure, byte-exact.
    let data: Vec<u8> = (0..4 << 20).map(|i: u32| (i % 251) as u8).collect();
    assert_eq!(echo(&conn, &data).await, data);
    let on_server = server.accepted.recv().await.unwrap();
    let (mut ours, mut theirs) = ([0u8; 32], [0u8; 32]);
    conn.export_keying_material(&mut ours, b"test", b"")
        .unwrap();
    on_server
        .export_keying_material(&mut theirs, b"test", b"")
        .unwrap();
    assert_eq!(ours, theirs);
    // Each end sees the other under its TCP address.
    assert_eq!(conn.remote_address(), server.addr);
    assert!(on_server.remote_address().ip().is_loopback());
    assert_ne!(on_server.remote_address(), server.addr);
}

#[tokio::test]
async fn a_wrong_pin_on_the_outer_tls_is_a_pin_mismatch() {
    let server = echo_server().await;
    let wrong = "blake3:0000000000000000000000000000000000000000000000000000000000000000";
    let err = dial_tcp_direct(server.addr, wrong, &opts())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, LinkError::PinMismatch { expected, presented } if expected == wrong && *presented == server.pin),
        "{err}"
    );
    check_tcp_listener(server.addr, &server.pin, Duration::from_secs(10))
        .await
        .unwrap();
    assert!(matches!(
        check_tcp_listener(server.addr, wrong, Duration::from_secs(10)).await,
        Err(LinkError::PinMismatch { .. })
    ));
}

#[tokio::test]
async fn garbage_and_a_wrong_alpn_are_dropped_without_disturbing_a_live_connection() {
    let server = echo_server().await;
    let (_endpoint, conn) = dial_tcp_direct(server.addr, &server.pin, &opts())
        .await
        .unwrap();
    assert_eq!(echo(&conn, b"before").await, b"before");

    // Plain text instead of TLS: the relay closes the connection.
    let mut plain = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    plain
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut sink = Vec::new();
    let _ = plain.read_to_end(&mut sink).await;

    // TLS with the right key but another ALPN: refused in the handshake.
    let (mut cfg, _) = outer_tls::client_config(&server.pin).unwrap();
    Arc::get_mut(&mut cfg).unwrap().alpn_protocols = vec![b"h2".to_vec()];
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(RELAY_SERVER_NAME).unwrap();
    assert!(
        tokio_rustls::TlsConnector::from(cfg)
            .connect(name, tcp)
            .await
            .is_err()
    );

    // TLS with the tunnel's ALPN, then something else than records: closed.
    let (cfg, _) = outer_tls::client_config(&server.pin).unwrap();
    let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from(RELAY_SERVER_NAME).unwrap();
    let mut tls = tokio_rustls::TlsConnector::from(cfg)
        .connect(name, tcp)
        .await
        .unwrap();
    tls.write_all(b"\0\0not records").await.unwrap();
    tls.flush().await.unwrap();
    let mut sink = Vec::new();
    let _ = tls.read_to_end(&mut sink).await;

    assert_eq!(echo(&conn, b"after").await, b"after");
    assert!(conn.close_reason().is_none());
}

/// Copies between `a` and `b` until aborted: a TCP path the test can cut.
fn relay_bytes(a: tokio::net::TcpStream, b: tokio::net::TcpStream) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let (mut a, mut b) = (a, b);
        let _ = tokio::io::copy_bidirectional(&mut a, &mut b).await;
    })
}

async fn cuttable_path(to: SocketAddr) -> (tokio::net::TcpStream, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (inner, _) = listener.accept().await.unwrap();
    let outer = tokio::net::TcpStream::connect(to).await.unwrap();
    (client, relay_bytes(inner, outer))
}

#[tokio::test]
async fn a_cut_tcp_stream_closes_the_quic_connection_at_once_with_the_tunnel_reason() {
    let server = echo_server().await;
    let (tcp, path) = cuttable_path(server.addr).await;
    let (_endpoint, conn) = dial_tunnel_over(tcp, server.addr, &server.pin, &opts())
        .await
        .unwrap();
    assert_eq!(echo(&conn, b"alive").await, b"alive");
    path.abort();
    // Closed locally by the tunnel (with a 30 s idle timeout, waiting for it would read as
    // TimedOut instead).
    let reason = conn.closed().await;
    assert_eq!(reason, quinn::ConnectionError::LocallyClosed, "{reason}");

    // A new TCP connection to the same listener works at once.
    let (_endpoint, conn) = dial_tcp_direct(server.addr, &server.pin, &opts())
        .await
        .unwrap();
    assert_eq!(echo(&conn, b"again").await, b"again");
}

fn transmit(to: SocketAddr, contents: &[u8]) -> quinn::udp::Transmit<'_> {
    quinn::udp::Transmit {
        destination: to,
        ecn: None,
        contents,
        segment_size: None,
        src_ip: None,
    }
}

#[tokio::test]
async fn a_full_send_queue_says_would_block_and_the_poller_wakes_when_the_writer_drains() {
    use quinn::AsyncUdpSocket;
    let (ours, mut theirs) = tokio::io::duplex(64);
    let remote: SocketAddr = "192.0.2.7:443".parse().unwrap();
    let (socket, _ended) = client_socket::ClientSocket::start(ours, remote);
    let datagram = [7u8; 100];
    let mut sent = 0;
    let blocked = loop {
        match socket.try_send(&transmit(remote, &datagram)) {
            Ok(()) => sent += 1,
            Err(e) => break e,
        }
        assert!(sent <= 10 * client_socket::SEND_QUEUE, "never blocked");
    };
    assert_eq!(blocked.kind(), std::io::ErrorKind::WouldBlock);
    let mut poller = Arc::clone(&socket).create_io_poller();
    assert!(
        std::future::poll_fn(|cx| std::task::Poll::Ready(poller.as_mut().poll_writable(cx)))
            .await
            .is_pending()
    );
    // The peer reads: the writer drains the queue and the poller becomes ready.
    let reader = tokio::spawn(async move {
        let mut sink = vec![0u8; 4096];
        while theirs.read(&mut sink).await.is_ok_and(|n| n > 0) {}
    });
    std::future::poll_fn(|cx| poller.as_mut().poll_writable(cx))
        .await
        .unwrap();
    socket.try_send(&transmit(remote, &datagram)).unwrap();
    reader.abort();
}

#[tokio::test]
async fn a_send_to_an_address_without_a_connection_is_dropped_like_udp() {
    let server = echo_server().await;
    let (cert, key) = cert();
    let (socket, _) = bind_tunnel_listener(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(tls_server(&cert, &key, TUNNEL_ALPN)),
        config::ListenerLimits::default(),
    )
    .await
    .unwrap();
    socket
        .try_send(&transmit(server.addr, b"to nobody"))
        .unwrap();
}

#[tokio::test]
async fn a_handshake_flood_from_one_address_does_not_lock_out_other_addresses() {
    let server = echo_server().await;
    // Silent TCP connections from 127.0.0.2, as many as the listener's global handshake cap.
    let mut flood = Vec::new();
    for _ in 0..accept::MAX_PENDING_HANDSHAKES {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.2:0".parse().unwrap()).unwrap();
        flood.push(socket.connect(server.addr).await.unwrap());
    }
    // A client from another address still gets through (its own handshake budget).
    let (_endpoint, conn) = dial_tcp_direct(server.addr, &server.pin, &opts())
        .await
        .unwrap();
    assert_eq!(echo(&conn, b"through").await, b"through");
    drop(flood);
}

/// A TCP connection to `to` from the loopback address `from` (any 127.x is ours).
async fn tcp_from(from: &str, to: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test]
async fn one_address_holds_at_most_its_open_connections_others_still_get_in() {
    let server = echo_server_with(config::ListenerLimits {
        open_per_address: 2,
    })
    .await;
    let (tcp, first_path) = cuttable_path(server.addr).await;
    let (_e1, first) = dial_tunnel_over(tcp, server.addr, &server.pin, &opts())
        .await
        .unwrap();
    let (_e2, second) = dial_tcp_direct(server.addr, &server.pin, &opts())
        .await
        .unwrap();
    assert_eq!(echo(&first, b"one").await, b"one");
    assert_eq!(echo(&second, b"two").await, b"two");

    // A third one from 127.0.0.1 is closed at once (its TLS handshake never completes).
    let third = dial_tcp_direct(server.addr, &server.pin, &opts()).await;
    assert!(third.is_err(), "a third connection from one address got in");

    // Another address has its own allowance.
    let tcp = tcp_from("127.0.0.2", server.addr).await;
    let (_e3, other) = dial_tunnel_over(tcp, server.addr, &server.pin, &opts())
        .await
        .unwrap();
    assert_eq!(echo(&other, b"other").await, b"other");

    // A closed connection frees its slot (once the listener has seen its TCP end).
    first_path.abort();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let again = loop {
        match dial_tcp_direct(server.addr, &server.pin, &opts()).await {
            Ok((_endpoint, conn)) => break conn,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "the freed slot was never given again: {e}"
            ),
        }
        // Polling the listener's bookkeeping, bounded by the deadline.
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(echo(&again, b"again").await, b"again");
    assert_eq!(echo(&second, b"still").await, b"still");
}
