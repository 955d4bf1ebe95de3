//! A relay's identity among its peers: its own certificate and key (`peer.crt`, `peer.key` in
//! the state directory), distinct from the TLS identity all relays of a fleet share with
//! clients. Its pin is registered in the `relays` table (`cm-relay cluster add`); peers accept
//! a relay-to-relay connection only from, and dial only, a registered pin.

use crate::state::{StateDir, StateError};
use crate::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The server name inside every peer certificate (peers check the pin, not the name).
pub const PEER_SERVER_NAME: &str = "codemantle-relay-peer";

/// Creates `peer.crt` and `peer.key` in `dir` (refusing to overwrite them) and returns the
/// new identity's pin.
///
/// # Errors
/// The files exist already, or I/O and certificate failures.
pub fn create(dir: &StateDir) -> Result<String, StateError> {
    let certified = rcgen::generate_simple_self_signed(vec![PEER_SERVER_NAME.to_owned()])
        .map_err(|e| StateError::Certificate(e.to_string()))?;
    let pin = tls::pin_of_certificate(certified.cert.der())?;
    write_new(
        &dir.peer_key_path(),
        certified.signing_key.serialize_pem().as_bytes(),
        0o600,
    )?;
    write_new(
        &dir.peer_cert_path(),
        certified.cert.pem().as_bytes(),
        0o644,
    )?;
    Ok(pin)
}

/// Loads the peer identity: certificate chain, key and pin.
///
/// # Errors
/// Missing or unparseable files (the message says to run `cm-relay cluster add`).
pub fn load(
    dir: &StateDir,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, String), StateError> {
    let cert_path = dir.peer_cert_path();
    let missing = |path: &Path, e: &dyn std::fmt::Display| {
        StateError::Certificate(format!(
            "{}: {e} (create this relay's peer identity with `cm-relay cluster add`)",
            path.display()
        ))
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert_path)
        .map_err(|e| missing(&cert_path, &e))?
        .collect::<Result<_, _>>()
        .map_err(|e| missing(&cert_path, &e))?;
    let first = certs
        .first()
        .ok_or_else(|| missing(&cert_path, &"no certificate"))?;
    let pin = tls::pin_of_certificate(first)?;
    let key_path = dir.peer_key_path();
    let key = PrivateKeyDer::from_pem_file(&key_path).map_err(|e| missing(&key_path, &e))?;
    Ok((certs, key, pin))
}

fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), StateError> {
    let io = |source| StateError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io)?;
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_created_identity_loads_with_the_same_pin_and_is_never_overwritten() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = StateDir::new(tmp.path());
        let pin = create(&dir).unwrap();
        assert_eq!(load(&dir).unwrap().2, pin);
        assert!(create(&dir).is_err(), "an existing identity is kept");
        assert_eq!(load(&dir).unwrap().2, pin);
    }

    #[test]
    fn a_missing_identity_says_how_to_create_it() {
        let tmp = tempfile::tempdir().unwrap();
        let err = load(&StateDir::new(tmp.path())).unwrap_err().to_string();
        assert!(err.contains("cm-relay cluster add"), "{err}");
    }
}
