//! Times the ReplicaSet controller making many pods against an in-process apiserver:
//! `cargo run -p rkube-controllers --example replicaset_burst [-- PODS]` (1000 by
//! default). Prints when the last pod was seen by a watch and when the ReplicaSet's
//! status counted them all. An informal measurement until the benchmark command exists.

use std::time::{Duration, Instant};

use clap::Parser;
use k8s_openapi::api::apps::v1::{ReplicaSet, ReplicaSetSpec};
use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use rkube_apiserver::testing::TestApiserver;
use rkube_client::{Api, Client, Config as ClientConfig, TypedEvent, WatchParams, WriteParams};
use rkube_controllers::{replicaset, Config, Context};
use tokio_util::sync::CancellationToken;

#[derive(Parser)]
struct Flags {
    /// Pods to make
    #[arg(default_value_t = 1000)]
    pods: i32,
    #[command(flatten)]
    config: Config,
}

#[tokio::main]
async fn main() {
    let flags = Flags::parse();
    let api = TestApiserver::start().await;
    let client = Client::new(ClientConfig::new([api.addr.clone()])).expect("client");
    let shutdown = CancellationToken::new();
    let ctx = Context::new(client.clone(), flags.config, "burst", shutdown.clone());
    let controller = tokio::spawn(replicaset::run(ctx.clone()));
    ctx.factory.start(shutdown.clone());
    ctx.factory.wait_for_sync().await;

    let labels: std::collections::BTreeMap<String, String> =
        [("app".to_string(), "burst".to_string())].into();
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("burst".into()),
            namespace: Some("default".into()),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            replicas: Some(flags.pods),
            selector: LabelSelector {
                match_labels: Some(labels.clone()),
                ..Default::default()
            },
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(labels),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "main".into(),
                        image: Some("busybox".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            }),
            ..Default::default()
        }),
        status: None,
    };
    let pods: Api<Pod> = Api::namespaced(&client, "default");
    let mut watch = pods
        .watch(WatchParams::default())
        .await
        .expect("a pod watch");
    let rss: Api<ReplicaSet> = Api::namespaced(&client, "default");
    let started = Instant::now();
    rss.create(&rs, &WriteParams::default())
        .await
        .expect("the ReplicaSet is created");
    let mut seen = 0;
    while seen < flags.pods {
        match tokio::time::timeout(Duration::from_secs(60), watch.next()).await {
            Ok(Some(Ok(TypedEvent::Added(_)))) => seen += 1,
            Ok(Some(Ok(_))) => {}
            other => panic!("the pod watch ended after {seen} pods: {other:?}"),
        }
    }
    let all_pods = started.elapsed();
    loop {
        let s = rss.get("burst").await.expect("the ReplicaSet").status;
        if s.is_some_and(|s| s.replicas == flags.pods) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let counted = started.elapsed();
    println!(
        "{} pods: all created (seen by a watch) after {:.3} s, counted in status.replicas after {:.3} s",
        flags.pods,
        all_pods.as_secs_f64(),
        counted.as_secs_f64()
    );
    shutdown.cancel();
    let _ = controller.await;
    api.stop().await;
}
