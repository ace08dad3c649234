use super::*;

#[test]
fn metric_names_must_follow_the_rkube_component_what_unit_convention() {
    for good in [
        "rkube_apiserver_request_duration_seconds",
        "rkube_scheduler_binds",
        "rkube_store_raft_commit_index",
        "rkube_kubelet_pod_start_seconds",
    ] {
        assert!(is_valid_name(good), "{good} should be accepted");
    }
    for bad in [
        "apiserver_requests",
        "rkube_requests",
        "rkube_",
        "rkube_Apiserver_requests",
        "rkube_apiserver__requests",
        "rkube_apiserver_requests_",
        "rkube_apiserver_requests_total",
        "rkube_apiserver-requests",
    ] {
        assert!(!is_valid_name(bad), "{bad} should be rejected");
    }
}

#[test]
fn latency_buckets_span_a_hundred_microseconds_to_seconds() {
    let buckets: Vec<f64> = latency_buckets().collect();
    assert_eq!(buckets.len(), 16);
    assert!((buckets[0] - 0.0001).abs() < 1e-12);
    assert!(buckets.windows(2).all(|pair| pair[0] < pair[1]));
    let last = buckets[buckets.len() - 1];
    assert!(last > 3.0 && last < 4.0, "last bucket {last}");
}
