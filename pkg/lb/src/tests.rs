use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;

#[test]
fn healthy_backends_take_turns_and_unhealthy_ones_come_last() {
    assert_eq!(try_order(&[true, true, true], 0), [0, 1, 2]);
    assert_eq!(try_order(&[true, true, true], 4), [1, 2, 0]);
    assert_eq!(try_order(&[true, false, true], 1), [2, 0, 1]);
    assert_eq!(try_order(&[false, false, true], 7), [2, 0, 1]);
    // Nobody healthy: everyone is still tried, in order.
    assert_eq!(try_order(&[false, false], 1), [0, 1]);
    assert!(try_order(&[], 3).is_empty());
}

/// A backend that greets every connection with its name, then echoes.
async fn backend(name: &'static str) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = s.write_all(name.as_bytes()).await;
                let mut buf = [0u8; 64];
                while let Ok(n) = s.read(&mut buf).await {
                    if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, task)
}

/// An address nothing listens on.
async fn dead_address() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap()
}

async fn start_lb(
    backends: Vec<SocketAddr>,
) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token = CancellationToken::new();
    let config = LbConfig {
        backends,
        health: HealthCheck::Tcp,
        health_interval: Duration::from_millis(100),
        connect_timeout: Duration::from_secs(1),
    };
    let task = tokio::spawn(run(listener, config, token.clone()));
    (addr, token, task)
}

async fn greeting(lb: SocketAddr) -> String {
    let mut s = TcpStream::connect(lb).await.unwrap();
    let mut buf = [0u8; 2];
    s.read_exact(&mut buf).await.unwrap();
    s.write_all(b"ping").await.unwrap();
    let mut echo = [0u8; 4];
    s.read_exact(&mut echo).await.unwrap();
    assert_eq!(&echo, b"ping");
    String::from_utf8(buf.to_vec()).unwrap()
}

#[tokio::test]
async fn every_connection_reaches_a_live_backend_even_when_others_are_dead() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (live, _b) = backend("b2").await;
        let backends = vec![dead_address().await, live, dead_address().await];
        let (lb, token, task) = start_lb(backends).await;
        // Before any health check and after: every connection lands on b2.
        for _ in 0..6 {
            assert_eq!(greeting(lb).await, "b2");
        }
        token.cancel();
        task.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn connections_move_to_the_survivor_when_a_backend_dies() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let (a, a_task) = backend("b1").await;
        let (b, _b_task) = backend("b2").await;
        let (lb, token, task) = start_lb(vec![a, b]).await;
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..4 {
            seen.insert(greeting(lb).await);
        }
        assert_eq!(seen.len(), 2, "round robin uses both: {seen:?}");
        a_task.abort();
        let _ = a_task.await;
        for _ in 0..6 {
            assert_eq!(greeting(lb).await, "b2");
        }
        token.cancel();
        task.await.unwrap();
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_tcp_health_check_fails_for_a_dead_backend() {
    let (live, _b) = backend("b1").await;
    assert!(check(live, &HealthCheck::Tcp).await.is_ok());
    assert!(check(dead_address().await, &HealthCheck::Tcp)
        .await
        .is_err());
}
