//! The raw client: one lazily connected channel per apiserver endpoint, the
//! calls of `rkube.api.v1.Resources` with Kubernetes JSON in and out, and the
//! failover rules.
//!
//! Failover rules (one call):
//! - a call goes to the endpoint that answered last; when it fails for a
//!   reason that is not the API's answer, the client moves on to the next
//!   endpoint, round robin, backing off a little after each full round;
//! - reads (get, list, and a watch's connects) are retried on any such
//!   failure, and also on a 503/504 `Status` (that replica's store has no
//!   quorum or timed out, another may be fine);
//! - writes are retried only when they certainly did not reach a server (the
//!   connection could not be made); a write whose answer was lost is reported
//!   as [`Error::Uncertain`], never sent twice;
//! - every call ends by its deadline ([`Config::deadline`]); one attempt
//!   gets at most [`Config::attempt_timeout`].

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rkube_proto::api as pb;
use rkube_proto::api::resources_client::ResourcesClient;
use serde_json::Value;
use tonic::transport::Channel;

use crate::error::{Error, Failure, Result};
use crate::Gvr;

/// Largest message the client accepts (lists of many objects are big).
const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// How to reach the apiservers.
#[derive(Clone)]
pub struct Config {
    /// Every apiserver's API address, `host:port`.
    pub endpoints: Vec<String>,
    /// TLS to the API port (trust the cluster CA; a client certificate is the
    /// identity). `None`: plain HTTP/2.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Sent as `authorization: Bearer <token>`.
    pub bearer_token: Option<String>,
    /// One call, retries included, ends by then.
    pub deadline: Duration,
    /// One attempt on one endpoint ends by then (watches: only their connect).
    pub attempt_timeout: Duration,
    /// A TCP connect (and TLS handshake) gives up after this long.
    pub connect_timeout: Duration,
}

impl Config {
    /// Plain HTTP/2 to `endpoints`, with the default timeouts.
    pub fn new<S: Into<String>>(endpoints: impl IntoIterator<Item = S>) -> Self {
        Config {
            endpoints: endpoints.into_iter().map(Into::into).collect(),
            tls: None,
            bearer_token: None,
            deadline: Duration::from_secs(30),
            attempt_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
        }
    }
}

/// Options of a list.
#[derive(Debug, Clone, Default)]
pub struct ListParams {
    pub label_selector: String,
    pub field_selector: String,
    /// At most this many items (0 = all).
    pub limit: i64,
    pub continue_token: String,
    /// "" = most recent (linearizable), "0" = any replica's state.
    pub resource_version: String,
}

impl ListParams {
    pub(crate) fn to_pb(&self) -> pb::ListOptions {
        pb::ListOptions {
            label_selector: self.label_selector.clone(),
            field_selector: self.field_selector.clone(),
            limit: self.limit,
            r#continue: self.continue_token.clone(),
            resource_version: self.resource_version.clone(),
        }
    }
}

/// Options of a create, update or patch.
#[derive(Debug, Clone, Default)]
pub struct WriteParams {
    pub dry_run: bool,
    /// "Strict", "Warn", "Ignore" or "" (the server's default).
    pub field_validation: String,
}

impl WriteParams {
    fn to_pb(&self) -> pb::WriteOptions {
        pb::WriteOptions {
            dry_run: self.dry_run,
            field_validation: self.field_validation.clone(),
        }
    }
}

/// Options of a delete (Kubernetes' DeleteOptions).
#[derive(Debug, Clone, Default)]
pub struct DeleteParams {
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    /// "Foreground", "Background" or "Orphan".
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

impl DeleteParams {
    fn to_json(&self) -> Vec<u8> {
        let mut v = serde_json::json!({"kind": "DeleteOptions", "apiVersion": "v1"});
        if self.dry_run {
            v["dryRun"] = serde_json::json!(["All"]);
        }
        if let Some(g) = self.grace_period_seconds {
            v["gracePeriodSeconds"] = g.into();
        }
        if let Some(p) = &self.propagation_policy {
            v["propagationPolicy"] = p.clone().into();
        }
        if let Some(u) = &self.precondition_uid {
            v["preconditions"]["uid"] = u.clone().into();
        }
        if let Some(rv) = &self.precondition_resource_version {
            v["preconditions"]["resourceVersion"] = rv.clone().into();
        }
        serde_json::to_vec(&v).expect("JSON values encode")
    }
}

/// The three patch types Kubernetes accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Json,
    Merge,
    Strategic,
}

/// A list's items and where it was read.
#[derive(Debug, Clone)]
pub struct ObjectList<T> {
    pub items: Vec<T>,
    /// The revision the list was read at: watch from here.
    pub resource_version: String,
    /// Non-empty when more items remain (pass it as `continue_token`).
    pub continue_token: String,
}

/// Whether a call may be sent again after its answer was lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Idempotence {
    Read,
    Write,
}

pub(crate) struct Endpoint {
    pub(crate) addr: String,
    channel: Channel,
}

pub(crate) struct Inner {
    pub(crate) config: Config,
    pub(crate) endpoints: Vec<Endpoint>,
    /// The endpoint calls go to first.
    current: AtomicUsize,
}

/// A client of every apiserver endpoint. Cheap to clone; clones share
/// connections and the current endpoint.
#[derive(Clone)]
pub struct Client {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.endpoints())
            .field("current", &self.current_endpoint())
            .finish()
    }
}

fn decode(bytes: &[u8]) -> Result<Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::Decode(e.to_string()))
}

impl Client {
    /// A client of `config.endpoints`. Connects lazily: this never fails
    /// because a server is down.
    pub fn new(config: Config) -> Result<Client> {
        if config.endpoints.is_empty() {
            return Err(Error::Invalid("no apiserver endpoint".into()));
        }
        let endpoints = config
            .endpoints
            .iter()
            .map(|addr| {
                crate::connect::channel(addr, config.tls.clone(), config.connect_timeout)
                    .map(|channel| Endpoint {
                        addr: addr.clone(),
                        channel,
                    })
                    .map_err(|e| {
                        let cause = std::error::Error::source(&e)
                            .map(|s| format!(": {s}"))
                            .unwrap_or_default();
                        Error::Invalid(format!("{e}{cause}"))
                    })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                endpoints,
                current: AtomicUsize::new(0),
            }),
        })
    }

    pub fn endpoints(&self) -> Vec<String> {
        self.inner
            .endpoints
            .iter()
            .map(|e| e.addr.clone())
            .collect()
    }

    /// The endpoint the next call goes to first.
    pub fn current_endpoint(&self) -> String {
        let i = self.inner.current.load(Ordering::Relaxed) % self.inner.endpoints.len();
        self.inner.endpoints[i].addr.clone()
    }

    pub(crate) fn stub(&self, i: usize) -> ResourcesClient<Channel> {
        ResourcesClient::new(self.inner.endpoints[i].channel.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }

    /// A request carrying the credentials and the current span's trace context, so the
    /// apiserver's span of this call continues the caller's trace.
    pub(crate) fn request<M>(&self, msg: M) -> tonic::Request<M> {
        let mut req = tonic::Request::new(msg);
        rkube_telemetry::propagation::inject(req.metadata_mut());
        if let Some(token) = &self.inner.config.bearer_token {
            if let Ok(v) = format!("Bearer {token}").parse() {
                req.metadata_mut().insert("authorization", v);
            }
        }
        req
    }

    /// The endpoint to try first, by index.
    pub(crate) fn current_index(&self) -> usize {
        self.inner.current.load(Ordering::Relaxed) % self.inner.endpoints.len()
    }

    /// Moves past endpoint `i` (if no one else has already).
    pub(crate) fn advance_from(&self, i: usize) -> usize {
        let n = self.inner.endpoints.len();
        let next = (i + 1) % n;
        let _ = self
            .inner
            .current
            .compare_exchange(i, next, Ordering::Relaxed, Ordering::Relaxed);
        // Keep the counter small; any value modulo n is a valid index.
        next
    }

    /// Runs `call` on the current endpoint, moving on per the failover rules
    /// until it succeeds, fails for good, or the deadline passes.
    pub(crate) async fn with_failover<T, F, Fut>(&self, kind: Idempotence, call: F) -> Result<T>
    where
        F: Fn(ResourcesClient<Channel>) -> Fut,
        Fut: Future<Output = std::result::Result<tonic::Response<T>, tonic::Status>>,
    {
        let config = &self.inner.config;
        let deadline = Instant::now() + config.deadline;
        let n = self.inner.endpoints.len();
        let mut i = self.current_index();
        let (mut tried_in_round, mut rounds) = (0usize, 0u64);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let attempt =
                tokio::time::timeout(left.min(config.attempt_timeout), call(self.stub(i)));
            let failure = match attempt.await {
                Ok(Ok(resp)) => return Ok(resp.into_inner()),
                Ok(Err(status)) => Failure::classify(&status),
                Err(_) => Failure::Lost(format!(
                    "no answer within {:?}",
                    left.min(config.attempt_timeout)
                )),
            };
            let retry = match (&failure, kind) {
                (Failure::Api(s), Idempotence::Read) => matches!(s.code, 503 | 504),
                (Failure::Api(_), Idempotence::Write) => false,
                (Failure::NotSent(_), _) => true,
                (Failure::Lost(_), Idempotence::Read) => true,
                (Failure::Lost(_), Idempotence::Write) => false,
            };
            let endpoint = &self.inner.endpoints[i].addr;
            if !retry {
                return Err(match failure {
                    Failure::Api(s) => Error::Api(s),
                    other => Error::Uncertain {
                        endpoint: endpoint.clone(),
                        detail: other.detail(),
                    },
                });
            }
            tracing::debug!(endpoint = %endpoint, failure = %failure.detail(), "apiserver call failed; trying the next endpoint");
            i = self.advance_from(i);
            // After a whole round of failed endpoints, back off a little.
            tried_in_round += 1;
            if tried_in_round == n {
                tried_in_round = 0;
                rounds = (rounds + 1).min(10);
                let pause = Duration::from_millis(50 * rounds);
                tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now())))
                    .await;
            }
            if Instant::now() >= deadline {
                return Err(match failure {
                    Failure::Api(s) => Error::Api(s),
                    other => Error::Unavailable {
                        deadline: config.deadline,
                        last: format!("{endpoint}: {}", other.detail()),
                    },
                });
            }
        }
    }

    /// One object as Kubernetes JSON. `resource_version` "" reads the newest
    /// (linearizable), "0" any replica's state.
    pub async fn get(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        resource_version: &str,
    ) -> Result<Value> {
        let req = pb::GetRequest {
            r#ref: Some(gvr.to_ref(namespace, name)),
            resource_version: resource_version.to_string(),
        };
        let resp = self
            .with_failover(Idempotence::Read, |mut c| {
                let r = self.request(req.clone());
                async move { c.get(r).await }
            })
            .await?;
        decode(&resp.object)
    }

    /// Objects of `gvr` in `namespace` ("" = all namespaces, or cluster-scoped).
    pub async fn list(
        &self,
        gvr: &Gvr,
        namespace: &str,
        params: &ListParams,
    ) -> Result<ObjectList<Value>> {
        let req = pb::ListRequest {
            r#ref: Some(gvr.to_ref(namespace, "")),
            options: Some(params.to_pb()),
        };
        let resp = self
            .with_failover(Idempotence::Read, |mut c| {
                let r = self.request(req.clone());
                async move { c.list(r).await }
            })
            .await?;
        Ok(ObjectList {
            items: resp
                .items
                .iter()
                .map(|b| decode(b))
                .collect::<Result<_>>()?,
            resource_version: resp.resource_version,
            continue_token: resp.r#continue,
        })
    }

    pub async fn create(
        &self,
        gvr: &Gvr,
        namespace: &str,
        object: &Value,
        params: &WriteParams,
    ) -> Result<Value> {
        let req = pb::CreateRequest {
            r#ref: Some(gvr.to_ref(namespace, "")),
            object: Bytes::from(serde_json::to_vec(object).expect("JSON values encode")),
            options: Some(params.to_pb()),
        };
        self.write(|mut c| {
            let r = self.request(req.clone());
            async move { c.create(r).await }
        })
        .await
    }

    /// Replaces the object; its `metadata.resourceVersion`, when set, must
    /// be current (409 Conflict otherwise).
    pub async fn update(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        object: &Value,
        params: &WriteParams,
    ) -> Result<Value> {
        let req = self.update_request(gvr, namespace, name, object, params);
        self.write(|mut c| {
            let r = self.request(req.clone());
            async move { c.update(r).await }
        })
        .await
    }

    /// Replaces the object's status (the status subresource).
    pub async fn update_status(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        object: &Value,
        params: &WriteParams,
    ) -> Result<Value> {
        let req = self.update_request(gvr, namespace, name, object, params);
        self.write(|mut c| {
            let r = self.request(req.clone());
            async move { c.update_status(r).await }
        })
        .await
    }

    fn update_request(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        object: &Value,
        params: &WriteParams,
    ) -> pb::UpdateRequest {
        pb::UpdateRequest {
            r#ref: Some(gvr.to_ref(namespace, name)),
            object: Bytes::from(serde_json::to_vec(object).expect("JSON values encode")),
            options: Some(params.to_pb()),
        }
    }

    /// Patches the object (`subresource` "" or "status").
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        subresource: &str,
        patch_type: PatchType,
        patch: &[u8],
        params: &WriteParams,
    ) -> Result<Value> {
        use pb::patch_request::Type;
        let req = pb::PatchRequest {
            r#ref: Some(gvr.to_ref(namespace, name)),
            r#type: match patch_type {
                PatchType::Json => Type::Json,
                PatchType::Merge => Type::Merge,
                PatchType::Strategic => Type::Strategic,
            } as i32,
            patch: Bytes::copy_from_slice(patch),
            options: Some(params.to_pb()),
            subresource: subresource.to_string(),
        };
        self.write(|mut c| {
            let r = self.request(req.clone());
            async move { c.patch(r).await }
        })
        .await
    }

    /// Deletes the object; returns it as the delete left it (gone, or marked
    /// for deletion while finalizers remain).
    pub async fn delete(
        &self,
        gvr: &Gvr,
        namespace: &str,
        name: &str,
        params: &DeleteParams,
    ) -> Result<Value> {
        let req = pb::DeleteRequest {
            r#ref: Some(gvr.to_ref(namespace, name)),
            options: Bytes::from(params.to_json()),
        };
        self.write(|mut c| {
            let r = self.request(req.clone());
            async move { c.delete(r).await }
        })
        .await
    }

    /// pods/binding: assigns the pod to `node`, once (409 when it already is
    /// assigned). Returns the bound pod.
    pub async fn bind(
        &self,
        namespace: &str,
        pod: &str,
        node: &str,
        params: &WriteParams,
    ) -> Result<Value> {
        let binding = serde_json::json!({
            "apiVersion": "v1", "kind": "Binding",
            "metadata": {"name": pod, "namespace": namespace},
            "target": {"apiVersion": "v1", "kind": "Node", "name": node},
        });
        let req = pb::BindRequest {
            namespace: namespace.to_string(),
            name: pod.to_string(),
            binding: Bytes::from(serde_json::to_vec(&binding).expect("JSON values encode")),
            options: Some(params.to_pb()),
        };
        self.write(|mut c| {
            let r = self.request(req.clone());
            async move { c.bind(r).await }
        })
        .await
    }

    async fn write<F, Fut>(&self, call: F) -> Result<Value>
    where
        F: Fn(ResourcesClient<Channel>) -> Fut,
        Fut: Future<
            Output = std::result::Result<tonic::Response<pb::ObjectResponse>, tonic::Status>,
        >,
    {
        let resp = self.with_failover(Idempotence::Write, call).await?;
        for w in &resp.warnings {
            tracing::warn!(warning = %w, "apiserver warning");
        }
        decode(&resp.object)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_give_up_by_their_deadline_when_no_endpoint_listens() {
        let dead: Vec<String> = (0..2)
            .map(|_| {
                let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
                l.local_addr().unwrap().to_string()
            })
            .collect();
        let mut config = Config::new(dead);
        config.deadline = Duration::from_millis(600);
        let client = Client::new(config).unwrap();
        let started = Instant::now();
        let err = tokio::time::timeout(
            Duration::from_secs(10),
            client.get(&Gvr::new("", "v1", "pods"), "default", "a", ""),
        )
        .await
        .unwrap()
        .unwrap_err();
        assert!(matches!(err, Error::Unavailable { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn delete_params_become_kubernetes_delete_options() {
        let p = DeleteParams {
            propagation_policy: Some("Orphan".into()),
            precondition_resource_version: Some("12".into()),
            ..Default::default()
        };
        let v: Value = serde_json::from_slice(&p.to_json()).unwrap();
        assert_eq!(v["propagationPolicy"], "Orphan");
        assert_eq!(v["preconditions"]["resourceVersion"], "12");
        assert!(v.get("dryRun").is_none());
    }

    #[test]
    fn requests_carry_the_callers_trace_context() {
        use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
        use rkube_telemetry::propagation::OpenTelemetrySpanExt as _;
        use tracing_subscriber::layer::SubscriberExt as _;
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("client-test")));
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let client = Client::new(Config::new(["127.0.0.1:1"])).unwrap();
                let span = tracing::info_span!("caller");
                let _entered = span.enter();
                let trace_id = span.context().span().span_context().trace_id().to_string();
                let req = client.request(());
                let tp = req.metadata().get("traceparent").expect("traceparent sent");
                assert!(
                    tp.to_str().unwrap().contains(&trace_id),
                    "{tp:?} vs {trace_id}"
                );
            });
        });
    }

    #[test]
    fn a_client_needs_an_endpoint() {
        assert!(matches!(
            Client::new(Config::new(Vec::<String>::new())),
            Err(Error::Invalid(_))
        ));
    }
}
