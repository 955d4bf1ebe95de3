//! A minimal HTTP/1.1 POST for notifications (ntfy, webhooks): one request per connection,
//! `Connection: close`, the status line read back, redirects never followed. Plain TCP for
//! `http://`, TLS (rustls on ring, the system's root certificates, one client configuration
//! for the process) for `https://`. The host is resolved here, every address is checked
//! against the [`TargetPolicy`], and the connection goes to an address that passed (no
//! second lookup a rebinding DNS server could answer differently). No HTTP client crate: the
//! relay needs exactly this, and the ones in reach pull a second crypto provider or a large
//! tree.

use super::targets::{Refused, TargetPolicy};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest response head read.
const MAX_HEAD: usize = 16 * 1024;
/// Where the system's root certificates are looked for (`SSL_CERT_FILE` first).
const ROOT_FILES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// Why a POST failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Not an http(s) URL this client can use.
    #[error("bad URL {0:?}: give http://host[:port]/path or https://…")]
    Url(String),
    /// Connecting, TLS, writing or reading failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// No answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The answer is not HTTP.
    #[error("the answer is not HTTP/1.x")]
    NotHttp,
    /// No root certificates for https.
    #[error("no root certificates found for https (set SSL_CERT_FILE)")]
    NoRoots,
    /// The target's address is not one the relay may reach.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// The host name has no address.
    #[error("{0} has no address")]
    NoAddress(String),
}

/// A parsed `http(s)://host[:port]/path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `https`.
    pub tls: bool,
    /// The host name or address (without brackets).
    pub host: String,
    /// The port.
    pub port: u16,
    /// Path and query, at least `/`.
    pub path: String,
}

impl Url {
    /// Parses `url`.
    ///
    /// # Errors
    /// [`HttpError::Url`].
    pub fn parse(url: &str) -> Result<Self, HttpError> {
        let bad = || HttpError::Url(url.to_owned());
        let (tls, rest) = if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = rest.find('/').map_or((rest, "/"), |i| rest.split_at(i));
        if authority.is_empty() || authority.contains('@') || path.contains(['\r', '\n', ' ']) {
            return Err(bad());
        }
        let default = if tls { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or_else(bad)?;
            let port = match after.strip_prefix(':') {
                Some(p) => p.parse().map_err(|_| bad())?,
                None if after.is_empty() => default,
                None => return Err(bad()),
            };
            (h.to_owned(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h.to_owned(), p.parse().map_err(|_| bad())?),
                None => (authority.to_owned(), default),
            }
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(Self {
            tls,
            host,
            port,
            path: path.to_owned(),
        })
    }

    fn host_header(&self) -> String {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        if self.port == if self.tls { 443 } else { 80 } {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// The request bytes of a POST of `body` to `url` with `headers`.
pub fn request_bytes(url: &Url, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: cm-relay/{}\r\nContent-Length: {}\r\nConnection: close\r\n",
        url.path,
        url.host_header(),
        env!("CARGO_PKG_VERSION"),
        body.len()
    );
    for (name, value) in headers {
        // Values are the relay's own (no CR/LF reach here), but never let one split a header.
        let value: String = value.chars().filter(|c| !c.is_control()).collect();
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The status code of a response head.
pub fn parse_status(head: &[u8]) -> Option<u16> {
    let line = head.split(|b| *b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    if !parts.next()?.starts_with("HTTP/1.") {
        return None;
    }
    parts.next()?.parse().ok()
}

fn roots() -> Option<rustls::RootCertStore> {
    let env = std::env::var("SSL_CERT_FILE").ok();
    let mut store = rustls::RootCertStore::empty();
    for path in env.iter().map(String::as_str).chain(ROOT_FILES) {
        if let Ok(iter) = CertificateDer::pem_file_iter(path) {
            for cert in iter.flatten() {
                let _ = store.add(cert);
            }
        }
        if !store.is_empty() {
            break;
        }
    }
    (!store.is_empty()).then_some(store)
}

/// The TLS client configuration of every https POST, built once (root certificates read
/// once); `None` without root certificates.
fn tls_config() -> Option<Arc<rustls::ClientConfig>> {
    static CONFIG: OnceLock<Option<Arc<rustls::ClientConfig>>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .ok()?
            .with_root_certificates(roots()?)
            .with_no_client_auth();
            Some(Arc::new(config))
        })
        .clone()
}

/// The addresses the relay may connect to for `url` under `policy`: a literal address as
/// is, a name resolved now; each one checked.
///
/// # Errors
/// [`HttpError::Refused`] when no address may be reached; lookup failures.
pub async fn resolve(url: &Url, policy: &TargetPolicy) -> Result<Vec<SocketAddr>, HttpError> {
    if let Ok(ip) = url.host.parse::<IpAddr>() {
        policy.check(&url.host, ip)?;
        return Ok(vec![SocketAddr::new(ip, url.port)]);
    }
    let resolved: Vec<SocketAddr> = tokio::net::lookup_host((url.host.as_str(), url.port))
        .await?
        .collect();
    let allowed = policy.allowed_addrs(&url.host, resolved)?;
    if allowed.is_empty() {
        return Err(HttpError::NoAddress(url.host.clone()));
    }
    Ok(allowed)
}

/// A TCP connection to the first of `addrs` that answers.
async fn connect(addrs: &[SocketAddr]) -> Result<TcpStream, HttpError> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(last.map_or_else(|| HttpError::NoAddress(String::new()), HttpError::Io))
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    request: &[u8],
) -> Result<u16, HttpError> {
    stream.write_all(request).await?;
    stream.flush().await?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    while !head.windows(2).any(|w| w == b"\r\n") && head.len() < MAX_HEAD {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status(&head).ok_or(HttpError::NotHttp)
}

/// POSTs `body` to `url` with `headers`, at an address `policy` allows; the answer's status
/// code.
///
/// # Errors
/// A bad URL, a refused target, connection or TLS failures, no HTTP answer within `timeout`.
pub async fn post(
    url: &str,
    headers: &[(&str, String)],
    body: &[u8],
    timeout: Duration,
    policy: &TargetPolicy,
) -> Result<u16, HttpError> {
    let url = Url::parse(url)?;
    let request = request_bytes(&url, headers, body);
    let work = async {
        let addrs = resolve(&url, policy).await?;
        let tcp = connect(&addrs).await?;
        if !url.tls {
            return exchange(tcp, &request).await;
        }
        let config = tls_config().ok_or(HttpError::NoRoots)?;
        let name =
            ServerName::try_from(url.host.clone()).map_err(|_| HttpError::Url(url.host.clone()))?;
        let tls = tokio_rustls::TlsConnector::from(config)
            .connect(name, tcp)
            .await?;
        exchange(tls, &request).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| HttpError::Timeout(timeout))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_parse_with_default_ports_and_ipv6() {
        let u = Url::parse("https://ntfy.sh").unwrap();
        assert_eq!(
            (u.tls, u.host.as_str(), u.port, u.path.as_str()),
            (true, "ntfy.sh", 443, "/")
        );
        let u = Url::parse("http://127.0.0.1:8080/hook?x=1").unwrap();
        assert_eq!((u.port, u.path.as_str()), (8080, "/hook?x=1"));
        let u = Url::parse("http://[::1]:9/a").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 9));
        assert_eq!(u.host_header(), "[::1]:9");
        for bad in [
            "ftp://x",
            "http://",
            "http://u:p@host/",
            "http://h:x/",
            "http://h/a b",
        ] {
            assert!(Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_request_has_its_length_and_no_header_can_be_split() {
        let u = Url::parse("http://h:81/p").unwrap();
        let req = request_bytes(&u, &[("X-A", "1\r\nEvil: yes".into())], b"{}");
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("POST /p HTTP/1.1\r\nHost: h:81\r\n"));
        assert!(text.contains("Content-Length: 2\r\n"));
        assert!(text.contains("X-A: 1Evil: yes\r\n"));
        assert!(text.ends_with("\r\n\r\n{}"));
        assert_eq!(parse_status(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status(b"SSH-2.0\r\n"), None);
    }

    #[test]
    fn the_tls_client_configuration_is_built_once() {
        let (a, b) = (tls_config(), tls_config());
        match (a, b) {
            (Some(a), Some(b)) => assert!(Arc::ptr_eq(&a, &b)),
            (None, None) => {} // No root certificates on this machine: nothing to share.
            _ => panic!("one call had a configuration, the other none"),
        }
    }

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_before_connecting() {
        let url = Url::parse("http://localhost:9/").unwrap();
        let err = resolve(&url, &TargetPolicy::default()).await.unwrap_err();
        let HttpError::Refused(refused) = &err else {
            panic!("{err}");
        };
        assert!(refused.addr.is_loopback(), "{err}");
        assert!(err.to_string().contains("allow_hosts"), "{err}");
        let err = post(
            "http://localhost:9/",
            &[],
            b"{}",
            Duration::from_secs(5),
            &TargetPolicy::default(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, HttpError::Refused(_)), "{err}");
    }

    #[tokio::test]
    async fn an_allowed_name_is_posted_to_at_the_address_that_was_checked() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut conn, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).await.unwrap();
            conn.write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
                .await
                .unwrap();
            String::from_utf8_lossy(&buf[..n]).into_owned()
        });
        let policy = TargetPolicy {
            allow_private: false,
            allow_hosts: vec![super::super::targets::AllowEntry::Addr(
                "127.0.0.1".parse().unwrap(),
            )],
        };
        let url = Url::parse(&format!("http://localhost:{port}/x")).unwrap();
        // Only the allowed address is kept (not ::1, which localhost may resolve to too).
        let addrs = resolve(&url, &policy).await.unwrap();
        assert!(
            addrs.iter().all(|a| a.ip() == IpAddr::from([127, 0, 0, 1])),
            "{addrs:?}"
        );
        let status = post(
            &url_text(&url),
            &[],
            b"{}",
            Duration::from_secs(30),
            &policy,
        )
        .await
        .unwrap();
        assert_eq!(status, 204);
        let head = server.await.unwrap();
        assert!(head.contains(&format!("Host: localhost:{port}")), "{head}");
    }

    fn url_text(url: &Url) -> String {
        format!("http://{}:{}{}", url.host, url.port, url.path)
    }
}
