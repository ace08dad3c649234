//! The process-wide registry served over HTTP.

use std::time::Duration;

use axum::body::Body;
use http::{header, Request, StatusCode};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use rkube_telemetry::metrics;
use tower::ServiceExt;

#[tokio::test]
async fn the_metrics_route_serves_a_registered_counter_as_openmetrics_text() {
    tokio::time::timeout(Duration::from_secs(10), async {
        let pulls = Counter::<u64>::default();
        metrics::register(
            "rkube_test_image_pulls",
            "Images pulled by the test",
            pulls.clone(),
        )
        .unwrap();
        pulls.inc_by(3);

        let response = metrics::router()
            .oneshot(Request::get("/metrics").body(Body::empty()).unwrap())
            .await
            .unwrap();

        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[header::CONTENT_TYPE],
            metrics::CONTENT_TYPE_OPENMETRICS
        );
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let text = std::str::from_utf8(&body).unwrap();
        assert!(
            text.contains("# HELP rkube_test_image_pulls Images pulled by the test."),
            "{text}"
        );
        assert!(
            text.contains("# TYPE rkube_test_image_pulls counter"),
            "{text}"
        );
        assert!(
            text.contains("\nrkube_test_image_pulls_total 3\n"),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
    })
    .await
    .expect("test timed out");
}

#[test]
fn a_latency_histogram_family_encodes_its_buckets_in_seconds() {
    let family = Family::<Vec<(String, String)>, Histogram>::new_with_constructor(
        metrics::latency_histogram as fn() -> Histogram,
    );
    metrics::register(
        "rkube_test_request_duration_seconds",
        "Request latency in the test",
        family.clone(),
    )
    .unwrap();
    family
        .get_or_create(&vec![("verb".to_owned(), "get".to_owned())])
        .observe(0.00015);

    let text = metrics::encode();
    assert!(
        text.contains(r#"rkube_test_request_duration_seconds_bucket{le="0.0001",verb="get"} 0"#)
            || text.contains(
                r#"rkube_test_request_duration_seconds_bucket{verb="get",le="0.0001"} 0"#
            ),
        "{text}"
    );
    assert!(
        text.contains(r#"rkube_test_request_duration_seconds_count{verb="get"} 1"#),
        "{text}"
    );
}

#[test]
fn registering_a_name_twice_or_a_badly_named_metric_is_an_error() {
    let gauge = prometheus_client::metrics::gauge::Gauge::<i64>::default();
    metrics::register("rkube_test_queue_depth", "Queue depth", gauge.clone()).unwrap();
    assert!(matches!(
        metrics::register("rkube_test_queue_depth", "Queue depth", gauge.clone()),
        Err(metrics::Error::AlreadyRegistered { .. })
    ));
    assert!(matches!(
        metrics::register("queue_depth", "Queue depth", gauge),
        Err(metrics::Error::InvalidName { .. })
    ));
}
