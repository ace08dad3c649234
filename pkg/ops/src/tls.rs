//! TLS clients of the cluster's API port: rustls configurations that trust the cluster CA
//! (and present the admin certificate where an identity is needed), gRPC channels over
//! them, and a plain `GET` for health checks. tonic is built without its TLS features, so
//! channels use their own connector.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tonic::transport::{Channel, Endpoint};

use crate::{Error, Result};

fn read_pem(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io("read", path, e))
}

fn bad_pem(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Pki(format!("{}: {detail}", path.display()))
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
        let cert = cert.map_err(|e| bad_pem(ca, e))?;
        roots.add(cert).map_err(|e| bad_pem(ca, e))?;
    }
    if roots.is_empty() {
        return Err(bad_pem(ca, "no certificate found"));
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| Error::Pki(e.to_string()))?
    .with_root_certificates(roots);
    let mut config = match identity {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => {
            let cert_pem = read_pem(cert)?;
            let chain = CertificateDer::pem_slice_iter(&cert_pem)
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|e| bad_pem(cert, e))?;
            let key_der =
                PrivateKeyDer::from_pem_slice(&read_pem(key)?).map_err(|e| bad_pem(key, e))?;
            builder
                .with_client_auth_cert(chain, key_der)
                .map_err(|e| bad_pem(cert, e))?
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

/// A gRPC channel to `addr` over TLS. `config` should offer ALPN `h2`.
pub async fn grpc_channel(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
    timeout: Duration,
) -> std::result::Result<Channel, tonic::transport::Error> {
    let connector = tower::service_fn(move |_: http::Uri| {
        let config = config.clone();
        async move {
            connect(addr, config)
                .await
                .map(hyper_util::rt::TokioIo::new)
        }
    });
    Endpoint::from_shared(format!("http://{addr}"))
        .expect("a socket address makes a valid URI")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector(connector)
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
