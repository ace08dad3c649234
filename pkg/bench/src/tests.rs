//! Tests of the benchmark's pure parts: percentiles, command lines, leader agreement,
//! `/proc` parsing, goals and the table.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use super::cluster::{agreed_leader, etcd_args, plan_members, rkube_args, MemberStatus, System};
use super::report::*;
use super::stats::{percentile, Summary};
use super::workload::{bench_key, make_value, parse_busy_ticks, parse_cpu_ticks};
use super::*;

fn strings(args: &[OsString]) -> Vec<String> {
    args.iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn percentile_uses_nearest_rank() {
    let v: Vec<u64> = (1..=100).collect();
    assert_eq!(percentile(&v, 0.50), Some(50));
    assert_eq!(percentile(&v, 0.99), Some(99));
    assert_eq!(percentile(&v, 1.0), Some(100));
    assert_eq!(percentile(&v, 0.0), Some(1));
    assert_eq!(percentile(&[7], 0.99), Some(7));
    assert_eq!(percentile(&[], 0.5), None);
    // 20 samples (the default number of kills): p99 is the largest, p50 the 10th.
    let v: Vec<u64> = (1..=20).collect();
    assert_eq!(percentile(&v, 0.99), Some(20));
    assert_eq!(percentile(&v, 0.50), Some(10));
    // Odd count: the median is the middle sample.
    assert_eq!(percentile(&[1, 2, 3], 0.5), Some(2));
}

#[test]
fn summary_sorts_and_summarizes() {
    let mut v = vec![5, 1, 4, 2, 3];
    let s = Summary::of_micros(&mut v);
    assert_eq!(
        s,
        Summary {
            count: 5,
            p50_us: 3,
            p99_us: 5,
            max_us: 5,
            mean_us: 3
        }
    );
    assert_eq!(Summary::of_micros(&mut []), Summary::default());
    let d = Summary::of_durations(&[Duration::from_millis(2), Duration::from_micros(500)]);
    assert_eq!((d.p50_us, d.max_us), (500, 2000));
}

fn three(system: System) -> Vec<super::cluster::MemberSpec> {
    plan_members(
        system,
        Path::new("/tmp/b"),
        &[7001, 7002, 7003],
        &[8001, 8002, 8003],
    )
}

#[test]
fn rkube_command_line_names_every_member() {
    let members = three(System::Rkube);
    let args = strings(&rkube_args(&members, 1, &[]));
    let member_list = [
        "id=1,name=a1,peer=127.0.0.1:8001,api=127.0.0.1:7001",
        "id=2,name=a2,peer=127.0.0.1:8002,api=127.0.0.1:7002",
        "id=3,name=a3,peer=127.0.0.1:8003,api=127.0.0.1:7003",
    ];
    let mut expected: Vec<String> = [
        "--name",
        "a2",
        "--id",
        "2",
        "--data-dir",
        "/tmp/b/a2",
        "--api-listen",
        "127.0.0.1:7002",
        "--peer-listen",
        "127.0.0.1:8002",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    for m in member_list {
        expected.push("--initial-member".into());
        expected.push(m.into());
    }
    // The benchmark's clients carry no credentials.
    expected.push("--anonymous-auth=true".into());
    assert_eq!(args, expected);
    // The same member list on every replica.
    let first = strings(&rkube_args(&members, 0, &[]));
    assert_eq!(first[10..], args[10..]);
    // Extra arguments come last, so they override nothing the plan needs.
    let tuned = strings(&rkube_args(&members, 1, &["--heartbeat-ms=50".into()]));
    assert_eq!(tuned[..args.len()], args[..]);
    assert_eq!(tuned.last().map(String::as_str), Some("--heartbeat-ms=50"));
}

#[test]
fn etcd_command_line_is_a_new_three_member_cluster() {
    let members = three(System::Etcd);
    let args = strings(&etcd_args(&members, 2, "tok", &[]));
    let expected: Vec<String> = [
        "--name",
        "e3",
        "--data-dir",
        "/tmp/b/e3",
        "--listen-client-urls",
        "http://127.0.0.1:7003",
        "--advertise-client-urls",
        "http://127.0.0.1:7003",
        "--listen-peer-urls",
        "http://127.0.0.1:8003",
        "--initial-advertise-peer-urls",
        "http://127.0.0.1:8003",
        "--initial-cluster",
        "e1=http://127.0.0.1:8001,e2=http://127.0.0.1:8002,e3=http://127.0.0.1:8003",
        "--initial-cluster-state",
        "new",
        "--initial-cluster-token",
        "tok",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(args, expected);
    // fsync is etcd's default: no flag may turn it off.
    assert!(!args.iter().any(|a| a.contains("unsafe")));
    let tuned = strings(&etcd_args(
        &members,
        2,
        "tok",
        &["--election-timeout=500".into()],
    ));
    assert_eq!(tuned.len(), args.len() + 1);
    assert_eq!(
        tuned.last().map(String::as_str),
        Some("--election-timeout=500")
    );
}

fn st(id: u64, leader: u64) -> Option<MemberStatus> {
    Some(MemberStatus {
        id,
        leader,
        term: 2,
        commit_index: 10,
        applied_index: 10,
    })
}

#[test]
fn leader_needs_everyone_to_agree() {
    assert_eq!(agreed_leader(&[st(1, 2), st(2, 2), st(3, 2)]), Some(1));
    // etcd's member ids are large hashes, not positions.
    assert_eq!(
        agreed_leader(&[st(0xaa, 0xcc), st(0xbb, 0xcc), st(0xcc, 0xcc)]),
        Some(2)
    );
    // Someone does not answer, knows no leader, or names another one.
    assert_eq!(agreed_leader(&[st(1, 2), None, st(3, 2)]), None);
    assert_eq!(agreed_leader(&[st(1, 2), st(2, 2), st(3, 0)]), None);
    assert_eq!(agreed_leader(&[st(1, 2), st(2, 3), st(3, 3)]), None);
    // The named leader is not among the members that answered.
    assert_eq!(agreed_leader(&[st(1, 9), st(2, 9), st(3, 9)]), None);
    assert_eq!(agreed_leader(&[]), None);
}

#[test]
fn proc_stat_cpu_ticks_are_utime_plus_stime() {
    let stat = "4242 (rkube-api server) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 8 0 1234 0 0";
    assert_eq!(parse_cpu_ticks(stat), Some(175));
    assert_eq!(parse_cpu_ticks("garbage"), None);
    let stat = "cpu  100 5 50 9000 40 3 2 1 0 0\ncpu0 50 2 25 4500 20 1 1 0 0 0\n";
    assert_eq!(parse_busy_ticks(stat), Some(100 + 5 + 50 + 3 + 2 + 1));
    assert_eq!(parse_busy_ticks("intr 1 2 3"), None);
    assert_eq!(
        parse_meminfo_kib("MemTotal:       24684544 kB\nMemFree: 1 kB\n"),
        Some(24684544)
    );
}

#[test]
fn keys_are_distinct_and_values_have_the_asked_size() {
    assert_ne!(bench_key("a", 1), bench_key("a", 2));
    assert_ne!(bench_key("a", 1), bench_key("b", 1));
    assert_eq!(&bench_key("run", 42)[..], b"/bench/run/0000000042");
    let v = make_value(256, 1);
    assert_eq!(v.len(), 256);
    assert!(v.iter().all(u8::is_ascii_lowercase));
    assert_eq!(make_value(256, 1), v);
    assert_ne!(make_value(256, 2), v);
}

#[test]
fn options_are_validated() {
    assert!(StoreBenchOptions::default().validate().is_ok());
    let zero_clients = StoreBenchOptions {
        clients: 0,
        ..Default::default()
    };
    let err = zero_clients.validate().unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("--clients"));
    let huge = StoreBenchOptions {
        value_size: 2 * 1024 * 1024,
        ..Default::default()
    };
    assert!(huge.validate().is_err());
}

fn phase(clients: usize, wps: f64, p50_us: u64, p99_us: u64) -> PhaseResult {
    PhaseResult {
        clients,
        writes: 1000,
        errors: 0,
        error_samples: vec![],
        seconds: 1000.0 / wps,
        writes_per_sec: wps,
        latency: Summary {
            count: 1000,
            p50_us,
            p99_us,
            max_us: p99_us * 2,
            mean_us: p50_us,
        },
        server_cpu_seconds: 2.0,
        client_cpu_seconds: 0.5,
        other_cpu_seconds: 0.0,
    }
}

fn kills(ms: &[Option<f64>]) -> FailoverResult {
    FailoverResult::new(
        ms.iter()
            .map(|m| KillSample {
                member: "a1".into(),
                unavailable_ms: *m,
                elected_ms: m.map(|m| m / 2.0),
                rejoin_ms: 1000.0,
            })
            .collect(),
        Duration::from_secs(30),
    )
}

fn system(
    name: &str,
    single: PhaseResult,
    concurrent: PhaseResult,
    f: FailoverResult,
) -> SystemResult {
    SystemResult {
        system: name.into(),
        version: format!("{name} 1.0"),
        startup_ms: 1000.0,
        single,
        concurrent,
        failover: Some(f),
    }
}

#[test]
fn failover_counts_a_kill_that_never_resumed_as_the_give_up_time() {
    let f = kills(&[Some(100.0), Some(300.0), None]);
    assert_eq!(f.kills, 3);
    assert_eq!(f.not_resumed, 1);
    assert_eq!(f.unavailability.p50_us, 300_000);
    assert_eq!(f.unavailability.max_us, 30_000_000);
    // The election summary covers only kills where a new leader was seen.
    assert_eq!(f.election.count, 2);
    assert_eq!(f.election.max_us, 150_000);
}

#[test]
fn goals_compare_with_etcd_and_fixed_limits() {
    let rkube = system(
        "rkube",
        phase(1, 800.0, 1200, 3000),
        phase(64, 4000.0, 15_000, 40_000),
        kills(&[Some(500.0); 20]),
    );
    let etcd = system(
        "etcd",
        phase(1, 500.0, 2000, 5000),
        phase(64, 5000.0, 12_000, 30_000),
        kills(&[Some(1200.0); 20]),
    );
    let goals = evaluate_goals(&rkube, Some(&etcd));
    assert_eq!(goals.len(), 3);
    assert_eq!(goals[0].met, Some(false), "{goals:?}");
    assert!(goals[0].detail.contains("0.80x"), "{}", goals[0].detail);
    assert_eq!(goals[1].met, Some(true));
    assert_eq!(goals[2].met, Some(true));

    let no_etcd = evaluate_goals(&rkube, None);
    assert_eq!(no_etcd[0].met, None);

    let slow = system(
        "rkube",
        phase(1, 300.0, 2500, 3000),
        phase(64, 6000.0, 15_000, 40_000),
        kills(&[Some(500.0), Some(1500.0)]),
    );
    let goals = evaluate_goals(&slow, Some(&etcd));
    assert_eq!(goals[0].met, Some(true));
    assert_eq!(goals[1].met, Some(false));
    assert_eq!(goals[2].met, Some(false));
    assert!(goals[2].detail.contains("over 2 kills"));
}

#[test]
fn ratios_and_values_format() {
    assert_eq!(fmt_ratio(Some(1.0), Some(2.0)), "0.50x");
    assert_eq!(fmt_ratio(Some(3.0), None), "-");
    assert_eq!(fmt_ratio(Some(3.0), Some(0.0)), "-");
    assert_eq!(fmt_ratio(Some(0.0), Some(0.0)), "1.00x");
    assert_eq!(fmt_value(Some(1234.4), Unit::PerSec), "1234");
    assert_eq!(fmt_value(Some(1.234), Unit::Millis), "1.23 ms");
    assert_eq!(fmt_value(Some(12.34), Unit::Millis), "12.3 ms");
    assert_eq!(fmt_value(Some(1234.0), Unit::Millis), "1234 ms");
    assert_eq!(fmt_value(None, Unit::Count), "-");
}

#[test]
fn table_is_side_by_side_with_ratios() {
    let rkube = system(
        "rkube",
        phase(1, 800.0, 1200, 3000),
        phase(64, 4000.0, 15_000, 40_000),
        kills(&[Some(500.0); 20]),
    );
    let etcd = system(
        "etcd",
        phase(1, 400.0, 2400, 5000),
        phase(64, 5000.0, 12_000, 30_000),
        kills(&[Some(1000.0); 20]),
    );
    let table = render_rows(&table_rows(&rkube, Some(&etcd)));
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["metric", "rkube", "etcd", "rkube/etcd"]
    );
    let row = |prefix: &str| {
        lines
            .iter()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no row {prefix:?} in\n{table}"))
            .to_string()
    };
    assert!(
        row("1 client: writes/s")
            .split_whitespace()
            .eq(["1", "client:", "writes/s", "800", "400", "2.00x"]),
        "{table}"
    );
    assert!(row("1 client: latency p50").contains("1.20 ms"), "{table}");
    assert!(row("64 clients: writes/s").ends_with("0.80x"), "{table}");
    assert!(
        row("failover (20 kills): unavailable p99").contains("500 ms"),
        "{table}"
    );
    assert!(
        row("failover (20 kills): unavailable p99").ends_with("0.50x"),
        "{table}"
    );
    assert!(
        row("failover (20 kills): new leader p50").contains("250 ms"),
        "{table}"
    );
    // Columns line up: every line has the same width as the header (right-aligned cells).
    let width = lines[0].len();
    assert!(lines.iter().all(|l| l.len() == width), "{table}");

    // Without etcd: two columns only.
    let alone = render_rows(&table_rows(&rkube, None));
    assert!(alone.lines().next().unwrap().trim_end().ends_with("rkube"));
    assert!(!alone.contains("etcd"));
}

#[test]
fn report_renders_and_serializes() {
    let rkube = system(
        "rkube",
        phase(1, 800.0, 1200, 3000),
        phase(64, 4000.0, 15_000, 40_000),
        kills(&[Some(500.0); 3]),
    );
    let report = StoreBenchReport::new(
        MachineInfo {
            nproc: 2,
            memory_mib: 24000,
            kernel: "6.1".into(),
            fsync_p50_us: 900,
            fsync_p99_us: 2000,
            data_dir: "/tmp/x".into(),
        },
        Parameters {
            ops: 2000,
            concurrent_ops: 20000,
            clients: 64,
            kills: 3,
            value_size: 256,
            target: "all".into(),
            failover_request_timeout_ms: 200,
            rkube_args: vec![],
            etcd_args: vec![],
        },
        rkube,
        Err("`etcd` not found on PATH".into()),
    );
    let text = report.render_table();
    assert!(!text.contains("warning"), "{text}");
    assert!(
        text.contains("etcd:  not measured: `etcd` not found on PATH"),
        "{text}"
    );
    assert!(text.contains("goal n/a"), "{text}");
    assert!(text.contains("all members round-robin"), "{text}");
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["rkube"]["concurrent"]["writes_per_sec"], 4000.0);
    assert_eq!(json["etcd"], serde_json::Value::Null);
    assert_eq!(json["goals"].as_array().unwrap().len(), 3);
    assert_eq!(json["parameters"]["target"], "all");

    let mut disturbed = report.clone();
    disturbed.rkube.concurrent.other_cpu_seconds = disturbed.rkube.concurrent.seconds * 0.5;
    assert!(disturbed
        .render_table()
        .contains("warning: rkube concurrent: other processes used 50% of a CPU"));
}

/// Parses a command line of one option type, as the `rkube` binary flattens it.
fn parse_flags<T: clap::Args>(args: &[&str]) -> T {
    #[derive(clap::Parser)]
    struct Cli<T: clap::Args> {
        #[command(flatten)]
        opts: T,
    }
    let cli: Cli<T> =
        clap::Parser::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    cli.opts
}

#[test]
fn the_flags_defaults_are_the_options_defaults() {
    let store: StoreBenchOptions = parse_flags(&[]);
    assert_eq!(
        StoreBenchOptions {
            bin_dir: None,
            ..store
        },
        StoreBenchOptions::default()
    );
    let api: api::ApiBenchOptions = parse_flags(&[]);
    assert_eq!(
        api::ApiBenchOptions {
            bin_dir: None,
            ..api
        },
        api::ApiBenchOptions::default()
    );
}

#[test]
fn flags_fill_the_options_they_name() {
    let store: StoreBenchOptions = parse_flags(&[
        "--target",
        "leader",
        "--failover-request-timeout",
        "1s",
        "--rkube-arg=--heartbeat-ms=10",
        "--etcd-arg",
        "--quota-backend-bytes=1",
        "-o",
        "json",
    ]);
    assert_eq!(store.target, Target::Leader);
    assert_eq!(store.failover_request_timeout, Duration::from_secs(1));
    assert_eq!(store.rkube_args, ["--heartbeat-ms=10"]);
    assert_eq!(store.etcd_args, ["--quota-backend-bytes=1"]);
    assert_eq!(store.output, rkube_ops::Output::Json);
    let api: api::ApiBenchOptions = parse_flags(&["--watch-duration", "500ms", "--rate", "7.5"]);
    assert_eq!(api.watch_duration, Duration::from_millis(500));
    assert_eq!(api.rate, 7.5);
}
