//! The controller-manager's flags (Kubernetes' names and defaults where Kubernetes has
//! them), shared by every controller through [`crate::Context`].

use std::time::Duration;

use clap::{ArgAction, Args};

/// Every controller by the name `--controllers` takes (Kubernetes' names).
pub const ALL: &[&str] = &[
    "replicaset",
    "deployment",
    "garbagecollector",
    "namespace",
    "serviceaccount",
    "nodelifecycle",
    "nodeipam",
];

#[derive(Debug, Clone, Args)]
pub struct Config {
    /// Controllers to run: `*` for all, a name to add one, `-name` to leave one out
    /// (e.g. `*,-nodeipam`)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "*",
        value_name = "NAMES",
        allow_hyphen_values = true
    )]
    pub controllers: Vec<String>,
    /// ReplicaSets reconciled at once
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub concurrent_replicaset_syncs: usize,
    /// Deployments reconciled at once
    #[arg(long, default_value_t = 5, value_name = "N")]
    pub concurrent_deployment_syncs: usize,
    /// Objects the garbage collector processes at once
    #[arg(long, default_value_t = 20, value_name = "N")]
    pub concurrent_gc_syncs: usize,
    /// Namespaces emptied at once
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub concurrent_namespace_syncs: usize,
    /// How often node health is checked
    #[arg(long, default_value = "5s", value_parser = rkube_component::parse_duration, value_name = "DURATION")]
    pub node_monitor_period: Duration,
    /// A node whose Lease was not renewed for this long turns Ready=Unknown
    #[arg(long, default_value = "40s", value_parser = rkube_component::parse_duration, value_name = "DURATION")]
    pub node_monitor_grace_period: Duration,
    /// Give every node a pod CIDR from --cluster-cidr
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub allocate_node_cidrs: bool,
    /// The range node pod CIDRs come from
    #[arg(long, default_value = "10.244.0.0/16", value_name = "CIDR")]
    pub cluster_cidr: String,
    /// Prefix length of each node's pod CIDR
    #[arg(long, default_value_t = 24, value_name = "BITS")]
    pub node_cidr_mask_size: u8,
}

impl Config {
    /// Whether `--controllers` enables `name`.
    pub fn enabled(&self, name: &str) -> bool {
        let mut on = false;
        for c in &self.controllers {
            match c.as_str() {
                "*" => on = true,
                c if c.strip_prefix('-') == Some(name) => return false,
                c if c == name => on = true,
                _ => {}
            }
        }
        on
    }

    /// Names in `--controllers` that are not controllers.
    pub fn unknown(&self) -> Vec<String> {
        self.controllers
            .iter()
            .map(|c| c.trim_start_matches('-'))
            .filter(|c| *c != "*" && !ALL.contains(c))
            .map(str::to_string)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct P {
        #[command(flatten)]
        c: Config,
    }

    fn cfg(args: &[&str]) -> Config {
        let mut a = vec!["test"];
        a.extend_from_slice(args);
        P::parse_from(a).c
    }

    #[test]
    fn controllers_are_chosen_as_kubernetes_chooses_them() {
        let cases: &[(&[&str], &str, bool)] = &[
            (&[], "deployment", true),
            (&["--controllers", "*,-nodeipam"], "nodeipam", false),
            (&["--controllers", "*,-nodeipam"], "replicaset", true),
            (&["--controllers", "replicaset"], "replicaset", true),
            (&["--controllers", "replicaset"], "deployment", false),
            (&["--controllers", "-replicaset,*"], "replicaset", false),
        ];
        for (args, name, want) in cases {
            assert_eq!(cfg(args).enabled(name), *want, "{args:?} {name}");
        }
        assert_eq!(cfg(&["--controllers", "*,nope"]).unknown(), ["nope"]);
        assert!(cfg(&[]).unknown().is_empty());
    }

    #[test]
    fn timings_take_go_durations() {
        let c = cfg(&[
            "--node-monitor-grace-period",
            "4s",
            "--node-monitor-period",
            "500ms",
        ]);
        assert_eq!(c.node_monitor_grace_period, Duration::from_secs(4));
        assert_eq!(c.node_monitor_period, Duration::from_millis(500));
    }
}
