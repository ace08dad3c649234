//! Tests of `rkube bench api`'s pure parts: the schedule, manifests, event parsing,
//! `/proc` parsing, goals and the table.

use std::time::Duration;

use bytes::BytesMut;

use super::http::take_line;
use super::report::*;
use super::workload::*;
use super::ApiBenchOptions;
use crate::bench::report::MachineInfo;
use crate::bench::stats::Summary;

#[test]
fn open_loop_schedule_spaces_requests_evenly_from_zero() {
    let s = open_loop_schedule(100.0, Duration::from_secs(2));
    assert_eq!(s.len(), 200);
    assert_eq!(s[0], Duration::ZERO);
    assert_eq!(s[1], Duration::from_millis(10));
    assert_eq!(s[199], Duration::from_millis(1990));
    // Fractional rates keep their spacing; nothing is scheduled past the duration.
    let s = open_loop_schedule(2.5, Duration::from_secs(2));
    assert_eq!(s, [0, 400, 800, 1200, 1600].map(Duration::from_millis));
    assert!(open_loop_schedule(0.0, Duration::from_secs(5)).is_empty());
    assert!(open_loop_schedule(100.0, Duration::ZERO).is_empty());
}

#[test]
fn pod_manifest_looks_like_a_deployment_pod_of_one_to_two_kib() {
    let pod = pod_manifest(&pod_name(42), PODS_NAMESPACE);
    let len = pod.to_string().len();
    assert!((1024..=2048).contains(&len), "{len} bytes");
    assert_eq!(pod["metadata"]["name"], "web-7d4b9c8f6d-00042");
    assert_eq!(pod["metadata"]["ownerReferences"][0]["kind"], "ReplicaSet");
    assert_eq!(pod["spec"]["containers"][0]["name"], "web");
}

#[test]
fn write_and_read_calls_cycle_over_the_target_pods() {
    let w = write_call(7, 5);
    assert_eq!(w.method, http::Method::PATCH);
    assert_eq!(w.path, "/api/v1/namespaces/bench/pods/web-7d4b9c8f6d-00002");
    assert_eq!(w.content_type, Some("application/merge-patch+json"));
    let body: serde_json::Value = serde_json::from_slice(&w.body).unwrap();
    assert_eq!(
        body["metadata"]["annotations"]["rkube.io/bench-counter"],
        "7"
    );
    let r = read_call(5, 5);
    assert_eq!(r.method, http::Method::GET);
    assert_eq!(r.path, "/api/v1/namespaces/bench/pods/web-7d4b9c8f6d-00000");
    assert!(r.body.is_empty());
}

#[test]
fn sent_time_is_read_from_modified_events_only() {
    let line = format!(
        r#"{{"type":"MODIFIED","object":{{"kind":"Pod","metadata":{{"name":"watched-1","annotations":{{"{SENT_ANNOTATION}":"1700000000123456789"}}}},"spec":{{}}}}}}"#
    );
    assert_eq!(sent_nanos(line.as_bytes()), Some(1_700_000_000_123_456_789));
    let bookmark =
        r#"{"type":"BOOKMARK","object":{"kind":"Pod","metadata":{"resourceVersion":"12"}}}"#;
    assert_eq!(sent_nanos(bookmark.as_bytes()), None);
    let other = r#"{"type":"MODIFIED","object":{"metadata":{"name":"x"}}}"#;
    assert_eq!(sent_nanos(other.as_bytes()), None);
    assert_eq!(sent_nanos(b"not json"), None);
}

#[test]
fn lines_are_split_off_whole_and_blank_lines_skipped() {
    let mut buf = BytesMut::from(&b"{\"a\":1}\n\n{\"b\":"[..]);
    assert_eq!(take_line(&mut buf).as_deref(), Some(&b"{\"a\":1}"[..]));
    assert_eq!(take_line(&mut buf), None);
    assert_eq!(&buf[..], b"{\"b\":");
    buf.extend_from_slice(b"2}\n");
    assert_eq!(take_line(&mut buf).as_deref(), Some(&b"{\"b\":2}"[..]));
    assert!(buf.is_empty());
}

#[test]
fn proc_status_fields_parse_in_kib() {
    let status =
        "Name:\trkube-apiserver\nVmPeak:\t  900000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  153600 kB\n";
    assert_eq!(parse_status_kib(status, "VmRSS"), Some(153_600));
    assert_eq!(parse_status_kib(status, "VmHWM"), Some(204_800));
    assert_eq!(parse_status_kib(status, "VmSwap"), None);
    // A field whose name is a prefix of another is not confused with it.
    assert_eq!(parse_status_kib("VmRSSX:\t1 kB\n", "VmRSS"), None);
}

#[test]
fn options_refuse_what_cannot_run() {
    assert!(ApiBenchOptions::default().validate().is_ok());
    let bad = [
        ApiBenchOptions {
            pods: 0,
            ..Default::default()
        },
        ApiBenchOptions {
            clients: 0,
            ..Default::default()
        },
        ApiBenchOptions {
            rate: 0.0,
            ..Default::default()
        },
        ApiBenchOptions {
            watch_rate: -1.0,
            ..Default::default()
        },
    ];
    for o in bad {
        assert!(o.validate().unwrap_err().is_usage(), "{o:?}");
    }
    // Without watchers the watch rate does not matter.
    assert!(ApiBenchOptions {
        watchers: 0,
        watch_rate: 0.0,
        ..Default::default()
    }
    .validate()
    .is_ok());
}

fn summary(p50_ms: u64, p99_ms: u64) -> Summary {
    Summary {
        count: 2000,
        p50_us: p50_ms * 1000,
        p99_us: p99_ms * 1000,
        max_us: p99_ms * 1000 + 1,
        mean_us: p50_ms * 1000,
    }
}

fn load(op: &str, clients: usize, rate: f64, p50: u64, p99: u64) -> LoadResult {
    LoadResult {
        operation: op.into(),
        clients,
        target_rate: rate,
        requests: 2000,
        errors: 0,
        error_samples: vec![],
        seconds: 20.0,
        per_sec: 100.0,
        latency: summary(p50, p99),
        cpu: CpuUse {
            seconds: 20.0,
            server_cpu_seconds: 10.0,
            client_cpu_seconds: 1.0,
            other_cpu_seconds: 0.5,
        },
    }
}

fn report() -> ApiBenchReport {
    ApiBenchReport {
        machine: MachineInfo {
            nproc: 2,
            memory_mib: 24105,
            kernel: "6.18".into(),
            fsync_p50_us: 90,
            fsync_p99_us: 490,
            data_dir: "/tmp/x".into(),
        },
        parameters: ApiParameters {
            replicas: 3,
            pods: 10_000,
            pod_manifest_bytes: 1600,
            clients: 64,
            rate: 100.0,
            duration_s: 20.0,
            watchers: 1000,
            watch_rate: 10.0,
            watch_duration_s: 20.0,
            node_watchers: 10_000,
            node_watch_rate: 50.0,
            transport: super::TRANSPORT.into(),
            rkube_args: vec![],
        },
        version: "rkube-apiserver 0.1.0".into(),
        startup_ms: 1500.0,
        create: LoadResult {
            requests: 10_000,
            per_sec: 812.0,
            ..load("POST pods", 64, 0.0, 70, 210)
        },
        write: Some(load("PATCH pod", 0, 100.0, 8, 45)),
        read: Some(load("GET pod", 0, 100.0, 3, 60)),
        watch: Some(WatchResult {
            watchers: 1000,
            open_errors: 0,
            open_seconds: 4.0,
            writes: 200,
            write_errors: 0,
            write_rate: 10.0,
            expected: 200_000,
            delivered: 199_990,
            latency: summary(20, 90),
            error_samples: vec![],
            cpu: CpuUse {
                seconds: 20.0,
                other_cpu_seconds: 6.0,
                ..Default::default()
            },
        }),
        node_watch: None,
        memory: vec![
            ReplicaMemory {
                name: "a1".into(),
                pid: 1,
                rss_mib_after_pods: 120.0,
                rss_mib_end: 150.0,
                peak_mib: 160.0,
            },
            ReplicaMemory {
                name: "a2".into(),
                pid: 2,
                rss_mib_after_pods: 310.4,
                rss_mib_end: 320.0,
                peak_mib: 330.0,
            },
        ],
        goals: vec![],
    }
    .with_goals()
}

#[test]
fn goals_check_each_aim_of_the_issue() {
    let r = report();
    let verdicts: Vec<(&str, Option<bool>)> =
        r.goals.iter().map(|g| (g.goal.as_str(), g.met)).collect();
    assert_eq!(
        verdicts,
        [
            (
                "PATCH pod at 100/s: p99 <= 1 s (Kubernetes SLO)",
                Some(true)
            ),
            ("PATCH pod at 100/s: p99 <= 50 ms", Some(true)),
            ("GET pod at 100/s: p99 <= 1 s (Kubernetes SLO)", Some(true)),
            ("GET pod at 100/s: p99 <= 50 ms", Some(false)),
            // Fast enough, but 10 deliveries were lost.
            (
                "watch delivery to 1000 watchers: p99 <= 100 ms, none lost",
                Some(false)
            ),
            (
                "apiserver memory holding 10000 pods <= 300 MiB per replica",
                Some(false)
            ),
        ]
    );
    assert_eq!(r.goals[5].detail, "largest RSS 310 MiB (a2)");
}

#[test]
fn failed_requests_fail_a_latency_goal() {
    let mut r = report();
    let w = r.write.as_mut().unwrap();
    w.errors = 1;
    w.error_samples = vec!["HTTP 500: boom".into()];
    let r = r.with_goals();
    assert_eq!(r.goals[0].met, Some(false));
    assert_eq!(
        r.goals[0].detail,
        "p99 45.0 ms over 2000 requests, 1 failed"
    );
    assert!(r
        .render_table()
        .contains("note: PATCH pod: 1 requests failed, e.g. HTTP 500: boom"));
}

#[test]
fn skipped_phases_are_neither_shown_nor_checked() {
    let mut r = report();
    r.write = None;
    r.read = None;
    r.watch = None;
    let r = r.with_goals();
    assert_eq!(r.goals.len(), 1);
    let table = r.render_table();
    assert!(!table.contains("PATCH"));
    assert!(!table.contains("watch"));
}

#[test]
fn table_shows_results_aims_verdicts_and_disturbance() {
    let table = report().render_table();
    let expected_rows = [
        "create 10000 pods, 64 clients: pods/s",
        "PATCH pod at 100/s: p99",
        "GET pod at 100/s: p50",
        "watch, 1000 watchers, 10 writes/s: p99",
        "watch, 1000 watchers, 10 writes/s: delivered",
        "RSS of a2 holding 10000 pods",
        "RSS of a1 at the end (peak)",
    ];
    for row in expected_rows {
        assert!(table.contains(row), "missing {row:?} in\n{table}");
    }
    let line = |start: &str| {
        table
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("PATCH pod at 100/s: p99"),
        "PATCH pod at 100/s: p99 45.0 ms <= 50 ms"
    );
    assert_eq!(
        line("create 10000 pods, 64 clients: pods/s"),
        "create 10000 pods, 64 clients: pods/s 812"
    );
    assert_eq!(
        line("watch, 1000 watchers, 10 writes/s: delivered"),
        "watch, 1000 watchers, 10 writes/s: delivered 199990 of 200000 all"
    );
    assert_eq!(
        line("RSS of a1 at the end"),
        "RSS of a1 at the end (peak) 150 MiB (160)"
    );
    assert!(table.contains("goal MISSED GET pod at 100/s: p99 <= 50 ms: p99 60.0 ms"));
    assert!(table.contains("goal MET    PATCH pod at 100/s: p99 <= 50 ms"));
    // The watch phase had 6 s of other CPU in 20 s: 30% of a CPU.
    assert!(table.contains(
        "warning: watch: other processes used 30% of a CPU during the phase; the numbers are disturbed"
    ));
    assert!(!table.contains("warning: writes"));
    assert!(table.contains("note: watch: 0 streams failed to open, 0 writes failed, 10 of 200000"));
    let json: serde_json::Value = serde_json::from_str(&report().to_json()).unwrap();
    assert_eq!(json["create"]["latency"]["p99_us"], 210_000);
    assert_eq!(json["goals"][3]["met"], false);
    assert_eq!(json["memory"][1]["name"], "a2");
}

#[test]
fn node_pods_are_bound_to_their_node_and_watched_by_its_field_selector() {
    let pod = node_pod_manifest(7);
    assert_eq!(pod["metadata"]["name"], "on-node-7");
    assert_eq!(pod["metadata"]["namespace"], NODES_NAMESPACE);
    assert_eq!(pod["spec"]["nodeName"], "node-7");
    assert_eq!(
        node_watch_path(7, "42"),
        "/api/v1/pods?watch=true&fieldSelector=spec.nodeName%3Dnode-7&resourceVersion=42\
         &allowWatchBookmarks=true&timeoutSeconds=3600"
    );
}

#[test]
fn a_node_watcher_tells_its_own_pods_from_other_nodes_pods() {
    let line = |node: &str| {
        format!(
            r#"{{"type":"MODIFIED","object":{{"metadata":{{"annotations":{{"{SENT_ANNOTATION}":"5"}}}},"spec":{{"nodeName":"{node}"}}}}}}"#
        )
    };
    assert_eq!(node_delivery(3, line("node-3").as_bytes()), Some((5, true)));
    // node-30 starts like node-3: only the whole name counts.
    assert_eq!(
        node_delivery(3, line("node-30").as_bytes()),
        Some((5, false))
    );
    let bookmark = r#"{"type":"BOOKMARK","object":{"metadata":{"resourceVersion":"9"}}}"#;
    assert_eq!(node_delivery(3, bookmark.as_bytes()), None);
}

fn node_watch(misdelivered: usize, p99_ms: u64) -> NodeWatchResult {
    NodeWatchResult {
        watchers: 10_000,
        open_errors: 0,
        open_seconds: 30.0,
        writes: 1000,
        write_errors: 0,
        write_rate: 50.0,
        expected: 1000,
        delivered: 1000,
        misdelivered,
        latency: summary(10, p99_ms),
        error_samples: vec![],
        open_cpu: CpuUse {
            seconds: 30.0,
            server_cpu_seconds: 12.0,
            ..Default::default()
        },
        cpu: CpuUse {
            seconds: 20.0,
            server_cpu_seconds: 5.0,
            ..Default::default()
        },
        rss_mib_before: vec![80.0, 81.0, 90.0],
        rss_mib_open: vec![180.0, 181.0, 190.4],
        rss_mib_end: vec![181.0, 182.0, 191.0],
    }
}

#[test]
fn the_node_watch_is_checked_for_latency_losses_and_misdeliveries() {
    let mut r = report();
    r.node_watch = Some(node_watch(0, 40));
    let r = r.with_goals();
    let g = r
        .goals
        .iter()
        .find(|g| {
            g.goal
                .starts_with("watch delivery to 10000 watchers by spec.nodeName")
        })
        .expect("a node watch goal");
    assert_eq!(g.met, Some(true), "{g:?}");
    let table = r.render_table();
    let line = |start: &str| {
        table
            .lines()
            .find(|l| l.starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{table}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let label = "node watch, 10000 watchers by spec.nodeName, 50 writes/s";
    assert_eq!(
        line(&format!("{label}: server CPU")),
        format!("{label}: server CPU 0.25 CPU (5.0 s in 20.0 s)")
    );
    assert_eq!(
        line(&format!("{label}: RSS per replica, streams open")),
        format!("{label}: RSS per replica, streams open 180 / 181 / 190 MiB")
    );

    // One event at the wrong watcher fails the goal even when fast.
    let mut r = report();
    r.node_watch = Some(node_watch(1, 40));
    let r = r.with_goals();
    assert!(r
        .goals
        .iter()
        .any(|g| g.goal.contains("by spec.nodeName") && g.met == Some(false)));
    assert!(r.render_table().contains("1 delivered to the wrong node"));
}

#[test]
fn a_node_watch_without_a_rate_is_refused() {
    let o = ApiBenchOptions {
        node_watchers: 10,
        node_watch_rate: 0.0,
        ..Default::default()
    };
    assert!(o.validate().unwrap_err().is_usage());
    assert!(ApiBenchOptions {
        node_watchers: 0,
        node_watch_rate: 0.0,
        ..Default::default()
    }
    .validate()
    .is_ok());
}
