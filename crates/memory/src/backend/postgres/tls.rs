//! TLS to PostgreSQL through rustls (ring): `verify-full` checks the certificate chain
//! (web PKI roots, or the PEM file of `sslrootcert`) and the host name; `prefer` and
//! `require` encrypt without checking, as libpq does.

use std::path::Path;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::error::{MemoryError, Result};
use crate::spec::SslMode;

/// The connector for `mode` (not `Disable`, which needs none).
///
/// # Errors
/// `InvalidInput` when `sslrootcert` cannot be read or holds no certificate.
pub(super) fn connector(mode: SslMode, root_cert: Option<&Path>) -> Result<MakeRustlsConnect> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| MemoryError::invalid(format!("TLS setup failed: {e}")))?;
    let config = if mode == SslMode::VerifyFull {
        builder
            .with_root_certificates(roots(root_cert)?)
            .with_no_client_auth()
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth()
    };
    Ok(MakeRustlsConnect::new(config))
}

/// The trusted roots: the PEM file given, else the web PKI roots.
fn roots(root_cert: Option<&Path>) -> Result<RootCertStore> {
    let Some(path) = root_cert else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let bad = |e: String| MemoryError::invalid(format!("sslrootcert {}: {e}", path.display()));
    let mut store = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(e.to_string()))?;
        store.add(cert).map_err(|e| bad(e.to_string()))?;
    }
    if store.is_empty() {
        return Err(bad("no certificate in the file".into()));
    }
    Ok(store)
}

/// Accepts any certificate (`sslmode=prefer|require`): the channel is encrypted, the
/// server not authenticated. Signatures are still checked, so the handshake is sound.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tls_mode_builds_a_connector() {
        for mode in [SslMode::Prefer, SslMode::Require, SslMode::VerifyFull] {
            assert!(connector(mode, None).is_ok(), "{mode:?}");
        }
    }

    #[test]
    fn an_unreadable_root_certificate_is_a_clear_error() {
        let err = connector(SslMode::VerifyFull, Some(Path::new("/nonexistent/ca.pem")))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("sslrootcert /nonexistent/ca.pem"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let err = connector(SslMode::VerifyFull, Some(&empty))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("no certificate"), "{err}");
    }
}
