//! A store client for tests that fails over between replicas and says, for
//! every write, whether it certainly happened, certainly did not, or may have.

use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_proto::store::kv_client::KvClient;
use rkube_proto::store::{
    compare, request_op, Compare, PutRequest, RangeRequest, RequestOp, TxnRequest,
};
use tonic::transport::Channel;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome<T> {
    Ok(T),
    /// Refused or never sent: did not happen.
    Failed(String),
    /// Timed out or cut off after sending: may or may not have happened.
    Unknown(String),
}

impl<T> Outcome<T> {
    pub fn ok(self) -> Option<T> {
        match self {
            Outcome::Ok(v) => Some(v),
            _ => None,
        }
    }
}

/// Whether a failed call certainly did not reach the server, or was refused
/// before anything was proposed.
pub fn not_applied(status: &tonic::Status) -> bool {
    let m = status.message().to_ascii_lowercase();
    match status.code() {
        tonic::Code::Unavailable => {
            m.contains("connect") || m.contains("refused") || m.contains("no leader")
        }
        tonic::Code::InvalidArgument
        | tonic::Code::OutOfRange
        | tonic::Code::FailedPrecondition => true,
        _ => false,
    }
}

pub struct FailoverKv {
    clients: Vec<KvClient<Channel>>,
    current: usize,
    /// Give up on one request after this long.
    pub timeout: Duration,
}

impl FailoverKv {
    pub fn new(endpoints: &[String], start: usize) -> Self {
        let clients = endpoints
            .iter()
            .map(|e| {
                KvClient::new(
                    tonic::transport::Endpoint::from_shared(e.clone())
                        .unwrap()
                        .connect_timeout(Duration::from_millis(300))
                        .connect_lazy(),
                )
            })
            .collect();
        Self {
            clients,
            current: start % endpoints.len().max(1),
            timeout: Duration::from_secs(10),
        }
    }

    pub fn current(&self) -> usize {
        self.current
    }

    /// Runs `call` against replicas until one answers or the call may have
    /// taken effect.
    async fn run<T, F, Fut>(&mut self, mut call: F) -> Outcome<T>
    where
        F: FnMut(KvClient<Channel>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tonic::Status>>,
    {
        let deadline = Instant::now() + self.timeout;
        loop {
            let client = self.clients[self.current].clone();
            let left = deadline.saturating_duration_since(Instant::now());
            match tokio::time::timeout(left.max(Duration::from_millis(1)), call(client)).await {
                Ok(Ok(v)) => return Outcome::Ok(v),
                Ok(Err(status)) if not_applied(&status) => {
                    if matches!(
                        status.code(),
                        tonic::Code::InvalidArgument
                            | tonic::Code::OutOfRange
                            | tonic::Code::FailedPrecondition
                    ) {
                        return Outcome::Failed(status.message().to_string());
                    }
                    if Instant::now() >= deadline {
                        return Outcome::Failed(format!("gave up: {}", status.message()));
                    }
                    self.current = (self.current + 1) % self.clients.len();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Ok(Err(status)) => {
                    self.current = (self.current + 1) % self.clients.len();
                    return Outcome::Unknown(format!("{:?}: {}", status.code(), status.message()));
                }
                Err(_) => {
                    self.current = (self.current + 1) % self.clients.len();
                    return Outcome::Unknown("client timeout".into());
                }
            }
        }
    }

    /// Puts a value; returns the revision it was written at.
    pub async fn put(&mut self, key: &[u8], value: &[u8]) -> Outcome<i64> {
        let (k, v) = (Bytes::copy_from_slice(key), Bytes::copy_from_slice(value));
        self.run(|mut c| {
            let req = PutRequest {
                key: k.clone(),
                value: v.clone(),
                prev_kv: false,
            };
            async move {
                Ok(c.put(req)
                    .await?
                    .into_inner()
                    .header
                    .map_or(0, |h| h.revision))
            }
        })
        .await
    }

    /// A linearizable get: the value, or None when absent.
    pub async fn get(&mut self, key: &[u8]) -> Outcome<Option<Bytes>> {
        let k = Bytes::copy_from_slice(key);
        self.run(|mut c| {
            let req = RangeRequest {
                key: k.clone(),
                ..Default::default()
            };
            async move {
                Ok(c.range(req)
                    .await?
                    .into_inner()
                    .kvs
                    .into_iter()
                    .next()
                    .map(|kv| kv.value))
            }
        })
        .await
    }

    /// Sets `key` to `new` if its value is `expected` (None = absent). Returns whether it did.
    pub async fn cas(&mut self, key: &[u8], expected: Option<&[u8]>, new: &[u8]) -> Outcome<bool> {
        let k = Bytes::copy_from_slice(key);
        let cmp = match expected {
            Some(v) => Compare {
                key: k.clone(),
                result: compare::Result::Equal as i32,
                target: compare::Target::Value as i32,
                value: Bytes::copy_from_slice(v),
                ..Default::default()
            },
            None => Compare {
                key: k.clone(),
                result: compare::Result::Equal as i32,
                target: compare::Target::Version as i32,
                version: 0,
                ..Default::default()
            },
        };
        let put = RequestOp {
            request: Some(request_op::Request::RequestPut(PutRequest {
                key: k.clone(),
                value: Bytes::copy_from_slice(new),
                prev_kv: false,
            })),
        };
        self.run(|mut c| {
            let req = TxnRequest {
                compare: vec![cmp.clone()],
                success: vec![put.clone()],
                failure: vec![],
            };
            async move { Ok(c.txn(req).await?.into_inner().succeeded) }
        })
        .await
    }
}
