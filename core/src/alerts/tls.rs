//! TLS for https webhooks: the same rustls (with aws-lc) the SDK's HTTPS
//! client is built on, so no second TLS stack. The server's certificate must
//! chain to the system's roots or to a certificate of `webhook-ca-file`.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The PEM certificates in `pem`.
///
/// # Errors
/// A PEM block that does not parse.
pub fn certificates(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("not PEM certificates: {e}"))
}

/// A TLS session over `sock` to `host`, trusting the system's roots and the
/// certificates of `ca_file`.
///
/// # Errors
/// The CA file, the roots, or the handshake (an untrusted certificate among
/// them), in words.
pub async fn connect(
    sock: TcpStream,
    host: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<TlsStream<TcpStream>, String> {
    let mut roots = rustls::RootCertStore::empty();
    // The system's roots; a store that cannot be read leaves only the CA file.
    for c in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(c);
    }
    if let Some(f) = ca_file {
        let pem = std::fs::read(f).map_err(|e| format!("cannot read {}: {e}", f.display()))?;
        for c in certificates(&pem)? {
            roots
                .add(c)
                .map_err(|e| format!("{}: a certificate rustls refuses: {e}", f.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string())
        .map_err(|e| format!("`{host}` is not a TLS server name: {e}"))?;
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, sock)
        .await
        .map_err(|e| format!("TLS handshake with {host} failed: {e}"))
}
