//! A loopback TCP proxy that partition tests put between two processes and cut at will.
//!
//! This module owns the proxy's accept loop and its forwarding tasks. While blocked, every open
//! connection is reset at once and new ones are accepted and reset straight away, so a gRPC
//! client sees transport errors rather than hanging; unblocking lets new connections through
//! (connections cut while blocked stay cut, as after a real partition). The proxy never buffers
//! or alters traffic, and dropping it stops the accept loop and every connection.

use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

/// A running proxy; stops when dropped.
pub struct Proxy {
    addr: SocketAddr,
    target: SocketAddr,
    blocked: watch::Sender<bool>,
    accept_loop: JoinHandle<()>,
}

impl Proxy {
    /// Listens on `listen` (`127.0.0.1:0` picks a free port) and forwards every connection to
    /// `target`. Must be called inside a tokio runtime.
    pub async fn start(listen: SocketAddr, target: SocketAddr) -> io::Result<Proxy> {
        let listener = TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let (blocked, blocked_rx) = watch::channel(false);
        let accept_loop = tokio::spawn(accept_loop(listener, target, blocked_rx));
        Ok(Proxy {
            addr,
            target,
            blocked,
            accept_loop,
        })
    }

    /// The address clients should dial instead of the target.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn target(&self) -> SocketAddr {
        self.target
    }

    /// Cuts all traffic (`true`) or lets new connections through again (`false`).
    pub fn set_blocked(&self, blocked: bool) {
        self.blocked.send_replace(blocked);
    }

    pub fn is_blocked(&self) -> bool {
        *self.blocked.borrow()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.accept_loop.abort();
    }
}

async fn accept_loop(listener: TcpListener, target: SocketAddr, blocked: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    loop {
        let accepted = listener.accept().await;
        while connections.try_join_next().is_some() {}
        let Ok((client, _)) = accepted else {
            // Accept errors are per connection or transient (out of descriptors); pausing keeps a
            // persistent one from spinning the loop.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if *blocked.borrow() {
            reset(client);
            continue;
        }
        connections.spawn(forward(client, target, blocked.clone()));
    }
}

async fn forward(mut client: TcpStream, target: SocketAddr, mut blocked: watch::Receiver<bool>) {
    let cut = async {
        // An error means the proxy is gone; cut the connection then too.
        let _ = blocked.wait_for(|&b| b).await;
    };
    let mut cut = pin!(cut);
    let connected = tokio::select! {
        () = &mut cut => None,
        upstream = TcpStream::connect(target) => upstream.ok(),
    };
    let Some(mut upstream) = connected else {
        reset(client);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    let was_cut = tokio::select! {
        () = &mut cut => true,
        _ = tokio::io::copy_bidirectional(&mut client, &mut upstream) => false,
    };
    if was_cut {
        reset(client);
        reset(upstream);
    }
}

/// Closes with a TCP reset rather than a graceful shutdown, as a failed link looks to the peers.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::time::timeout;

    const TEST_TIMEOUT: Duration = Duration::from_secs(10);

    fn loopback() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    async fn echo_server() -> (SocketAddr, JoinHandle<()>) {
        let listener = TcpListener::bind(loopback()).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            loop {
                let (mut conn, _) = listener.accept().await.unwrap();
                tokio::spawn(async move {
                    let (mut read, mut write) = conn.split();
                    let _ = tokio::io::copy(&mut read, &mut write).await;
                });
            }
        });
        (addr, server)
    }

    async fn round_trip(conn: &mut TcpStream, msg: &[u8]) -> io::Result<Vec<u8>> {
        conn.write_all(msg).await?;
        let mut buf = vec![0; msg.len()];
        conn.read_exact(&mut buf).await?;
        Ok(buf)
    }

    /// Whether the connection is closed or reset: a read ends or fails instead of waiting.
    async fn is_cut(conn: &mut TcpStream) -> bool {
        let mut buf = [0; 16];
        let _ = conn.write_all(b"anyone there?").await;
        matches!(
            timeout(Duration::from_secs(2), conn.read(&mut buf)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn traffic_passes_blocking_cuts_it_and_unblocking_restores_it() {
        timeout(TEST_TIMEOUT, async {
            let (target, _server) = echo_server().await;
            let proxy = Proxy::start(loopback(), target).await.unwrap();
            assert_ne!(proxy.addr().port(), 0);

            let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
            assert_eq!(round_trip(&mut conn, b"ping").await.unwrap(), b"ping");

            proxy.set_blocked(true);
            assert!(proxy.is_blocked());
            assert!(
                is_cut(&mut conn).await,
                "open connection survived the block"
            );
            // The listener stays up, so connecting may succeed, but nothing gets through.
            if let Ok(mut fresh) = TcpStream::connect(proxy.addr()).await {
                assert!(
                    is_cut(&mut fresh).await,
                    "new connection passed while blocked"
                );
            }

            proxy.set_blocked(false);
            let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
            assert_eq!(round_trip(&mut conn, b"pong").await.unwrap(), b"pong");
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn a_dropped_proxy_closes_its_connections_and_its_port() {
        timeout(TEST_TIMEOUT, async {
            let (target, _server) = echo_server().await;
            let proxy = Proxy::start(loopback(), target).await.unwrap();
            let addr = proxy.addr();
            let mut conn = TcpStream::connect(addr).await.unwrap();
            assert_eq!(round_trip(&mut conn, b"ping").await.unwrap(), b"ping");

            drop(proxy);
            assert!(is_cut(&mut conn).await, "connection survived the proxy");
            // The aborted accept loop releases the listener once the runtime drops its task.
            let mut refused = false;
            for _ in 0..100 {
                if TcpStream::connect(addr).await.is_err() {
                    refused = true;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert!(refused, "proxy port still accepts connections");
        })
        .await
        .expect("test timed out");
    }

    #[tokio::test]
    async fn an_unreachable_target_closes_the_client_connection() {
        timeout(TEST_TIMEOUT, async {
            // Bind then drop a listener to get a port nobody listens on.
            let target = TcpListener::bind(loopback())
                .await
                .unwrap()
                .local_addr()
                .unwrap();
            let proxy = Proxy::start(loopback(), target).await.unwrap();
            let mut conn = TcpStream::connect(proxy.addr()).await.unwrap();
            assert!(is_cut(&mut conn).await);
        })
        .await
        .expect("test timed out");
    }
}
