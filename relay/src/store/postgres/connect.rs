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

    /// Opens one connection.
    pub(super) fn connect(&self) -> Result<postgres::Client, StoreError> {
        let mut config = self.check()?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
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
