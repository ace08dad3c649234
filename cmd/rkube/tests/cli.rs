//! The `rkube` binary's command line: every subcommand and flag it had before its option
//! types moved into the libraries, the telemetry flags every binary has, and its exit codes.

use std::process::{Command, Output};

fn rkube(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rkube"))
        .args(args)
        .env_remove("RKUBE_DIR")
        .env_remove("RKUBE_BIN_DIR")
        .env_remove("RUST_LOG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .output()
        .expect("run rkube")
}

fn help(args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.push("--help");
    let out = rkube(&args);
    assert!(out.status.success(), "{args:?} failed");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn every_subcommand_keeps_its_flags_and_help_texts_and_gains_the_telemetry_flags() {
    let telemetry = ["--log-format", "--log-level", "--otlp-endpoint"];
    let cases: &[(&[&str], &[&str])] = &[
        (
            &[],
            &[
                "every component is a separate background process",
                "up      Start the cluster (or whatever of it is not running)",
                "status  Show every replica's process, Raft role, term and indexes",
                "down    Stop every process of the cluster",
                "lb      Run the TCP load balancer in front of the apiservers",
                "bench   Benchmarks (they start and stop their own processes; no cluster needed)",
            ],
        ),
        (
            &["up"],
            &[
                "--dir <DIR>",
                "The cluster directory: layout, data, logs and pid files",
                "[env: RKUBE_DIR=]",
                "--apiservers <N>",
                "Apiserver replicas [default: 3 for a new cluster",
                "--nodes <N>",
                "Kubelets to run [default: 1; 0 = control plane only]",
                "--api-port-base <N>",
                "--peer-port-base <N>",
                "--lb-port <PORT>",
                "--bin-dir <DIR>",
                "[env: RKUBE_BIN_DIR=]",
                "--timeout <DURATION>",
                "[default: 60s]",
                "passed on to every process `up` starts",
            ],
        ),
        (
            &["status"],
            &[
                "--dir <DIR>",
                "-o, --output <OUTPUT>",
                "[possible values: table, json]",
            ],
        ),
        (
            &["down"],
            &[
                "--dir <DIR>",
                "--purge",
                "Also delete the cluster directory",
            ],
        ),
        (
            &["lb"],
            &[
                "--listen <HOST:PORT>",
                "--backend <HOST:PORT>",
                "--backend-ca <FILE>",
                "--health-interval <DURATION>",
                "[default: 1s]",
                "--connect-timeout <DURATION>",
                "[default: 2s]",
            ],
        ),
        (
            &["bench", "store"],
            &[
                "Measure the replicated store side by side with a real etcd.",
                "--ops <N>",
                "[default: 2000]",
                "--concurrent-ops <N>",
                "--kills <N>",
                "--value-size <BYTES>",
                "--target <TARGET>",
                "[possible values: all, leader]",
                "--skip-etcd",
                "--etcd <PATH>",
                "--failover-request-timeout <DURATION>",
                "[default: 200ms]",
                "--rkube-arg <ARG>",
                "--etcd-arg <ARG>",
                "--keep-data",
                "-o, --output <OUTPUT>",
            ],
        ),
        (
            &["bench", "api"],
            &[
                "Measure the Kubernetes REST API of three rkube-apiserver replicas.",
                "--pods <N>",
                "[default: 10000]",
                "--rate <PER_SEC>",
                "--duration <DURATION>",
                "--watchers <N>",
                "--watch-rate <PER_SEC>",
                "--watch-duration <DURATION>",
                "--request-timeout <DURATION>",
                "--rkube-arg <ARG>",
                "--keep-data",
                "-o, --output <OUTPUT>",
            ],
        ),
    ];
    for (args, expected) in cases {
        let text = help(args);
        for phrase in expected.iter().chain(&telemetry) {
            assert!(
                text.contains(phrase),
                "`rkube {args:?} --help` lacks {phrase:?}:\n{text}"
            );
        }
    }
}

#[test]
fn a_request_the_tool_cannot_satisfy_exits_with_the_usage_code() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let out = rkube(&["up", "--apiservers", "0", "--dir", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error: --apiservers must be at least 1"),
        "{err}"
    );
    assert!(!dir.exists(), "a refused up must not create the directory");
}

#[test]
fn an_unknown_flag_exits_with_the_usage_code() {
    assert_eq!(rkube(&["status", "--no-such-flag"]).status.code(), Some(2));
}

#[test]
fn a_failure_exits_with_one_and_names_the_cause() {
    let tmp = tempfile::tempdir().unwrap();
    let out = rkube(&["status", "--dir", tmp.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no cluster in"));
}

#[test]
fn a_load_balancer_with_an_unusable_ca_exits_with_the_bad_config_code() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = tmp.path().join("missing-ca.crt");
    let out = rkube(&[
        "lb",
        "--listen",
        "127.0.0.1:0",
        "--backend",
        "127.0.0.1:1",
        "--backend-ca",
        ca.to_str().unwrap(),
        "--log-format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(64));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot use --backend-ca"), "{err}");
    // The cause is kept, down to the file system's answer.
    assert!(err.contains("No such file or directory"), "{err}");
}
