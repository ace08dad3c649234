//! `rkube bench controllers` end to end, small: three replicas and a real
//! controller-manager; a 60-replica Deployment is created, made available, rolled out
//! and scaled to zero, and the JSON report says so. (The full-size run is a benchmark,
//! recorded in docs/benchmarks.md; this guards that it keeps working.)

use std::process::Command;

use serde_json::Value;

#[test]
fn the_controllers_benchmark_creates_rolls_out_and_removes_a_deployment() {
    let out = Command::new(rkube_e2e::cluster::bin("rkube"))
        .args([
            "bench",
            "controllers",
            "--replicas",
            "60",
            "--phase-timeout",
            "120s",
            // A loaded machine (other tests beside this one) may take a while.
            "--ready-timeout",
            "120s",
            "-o",
            "json",
        ])
        .env("RKUBE_BIN_DIR", rkube_e2e::cluster::bin_dir())
        .output()
        .expect("rkube runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "rkube bench controllers failed:\n{stderr}"
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let phases = report["phases"].as_array().expect("phases");
    let names: Vec<&str> = phases.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(
        names,
        [
            "create",
            "ready (stand-in kubelet)",
            "rollout",
            "scale to 0"
        ]
    );
    assert_eq!(phases[0]["pods_created"], 60, "{report}");
    // A rolling update replaces every pod: 60 new ones, 60 old ones gone.
    assert_eq!(phases[2]["pods_created"], 60, "{report}");
    assert_eq!(phases[2]["pods_deleted"], 60, "{report}");
    assert_eq!(phases[3]["pods_deleted"], 60, "{report}");
    assert!(
        report["cm_rss_mib_peak"].as_f64().unwrap() > 0.0,
        "{report}"
    );
    assert_eq!(report["goals"][0]["met"], true, "{report}");
}
