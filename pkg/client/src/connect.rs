//! Channels to one endpoint, over TCP or TLS, with connection failures marked
//! so the failover logic can tell "never sent" from "sent, answer lost".
//!
//! tonic is built without its TLS features, so channels use this connector;
//! every error it returns happens before a single request byte is written.
//! It is rkube's one tonic-over-rustls connector: the operator tool's status
//! probes use [`channel`] too.

use std::sync::Arc;
use std::time::Duration;

use tonic::transport::{Channel, Endpoint};

/// A failure to establish a connection (TCP connect or TLS handshake): the
/// request it was for was never sent.
#[derive(Debug, thiserror::Error)]
#[error("cannot connect to {addr}: {source}")]
pub(crate) struct ConnectFailed {
    addr: String,
    #[source]
    source: std::io::Error,
}

/// Whether a failed call failed while connecting (its source chain holds a
/// [`ConnectFailed`]).
pub(crate) fn never_connected(s: &tonic::Status) -> bool {
    let mut src: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(s);
    while let Some(e) = src {
        if e.downcast_ref::<ConnectFailed>().is_some() {
            return true;
        }
        src = e.source();
    }
    false
}

/// An endpoint address no channel can be built for.
#[derive(Debug, thiserror::Error)]
pub enum InvalidAddress {
    /// The host is neither an IP address nor a DNS name (TLS must name the server).
    #[error("{addr}: not a server name")]
    ServerName {
        addr: String,
        #[source]
        source: rustls_pki_types::InvalidDnsNameError,
    },
    /// `http://<addr>` is not a URI.
    #[error("{addr}: not a valid address")]
    Uri {
        addr: String,
        #[source]
        source: tonic::transport::Error,
    },
}

/// The host part of `host:port` (brackets of an IPv6 literal removed).
fn host_of(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A lazily connecting channel to `addr` (`host:port`): the first call
/// connects, and a call after the connection broke reconnects. With `tls`,
/// the server's certificate must be valid for `addr`'s host (an IP address or
/// a DNS name); a TCP connect and a TLS handshake each give up after
/// `connect_timeout`.
pub fn channel(
    addr: &str,
    tls: Option<Arc<rustls::ClientConfig>>,
    connect_timeout: Duration,
) -> Result<Channel, InvalidAddress> {
    let target = addr.to_string();
    let server_name =
        rustls_pki_types::ServerName::try_from(host_of(addr).to_string()).map_err(|source| {
            InvalidAddress::ServerName {
                addr: addr.to_string(),
                source,
            }
        })?;
    let connector = tower::service_fn(move |_: http::Uri| {
        let (target, tls, name) = (target.clone(), tls.clone(), server_name.clone());
        async move {
            let failed = |source| ConnectFailed {
                addr: target.clone(),
                source,
            };
            let tcp =
                tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(&target))
                    .await
                    .map_err(|_| failed(std::io::ErrorKind::TimedOut.into()))?
                    .map_err(failed)?;
            let _ = tcp.set_nodelay(true);
            let io: Box<dyn Io> = match tls {
                None => Box::new(tcp),
                Some(config) => {
                    let handshake = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
                    Box::new(
                        tokio::time::timeout(connect_timeout, handshake)
                            .await
                            .map_err(|_| failed(std::io::ErrorKind::TimedOut.into()))?
                            .map_err(failed)?,
                    )
                }
            };
            Ok::<_, ConnectFailed>(hyper_util::rt::TokioIo::new(io))
        }
    });
    let scheme = "http";
    let endpoint = Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|source| InvalidAddress::Uri {
            addr: addr.to_string(),
            source,
        })?
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .keep_alive_while_idle(true);
    Ok(endpoint.connect_with_connector_lazy(connector))
}

trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static> Io for T {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_come_out_of_addresses() {
        assert_eq!(host_of("127.0.0.1:6443"), "127.0.0.1");
        assert_eq!(host_of("[::1]:6443"), "::1");
        assert_eq!(host_of("api.local:443"), "api.local");
    }

    #[tokio::test]
    async fn a_refused_connection_is_known_never_to_have_been_sent() {
        let addr = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let ch = channel(&addr.to_string(), None, Duration::from_secs(2)).unwrap();
        let mut c = rkube_proto::api::resources_client::ResourcesClient::new(ch);
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            c.get(rkube_proto::api::GetRequest::default()),
        )
        .await
        .expect("a refused connect fails fast")
        .unwrap_err();
        assert!(never_connected(&err), "{err:?}");
    }
}
