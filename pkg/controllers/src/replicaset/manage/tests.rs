use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::apps::v1::ReplicaSetSpec;
use k8s_openapi::api::core::v1::{Container, PodSpec, PodTemplateSpec};
use rkube_telemetry::propagation::TRACEPARENT_ANNOTATION;

use super::*;

#[test]
fn a_round_creates_or_deletes_at_most_the_burst() {
    // (active, desired, burst, plan)
    let cases = [
        (0, 3, 500, Plan::Create(3)),
        (0, 1000, 500, Plan::Create(500)),
        (500, 1000, 500, Plan::Create(500)),
        (5, 2, 500, Plan::Delete(3)),
        (1200, 0, 500, Plan::Delete(500)),
        (4, 4, 500, Plan::Nothing),
        (0, 0, 500, Plan::Nothing),
    ];
    for (active, desired, burst, want) in cases {
        assert_eq!(plan(active, desired, burst), want, "{active} -> {desired}");
    }
}

#[test]
fn slow_start_doubles_its_batches() {
    let cases: [(usize, usize, &[usize]); 6] = [
        (0, 1, &[]),
        (1, 1, &[1]),
        (3, 1, &[1, 2]),
        (10, 1, &[1, 2, 4, 3]),
        (500, 1, &[1, 2, 4, 8, 16, 32, 64, 128, 245]),
        (10, 4, &[4, 6]),
    ];
    for (count, initial, want) in cases {
        assert_eq!(batch_sizes(count, initial), want, "{count} from {initial}");
        assert_eq!(batch_sizes(count, initial).iter().sum::<usize>(), count);
    }
}

#[tokio::test]
async fn slow_start_stops_after_the_batch_with_the_first_failure() {
    // (count, the calls that fail (1-based), calls made, successes)
    let cases: [(usize, &[usize], usize, usize); 4] = [
        (10, &[], 10, 10),
        (10, &[1], 1, 0),
        // The 2nd call is in the batch of two: that batch finishes, no third batch.
        (10, &[2], 3, 2),
        // The 5th call is in the batch of four (calls 4-7).
        (10, &[5, 6], 7, 5),
    ];
    for (count, failing, want_calls, want_ok) in cases {
        let calls = AtomicUsize::new(0);
        let (ok, err) = slow_start(count, 1, || {
            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
            let fail = failing.contains(&n);
            async move {
                if fail {
                    Err(format!("call {n} failed"))
                } else {
                    Ok(())
                }
            }
        })
        .await;
        assert_eq!(calls.load(Ordering::SeqCst), want_calls, "{failing:?}");
        assert_eq!(ok, want_ok, "{failing:?}");
        assert_eq!(err.is_some(), !failing.is_empty(), "{failing:?}");
    }
}

#[test]
fn a_pod_is_made_from_the_template_with_its_controller_and_trace() {
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let rs = ReplicaSet {
        metadata: ObjectMeta {
            name: Some("web-5d9c".into()),
            namespace: Some("prod".into()),
            uid: Some("rs-uid".into()),
            labels: Some([("rs-only".to_string(), "x".to_string())].into()),
            annotations: Some([(TRACEPARENT_ANNOTATION.to_string(), tp.to_string())].into()),
            ..Default::default()
        },
        spec: Some(ReplicaSetSpec {
            template: Some(PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some([("app".to_string(), "web".to_string())].into()),
                    annotations: Some([("a".to_string(), "b".to_string())].into()),
                    finalizers: Some(vec!["example.com/f".into()]),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![Container {
                        name: "c".into(),
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
    let pod = pod_from_template(&rs);
    let m = &pod.metadata;
    assert_eq!(m.generate_name.as_deref(), Some("web-5d9c-"));
    assert_eq!(m.name, None);
    assert_eq!(m.namespace.as_deref(), Some("prod"));
    assert_eq!(
        m.labels,
        Some([("app".to_string(), "web".to_string())].into())
    );
    let annotations = m.annotations.clone().unwrap();
    assert_eq!(annotations.get("a").map(String::as_str), Some("b"));
    assert_eq!(
        annotations.get(TRACEPARENT_ANNOTATION).map(String::as_str),
        Some(tp)
    );
    assert_eq!(m.finalizers, Some(vec!["example.com/f".to_string()]));
    let owner = &m.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (
            owner.kind.as_str(),
            owner.name.as_str(),
            owner.uid.as_str(),
            owner.controller
        ),
        ("ReplicaSet", "web-5d9c", "rs-uid", Some(true))
    );
    assert_eq!(
        pod.spec.unwrap().containers[0].image.as_deref(),
        Some("busybox")
    );
}
