//! How the relay reaches PostgreSQL: a `postgres://` URL, with TLS (rustls on ring) when the
//! URL asks for it (`sslmode=require`). The server's certificate is always verified against
//! `ca_file` and the URL's host name (stricter than libpq's `require`, which does not verify).

use super::StoreError;
use postgres::config::SslMode;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::path::PathBuf;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

/// How long connecting may take (unless the URL says `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The keepalive idle time libpq and `postgres` default to (two hours: useless here).
const LIBPQ_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);
/// Idle time before the first TCP keepalive probe.
const KEEPALIVES_IDLE: Duration = Duration::from_secs(10);
/// Time between TCP keepalive probes.
const KEEPALIVES_INTERVAL: Duration = Duration::from_secs(5);
/// Unanswered probes before the connection counts as cut.
const KEEPALIVES_RETRIES: u32 = 3;
/// How long sent data may stay unacknowledged before the connection counts as cut.
const TCP_USER_TIMEOUT: Duration = Duration::from_secs(30);
/// The longest one statement may run on the server (a lock wait included).
const STATEMENT_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the database is.
#[derive(Clone, PartialEq, Eq)]
pub struct PgConfig {
    /// `postgres://user:password@host:port/db?sslmode=require`.
    pub url: String,
    /// PEM certificates the server's certificate must chain to (needed for TLS).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for PgConfig {
    // The URL may hold a password: it is never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgConfig")
            .field("url", &"…")
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

fn bad_url(e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(format!(
        "[store] url is not a PostgreSQL URL like postgres://user@host:5432/codemantle ({e})"
    ))
}

impl PgConfig {
    /// Checks the URL (and that TLS has what it needs) without connecting.
    ///
    /// # Errors
    /// A URL that does not parse, or TLS asked for without `ca_file`.
    pub fn check(&self) -> Result<postgres::Config, StoreError> {
        let config = postgres::Config::from_str(&self.url).map_err(bad_url)?;
        if config.get_ssl_mode() == SslMode::Require && self.ca_file.is_none() {
            return Err(StoreError::Refused(
                "[store] url asks for TLS (sslmode=require): set [store] ca_file to the PEM \
                 certificate(s) the database server's certificate chains to"
                    .into(),
            ));
        }
        Ok(config)
    }

    /// The connection settings: the URL's, plus bounds on how long a call may block when the
    /// database or the network to it silently goes away (TCP keepalives and user timeout, a
    /// statement timeout) unless the URL sets them. Without them a cut connection blocks a
    /// call (the heartbeat, the notice thread, shutdown) for the kernel's ~15 minutes.
    ///
    /// # Errors
    /// As [`Self::check`].
    pub fn client_config(&self) -> Result<postgres::Config, StoreError> {
        let mut config = self.check()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives(true);
        if config.get_keepalives_idle() == LIBPQ_KEEPALIVES_IDLE {
            config.keepalives_idle(KEEPALIVES_IDLE);
        }
        if config.get_keepalives_interval().is_none() {
            config.keepalives_interval(KEEPALIVES_INTERVAL);
        }
        if config.get_keepalives_retries().is_none() {
            config.keepalives_retries(KEEPALIVES_RETRIES);
        }
        if config.get_tcp_user_timeout().is_none() {
            config.tcp_user_timeout(TCP_USER_TIMEOUT);
        }
        let options = config.get_options().unwrap_or_default();
        if !options.contains("statement_timeout") {
            let ms = STATEMENT_TIMEOUT.as_millis();
            let options = format!("{options} -c statement_timeout={ms}");
            config.options(options.trim_start());
        }
        Ok(config)
    }

    /// Opens one connection.
    pub(super) fn connect(&self) -> Result<postgres::Client, StoreError> {
        let mut config = self.client_config()?;
        let connected = if config.get_ssl_mode() == SslMode::Require {
            config.connect(self.tls()?)
        } else {
            // `prefer` (the URL default) without TLS configured: plain.
            config.ssl_mode(SslMode::Disable);
            config.connect(postgres::NoTls)
        };
        connected.map_err(|e| {
            if e.as_db_error().is_some() {
                return e.into();
            }
            // The causes say what failed (refused, unknown host, the certificate…).
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            StoreError::Connect(text)
        })
    }

    fn tls(&self) -> Result<tokio_postgres_rustls::MakeRustlsConnect, StoreError> {
        let path = self.ca_file.as_deref().unwrap_or(std::path::Path::new(""));
        let io = |e: String| StoreError::Io(format!("[store] ca_file {}: {e}", path.display()));
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| io(e.to_string()))? {
            roots
                .add(cert.map_err(|e| io(e.to_string()))?)
                .map_err(|e| io(e.to_string()))?;
        }
        if roots.is_empty() {
            return Err(io("no certificate in the file".into()));
        }
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| io(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> postgres::Config {
        PgConfig {
            url: url.into(),
            ca_file: None,
        }
        .client_config()
        .unwrap()
    }

    #[test]
    fn a_silently_cut_database_connection_is_noticed_within_a_minute_not_fifteen() {
        let c = config("postgres://relay@db.example:5432/codemantle");
        assert!(c.get_keepalives());
        assert_eq!(c.get_keepalives_idle(), KEEPALIVES_IDLE);
        assert_eq!(c.get_keepalives_interval(), Some(KEEPALIVES_INTERVAL));
        assert_eq!(c.get_keepalives_retries(), Some(KEEPALIVES_RETRIES));
        assert_eq!(c.get_tcp_user_timeout(), Some(&TCP_USER_TIMEOUT));
        assert_eq!(c.get_options(), Some("-c statement_timeout=60000"));
        assert_eq!(c.get_connect_timeout(), Some(&CONNECT_TIMEOUT));
        // What the URL says wins.
        let c = config(
            "postgres://relay@db.example/codemantle?keepalives_idle=30&options=-c%20statement_timeout%3D5s",
        );
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(30));
        assert_eq!(c.get_options(), Some("-c statement_timeout=5s"));
    }
}
