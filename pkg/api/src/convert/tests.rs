use serde_json::json;

use super::*;

fn v1_event() -> serde_json::Value {
    json!({
        "apiVersion": "events.k8s.io/v1", "kind": "Event",
        "metadata": {"name": "web.1", "namespace": "default"},
        "eventTime": "2025-01-01T00:00:00.000000Z",
        "reportingController": "kubelet", "reportingInstance": "node-1",
        "action": "Pulling", "reason": "Pulling", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "web", "namespace": "default"},
        "note": "Pulling image \"nginx\"",
        "series": {"count": 2, "lastObservedTime": "2025-01-01T00:00:05.000000Z"},
        "deprecatedCount": 0
    })
}

#[test]
fn events_k8s_io_events_convert_to_core_field_names() {
    let core = event_v1_to_core(&v1_event());
    assert_eq!(core["apiVersion"], "v1");
    assert_eq!(core["message"], "Pulling image \"nginx\"");
    assert_eq!(core["involvedObject"]["name"], "web");
    assert_eq!(core["reportingComponent"], "kubelet");
    assert_eq!(core["count"], 0);
    assert!(core.get("note").is_none());
}

#[test]
fn events_survive_a_round_trip_through_the_stored_form() {
    let ev = v1_event();
    assert_eq!(event_core_to_v1(&event_v1_to_core(&ev)), ev);
}

#[test]
fn core_events_without_an_involved_object_still_have_one() {
    let core = event_v1_to_core(&json!({"metadata": {"name": "x"}}));
    assert_eq!(core["involvedObject"], json!({}));
}
