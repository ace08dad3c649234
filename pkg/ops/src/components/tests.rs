use std::path::Path;

use super::*;

fn strings(args: &[OsString]) -> Vec<&str> {
    args.iter().map(|a| a.to_str().unwrap()).collect()
}

fn dir() -> ClusterDir {
    ClusterDir::open(Path::new("/c")).unwrap()
}

/// Two replicas, the load balancer, a controller-manager, a scheduler and two kubelets on
/// fixed ports.
fn full_layout() -> ClusterLayout {
    let mut layout = ClusterLayout::plan(2, &[6443, 6444], &[2380, 2381]).unwrap();
    layout.load_balancer = Some("127.0.0.1:7443".parse().unwrap());
    let component = |name: &str, kind, port: u16, node: Option<&str>| ComponentAddress {
        name: name.into(),
        kind,
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        node: node.map(str::to_string),
    };
    layout.components = vec![
        component("kubelet-n1", Kind::Kubelet, 10250, Some("n1")),
        component("scheduler", Kind::Scheduler, 10259, None),
        component("controller-manager", Kind::ControllerManager, 10257, None),
        component("kubelet-n2", Kind::Kubelet, 10251, Some("n2")),
    ];
    layout.validate().unwrap();
    layout
}

fn telemetry() -> Telemetry {
    Telemetry {
        log_format: Some("json".into()),
        otlp_endpoint: Some("http://127.0.0.1:4317".into()),
    }
}

#[test]
fn the_table_has_one_row_per_kind_in_start_order_with_as_many_processes_as_laid_out() {
    let table = table(&dir(), &full_layout(), &Telemetry::default());
    let rows: Vec<(Kind, &str, Readiness, Vec<&str>)> = table
        .iter()
        .map(|r| {
            (
                r.kind,
                r.binary,
                r.readiness,
                r.processes.iter().map(|p| p.name.as_str()).collect(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                Kind::Apiserver,
                "rkube-apiserver",
                Readiness::RaftStatus,
                vec!["a1", "a2"]
            ),
            (
                Kind::LoadBalancer,
                "rkube",
                Readiness::StatusThrough,
                vec!["lb"]
            ),
            (
                Kind::ControllerManager,
                "rkube-controller-manager",
                Readiness::Readyz,
                vec!["controller-manager"]
            ),
            (
                Kind::Scheduler,
                "rkube-scheduler",
                Readiness::Readyz,
                vec!["scheduler"]
            ),
            (
                Kind::Kubelet,
                "rkube-kubelet",
                Readiness::Readyz,
                vec!["kubelet-n1", "kubelet-n2"]
            ),
        ]
    );
    // What identifies each process in /proc: a path of this cluster only it has.
    let markers: Vec<&Path> = table
        .iter()
        .flat_map(|r| r.processes.iter().map(|p| p.marker.as_path()))
        .collect();
    assert_eq!(
        markers,
        [
            Path::new("/c/data/a1"),
            Path::new("/c/data/a2"),
            Path::new("/c/pki/ca.crt"),
            Path::new("/c/pki/controller-manager.crt"),
            Path::new("/c/pki/scheduler.crt"),
            Path::new("/c/pki/kubelet-n1.crt"),
            Path::new("/c/pki/kubelet-n2.crt"),
        ]
    );
    assert_eq!(
        table[0].processes[1].data_dir.as_deref(),
        Some(Path::new("/c/data/a2"))
    );
    assert_eq!(table[0].processes[1].address.to_string(), "127.0.0.1:6444");
    assert_eq!(table[2].processes[0].address.to_string(), "127.0.0.1:10257");
}

#[test]
fn a_control_plane_only_cluster_is_apiservers_and_the_load_balancer() {
    let mut layout = ClusterLayout::plan(3, &[6443, 6444, 6445], &[2380, 2381, 2382]).unwrap();
    let kinds = |layout: &ClusterLayout| -> Vec<Kind> {
        table(&dir(), layout, &Telemetry::default())
            .iter()
            .map(|r| r.kind)
            .collect()
    };
    assert_eq!(kinds(&layout), [Kind::Apiserver]);
    layout.load_balancer = Some("127.0.0.1:7443".parse().unwrap());
    assert_eq!(kinds(&layout), [Kind::Apiserver, Kind::LoadBalancer]);
}

#[test]
fn apiserver_args_follow_the_apiserver_cli_contract() {
    let layout = ClusterLayout::plan(2, &[6443, 6444], &[2380, 2381]).unwrap();
    let pki = ClusterPki::new("/c/pki");
    let args = apiserver_args(
        &layout,
        &layout.apiservers[1],
        Path::new("/c/data/a2"),
        &pki,
        &telemetry(),
    );
    assert_eq!(
        strings(&args),
        [
            "--name",
            "a2",
            "--id",
            "2",
            "--data-dir",
            "/c/data/a2",
            "--api-listen",
            "127.0.0.1:6444",
            "--peer-listen",
            "127.0.0.1:2381",
            "--initial-member",
            "id=1,name=a1,peer=127.0.0.1:2380,api=127.0.0.1:6443",
            "--initial-member",
            "id=2,name=a2,peer=127.0.0.1:2381,api=127.0.0.1:6444",
            "--tls-cert-file",
            "/c/pki/apiserver-a2.crt",
            "--tls-private-key-file",
            "/c/pki/apiserver-a2.key",
            "--client-ca-file",
            "/c/pki/ca.crt",
            "--token-auth-file",
            "/c/pki/tokens.csv",
            "--log-format",
            "json",
            "--otlp-endpoint",
            "http://127.0.0.1:4317",
        ]
    );
    let plain = apiserver_args(
        &layout,
        &layout.apiservers[0],
        Path::new("/c/data/a1"),
        &pki,
        &Telemetry::default(),
    );
    assert_eq!(plain.len(), 22);
    assert!(!plain.iter().any(|a| a == "--anonymous-auth=true"));
}

#[test]
fn the_load_balancer_fronts_every_replica_checks_them_with_the_cluster_ca_and_gets_telemetry() {
    let mut layout = ClusterLayout::plan(2, &[6443, 6444], &[2380, 2381]).unwrap();
    layout.load_balancer = Some("127.0.0.1:7443".parse().unwrap());
    let args = lb_args(&layout, &ClusterPki::new("/c/pki"), &telemetry());
    assert_eq!(
        strings(&args),
        [
            "lb",
            "--listen",
            "127.0.0.1:7443",
            "--backend",
            "127.0.0.1:6443",
            "--backend",
            "127.0.0.1:6444",
            "--backend-ca",
            "/c/pki/ca.crt",
            "--log-format",
            "json",
            "--otlp-endpoint",
            "http://127.0.0.1:4317",
        ]
    );
}

#[test]
fn components_get_every_apiserver_their_identity_their_listen_address_and_telemetry() {
    let layout = full_layout();
    let pki = ClusterPki::new("/c/pki");
    let cm = layout
        .components
        .iter()
        .find(|c| c.kind == Kind::ControllerManager)
        .unwrap();
    assert_eq!(
        strings(&component_args(&layout, cm, &pki, &telemetry())),
        [
            "--apiserver",
            "127.0.0.1:6443",
            "--apiserver",
            "127.0.0.1:6444",
            "--certificate-authority",
            "/c/pki/ca.crt",
            "--client-certificate",
            "/c/pki/controller-manager.crt",
            "--client-key",
            "/c/pki/controller-manager.key",
            "--listen",
            "127.0.0.1:10257",
            "--name",
            "controller-manager",
            "--leader-elect=true",
            "--log-format",
            "json",
            "--otlp-endpoint",
            "http://127.0.0.1:4317",
        ]
    );
    let kubelet = &layout.components[3];
    let args = component_args(&layout, kubelet, &pki, &Telemetry::default());
    let args = strings(&args);
    assert!(!args.contains(&"--leader-elect=true"), "{args:?}");
    assert_eq!(
        &args[6..],
        [
            "--client-certificate",
            "/c/pki/kubelet-n2.crt",
            "--client-key",
            "/c/pki/kubelet-n2.key",
            "--listen",
            "127.0.0.1:10251",
            "--name",
            "kubelet-n2",
            "--node-name",
            "n2",
        ]
    );
}

#[test]
fn each_component_has_the_identity_kubernetes_gives_it() {
    let ids: Vec<(String, String, Option<String>)> = identities(&full_layout())
        .into_iter()
        .map(|i| (i.file, i.user, i.group))
        .collect();
    let id = |file: &str, user: &str, group: Option<&str>| {
        (
            file.to_string(),
            user.to_string(),
            group.map(str::to_string),
        )
    };
    assert_eq!(
        ids,
        [
            id("controller-manager", "system:kube-controller-manager", None),
            id("scheduler", "system:kube-scheduler", None),
            id("kubelet-n1", "system:node:n1", Some("system:nodes")),
            id("kubelet-n2", "system:node:n2", Some("system:nodes")),
        ]
    );
    // A control plane without them still has their identities.
    let bare = ClusterLayout::plan(1, &[6443], &[2380]).unwrap();
    let files: Vec<String> = identities(&bare).into_iter().map(|i| i.file).collect();
    assert_eq!(files, ["controller-manager", "scheduler"]);
}

#[test]
fn kinds_have_their_status_names_binaries_ports_and_leases() {
    let all = [
        Kind::Apiserver,
        Kind::LoadBalancer,
        Kind::ControllerManager,
        Kind::Scheduler,
        Kind::Kubelet,
    ];
    for kind in all {
        // The JSON contract spells kinds as serde does.
        assert_eq!(
            serde_json::to_value(kind).unwrap(),
            serde_json::Value::from(kind.as_str())
        );
    }
    assert_eq!(Kind::LoadBalancer.as_str(), "load-balancer");
    assert_eq!(Kind::LoadBalancer.label(), "load balancer");
    let ports: Vec<Option<u16>> = all.iter().map(|k| k.default_port()).collect();
    assert_eq!(ports, [None, None, Some(10257), Some(10259), Some(10250)]);
    let leases: Vec<Option<&str>> = all.iter().map(|k| k.lease()).collect();
    assert_eq!(
        leases,
        [
            None,
            None,
            Some("kube-controller-manager"),
            Some("kube-scheduler"),
            None
        ]
    );
}

#[test]
fn a_kinds_extra_flags_come_last_on_its_command_lines_only() {
    let mut layout = full_layout();
    layout.set_extra_args(&[(
        Kind::ControllerManager,
        "--node-monitor-grace-period=5s".into(),
    )]);
    let pki = ClusterPki::new("/c/pki");
    for c in &layout.components {
        let raw = component_args(&layout, c, &pki, &Telemetry::default());
        let args = strings(&raw);
        let has = args.last().copied() == Some("--node-monitor-grace-period=5s");
        assert_eq!(
            has,
            c.kind == Kind::ControllerManager,
            "{}: {args:?}",
            c.name
        );
    }
}

#[test]
fn component_flags_parse_as_kind_equals_flag() {
    use crate::up::parse_component_arg;
    assert_eq!(
        parse_component_arg("controller-manager=--v=2").unwrap(),
        (Kind::ControllerManager, "--v=2".to_string())
    );
    assert!(
        parse_component_arg("apiserver=--x=1").is_err(),
        "not a component kind"
    );
    assert!(parse_component_arg("scheduler=v").is_err(), "not a flag");
    assert!(parse_component_arg("scheduler").is_err());
}
