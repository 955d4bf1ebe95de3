//! The lab's network does what the other tests take for granted, checked with plain sockets
//! (no relay, no OpenCode): each rule drops exactly what it says, lifting it restores the
//! path, the proxy tunnels (with credentials only) when direct traffic is dropped, and after
//! the laptop moves, its packets come from the new address.

use crate::enter::{block_in, spawn_in};
use crate::harness::WAIT;
use crate::proxy::ConnectProxy;
use crate::topology::{LAPTOP_GATEWAY, LAPTOP_IP, LAPTOP_NEW_IP, Net, RELAY_IP, RELAY_PORT};
use anyhow::{Context, Result};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

/// How long a probe waits for an answer before calling the path dropped.
const PROBE: Duration = Duration::from_millis(500);

fn relay() -> SocketAddr {
    SocketAddr::from(([10, 77, 0, 1], RELAY_PORT))
}

/// In the relay namespace, on the relay's address: a UDP and a TCP service that answer with
/// the address the request came from.
fn start_echoes(net: &Net) -> Result<crate::enter::InNamespace> {
    let ((), task) = spawn_in(&net.relay.handle_path(), move || {
        let udp = std::net::UdpSocket::bind(relay())?;
        udp.set_nonblocking(true)?;
        let udp = UdpSocket::from_std(udp)?;
        let tcp = std::net::TcpListener::bind(relay())?;
        tcp.set_nonblocking(true)?;
        let tcp = TcpListener::from_std(tcp)?;
        let serve = async move {
            let udp_loop = async {
                let mut buf = [0u8; 64];
                while let Ok((_, from)) = udp.recv_from(&mut buf).await {
                    let _ = udp.send_to(from.ip().to_string().as_bytes(), from).await;
                }
            };
            let tcp_loop = async {
                while let Ok((mut s, from)) = tcp.accept().await {
                    tokio::spawn(async move {
                        let _ = s.write_all(from.ip().to_string().as_bytes()).await;
                    });
                }
            };
            tokio::join!(udp_loop, tcp_loop);
        };
        Ok(((), serve))
    })?;
    Ok(task)
}

/// From inside `ns`: the source address the relay's UDP service saw, or `None` when no answer
/// came within `wait` (the datagram is resent every 100 ms meanwhile).
fn udp_probe_for(ns: &crate::netns::Netns, wait: Duration) -> Result<Option<String>> {
    block_in(&ns.handle_path(), move || async move {
        let s = UdpSocket::bind("0.0.0.0:0").await?;
        let mut buf = [0u8; 64];
        let ask = async {
            loop {
                s.send_to(b"?", relay()).await?;
                if let Ok(n) =
                    tokio::time::timeout(Duration::from_millis(100), s.recv(&mut buf)).await
                {
                    return Ok::<_, anyhow::Error>(
                        String::from_utf8_lossy(&buf[..n?]).into_owned(),
                    );
                }
            }
        };
        tokio::time::timeout(wait, ask).await.ok().transpose()
    })
}

/// The source address the relay's UDP service saw from `ns` (bounded by the hang guard).
fn udp_answer(ns: &crate::netns::Netns) -> Result<String> {
    udp_probe_for(ns, WAIT)?.context("no UDP answer")
}

/// Whether no UDP answer comes from `ns` within [`PROBE`].
fn udp_dropped(ns: &crate::netns::Netns) -> Result<bool> {
    Ok(udp_probe_for(ns, PROBE)?.is_none())
}

/// Reads a TCP answer to its end.
async fn read_all(mut s: TcpStream) -> Result<String> {
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    Ok(out)
}

/// From inside `ns`: the source address the relay's TCP service saw, or `None` when the
/// connection did not open within `wait`.
fn tcp_probe_for(ns: &crate::netns::Netns, wait: Duration) -> Result<Option<String>> {
    block_in(&ns.handle_path(), move || async move {
        match tokio::time::timeout(wait, TcpStream::connect(relay())).await {
            Ok(s) => Ok(Some(read_all(s?).await?)),
            Err(_) => Ok(None),
        }
    })
}

/// The source address the relay's TCP service saw from `ns` (bounded by the hang guard).
fn tcp_answer(ns: &crate::netns::Netns) -> Result<String> {
    tcp_probe_for(ns, WAIT)?.context("no TCP connection")
}

/// Whether a TCP connection from `ns` does not open within [`PROBE`].
fn tcp_dropped(ns: &crate::netns::Netns) -> Result<bool> {
    Ok(tcp_probe_for(ns, PROBE)?.is_none())
}

/// From inside `ns`, through the proxy at `proxy` with `auth` (`user:pass`): the proxy's
/// status line, and the relay's TCP answer when the tunnel opened.
fn via_proxy(
    ns: &crate::netns::Netns,
    proxy: SocketAddr,
    auth: Option<&str>,
) -> Result<(String, Option<String>)> {
    use base64::Engine as _;
    let header = auth
        .map(|a| {
            format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(a)
            )
        })
        .unwrap_or_default();
    block_in(&ns.handle_path(), move || async move {
        let mut s = TcpStream::connect(proxy).await?;
        let target = format!("{RELAY_IP}:{RELAY_PORT}");
        s.write_all(
            format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n{header}\r\n").as_bytes(),
        )
        .await?;
        let mut head = Vec::new();
        let mut b = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            anyhow::ensure!(s.read(&mut b).await? == 1, "the proxy closed");
            head.push(b[0]);
        }
        let head = String::from_utf8_lossy(&head).into_owned();
        let status = head.lines().next().context("status line")?.to_owned();
        let body = if status.contains(" 200 ") {
            Some(read_all(s).await?)
        } else {
            None
        };
        Ok((status, body))
    })
}

#[test]
fn the_lab_network_drops_exactly_what_each_rule_says_and_the_proxy_and_the_moved_laptop_get_through()
-> Result<()> {
    let Some(net) = Net::build()? else {
        return Ok(());
    };
    let _echoes = start_echoes(&net)?;
    // Open network: both protocols from both sides, from their own addresses.
    assert_eq!(udp_answer(&net.laptop)?, LAPTOP_IP);
    assert_eq!(tcp_answer(&net.laptop)?, LAPTOP_IP);
    assert_eq!(udp_answer(&net.host)?, "10.77.2.2");

    // UDP to the relay dropped: nobody's UDP arrives, TCP does; lifted, UDP is back.
    let no_udp = net.drop_udp_to_relay()?;
    assert!(udp_dropped(&net.laptop)?);
    assert!(udp_dropped(&net.host)?);
    assert_eq!(tcp_answer(&net.laptop)?, LAPTOP_IP);
    no_udp.remove()?;
    assert_eq!(udp_answer(&net.laptop)?, LAPTOP_IP);

    // The laptop's UDP only.
    let (a, b) = net.drop_laptop_udp()?;
    assert!(udp_dropped(&net.laptop)?);
    assert_eq!(udp_answer(&net.host)?, "10.77.2.2");
    drop((a, b));
    assert_eq!(udp_answer(&net.laptop)?, LAPTOP_IP);

    // Direct traffic from the laptop dropped: only the proxy (with credentials) gets through.
    let proxy = ConnectProxy::start(
        &net.relay.handle_path(),
        format!("{LAPTOP_GATEWAY}:3128").parse()?,
        Some("cm:s3cret"),
    )?;
    let direct = net.drop_laptop_direct()?;
    assert!(tcp_dropped(&net.laptop)?);
    assert!(udp_dropped(&net.laptop)?);
    let (status, _) = via_proxy(&net.laptop, proxy.addr, None)?;
    assert!(status.contains(" 407 "), "{status}");
    let (status, _) = via_proxy(&net.laptop, proxy.addr, Some("cm:wrong"))?;
    assert!(status.contains(" 407 "), "{status}");
    let (status, body) = via_proxy(&net.laptop, proxy.addr, Some("cm:s3cret"))?;
    assert!(status.contains(" 200 "), "{status}");
    // The relay saw the proxy's own connection (from its namespace), not the laptop.
    assert_eq!(body.as_deref(), Some(RELAY_IP));
    assert_eq!(proxy.tunnels(), vec![format!("{RELAY_IP}:{RELAY_PORT}")]);
    assert_eq!(proxy.log.lock().unwrap().refused_auth, 2);
    direct.remove()?;

    // The laptop moves: its traffic now comes from the new address.
    net.move_laptop_address()?;
    assert_eq!(udp_answer(&net.laptop)?, LAPTOP_NEW_IP);
    assert_eq!(tcp_answer(&net.laptop)?, LAPTOP_NEW_IP);
    Ok(())
}
