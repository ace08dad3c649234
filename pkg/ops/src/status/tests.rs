use serde_json::json;

use super::*;
use crate::layout::ClusterLayout;

fn layout() -> ClusterLayout {
    ClusterLayout::plan(3, &[6443, 6444, 6445], &[2380, 2381, 2382]).unwrap()
}

fn answered(id: u64, role: &str, term: u64, commit: u64, applied: u64) -> Probe {
    Probe::Answered(StatusResponse {
        id,
        role: role.into(),
        term,
        leader: 1,
        commit_index: commit,
        applied_index: applied,
        ..Default::default()
    })
}

fn report() -> StatusReport {
    let l = layout();
    StatusReport {
        apiservers: vec![
            ApiserverStatus::from_probe(
                &l.apiservers[0],
                Some(4242),
                &answered(1, "leader", 3, 812, 812),
            ),
            ApiserverStatus::from_probe(
                &l.apiservers[1],
                Some(4243),
                &answered(2, "follower", 3, 812, 811),
            ),
            ApiserverStatus::from_probe(
                &l.apiservers[2],
                None,
                &Probe::Unreachable(super::Unreachable::TimedOut(Duration::from_secs(2))),
            ),
        ],
        components: vec![],
        nodes: vec![],
    }
}

#[test]
fn json_has_exactly_the_contracts_keys_with_nulls_for_a_down_replica() {
    let value: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    assert_eq!(
        value,
        json!({
            "apiservers": [
                {"name": "a1", "pid": 4242, "role": "leader", "term": 3, "commit_index": 812,
                 "applied_index": 812, "api_address": "127.0.0.1:6443", "peer_address": "127.0.0.1:2380"},
                {"name": "a2", "pid": 4243, "role": "follower", "term": 3, "commit_index": 812,
                 "applied_index": 811, "api_address": "127.0.0.1:6444", "peer_address": "127.0.0.1:2381"},
                {"name": "a3", "pid": null, "role": "down", "term": null, "commit_index": null,
                 "applied_index": null, "api_address": "127.0.0.1:6445", "peer_address": "127.0.0.1:2382"}
            ],
            "components": [],
            "nodes": []
        })
    );
}

#[test]
fn json_keeps_its_key_order_for_people_reading_it() {
    let json = report().to_json();
    let keys = [
        "\"name\"",
        "\"pid\"",
        "\"role\"",
        "\"term\"",
        "\"commit_index\"",
        "\"applied_index\"",
        "\"api_address\"",
        "\"peer_address\"",
    ];
    let positions: Vec<usize> = keys.iter().map(|k| json.find(k).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{json}");
    assert!(json.ends_with("}\n"));
}

#[test]
fn components_and_nodes_serialize_in_the_contracts_shape() {
    let report = StatusReport {
        apiservers: vec![],
        components: vec![ComponentStatus {
            name: "controller-manager".into(),
            kind: "controller-manager".into(),
            pid: Some(4243),
            healthy: true,
            leader: Some(true),
        }],
        nodes: vec![NodeStatus {
            name: "n1".into(),
            ready: true,
        }],
    };
    let value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(
        value["components"][0],
        json!({"name": "controller-manager", "kind": "controller-manager", "pid": 4243, "healthy": true, "leader": true})
    );
    assert_eq!(value["nodes"][0], json!({"name": "n1", "ready": true}));
    let back: StatusReport = serde_json::from_value(value).unwrap();
    assert_eq!(back, report);
}

#[test]
fn table_aligns_columns_like_kubectl() {
    assert_eq!(
        report().render_table(),
        "\
NAME   PID      ROLE       TERM     COMMIT   APPLIED   API              PEER
a1     4242     leader     3        812      812       127.0.0.1:6443   127.0.0.1:2380
a2     4243     follower   3        812      811       127.0.0.1:6444   127.0.0.1:2381
a3     <none>   down       <none>   <none>   <none>    127.0.0.1:6445   127.0.0.1:2382
"
    );
}

#[test]
fn table_adds_components_and_nodes_only_when_there_are_any() {
    let mut r = report();
    assert!(!r.render_table().contains("COMPONENT"));
    r.components.push(ComponentStatus {
        name: "scheduler".into(),
        kind: "scheduler".into(),
        pid: None,
        healthy: false,
        leader: None,
    });
    r.nodes.push(NodeStatus {
        name: "n1".into(),
        ready: true,
    });
    let table = r.render_table();
    assert!(table.contains("\nCOMPONENT   KIND        PID      HEALTHY   LEADER\nscheduler   scheduler   <none>   false     <none>\n"), "{table}");
    assert!(table.ends_with("\nNODE   READY\nn1     true\n"), "{table}");
}

#[test]
fn leader_is_the_single_replica_claiming_it() {
    let r = report();
    assert_eq!(r.leader().map(|a| a.name.as_str()), Some("a1"));
    assert_eq!(r.reachable(), 2);
    let mut split = r.clone();
    split.apiservers[1].role = "leader".into();
    assert!(split.leader().is_none());
}

#[tokio::test]
async fn status_of_a_dir_without_a_cluster_says_how_to_start_one() {
    let tmp = tempfile::tempdir().unwrap();
    let err = tokio::time::timeout(Duration::from_secs(10), status(tmp.path()))
        .await
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, crate::Error::NoCluster { .. }), "{err}");
}

#[tokio::test]
async fn status_reports_replicas_nobody_serves_as_down() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ClusterDir::create(tmp.path()).unwrap();
    let layout = ClusterLayout::allocate(2, None, None).unwrap();
    dir.save_layout(&layout).unwrap();
    let report = tokio::time::timeout(Duration::from_secs(10), status(tmp.path()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.apiservers.len(), 2);
    for (a, spec) in report.apiservers.iter().zip(&layout.apiservers) {
        assert_eq!(a.role, ROLE_DOWN);
        assert_eq!(a.pid, None);
        assert_eq!(a.api_address, spec.api_address.to_string());
    }
}

#[tokio::test]
async fn a_probe_of_a_closed_port_names_the_refused_connection() {
    let addr = SocketAddr::from(([127, 0, 0, 1], crate::ports::free_port().unwrap()));
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        probe(addr, None, Duration::from_secs(2)),
    )
    .await
    .expect("a refused connect fails fast");
    let Probe::Unreachable(why) = answer else {
        panic!("nothing listens on {addr}, yet it answered")
    };
    let text = crate::error_chain(&why);
    assert!(
        text.starts_with(&format!("Status call to {addr} failed")),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
}

#[test]
fn the_component_named_before_the_first_underscore_of_the_holder_holds_the_lease() {
    let lease =
        |holder: &str| json!({"spec": {"holderIdentity": holder, "leaseDurationSeconds": 15}});
    let read = LeaseRead::of(Some(&lease("scheduler_6f1c2b")));
    assert_eq!(read, LeaseRead::Held("scheduler_6f1c2b".into()));
    assert_eq!(read.held_by("scheduler"), Some(true));
    assert_eq!(read.held_by("scheduler-2"), Some(false));
    assert_eq!(read.held_by("controller-manager"), Some(false));
    let underscores = LeaseRead::of(Some(&lease("controller-manager_a_b")));
    assert_eq!(underscores.held_by("controller-manager"), Some(true));
    // No Lease, or one nobody holds: nobody leads. Unreadable: unknown.
    assert_eq!(LeaseRead::of(None).held_by("scheduler"), Some(false));
    assert_eq!(LeaseRead::of(Some(&lease(""))), LeaseRead::Free);
    assert_eq!(LeaseRead::of(Some(&json!({"spec": {}}))), LeaseRead::Free);
    assert_eq!(LeaseRead::Unknown.held_by("scheduler"), None);
}

#[test]
fn a_node_is_ready_when_its_ready_condition_is_true() {
    let node = |conditions: serde_json::Value| json!({"metadata": {"name": "n1"}, "status": {"conditions": conditions}});
    let ready = node(json!([
        {"type": "MemoryPressure", "status": "False"},
        {"type": "Ready", "status": "True"}
    ]));
    assert_eq!(
        NodeStatus::of(&ready),
        Some(NodeStatus {
            name: "n1".into(),
            ready: true
        })
    );
    for conditions in [
        json!([{"type": "Ready", "status": "False"}]),
        json!([{"type": "Ready", "status": "Unknown"}]),
        json!([{"type": "MemoryPressure", "status": "True"}]),
        json!(null),
    ] {
        assert_eq!(
            NodeStatus::of(&node(conditions.clone())).map(|n| n.ready),
            Some(false),
            "{conditions}"
        );
    }
    assert_eq!(NodeStatus::of(&json!({"metadata": {}})), None);
}

/// A one-request HTTP server answering `code` to whatever it is asked.
async fn answer_once(code: u16) -> SocketAddr {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 1024];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(format!("HTTP/1.1 {code} X\r\nContent-Length: 0\r\n\r\n").as_bytes())
            .await;
    });
    addr
}

#[tokio::test]
async fn readyz_passes_on_200_only_and_says_why_otherwise() {
    tokio::time::timeout(Duration::from_secs(20), async {
        let ok = answer_once(200).await;
        readyz(ok, Duration::from_secs(5)).await.unwrap();
        let not_ready = answer_once(503).await;
        let err = readyz(not_ready, Duration::from_secs(5)).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("http://{not_ready}/readyz answered 503")
        );
        let closed = SocketAddr::from(([127, 0, 0, 1], crate::ports::free_port().unwrap()));
        let err = readyz(closed, Duration::from_secs(5)).await.unwrap_err();
        assert!(
            crate::error_chain(&err).contains("Connection refused"),
            "{}",
            crate::error_chain(&err)
        );
    })
    .await
    .unwrap();
}
