//! TLS clients of the cluster's API port: rustls configurations that trust the cluster CA
//! (and present the admin certificate where an identity is needed), TLS streams, and a
//! plain `GET` over one for health checks. gRPC channels over TLS come from
//! `rkube_client::channel`, rkube's one tonic connector.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::error::PemProblem;
use crate::{Error, Result};

fn read_pem(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

fn bad_pem(path: &Path, source: PemProblem) -> Error {
    Error::Pem {
        path: path.to_path_buf(),
        source,
    }
}

/// A client configuration that trusts only the CA in `ca` and, with `identity` (certificate
/// and key files), presents that client certificate. `alpn` is offered as given.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    let ca_pem = read_pem(ca)?;
    for cert in CertificateDer::pem_slice_iter(&ca_pem) {
        let cert = cert.map_err(|e| bad_pem(ca, PemProblem::Parse(e)))?;
        roots
            .add(cert)
            .map_err(|e| bad_pem(ca, PemProblem::Refused(e)))?;
    }
    if roots.is_empty() {
        return Err(bad_pem(ca, PemProblem::NoCertificate));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(Error::Tls)?
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let cert_pem = read_pem(cert)?;
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad_pem(cert, PemProblem::Parse(e)))?;
            let key_der = PrivateKeyDer::from_pem_slice(&read_pem(key)?)
                .map_err(|e| bad_pem(key, PemProblem::Parse(e)))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| bad_pem(cert, PemProblem::Refused(e)))?
        }
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Connects to `addr` and completes a TLS handshake, verifying the server's certificate for
/// `addr`'s IP address.
pub async fn connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = TcpStream::connect(addr).await?;
    let _ = tcp.set_nodelay(true);
    TlsConnector::from(config)
        .connect(ServerName::IpAddress(addr.ip().into()), tcp)
        .await
}

/// `GET path` over HTTP/1.1 on an established stream; returns the status code. Enough for
/// health checks (`/readyz`), which need no body.
pub async fn http_get_status<S>(stream: &mut S, host: &str, path: &str) -> std::io::Result<u16>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    stream.flush().await?;
    let mut head = Vec::with_capacity(64);
    let mut buf = [0u8; 256];
    while !head.windows(2).any(|w| w == b"\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 4096 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    parse_status_line(&head).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "no HTTP status line in the answer",
        )
    })
}

/// The code of an HTTP/1.x status line at the start of `head`. Pure.
pub fn parse_status_line(head: &[u8]) -> Option<u16> {
    let line = head.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/1."))?;
    parts.next()?.parse().ok()
}

#[cfg(test)]
mod tests;
