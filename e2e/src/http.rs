//! Raw HTTP/1.1 requests to a replica's REST door, for tests that send what
//! kubectl never would (malformed bodies, hand-made protobuf, odd media types)
//! and check the exact code, headers and body that come back.
//!
//! One request per connection (`Connection: close`), written and read by hand so
//! that nothing between the test and the server fixes up the request or hides
//! part of the reply. Blocking: call it from `spawn_blocking`. Only plain HTTP,
//! as the harness's replicas serve it; TLS is tested in tests/kubectl_tls.rs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;

/// Where requests go, what they accept and how long a reply may take.
#[derive(Clone, Debug)]
pub struct Http {
    addr: String,
    accept: String,
    read_timeout: Duration,
    /// Extra header lines, each ending in CRLF.
    headers: String,
}

/// A reply: the status code, the raw head (status line and headers) and the
/// body parsed as JSON ([`Value::Null`] when it is empty).
#[derive(Debug)]
pub struct Reply {
    pub code: u16,
    pub head: String,
    pub body: Value,
}

impl Http {
    /// Requests to `endpoint` (`http://host:port`) sending `Accept: <accept>`,
    /// each failing the test when its reply takes longer than `read_timeout`.
    pub fn new(endpoint: &str, accept: &str, read_timeout: Duration) -> Self {
        Self {
            addr: endpoint.trim_start_matches("http://").to_string(),
            accept: accept.to_string(),
            read_timeout,
            headers: String::new(),
        }
    }

    /// The same client, sending one more header on every request.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push_str(&format!("{name}: {value}\r\n"));
        self
    }

    /// One request on its own connection, with `body` sent as `content_type`.
    /// Panics when the reply's body is neither empty nor JSON.
    pub fn request(&self, method: &str, path: &str, content_type: &str, body: &[u8]) -> Reply {
        let addr = &self.addr;
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(self.read_timeout)).unwrap();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nAccept: {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n",
            self.accept,
            self.headers,
            body.len()
        );
        s.write_all(head.as_bytes()).unwrap();
        s.write_all(body).unwrap();
        let mut resp = Vec::new();
        s.read_to_end(&mut resp).unwrap();
        let resp = String::from_utf8(resp).unwrap();
        let (head, body) = resp.split_once("\r\n\r\n").unwrap();
        let code = head.split(' ').nth(1).unwrap().parse().unwrap();
        let body = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {head}\n{body}"))
        };
        Reply {
            code,
            head: head.to_string(),
            body,
        }
    }
}

impl Reply {
    /// Whether the reply says its body is JSON (`Content-Type: application/json`).
    pub fn is_json(&self) -> bool {
        self.head
            .to_ascii_lowercase()
            .contains("content-type: application/json")
    }
}
