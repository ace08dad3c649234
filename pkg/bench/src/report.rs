//! The benchmark's results, their JSON form, the side-by-side table and the goal checks.
//! Pure: nothing here measures anything.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

use super::stats::{micros, Summary};

/// One throughput run of one system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhaseResult {
    pub clients: usize,
    /// Successful writes.
    pub writes: usize,
    pub errors: usize,
    /// Up to five error messages, for diagnosis.
    pub error_samples: Vec<String>,
    pub seconds: f64,
    pub writes_per_sec: f64,
    /// Latency of the successful writes.
    pub latency: Summary,
    /// CPU time (user + system) all members used during the run.
    pub server_cpu_seconds: f64,
    /// CPU time the benchmark client itself used during the run.
    pub client_cpu_seconds: f64,
    /// CPU time everything else on the machine used during the run: other load that
    /// competed with the benchmark (should be near 0 for trustworthy numbers).
    pub other_cpu_seconds: f64,
}

impl PhaseResult {
    pub fn new(
        clients: usize,
        latencies_us: &mut [u64],
        errors: Vec<String>,
        elapsed: Duration,
        server_cpu_seconds: f64,
        client_cpu_seconds: f64,
    ) -> Self {
        let seconds = elapsed.as_secs_f64();
        let writes = latencies_us.len();
        Self {
            clients,
            writes,
            errors: errors.len(),
            error_samples: errors.into_iter().take(5).collect(),
            seconds,
            writes_per_sec: if seconds > 0.0 {
                writes as f64 / seconds
            } else {
                0.0
            },
            latency: Summary::of_micros(latencies_us),
            server_cpu_seconds,
            client_cpu_seconds,
            other_cpu_seconds: 0.0,
        }
    }

    /// Whether other processes used a noticeable share of the machine during the run
    /// (more than a tenth of one CPU on average).
    pub fn disturbed(&self) -> bool {
        self.seconds > 0.0 && self.other_cpu_seconds / self.seconds > 0.1
    }

    /// Server CPU milliseconds per successful write.
    pub fn server_cpu_ms_per_write(&self) -> f64 {
        if self.writes == 0 {
            0.0
        } else {
            self.server_cpu_seconds * 1e3 / self.writes as f64
        }
    }
}

/// One leader kill.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KillSample {
    /// The member that was killed (it led at the time).
    pub member: String,
    /// From the SIGKILL to the first successful write issued after it; `None` when writes
    /// did not resume before the benchmark gave up.
    pub unavailable_ms: Option<f64>,
    /// From the SIGKILL until a surviving member said it leads (polled every ~5 ms over
    /// the Status RPC); `None` when none did before the benchmark gave up.
    pub elected_ms: Option<f64>,
    /// From the restart to the member being ready and caught up.
    pub rejoin_ms: f64,
}

/// All leader kills of one system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailoverResult {
    pub kills: usize,
    /// Kills after which writes did not resume before the benchmark gave up.
    pub not_resumed: usize,
    /// Write unavailability over all kills; a kill that never resumed counts as the
    /// give-up time, so it cannot make the percentiles look better.
    pub unavailability: Summary,
    /// Time until a new leader was elected, over the kills where one was seen.
    pub election: Summary,
    pub samples: Vec<KillSample>,
}

impl FailoverResult {
    pub fn new(samples: Vec<KillSample>, give_up_after: Duration) -> Self {
        let give_up_ms = give_up_after.as_secs_f64() * 1e3;
        let mut us: Vec<u64> = samples
            .iter()
            .map(|s| {
                micros(Duration::from_secs_f64(
                    s.unavailable_ms.unwrap_or(give_up_ms) / 1e3,
                ))
            })
            .collect();
        let mut elected: Vec<u64> = samples
            .iter()
            .filter_map(|s| s.elected_ms)
            .map(|ms| micros(Duration::from_secs_f64(ms / 1e3)))
            .collect();
        Self {
            kills: samples.len(),
            not_resumed: samples
                .iter()
                .filter(|s| s.unavailable_ms.is_none())
                .count(),
            unavailability: Summary::of_micros(&mut us),
            election: Summary::of_micros(&mut elected),
            samples,
        }
    }
}

/// Everything measured for one system.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SystemResult {
    pub system: String,
    /// The server binary's `--version` first line.
    pub version: String,
    /// Time from starting the members until all agreed on a leader.
    pub startup_ms: f64,
    pub single: PhaseResult,
    pub concurrent: PhaseResult,
    /// `None` with `--kills 0`.
    pub failover: Option<FailoverResult>,
}

/// The machine the benchmark ran on.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MachineInfo {
    pub nproc: usize,
    pub memory_mib: u64,
    pub kernel: String,
    /// Median and 99th percentile of a 4 KiB write + fdatasync in the benchmark directory.
    pub fsync_p50_us: u64,
    pub fsync_p99_us: u64,
    /// Where the members' data lived.
    pub data_dir: String,
}

impl MachineInfo {
    /// The report's `machine: ...` line (with its newline).
    pub fn line(&self) -> String {
        format!(
            "machine: {} CPUs, {} MiB, kernel {}, 4 KiB fdatasync p50 {} p99 {}\n",
            self.nproc,
            self.memory_mib,
            self.kernel,
            fmt_ms(self.fsync_p50_us as f64 / 1e3),
            fmt_ms(self.fsync_p99_us as f64 / 1e3)
        )
    }
}

/// " (extra arguments: ...)" after a version, or nothing when there are none.
pub fn extra_args(args: &[String]) -> String {
    if args.is_empty() {
        String::new()
    } else {
        format!(" (extra arguments: {})", args.join(" "))
    }
}

/// One `goal MET|MISSED|n/a ...` line per goal.
pub fn render_goals(goals: &[Goal]) -> String {
    let mut out = String::new();
    for g in goals {
        let verdict = match g.met {
            Some(true) => "MET   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        let _ = writeln!(out, "goal {verdict} {}: {}", g.goal, g.detail);
    }
    out
}

/// The parameters the results were measured with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Parameters {
    pub ops: usize,
    pub concurrent_ops: usize,
    pub clients: usize,
    pub kills: usize,
    pub value_size: usize,
    /// "all" (round-robin over every member) or "leader".
    pub target: String,
    pub failover_request_timeout_ms: u64,
    /// Extra server arguments (empty: every setting at its default).
    pub rkube_args: Vec<String>,
    pub etcd_args: Vec<String>,
}

/// One of the goals, checked against the numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Goal {
    pub goal: String,
    /// `None` when it could not be checked (e.g. etcd absent for a relative goal).
    pub met: Option<bool>,
    pub detail: String,
}

/// The whole report, as `-o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreBenchReport {
    pub machine: MachineInfo,
    pub parameters: Parameters,
    pub rkube: SystemResult,
    pub etcd: Option<SystemResult>,
    /// Why etcd was not measured.
    pub etcd_skipped: Option<String>,
    pub goals: Vec<Goal>,
}

impl StoreBenchReport {
    pub fn new(
        machine: MachineInfo,
        parameters: Parameters,
        rkube: SystemResult,
        etcd: Result<SystemResult, String>,
    ) -> Self {
        let (etcd, etcd_skipped) = match etcd {
            Ok(e) => (Some(e), None),
            Err(why) => (None, Some(why)),
        };
        let goals = evaluate_goals(&rkube, etcd.as_ref());
        Self {
            machine,
            parameters,
            rkube,
            etcd,
            etcd_skipped,
            goals,
        }
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("the report serializes");
        s.push('\n');
        s
    }

    /// The side-by-side table, the goal checks and notes, as `-o table` prints them.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let p = &self.parameters;
        let m = &self.machine;
        let _ = writeln!(
            out,
            "store write benchmark: 3 members on loopback, {} B values, distinct keys, writes sent to {}",
            p.value_size,
            if p.target == "leader" {
                "the leader only"
            } else {
                "all members round-robin"
            }
        );
        out.push_str(&m.line());
        let _ = writeln!(
            out,
            "rkube: {}{}",
            self.rkube.version,
            extra_args(&p.rkube_args)
        );
        match (&self.etcd, &self.etcd_skipped) {
            (Some(e), _) => {
                let _ = writeln!(out, "etcd:  {}{}", e.version, extra_args(&p.etcd_args));
            }
            (None, Some(why)) => {
                let _ = writeln!(out, "etcd:  not measured: {why}");
            }
            (None, None) => {}
        }
        out.push('\n');
        out.push_str(&render_rows(&table_rows(&self.rkube, self.etcd.as_ref())));
        out.push('\n');
        out.push_str(&render_goals(&self.goals));
        for r in std::iter::once(&self.rkube).chain(self.etcd.as_ref()) {
            for (run, phase) in [("1 client", &r.single), ("concurrent", &r.concurrent)] {
                if phase.disturbed() {
                    let _ = writeln!(
                        out,
                        "warning: {} {run}: other processes used {:.0}% of a CPU during the run; \
                         the numbers are disturbed",
                        r.system,
                        100.0 * phase.other_cpu_seconds / phase.seconds
                    );
                }
                if phase.errors > 0 {
                    let _ = writeln!(
                        out,
                        "note: {} {run}: {} writes failed, e.g. {}",
                        r.system,
                        phase.errors,
                        phase.error_samples.first().map_or("", String::as_str)
                    );
                }
            }
        }
        out
    }
}

/// One row of the table: a metric and its value for rkube and (when measured) etcd.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub metric: String,
    pub rkube: Option<f64>,
    pub etcd: Option<f64>,
    /// How the values print.
    pub unit: Unit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    PerSec,
    Millis,
    Count,
}

/// The table's rows (a row is left out when neither system has a value). Pure.
pub fn table_rows(rkube: &SystemResult, etcd: Option<&SystemResult>) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut push = |metric: String, unit: Unit, f: &dyn Fn(&SystemResult) -> Option<f64>| {
        let r = f(rkube);
        let e = etcd.and_then(f);
        if r.is_some() || e.is_some() {
            rows.push(Row {
                metric,
                rkube: r,
                etcd: e,
                unit,
            });
        }
    };
    let ms = |us: u64| Some(us as f64 / 1e3);
    push("1 client: writes/s".into(), Unit::PerSec, &|s| {
        Some(s.single.writes_per_sec)
    });
    push("1 client: latency p50".into(), Unit::Millis, &|s| {
        ms(s.single.latency.p50_us)
    });
    push("1 client: latency p99".into(), Unit::Millis, &|s| {
        ms(s.single.latency.p99_us)
    });
    let n = rkube.concurrent.clients;
    push(format!("{n} clients: writes/s"), Unit::PerSec, &|s| {
        Some(s.concurrent.writes_per_sec)
    });
    push(format!("{n} clients: latency p50"), Unit::Millis, &|s| {
        ms(s.concurrent.latency.p50_us)
    });
    push(format!("{n} clients: latency p99"), Unit::Millis, &|s| {
        ms(s.concurrent.latency.p99_us)
    });
    push(
        format!("{n} clients: server CPU/write"),
        Unit::Millis,
        &|s| Some(s.concurrent.server_cpu_ms_per_write()),
    );
    let kills = |s: &SystemResult| s.failover.as_ref().map(|f| f.kills);
    let k = kills(rkube).or(etcd.and_then(kills)).unwrap_or(0);
    let kills_word = if k == 1 { "kill" } else { "kills" };
    push(
        format!("failover ({k} {kills_word}): unavailable p50"),
        Unit::Millis,
        &|s| {
            s.failover
                .as_ref()
                .map(|f| f.unavailability.p50_us as f64 / 1e3)
        },
    );
    push(
        format!("failover ({k} {kills_word}): unavailable p99"),
        Unit::Millis,
        &|s| {
            s.failover
                .as_ref()
                .map(|f| f.unavailability.p99_us as f64 / 1e3)
        },
    );
    push(
        format!("failover ({k} {kills_word}): unavailable max"),
        Unit::Millis,
        &|s| {
            s.failover
                .as_ref()
                .map(|f| f.unavailability.max_us as f64 / 1e3)
        },
    );
    push(
        format!("failover ({k} {kills_word}): new leader p50"),
        Unit::Millis,
        &|s| {
            s.failover
                .as_ref()
                .filter(|f| f.election.count > 0)
                .map(|f| f.election.p50_us as f64 / 1e3)
        },
    );
    push("failover: kills not resumed".into(), Unit::Count, &|s| {
        s.failover.as_ref().map(|f| f.not_resumed as f64)
    });
    rows
}

/// Renders rows as an aligned text table with an `rkube/etcd` ratio column (the etcd
/// columns are left out when no row has an etcd value). Pure.
pub fn render_rows(rows: &[Row]) -> String {
    let with_etcd = rows.iter().any(|r| r.etcd.is_some());
    let mut cells: Vec<Vec<String>> = vec![if with_etcd {
        vec![
            "metric".into(),
            "rkube".into(),
            "etcd".into(),
            "rkube/etcd".into(),
        ]
    } else {
        vec!["metric".into(), "rkube".into()]
    }];
    for r in rows {
        let mut line = vec![r.metric.clone(), fmt_value(r.rkube, r.unit)];
        if with_etcd {
            line.push(fmt_value(r.etcd, r.unit));
            line.push(fmt_ratio(r.rkube, r.etcd));
        }
        cells.push(line);
    }
    let widths: Vec<usize> = (0..cells[0].len())
        .map(|c| {
            cells
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for line in &cells {
        let mut text = String::new();
        for (c, cell) in line.iter().enumerate() {
            if c == 0 {
                let _ = write!(text, "{cell:<w$}", w = widths[c]);
            } else {
                let _ = write!(text, "  {cell:>w$}", w = widths[c]);
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// A value in its unit; `-` when absent. Pure.
pub fn fmt_value(v: Option<f64>, unit: Unit) -> String {
    match (v, unit) {
        (None, _) => "-".into(),
        (Some(v), Unit::PerSec) => format!("{v:.0}"),
        (Some(v), Unit::Millis) => fmt_ms(v),
        (Some(v), Unit::Count) => format!("{v:.0}"),
    }
}

/// Milliseconds with a precision that suits their size. Pure.
pub fn fmt_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else if ms >= 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.2} ms")
    }
}

/// `rkube / etcd` as `1.23x`; `-` when either is absent or etcd's is zero. Pure.
pub fn fmt_ratio(rkube: Option<f64>, etcd: Option<f64>) -> String {
    match (rkube, etcd) {
        (Some(r), Some(e)) if e != 0.0 => format!("{:.2}x", r / e),
        (Some(0.0), Some(_)) => "1.00x".into(),
        _ => "-".into(),
    }
}

/// The three goals: at the concurrent load at least etcd's throughput; single
/// client median under 2 ms; writes resume within 1 s of a leader kill (p99). Pure.
pub fn evaluate_goals(rkube: &SystemResult, etcd: Option<&SystemResult>) -> Vec<Goal> {
    let n = rkube.concurrent.clients;
    let throughput = match etcd {
        Some(e) => Goal {
            goal: format!("{n}-client throughput >= etcd's"),
            met: Some(rkube.concurrent.writes_per_sec >= e.concurrent.writes_per_sec),
            detail: format!(
                "rkube {:.0} writes/s vs etcd {:.0} writes/s ({})",
                rkube.concurrent.writes_per_sec,
                e.concurrent.writes_per_sec,
                fmt_ratio(
                    Some(rkube.concurrent.writes_per_sec),
                    Some(e.concurrent.writes_per_sec)
                )
            ),
        },
        None => Goal {
            goal: format!("{n}-client throughput >= etcd's"),
            met: None,
            detail: format!(
                "rkube {:.0} writes/s; etcd not measured",
                rkube.concurrent.writes_per_sec
            ),
        },
    };
    let p50_ms = rkube.single.latency.p50_us as f64 / 1e3;
    let latency = Goal {
        goal: "1-client latency p50 < 2 ms".into(),
        met: Some(rkube.single.latency.count > 0 && p50_ms < 2.0),
        detail: format!("rkube p50 {}", fmt_ms(p50_ms)),
    };
    let failover = match &rkube.failover {
        Some(f) if f.kills > 0 => {
            let p99_ms = f.unavailability.p99_us as f64 / 1e3;
            Goal {
                goal: "writes resume < 1 s after kill -9 of the leader (p99)".into(),
                met: Some(p99_ms < 1000.0 && f.not_resumed == 0),
                detail: format!(
                    "rkube p99 {} over {} kill{}{}",
                    fmt_ms(p99_ms),
                    f.kills,
                    if f.kills == 1 { "" } else { "s" },
                    if f.kills < 20 {
                        " (the goal is stated over 20 kills)"
                    } else {
                        ""
                    }
                ),
            }
        }
        _ => Goal {
            goal: "writes resume < 1 s after kill -9 of the leader (p99)".into(),
            met: None,
            detail: "no kills (--kills 0)".into(),
        },
    };
    vec![throughput, latency, failover]
}
