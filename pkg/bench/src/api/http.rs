//! The benchmark's REST client: one HTTP/2 connection over TLS to one replica's API port,
//! presenting the admin client certificate, as kubectl and client-go do (ALPN `h2`, every
//! request a stream on the same connection). Requests and watch streams, nothing else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Full};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};

/// A connection to one replica. Cheap to clone: clones share the connection.
#[derive(Clone)]
pub struct ApiConn {
    addr: SocketAddr,
    sender: SendRequest<Full<Bytes>>,
}

/// An HTTP answer: status code and the whole body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

impl Answer {
    /// The body as text, shortened for error messages.
    pub fn brief(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        let short: String = text.chars().take(200).collect();
        format!("HTTP {}: {short}", self.status)
    }
}

/// Why a request of the benchmark's HTTP/2 client failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("connect to {addr}")]
    Connect {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("HTTP/2 handshake with {addr}")]
    Handshake {
        addr: SocketAddr,
        #[source]
        source: hyper::Error,
    },
    #[error("bad request {path}")]
    Request {
        path: String,
        #[source]
        source: http::Error,
    },
    #[error("{addr}: connection closed")]
    Closed {
        addr: SocketAddr,
        #[source]
        source: hyper::Error,
    },
    #[error("{addr}: sending the request")]
    Send {
        addr: SocketAddr,
        #[source]
        source: hyper::Error,
    },
    #[error("{addr}: reading the body")]
    Body {
        addr: SocketAddr,
        #[source]
        source: hyper::Error,
    },
    #[error("{addr}: no answer within {timeout:?}")]
    Timeout { addr: SocketAddr, timeout: Duration },
    /// The server refused to open a watch: its answer, shortened.
    #[error("the watch was refused: {0}")]
    Refused(String),
    #[error("the watch stream broke")]
    Stream(#[source] hyper::Error),
}

impl ApiConn {
    /// Connects, completes the TLS and HTTP/2 handshakes; the connection is driven by a
    /// task of its own until every clone is dropped.
    pub async fn connect(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> Result<Self, HttpError> {
        let tls = crate::tls::connect(addr, config)
            .await
            .map_err(|source| HttpError::Connect { addr, source })?;
        let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            // Watch streams carry many events; do not let flow control stall them.
            .initial_stream_window_size(4 << 20)
            .initial_connection_window_size(8 << 20)
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|source| HttpError::Handshake { addr, source })?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        Ok(Self { addr, sender })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    fn build(
        &self,
        method: http::Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<http::Request<Full<Bytes>>, HttpError> {
        let mut b = http::Request::builder()
            .method(method)
            .uri(format!("https://{}{path}", self.addr))
            .header(http::header::ACCEPT, "application/json")
            .header(http::header::USER_AGENT, "rkube-bench");
        if let Some(ct) = content_type {
            b = b.header(http::header::CONTENT_TYPE, ct);
        }
        b.body(Full::new(body))
            .map_err(|source| HttpError::Request {
                path: path.to_string(),
                source,
            })
    }

    /// Sends `req` on this connection; the answer's head and its unread body.
    async fn send(
        &self,
        req: http::Request<Full<Bytes>>,
    ) -> Result<http::Response<hyper::body::Incoming>, HttpError> {
        let addr = self.addr;
        let mut sender = self.sender.clone();
        sender
            .ready()
            .await
            .map_err(|source| HttpError::Closed { addr, source })?;
        sender
            .send_request(req)
            .await
            .map_err(|source| HttpError::Send { addr, source })
    }

    /// One request; returns the status and the whole body.
    pub async fn request(
        &self,
        method: http::Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Answer, HttpError> {
        let resp = self
            .send(self.build(method, path, content_type, body)?)
            .await?;
        let status = resp.status().as_u16();
        let body = resp
            .into_body()
            .collect()
            .await
            .map_err(|source| HttpError::Body {
                addr: self.addr,
                source,
            })?
            .to_bytes();
        Ok(Answer { status, body })
    }

    /// Like [`ApiConn::request`], but gives up after `timeout`.
    pub async fn request_within(
        &self,
        method: http::Method,
        path: &str,
        content_type: Option<&str>,
        body: Bytes,
        timeout: Duration,
    ) -> Result<Answer, HttpError> {
        tokio::time::timeout(timeout, self.request(method, path, content_type, body))
            .await
            .unwrap_or(Err(HttpError::Timeout {
                addr: self.addr,
                timeout,
            }))
    }

    /// Opens a watch (`path` must carry `watch=true`); returns its stream once the server
    /// answered 200.
    pub async fn watch(&self, path: &str) -> Result<WatchStream, HttpError> {
        let resp = self
            .send(self.build(http::Method::GET, path, None, Bytes::new())?)
            .await?;
        let status = resp.status().as_u16();
        if status != 200 {
            let body = resp
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            return Err(HttpError::Refused(Answer { status, body }.brief()));
        }
        Ok(WatchStream {
            body: resp.into_body(),
            buf: BytesMut::new(),
        })
    }
}

/// An open watch: a body of JSON events, one per line.
pub struct WatchStream {
    body: hyper::body::Incoming,
    buf: BytesMut,
}

impl WatchStream {
    /// The next complete line (without its newline); `None` when the stream ended.
    pub async fn next_line(&mut self) -> Result<Option<Bytes>, HttpError> {
        loop {
            if let Some(line) = take_line(&mut self.buf) {
                return Ok(Some(line));
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(Err(source)) => return Err(HttpError::Stream(source)),
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        self.buf.extend_from_slice(&data);
                    }
                }
            }
        }
    }
}

/// Splits the first newline-terminated line off `buf` (without the newline); skips empty
/// lines. Pure.
pub fn take_line(buf: &mut BytesMut) -> Option<Bytes> {
    loop {
        let end = buf.iter().position(|&b| b == b'\n')?;
        let line = buf.split_to(end + 1).freeze().slice(..end);
        if !line.iter().all(u8::is_ascii_whitespace) {
            return Some(line);
        }
    }
}
