//! TLS to the database and the cache: the CA files operators name (`database_ca_file`,
//! `redis_ca_file`), and what a failed handshake means, said in one line that names the setting
//! to fix. A leaf: the store and the cache use it, and it imports nothing of the crate.

use std::error::Error;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{CertificateError, Error as TlsError};

/// What a connection trusted, for messages: a CA file and the setting that named it, or the
/// built-in roots.
#[derive(Debug, Clone, Copy)]
pub struct Trust<'a> {
    pub setting: &'static str,
    pub ca_file: Option<&'a Path>,
}

impl Trust<'_> {
    fn describe(&self) -> String {
        match self.ca_file {
            Some(path) => format!("the CA in {} ({})", self.setting, path.display()),
            None => format!(
                "a public CA (Mozilla's roots; set {} to a private CA's PEM file)",
                self.setting
            ),
        }
    }
}

/// Reads a PEM file of CA certificates: its bytes, or why it cannot serve as one (a sentence
/// without the setting's name, which the caller adds).
pub fn read_ca_file(path: &Path) -> Result<Vec<u8>, String> {
    let pem = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut count = 0;
    for cert in CertificateDer::pem_slice_iter(&pem) {
        cert.map_err(|e| format!("{} is not a valid PEM file: {e}", path.display()))?;
        count += 1;
    }
    if count == 0 {
        return Err(format!(
            "{} holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(pem)
}

/// The TLS error somewhere in `err`'s chain, if the connection failed in its TLS handshake.
/// Libraries wrap it in an `io::Error` (whose `source()` skips it) or an `Arc`, so each link is
/// unwrapped by hand.
pub fn tls_error<'e>(err: &'e (dyn Error + 'static)) -> Option<&'e TlsError> {
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(tls) = e.downcast_ref::<TlsError>() {
            return Some(tls);
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            if let Some(tls) = tls_error(inner) {
                return Some(tls);
            }
        }
        if let Some(inner) = e.downcast_ref::<Arc<dyn Error + Send + Sync>>() {
            if let Some(tls) = tls_error(&**inner) {
                return Some(tls);
            }
        }
        next = e.source();
    }
    None
}

/// One line on a failed handshake with `host`: what is wrong and which setting fixes it.
pub fn explain(error: &TlsError, host: &str, trust: Trust<'_>) -> String {
    match error {
        TlsError::InvalidCertificate(
            CertificateError::UnknownIssuer | CertificateError::BadSignature,
        ) => format!(
            "the server's certificate is not signed by {}: {error}",
            trust.describe()
        ),
        TlsError::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => format!(
            "the server's certificate is not issued for {host}: connect by a name or address \
             it holds: {error}"
        ),
        TlsError::InvalidCertificate(_) => format!(
            "the server's certificate was refused (checked against {}): {error}",
            trust.describe()
        ),
        other => format!("the TLS handshake failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_tls_error_is_found_and_named_with_its_setting() {
        let tls = TlsError::InvalidCertificate(CertificateError::UnknownIssuer);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, tls);
        let arc: Arc<dyn Error + Send + Sync> = Arc::new(io);
        let found = tls_error(&arc).expect("found through the Arc and the io::Error");
        let trust = Trust {
            setting: "database_ca_file",
            ca_file: Some(Path::new("/etc/ca.pem")),
        };
        let line = explain(found, "db", trust);
        assert_eq!(
            line,
            "the server's certificate is not signed by the CA in database_ca_file \
             (/etc/ca.pem): invalid peer certificate: UnknownIssuer"
        );
        let plain = std::io::Error::other("connection refused");
        assert!(tls_error(&plain).is_none());
    }

    #[test]
    fn a_ca_file_must_hold_a_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        assert!(read_ca_file(&path).unwrap_err().contains("cannot read"));
        std::fs::write(&path, "not a certificate\n").unwrap();
        assert!(read_ca_file(&path)
            .unwrap_err()
            .contains("no PEM certificate"));
    }
}
