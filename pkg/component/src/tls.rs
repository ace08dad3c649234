//! The rustls configuration of an API client: trust exactly the cluster CA, present the
//! component's certificate when it has one, speak HTTP/2 (ALPN h2).

use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::args::ConfigError;

fn tls_err(what: &str, detail: impl std::fmt::Display) -> ConfigError {
    ConfigError::Tls {
        what: what.to_string(),
        detail: detail.to_string(),
    }
}

/// A client configuration trusting the CA certificates in `ca_pem`, with an optional
/// client identity (certificate chain PEM, private key PEM).
pub fn client_config(
    ca_pem: &[u8],
    identity: Option<(&[u8], &[u8])>,
) -> Result<Arc<rustls::ClientConfig>, ConfigError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| tls_err("CA certificate", e))?;
        roots.add(cert).map_err(|e| tls_err("CA certificate", e))?;
    }
    if roots.is_empty() {
        return Err(tls_err("CA certificate", "no certificate in the PEM data"));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tls_err("TLS", e))?
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let chain = CertificateDer::pem_slice_iter(cert)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_err("client certificate", e))?;
            if chain.is_empty() {
                return Err(tls_err(
                    "client certificate",
                    "no certificate in the PEM data",
                ));
            }
            let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| tls_err("client key", e))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| tls_err("client certificate", e))?
        }
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}
