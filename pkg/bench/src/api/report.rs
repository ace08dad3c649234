//! `rkube bench api`'s results, their JSON form, the table and the aims from the issue.
//! Pure: nothing here measures anything.

use std::fmt::Write as _;

use serde::Serialize;

use crate::bench::report::{extra_args, fmt_ms, render_goals, Goal, MachineInfo};
use crate::bench::stats::Summary;

/// CPU used during one phase: by the replicas, by the benchmark, by everything else.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct CpuUse {
    /// Wall-clock length of the phase.
    pub seconds: f64,
    pub server_cpu_seconds: f64,
    pub client_cpu_seconds: f64,
    /// Other processes on the machine (should be near 0 for trustworthy numbers).
    pub other_cpu_seconds: f64,
}

impl CpuUse {
    /// Whether other processes used more than a tenth of one CPU on average.
    pub fn disturbed(&self) -> bool {
        self.seconds > 0.0 && self.other_cpu_seconds / self.seconds > 0.1
    }
}

/// One load phase: pod creation (closed loop) or an open-loop run of writes or reads.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LoadResult {
    /// What was sent, e.g. "POST pods".
    pub operation: String,
    /// Concurrent clients (closed loop), or 0 for an open-loop run.
    pub clients: usize,
    /// Requests per second scheduled (open loop), or 0 for a closed-loop run.
    pub target_rate: f64,
    /// Successful requests.
    pub requests: usize,
    pub errors: usize,
    /// Up to five error messages, for diagnosis.
    pub error_samples: Vec<String>,
    /// From the first request's start (or schedule) to the last answer.
    pub seconds: f64,
    /// Successful requests per second.
    pub per_sec: f64,
    /// Latency of the successful requests; in an open-loop run measured from the time the
    /// request was scheduled, not from when it was sent.
    pub latency: Summary,
    pub cpu: CpuUse,
}

impl LoadResult {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        operation: impl Into<String>,
        clients: usize,
        target_rate: f64,
        latencies_us: &mut [u64],
        errors: Vec<String>,
        seconds: f64,
        cpu: CpuUse,
    ) -> Self {
        let requests = latencies_us.len();
        Self {
            operation: operation.into(),
            clients,
            target_rate,
            requests,
            errors: errors.len(),
            error_samples: errors.into_iter().take(5).collect(),
            seconds,
            per_sec: if seconds > 0.0 {
                requests as f64 / seconds
            } else {
                0.0
            },
            latency: Summary::of_micros(latencies_us),
            cpu,
        }
    }
}

/// The watch phase.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WatchResult {
    pub watchers: usize,
    /// Watch streams that could not be opened.
    pub open_errors: usize,
    /// Time to open every watch stream.
    pub open_seconds: f64,
    /// Successful writes by the writer (each one event for every watcher).
    pub writes: usize,
    pub write_errors: usize,
    pub write_rate: f64,
    /// writes × open watchers.
    pub expected: usize,
    /// Events of acknowledged writes that arrived (each counted once per watcher).
    pub delivered: usize,
    /// From the write's send (the timestamp in its annotation) to a watcher reading the
    /// event, over every delivery (also of writes that timed out but were applied).
    pub latency: Summary,
    pub error_samples: Vec<String>,
    pub cpu: CpuUse,
}

impl WatchResult {
    pub fn missing(&self) -> usize {
        self.expected.saturating_sub(self.delivered)
    }
}

/// The node watch: one watcher per node, each selecting its node's pods.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeWatchResult {
    pub watchers: usize,
    pub open_errors: usize,
    pub open_seconds: f64,
    /// Successful writes (each meant for one watcher).
    pub writes: usize,
    pub write_errors: usize,
    pub write_rate: f64,
    /// Acknowledged writes whose watcher was open.
    pub expected: usize,
    /// Those that arrived at their watcher.
    pub delivered: usize,
    /// Events that reached a watcher whose field selector excludes them (must be 0).
    pub misdelivered: usize,
    /// From the write's send to its watcher reading the event.
    pub latency: Summary,
    pub error_samples: Vec<String>,
    /// CPU while the watch streams were being opened.
    pub open_cpu: CpuUse,
    /// CPU while writing and delivering.
    pub cpu: CpuUse,
    /// Each replica's VmRSS before the streams opened, with them open, and after the writes.
    pub rss_mib_before: Vec<f64>,
    pub rss_mib_open: Vec<f64>,
    pub rss_mib_end: Vec<f64>,
}

impl NodeWatchResult {
    pub fn missing(&self) -> usize {
        self.expected.saturating_sub(self.delivered)
    }
}

/// One replica's memory.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplicaMemory {
    pub name: String,
    pub pid: u32,
    /// VmRSS right after the pods were created.
    pub rss_mib_after_pods: f64,
    /// VmRSS at the end of the benchmark (after the watch phase).
    pub rss_mib_end: f64,
    /// VmHWM (peak resident set) at the end.
    pub peak_mib: f64,
}

/// The parameters the results were measured with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiParameters {
    pub replicas: usize,
    pub pods: usize,
    /// Bytes of one pod's JSON as sent.
    pub pod_manifest_bytes: usize,
    pub clients: usize,
    pub rate: f64,
    pub duration_s: f64,
    pub watchers: usize,
    pub watch_rate: f64,
    pub watch_duration_s: f64,
    /// Watchers of the node watch (one per node; 0: skipped).
    pub node_watchers: usize,
    /// Writes per second of the node watch.
    pub node_watch_rate: f64,
    /// How the benchmark talks to the replicas.
    pub transport: String,
    pub rkube_args: Vec<String>,
}

/// The whole report, as `-o json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiBenchReport {
    pub machine: MachineInfo,
    pub parameters: ApiParameters,
    /// `rkube-apiserver --version`.
    pub version: String,
    pub startup_ms: f64,
    pub create: LoadResult,
    pub write: Option<LoadResult>,
    pub read: Option<LoadResult>,
    pub watch: Option<WatchResult>,
    pub node_watch: Option<NodeWatchResult>,
    pub memory: Vec<ReplicaMemory>,
    pub goals: Vec<Goal>,
}

/// The aims of the issue.
pub const SLO_MS: f64 = 1000.0;
pub const SINGLE_OBJECT_AIM_MS: f64 = 50.0;
pub const WATCH_AIM_MS: f64 = 100.0;
pub const MEMORY_AIM_MIB: f64 = 300.0;

impl ApiBenchReport {
    /// Fills in the goal checks.
    pub fn with_goals(mut self) -> Self {
        self.goals = evaluate_goals(&self);
        self
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("the report serializes");
        s.push('\n');
        s
    }

    /// The table, the goal checks and warnings, as `-o table` prints them.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        let p = &self.parameters;
        let m = &self.machine;
        let _ = writeln!(
            out,
            "API benchmark: {} rkube-apiserver replicas on loopback, {}",
            p.replicas, p.transport
        );
        out.push_str(&m.line());
        let _ = writeln!(out, "rkube: {}{}", self.version, extra_args(&p.rkube_args));
        out.push('\n');
        out.push_str(&render_cells(&table_rows(self)));
        out.push('\n');
        out.push_str(&render_goals(&self.goals));
        for (name, cpu) in self.phases_cpu() {
            if cpu.disturbed() {
                let _ = writeln!(
                    out,
                    "warning: {name}: other processes used {:.0}% of a CPU during the phase; \
                     the numbers are disturbed",
                    100.0 * cpu.other_cpu_seconds / cpu.seconds
                );
            }
        }
        for r in [Some(&self.create), self.write.as_ref(), self.read.as_ref()]
            .into_iter()
            .flatten()
        {
            if r.errors > 0 {
                let _ = writeln!(
                    out,
                    "note: {}: {} requests failed, e.g. {}",
                    r.operation,
                    r.errors,
                    r.error_samples.first().map_or("", String::as_str)
                );
            }
        }
        if let Some(w) = &self.watch {
            if w.open_errors > 0 || w.write_errors > 0 || w.missing() > 0 {
                let _ = writeln!(
                    out,
                    "note: watch: {} streams failed to open, {} writes failed, {} of {} \
                     deliveries missing{}",
                    w.open_errors,
                    w.write_errors,
                    w.missing(),
                    w.expected,
                    w.error_samples
                        .first()
                        .map_or(String::new(), |e| format!(", e.g. {e}"))
                );
            }
        }
        if let Some(w) = &self.node_watch {
            if w.open_errors > 0 || w.write_errors > 0 || w.missing() > 0 || w.misdelivered > 0 {
                let _ = writeln!(
                    out,
                    "note: node watch: {} streams failed to open, {} writes failed, {} of {} \
                     deliveries missing, {} delivered to the wrong node{}",
                    w.open_errors,
                    w.write_errors,
                    w.missing(),
                    w.expected,
                    w.misdelivered,
                    w.error_samples
                        .first()
                        .map_or(String::new(), |e| format!(", e.g. {e}"))
                );
            }
        }
        out
    }

    /// Each phase's name and CPU use, for the disturbance warnings.
    pub fn phases_cpu(&self) -> Vec<(String, CpuUse)> {
        let mut v = vec![("create pods".to_string(), self.create.cpu)];
        if let Some(w) = &self.write {
            v.push(("writes".into(), w.cpu));
        }
        if let Some(r) = &self.read {
            v.push(("reads".into(), r.cpu));
        }
        if let Some(w) = &self.watch {
            v.push(("watch".into(), w.cpu));
        }
        if let Some(w) = &self.node_watch {
            v.push(("node watch".into(), w.cpu));
        }
        v
    }
}

fn ms(us: u64) -> String {
    fmt_ms(us as f64 / 1e3)
}

/// The table's rows: metric, result, aim, and the other processes' CPU share. Pure.
pub fn table_rows(r: &ApiBenchReport) -> Vec<[String; 3]> {
    let mut rows = vec![[
        "metric".to_string(),
        "result".to_string(),
        "aim".to_string(),
    ]];
    let mut row = |m: String, v: String, aim: &str| rows.push([m, v, aim.to_string()]);
    let c = &r.create;
    let create = format!(
        "create {} pods, {} clients",
        c.requests + c.errors,
        c.clients
    );
    row(format!("{create}: pods/s"), format!("{:.0}", c.per_sec), "");
    row(format!("{create}: p50"), ms(c.latency.p50_us), "");
    row(format!("{create}: p99"), ms(c.latency.p99_us), "");
    let aim = format!("<= {SINGLE_OBJECT_AIM_MS:.0} ms");
    for run in [r.write.as_ref(), r.read.as_ref()].into_iter().flatten() {
        let label = format!("{} at {:.0}/s", run.operation, run.target_rate);
        row(format!("{label}: p50"), ms(run.latency.p50_us), "");
        row(format!("{label}: p99"), ms(run.latency.p99_us), &aim);
    }
    if let Some(w) = &r.watch {
        let label = format!(
            "watch, {} watchers, {:.0} writes/s",
            w.watchers, w.write_rate
        );
        row(format!("{label}: p50"), ms(w.latency.p50_us), "");
        row(
            format!("{label}: p99"),
            ms(w.latency.p99_us),
            &format!("<= {WATCH_AIM_MS:.0} ms"),
        );
        row(
            format!("{label}: delivered"),
            format!("{} of {}", w.delivered, w.expected),
            "all",
        );
    }
    if let Some(w) = &r.node_watch {
        let label = format!(
            "node watch, {} watchers by spec.nodeName, {:.0} writes/s",
            w.watchers, w.write_rate
        );
        row(format!("{label}: p50"), ms(w.latency.p50_us), "");
        row(
            format!("{label}: p99"),
            ms(w.latency.p99_us),
            &format!("<= {WATCH_AIM_MS:.0} ms"),
        );
        row(
            format!("{label}: delivered"),
            format!(
                "{} of {} ({} to a wrong node)",
                w.delivered, w.expected, w.misdelivered
            ),
            "all (none)",
        );
        row(
            format!("{label}: server CPU"),
            format!(
                "{:.2} CPU ({:.1} s in {:.1} s)",
                per_second(w.cpu.server_cpu_seconds, w.cpu.seconds),
                w.cpu.server_cpu_seconds,
                w.cpu.seconds
            ),
            "",
        );
        row(
            format!("{label}: opening the streams"),
            format!(
                "{:.1} s, server CPU {:.1} s",
                w.open_seconds, w.open_cpu.server_cpu_seconds
            ),
            "",
        );
        row(
            format!("{label}: RSS per replica, streams open"),
            mib_list(&w.rss_mib_open),
            "",
        );
        row(
            format!("{label}: RSS per replica, before they opened"),
            mib_list(&w.rss_mib_before),
            "",
        );
    }
    for m in &r.memory {
        row(
            format!("RSS of {} holding {} pods", m.name, r.parameters.pods),
            format!("{:.0} MiB", m.rss_mib_after_pods),
            &format!("<= {MEMORY_AIM_MIB:.0} MiB"),
        );
    }
    for m in &r.memory {
        row(
            format!("RSS of {} at the end (peak)", m.name),
            format!("{:.0} MiB ({:.0})", m.rss_mib_end, m.peak_mib),
            "",
        );
    }
    rows
}

fn per_second(cpu_seconds: f64, seconds: f64) -> f64 {
    if seconds > 0.0 {
        cpu_seconds / seconds
    } else {
        0.0
    }
}

fn mib_list(v: &[f64]) -> String {
    v.iter()
        .map(|m| format!("{m:.0}"))
        .collect::<Vec<_>>()
        .join(" / ")
        + " MiB"
}

/// Aligns cells in columns (first left, others right). Pure.
pub fn render_cells<const N: usize>(rows: &[[String; N]]) -> String {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (c, cell) in r.iter().enumerate() {
            if c == 0 {
                line.push_str(&format!("{cell:<w$}", w = widths[0]));
            } else {
                line.push_str(&format!("  {cell:>w$}", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn p99_goal(goal: String, run: &LoadResult, limit_ms: f64) -> Goal {
    let p99 = run.latency.p99_us as f64 / 1e3;
    Goal {
        goal,
        met: Some(run.latency.count > 0 && run.errors == 0 && p99 <= limit_ms),
        detail: format!(
            "p99 {} over {} requests{}",
            fmt_ms(p99),
            run.requests,
            if run.errors > 0 {
                format!(", {} failed", run.errors)
            } else {
                String::new()
            }
        ),
    }
}

/// The aims: single-object writes and reads p99 within Kubernetes' SLO (1 s) and
/// within 50 ms; watch delivery p99 within 100 ms with nothing lost; at most 300 MiB per
/// replica holding the pods. A phase that did not run is not checked. Pure.
pub fn evaluate_goals(r: &ApiBenchReport) -> Vec<Goal> {
    let mut goals = Vec::new();
    for run in [r.write.as_ref(), r.read.as_ref()].into_iter().flatten() {
        let what = format!("{} at {:.0}/s", run.operation, run.target_rate);
        goals.push(p99_goal(
            format!("{what}: p99 <= 1 s (Kubernetes SLO)"),
            run,
            SLO_MS,
        ));
        goals.push(p99_goal(
            format!("{what}: p99 <= {SINGLE_OBJECT_AIM_MS:.0} ms"),
            run,
            SINGLE_OBJECT_AIM_MS,
        ));
    }
    if let Some(w) = &r.watch {
        let p99 = w.latency.p99_us as f64 / 1e3;
        goals.push(Goal {
            goal: format!(
                "watch delivery to {} watchers: p99 <= {WATCH_AIM_MS:.0} ms, none lost",
                w.watchers
            ),
            met: Some(w.latency.count > 0 && w.missing() == 0 && p99 <= WATCH_AIM_MS),
            detail: format!(
                "p99 {} over {} deliveries, {} missing",
                fmt_ms(p99),
                w.delivered,
                w.missing()
            ),
        });
    }
    if let Some(w) = &r.node_watch {
        let p99 = w.latency.p99_us as f64 / 1e3;
        goals.push(Goal {
            goal: format!(
                "watch delivery to {} watchers by spec.nodeName: p99 <= {WATCH_AIM_MS:.0} ms, \
                 none lost or misdelivered",
                w.watchers
            ),
            met: Some(
                w.latency.count > 0
                    && w.missing() == 0
                    && w.misdelivered == 0
                    && p99 <= WATCH_AIM_MS,
            ),
            detail: format!(
                "p99 {} over {} deliveries, {} missing, {} misdelivered",
                fmt_ms(p99),
                w.delivered,
                w.missing(),
                w.misdelivered
            ),
        });
    }
    if !r.memory.is_empty() {
        let worst = r
            .memory
            .iter()
            .max_by(|a, b| a.rss_mib_after_pods.total_cmp(&b.rss_mib_after_pods))
            .expect("not empty");
        goals.push(Goal {
            goal: format!(
                "apiserver memory holding {} pods <= {MEMORY_AIM_MIB:.0} MiB per replica",
                r.parameters.pods
            ),
            met: Some(worst.rss_mib_after_pods <= MEMORY_AIM_MIB),
            detail: format!(
                "largest RSS {:.0} MiB ({})",
                worst.rss_mib_after_pods, worst.name
            ),
        });
    }
    goals
}
