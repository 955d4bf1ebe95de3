use super::*;
use std::collections::HashMap;
use tokio::net::TcpListener;

/// What the in-test proxy does with a CONNECT.
#[derive(Clone)]
pub(crate) enum Behaviour {
    /// Tunnels to the target when the `Proxy-Authorization` header equals this (or none needed).
    Tunnel { wants_auth: Option<String> },
    /// Answers this status line.
    Refuse(&'static str),
    /// Answers a header that never ends.
    Endless,
    /// Tells the CONNECT target, then refuses with 502.
    Record(tokio::sync::mpsc::UnboundedSender<String>),
}

/// A tiny HTTP CONNECT proxy on loopback: serves one connection per accept, forever.
pub(crate) async fn test_proxy(behaviour: Behaviour) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let behaviour = behaviour.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut b).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head).into_owned();
                let target = head
                    .lines()
                    .next()
                    .and_then(|l| l.strip_prefix("CONNECT "))
                    .and_then(|l| l.split_whitespace().next())
                    .unwrap_or_default()
                    .to_owned();
                let auth = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Proxy-Authorization: "))
                    .map(str::to_owned);
                match behaviour {
                    Behaviour::Record(seen) => {
                        let _ = seen.send(target);
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                    }
                    Behaviour::Refuse(status) => {
                        let _ = client
                            .write_all(format!("{status}\r\n\r\n").as_bytes())
                            .await;
                    }
                    Behaviour::Endless => {
                        let _ = client.write_all(b"HTTP/1.1 200 OK\r\n").await;
                        let filler = vec![b'x'; 1024];
                        while client.write_all(&filler).await.is_ok() {}
                    }
                    Behaviour::Tunnel { wants_auth } => {
                        if wants_auth.is_some() && auth != wants_auth {
                            let _ = client
                                .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n")
                                .await;
                            return;
                        }
                        let Ok(mut upstream) = TcpStream::connect(target).await else {
                            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
                            return;
                        };
                        let _ = client
                            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                            .await;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                }
            });
        }
    });
    port
}

/// An echo server standing in for the relay's TCP listener.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = s.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    addr
}

fn proxy(url: &str) -> Proxy {
    parse_proxy_url(url).unwrap()
}

async fn ping(stream: &mut TcpStream) {
    stream.write_all(b"ping").await.unwrap();
    let mut back = [0u8; 4];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
}

#[tokio::test]
async fn connect_through_the_proxy_carries_bytes_both_ways() {
    let target = echo_server().await;
    let port = test_proxy(Behaviour::Tunnel { wants_auth: None }).await;
    let mut stream = connect_via(&proxy(&format!("http://127.0.0.1:{port}")), &target)
        .await
        .unwrap();
    ping(&mut stream).await;
}

#[tokio::test]
async fn credentials_from_the_url_are_sent_as_basic_auth() {
    let target = echo_server().await;
    let wants = format!("Basic {}", base64(b"ann:p@ss"));
    let port = test_proxy(Behaviour::Tunnel {
        wants_auth: Some(wants),
    })
    .await;
    let mut stream = connect_via(
        &proxy(&format!("http://ann:p%40ss@127.0.0.1:{port}")),
        &target,
    )
    .await
    .unwrap();
    ping(&mut stream).await;
}

#[tokio::test]
async fn a_proxy_wanting_credentials_says_to_put_them_in_the_url() {
    let target = echo_server().await;
    let port = test_proxy(Behaviour::Tunnel {
        wants_auth: Some("Basic nope".into()),
    })
    .await;
    let err = connect_via(&proxy(&format!("http://127.0.0.1:{port}")), &target)
        .await
        .unwrap_err();
    assert!(matches!(err, ProxyError::NeedsCredentials { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("wants credentials: put them in the proxy URL"),
        "{err}"
    );
    let err = connect_via(
        &proxy(&format!("http://ann:wrong@127.0.0.1:{port}")),
        &target,
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProxyError::BadCredentials { .. }), "{err}");
    assert!(
        !err.to_string().contains("wrong"),
        "the password leaked: {err}"
    );
}

#[tokio::test]
async fn a_refusal_shows_the_proxys_status_line() {
    let port = test_proxy(Behaviour::Refuse("HTTP/1.1 403 Forbidden by policy")).await;
    let err = connect_via(&proxy(&format!("127.0.0.1:{port}")), "relay.example:443")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("403 Forbidden by policy")
            && err.to_string().contains("relay.example:443"),
        "{err}"
    );
}

#[tokio::test]
async fn an_endless_proxy_answer_is_cut_at_the_header_bound() {
    let port = test_proxy(Behaviour::Endless).await;
    let err = connect_via(&proxy(&format!("127.0.0.1:{port}")), "relay.example:443")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProxyError::BadAnswer { reason, .. } if reason.contains("longer than")),
        "{err}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_silent_proxy_times_out() {
    // Accepts but never answers.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let err = connect_via_within(
        &proxy(&format!("127.0.0.1:{port}")),
        "relay.example:443",
        Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, ProxyError::Timeout { .. }), "{err}");
    drop(listener);
}

#[test]
fn proxy_urls_parse_or_say_how_to_write_them() {
    let p = proxy("http://user:pw@proxy.corp:3128/");
    assert_eq!((p.host.as_str(), p.port), ("proxy.corp", 3128));
    assert_eq!(p.to_string(), "http://proxy.corp:3128");
    assert!(!format!("{p:?}").contains("pw"));
    let p = proxy("[::1]:8080");
    assert_eq!((p.host.as_str(), p.port), ("::1", 8080));
    for (bad, says) in [
        ("proxy.corp", "no port"),
        ("https://proxy.corp:443", "only HTTP CONNECT"),
        ("socks5://proxy.corp:1080", "only HTTP CONNECT"),
        ("http://proxy.corp:0", "not a number"),
        ("http://proxy.corp:3128/path", "no path"),
        ("http://:3128", "no host"),
    ] {
        let err = parse_proxy_url(bad).unwrap_err().to_string();
        assert!(
            err.contains(says) && err.contains("http://"),
            "{bad}: {err}"
        );
    }
    let err = parse_proxy_url("http://ann:secret@proxy.corp")
        .unwrap_err()
        .to_string();
    assert!(!err.contains("secret"), "{err}");
}

#[test]
fn no_proxy_matches_hosts_domains_ips_ports_and_star() {
    let list = "localhost, .internal.corp,example.org, 10.1.2.3,relay.example:8443,[::1]";
    for (host, port) in [
        ("localhost", 443),
        ("a.internal.corp", 443),
        ("internal.corp", 443),
        ("example.org", 1),
        ("www.example.org", 1),
        ("10.1.2.3", 7443),
        ("relay.example", 8443),
        ("::1", 7443),
        ("EXAMPLE.ORG.", 1),
    ] {
        assert!(no_proxy_matches(list, host, port), "{host}:{port}");
    }
    for (host, port) in [
        ("notexample.org", 1),
        ("10.1.2.4", 7443),
        ("relay.example", 443),
        ("corp", 443),
    ] {
        assert!(!no_proxy_matches(list, host, port), "{host}:{port}");
    }
    assert!(no_proxy_matches("*", "anything", 1));
    assert!(no_proxy_matches("*.corp", "relay.corp", 1));
}

#[test]
fn the_explicit_setting_beats_the_environment_and_no_proxy_skips_it() {
    let env: HashMap<&str, &str> = [
        ("HTTPS_PROXY", "http://env.proxy:3128"),
        ("NO_PROXY", "relay.internal"),
    ]
    .into();
    let get = |k: &str| env.get(k).map(|v| (*v).to_owned());
    let p = proxy_for(None, get, "relay.example", 443).unwrap().unwrap();
    assert_eq!(p.host, "env.proxy");
    assert_eq!(proxy_for(None, get, "relay.internal", 443).unwrap(), None);
    let p = proxy_for(Some("http://mine:1"), get, "relay.internal", 443)
        .unwrap()
        .unwrap();
    assert_eq!(p.host, "mine");
    assert_eq!(
        proxy_for(Some("none"), get, "relay.example", 443).unwrap(),
        None
    );
    let lower: HashMap<&str, &str> = [
        ("https_proxy", "http://lower:1"),
        ("HTTPS_PROXY", "http://upper:1"),
    ]
    .into();
    let get = |k: &str| lower.get(k).map(|v| (*v).to_owned());
    assert_eq!(proxy_for(None, get, "r", 1).unwrap().unwrap().host, "lower");
    assert_eq!(proxy_for(None, |_| None, "r", 1).unwrap(), None);
}

#[test]
fn base64_matches_the_rfc_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded);
    }
}
