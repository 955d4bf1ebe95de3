//! HTTP CONNECT proxies for the TCP path (issue #21): which proxy to use for a relay (an
//! explicit `proxy = "http://[user:pass@]host:port"`, else `https_proxy`/`HTTPS_PROXY` unless
//! `no_proxy`/`NO_PROXY` matches the relay), and the CONNECT handshake itself, with basic
//! authentication from the URL's user info. The proxy only relays bytes: the relay's pinned key
//! still protects the connection against it.

use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest proxy response header read (a proxy sending more is refused).
pub const MAX_RESPONSE_HEADER: usize = 8 * 1024;

/// How long connecting to the proxy and its CONNECT answer may take together.
pub const PROXY_TIMEOUT: Duration = Duration::from_secs(10);

/// Written as the proxy setting to use no proxy even when `HTTPS_PROXY` is set.
pub const NO_PROXY_SETTING: &str = "none";

/// A proxy, parsed from its URL.
#[derive(Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Host name or IP (IPv6 without brackets).
    pub host: String,
    /// Port.
    pub port: u16,
    /// `user:password`, percent-decoded, for `Proxy-Authorization: Basic`.
    credentials: Option<String>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("host", &self.host)
            .field("port", &self.port)
            .field(
                "credentials",
                &self.credentials.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

impl std::fmt::Display for Proxy {
    /// The proxy without its credentials (for logs and errors).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "http://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "http://{}:{}", self.host, self.port)
        }
    }
}

/// Why a proxy could not be used. Each message says what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProxyError {
    /// The URL is not `http://[user:pass@]host:port`.
    #[error("proxy {url:?}: {reason}; write http://[user:password@]host:port")]
    BadUrl {
        /// The URL without its credentials.
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// The proxy cannot be reached.
    #[error("cannot reach the proxy {proxy}: {reason}")]
    Unreachable {
        /// The proxy.
        proxy: String,
        /// Why.
        reason: String,
    },
    /// 407 without credentials.
    #[error(
        "the proxy {proxy} wants credentials: put them in the proxy URL \
         (http://user:password@host:port)"
    )]
    NeedsCredentials {
        /// The proxy.
        proxy: String,
    },
    /// 407 with credentials.
    #[error("the proxy {proxy} refused the credentials in the proxy URL; check them")]
    BadCredentials {
        /// The proxy.
        proxy: String,
    },
    /// Any other answer than 200.
    #[error("the proxy {proxy} refused to connect to {target}: {status}")]
    Refused {
        /// The proxy.
        proxy: String,
        /// What we asked for.
        target: String,
        /// The proxy's status line.
        status: String,
    },
    /// Not an HTTP answer, or a header above [`MAX_RESPONSE_HEADER`].
    #[error("the proxy {proxy} answered something else than HTTP: {reason}")]
    BadAnswer {
        /// The proxy.
        proxy: String,
        /// What is wrong.
        reason: String,
    },
    /// No answer in time.
    #[error("the proxy {proxy} did not answer within {timeout:?}")]
    Timeout {
        /// The proxy.
        proxy: String,
        /// The bound.
        timeout: Duration,
    },
}

/// Parses `http://[user:pass@]host:port` (the scheme may be left out).
///
/// # Errors
/// [`ProxyError::BadUrl`] saying what is wrong.
pub fn parse_proxy_url(url: &str) -> Result<Proxy, ProxyError> {
    let trimmed = url.trim();
    let bad = |reason: &str| ProxyError::BadUrl {
        url: without_credentials(trimmed),
        reason: reason.to_owned(),
    };
    let rest = match trimmed.split_once("://") {
        Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
        Some((scheme, _)) => {
            return Err(bad(&format!(
                "only HTTP CONNECT proxies are supported, not {scheme}://"
            )));
        }
        None => trimmed,
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains('/') {
        return Err(bad("a proxy URL has no path"));
    }
    let (credentials, hostport) = match rest.rsplit_once('@') {
        Some((userinfo, hostport)) => (
            Some(percent_decode(userinfo).ok_or_else(|| bad("bad %-escape in the user info"))?),
            hostport,
        ),
        None => (None, rest),
    };
    let (host, port) = split_host_port(hostport).ok_or_else(|| bad("it has no port"))?;
    if host.is_empty() {
        return Err(bad("it has no host"));
    }
    let port = port
        .parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| bad(&format!("port {port:?} is not a number from 1 to 65535")))?;
    Ok(Proxy {
        host: host.to_owned(),
        port,
        credentials,
    })
}

/// `host:port` or `[v6]:port` into host (no brackets) and port text.
fn split_host_port(s: &str) -> Option<(&str, &str)> {
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        return Some((host, after.strip_prefix(':')?));
    }
    let (host, port) = s.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port))
}

/// A proxy URL as it may be shown: its user info (user and password) replaced by `…`.
pub fn without_credentials(url: &str) -> String {
    match url.rsplit_once('@') {
        Some((before, after)) => match before.split_once("://") {
            Some((scheme, _)) => format!("{scheme}://…@{after}"),
            None => format!("…@{after}"),
        },
        None => url.to_owned(),
    }
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The proxy to use for the relay at `host:port`: the explicit `setting` (`"none"`: no
/// proxy), else `https_proxy`/`HTTPS_PROXY` from `env` unless `no_proxy`/`NO_PROXY` matches.
///
/// # Errors
/// A proxy URL that does not parse.
pub fn proxy_for(
    setting: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
    host: &str,
    port: u16,
) -> Result<Option<Proxy>, ProxyError> {
    let non_empty = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let Some(setting) = setting.map(str::trim).filter(|s| !s.is_empty()) {
        if setting.eq_ignore_ascii_case(NO_PROXY_SETTING) {
            return Ok(None);
        }
        return parse_proxy_url(setting).map(Some);
    }
    let Some(url) = non_empty("https_proxy").or_else(|| non_empty("HTTPS_PROXY")) else {
        return Ok(None);
    };
    let no_proxy = non_empty("no_proxy").or_else(|| non_empty("NO_PROXY"));
    if no_proxy.is_some_and(|list| no_proxy_matches(&list, host, port)) {
        return Ok(None);
    }
    parse_proxy_url(&url).map(Some)
}

/// Whether a `NO_PROXY` list names `host:port`: `*`, an exact host or IP, a domain (also
/// matching its subdomains; a leading `.` or `*.` is allowed), each optionally with `:port`.
pub fn no_proxy_matches(list: &str, host: &str, port: u16) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .any(|entry| entry_matches(&entry.to_ascii_lowercase(), &host, port))
}

fn entry_matches(entry: &str, host: &str, port: u16) -> bool {
    if entry == "*" {
        return true;
    }
    let (name, want_port) = match split_host_port(entry) {
        Some((name, p)) if p.parse::<u16>().is_ok() => (name, p.parse::<u16>().ok()),
        _ => (entry.trim_start_matches('[').trim_end_matches(']'), None),
    };
    if want_port.is_some_and(|p| p != port) {
        return false;
    }
    if let (Ok(a), Ok(b)) = (
        name.parse::<std::net::IpAddr>(),
        host.parse::<std::net::IpAddr>(),
    ) {
        return a == b;
    }
    let domain = name.trim_start_matches("*.").trim_start_matches('.');
    let domain = domain.trim_end_matches('.');
    !domain.is_empty()
        && (host == domain
            || host
                .strip_suffix(domain)
                .is_some_and(|head| head.ends_with('.')))
}

/// Connects to `proxy` and asks it for a tunnel to `target` (`host:port`), within
/// [`PROXY_TIMEOUT`]. Returns the stream, ready for the relay's TLS.
///
/// # Errors
/// The proxy is unreachable, refuses, wants credentials, or answers nonsense.
pub async fn connect_via(proxy: &Proxy, target: &str) -> Result<TcpStream, ProxyError> {
    connect_via_within(proxy, target, PROXY_TIMEOUT).await
}

/// [`connect_via`] with another bound.
///
/// # Errors
/// As [`connect_via`].
pub async fn connect_via_within(
    proxy: &Proxy,
    target: &str,
    timeout: Duration,
) -> Result<TcpStream, ProxyError> {
    let attempt = async {
        let mut stream = TcpStream::connect((proxy.host.as_str(), proxy.port))
            .await
            .map_err(|e| ProxyError::Unreachable {
                proxy: proxy.to_string(),
                reason: e.to_string(),
            })?;
        let _ = stream.set_nodelay(true);
        handshake(&mut stream, proxy, target).await?;
        Ok(stream)
    };
    tokio::time::timeout(timeout, attempt)
        .await
        .map_err(|_| ProxyError::Timeout {
            proxy: proxy.to_string(),
            timeout,
        })?
}

/// The CONNECT request and the proxy's answer on `stream`. Reads no byte past the answer's
/// header (what follows belongs to the relay's TLS).
///
/// # Errors
/// As [`connect_via`].
pub async fn handshake<S>(stream: &mut S, proxy: &Proxy, target: &str) -> Result<(), ProxyError>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let unreachable = |e: std::io::Error| ProxyError::Unreachable {
        proxy: proxy.to_string(),
        reason: e.to_string(),
    };
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(creds) = &proxy.credentials {
        request.push_str("Proxy-Authorization: Basic ");
        request.push_str(&base64(creds.as_bytes()));
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(unreachable)?;
    stream.flush().await.map_err(unreachable)?;
    let header = read_header(stream, proxy).await?;
    let status_line = header.lines().next().unwrap_or_default().trim().to_owned();
    let code = parse_status(&status_line).ok_or_else(|| ProxyError::BadAnswer {
        proxy: proxy.to_string(),
        reason: format!("status line {status_line:?}"),
    })?;
    match code {
        200..=299 => Ok(()),
        407 if proxy.credentials.is_some() => Err(ProxyError::BadCredentials {
            proxy: proxy.to_string(),
        }),
        407 => Err(ProxyError::NeedsCredentials {
            proxy: proxy.to_string(),
        }),
        _ => Err(ProxyError::Refused {
            proxy: proxy.to_string(),
            target: target.to_owned(),
            status: status_line,
        }),
    }
}

async fn read_header<S: AsyncRead + Unpin>(
    stream: &mut S,
    proxy: &Proxy,
) -> Result<String, ProxyError> {
    let mut header = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !header.ends_with(b"\r\n\r\n") {
        if header.len() >= MAX_RESPONSE_HEADER {
            return Err(ProxyError::BadAnswer {
                proxy: proxy.to_string(),
                reason: format!("its answer's header is longer than {MAX_RESPONSE_HEADER} bytes"),
            });
        }
        let n = stream
            .read(&mut byte)
            .await
            .map_err(|e| ProxyError::Unreachable {
                proxy: proxy.to_string(),
                reason: e.to_string(),
            })?;
        if n == 0 {
            return Err(ProxyError::BadAnswer {
                proxy: proxy.to_string(),
                reason: "it closed the connection before answering".into(),
            });
        }
        header.push(byte[0]);
    }
    Ok(String::from_utf8_lossy(&header).into_owned())
}

/// `HTTP/1.1 200 Connection established` → 200.
fn parse_status(line: &str) -> Option<u16> {
    let mut parts = line.split_whitespace();
    let version = parts.next()?;
    if !version.starts_with("HTTP/") {
        return None;
    }
    parts.next()?.parse().ok()
}

fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}

#[cfg(test)]
pub(crate) mod tests;
