use std::time::Duration;

use k8s_openapi::api::core::v1::{Event, NodeSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use rkube_client::{DeleteParams, ListParams};

use super::*;
use crate::testing::{eventually, Harness};

fn c(s: &str) -> Cidr {
    Cidr::parse(s).unwrap()
}

#[test]
fn cidrs_parse_normalise_and_print() {
    let cases = [
        ("10.244.0.0/16", Some("10.244.0.0/16")),
        ("10.244.3.7/24", Some("10.244.3.0/24")),
        ("0.0.0.0/0", Some("0.0.0.0/0")),
        ("10.244.0.0", None),
        ("10.244.0.0/33", None),
        ("fd00::/64", None),
        ("nope/8", None),
    ];
    for (text, want) in cases {
        assert_eq!(
            Cidr::parse(text).ok().map(|c| c.to_string()).as_deref(),
            want,
            "{text}"
        );
    }
}

#[test]
fn the_allocator_hands_out_the_lowest_free_subnet_and_takes_returns() {
    let mut a = Allocator::new(c("10.244.0.0/16"), 24).unwrap();
    assert_eq!(a.free(), 256);
    assert!(
        a.occupy(&c("10.244.1.0/24")),
        "an existing assignment is respected"
    );
    assert!(!a.occupy(&c("10.99.0.0/24")), "outside the range: not ours");
    assert!(!a.occupy(&c("10.244.0.0/25")), "another size: not ours");
    let got: Vec<String> = (0..3).map(|_| a.allocate().unwrap().to_string()).collect();
    assert_eq!(got, ["10.244.0.0/24", "10.244.2.0/24", "10.244.3.0/24"]);
    a.release(&c("10.244.2.0/24"));
    assert_eq!(a.allocate().unwrap().to_string(), "10.244.2.0/24");
    assert_eq!(a.free(), 252);
}

#[test]
fn a_full_range_allocates_nothing_and_bad_sizes_are_refused() {
    let mut a = Allocator::new(c("10.0.0.0/23"), 24).unwrap();
    assert!(a.allocate().is_some() && a.allocate().is_some());
    assert_eq!(a.allocate(), None);
    let cases = [
        ("10.0.0.0/16", 8u8, false),
        ("10.0.0.0/16", 33, false),
        ("10.0.0.0/8", 30, false),
        ("10.0.0.0/16", 16, true),
    ];
    for (cluster, len, ok) in cases {
        assert_eq!(
            Allocator::new(c(cluster), len).is_ok(),
            ok,
            "{cluster} /{len}"
        );
    }
}

fn node(name: &str, cidr: Option<&str>) -> Node {
    Node {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        spec: Some(NodeSpec {
            pod_cidr: cidr.map(String::from),
            pod_cidrs: cidr.map(|c| vec![c.to_string()]),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn cidr_of(api: &Api<Node>, name: &str) -> Option<String> {
    api.get(name).await.ok()?.spec?.pod_cidr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_get_distinct_subnets_released_on_delete_and_a_full_range_is_an_event() {
    let h = Harness::start().await;
    let api: Api<Node> = Api::cluster(&h.client);
    // One node predates the controller with a subnet of its own.
    api.create(&node("old", Some("10.0.0.0/24")), &WriteParams::default())
        .await
        .unwrap();
    let ctx = h.context(&[
        "--cluster-cidr",
        "10.0.0.0/23",
        "--node-cidr-mask-size",
        "24",
    ]);
    let task = tokio::spawn(run(ctx.clone()));
    ctx.factory.start(h.shutdown.clone());
    api.create(&node("a", None), &WriteParams::default())
        .await
        .unwrap();
    eventually("a gets the free subnet", Duration::from_secs(10), || {
        let api = api.clone();
        async move { cidr_of(&api, "a").await.as_deref() == Some("10.0.1.0/24") }
    })
    .await;
    // Full: b waits with an event.
    api.create(&node("b", None), &WriteParams::default())
        .await
        .unwrap();
    let events: Api<Event> = Api::namespaced(&h.client, "default");
    eventually(
        "a CIDRNotAvailable event for b",
        Duration::from_secs(10),
        || {
            let events = events.clone();
            async move {
                events
                    .list(&ListParams::default())
                    .await
                    .unwrap()
                    .items
                    .iter()
                    .any(|e| {
                        e.reason.as_deref() == Some("CIDRNotAvailable")
                            && e.involved_object.name.as_deref() == Some("b")
                    })
            }
        },
    )
    .await;
    assert_eq!(cidr_of(&api, "b").await, None);
    // Deleting a frees its subnet, and the node waiting for one gets it at once.
    api.delete("a", &DeleteParams::default()).await.unwrap();
    eventually("b gets a's former subnet", Duration::from_secs(10), || {
        let api = api.clone();
        async move { cidr_of(&api, "b").await.as_deref() == Some("10.0.1.0/24") }
    })
    .await;
    assert_eq!(
        cidr_of(&api, "old").await.as_deref(),
        Some("10.0.0.0/24"),
        "untouched"
    );
    h.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap();
    h.stop().await;
}
