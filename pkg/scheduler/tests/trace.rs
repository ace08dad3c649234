//! A scheduling attempt's spans reach an OTLP receiver in the trace the pod's
//! `tracing.k8s.io/traceparent` annotation names, with the queue wait, filter and bind as
//! children and the chosen node as an attribute. This binary owns its process's global
//! subscriber, so it holds this one test.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use rkube_apiserver::testing::TestApiserver;
use rkube_client::{Api, Client, Config as ClientConfig, WriteParams};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

struct Receiver(mpsc::UnboundedSender<ExportTraceServiceRequest>);

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let _ = self.0.send(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

fn start_receiver() -> (
    std::net::SocketAddr,
    mpsc::UnboundedReceiver<ExportTraceServiceRequest>,
) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(Receiver(tx)))
                .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener))
                .await
        })
    });
    (addr, rx)
}

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_continues_the_pods_trace_with_queue_wait_filter_and_bind() {
    tokio::time::timeout(Duration::from_secs(90), async {
        let (addr, mut exports) = start_receiver();
        let args = rkube_telemetry::TelemetryArgs {
            otlp_endpoint: Some(format!("http://{addr}")),
            ..Default::default()
        };
        let guard = rkube_telemetry::init("rkube-scheduler", &args).expect("telemetry");
        let api = TestApiserver::start().await;
        let client = Client::new(ClientConfig::new([api.addr.clone()])).unwrap();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(rkube_scheduler::run(
            client.clone(),
            rkube_scheduler::Settings::default(),
            "test".into(),
            shutdown.clone(),
        ));
        let node: Node = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Node", "metadata": {"name": "n1"},
            "status": {"allocatable": {"cpu": "4", "memory": "8Gi", "pods": "110"}}
        }))
        .unwrap();
        Api::<Node>::cluster(&client)
            .create(&node, &WriteParams::default())
            .await
            .unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "traced", "namespace": "default", "annotations": {
                "tracing.k8s.io/traceparent": format!("00-{TRACE_ID}-b7ad6b7169203331-01")}},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]}
        }))
        .unwrap();
        let pods = Api::<Pod>::namespaced(&client, "default");
        pods.create(&pod, &WriteParams::default()).await.unwrap();
        loop {
            let p = pods.get("traced").await.unwrap();
            if p.spec.and_then(|s| s.node_name).is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Give the bind task a moment to end its spans, then flush.
        tokio::time::sleep(Duration::from_millis(300)).await;
        shutdown.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
        api.stop().await;
        guard.shutdown().expect("flush");

        let mut spans: Vec<Span> = Vec::new();
        let want = [
            "scheduler.schedule_pod",
            "scheduler.queue_wait",
            "scheduler.filter",
            "scheduler.bind",
        ];
        while let Ok(Some(req)) = tokio::time::timeout(Duration::from_secs(5), exports.recv()).await
        {
            for rs in req.resource_spans {
                for ss in rs.scope_spans {
                    spans.extend(
                        ss.spans
                            .into_iter()
                            .filter(|s| hex(&s.trace_id) == TRACE_ID),
                    );
                }
            }
            if want.iter().all(|w| spans.iter().any(|s| s.name == *w)) {
                break;
            }
        }
        let named = |n: &str| {
            spans.iter().find(|s| s.name == n).unwrap_or_else(|| {
                panic!(
                    "no {n} span in the pod's trace: {:?}",
                    spans.iter().map(|s| &s.name).collect::<Vec<_>>()
                )
            })
        };
        let attempt = named("scheduler.schedule_pod");
        for child in ["scheduler.queue_wait", "scheduler.filter", "scheduler.bind"] {
            assert_eq!(
                named(child).parent_span_id,
                attempt.span_id,
                "{child} is the attempt's child"
            );
        }
        let node_attr = attempt
            .attributes
            .iter()
            .find(|kv| kv.key == "node")
            .and_then(|kv| kv.value.as_ref()?.value.as_ref());
        assert!(
            matches!(node_attr, Some(AnyValue::StringValue(n)) if n == "n1"),
            "node attribute: {node_attr:?}"
        );
    })
    .await
    .expect("the test finishes in time");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
