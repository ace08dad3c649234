use super::*;

fn specs() -> Vec<ApiserverSpec> {
    ClusterLayout::plan(3, &[6443, 6444, 6445], &[2380, 2381, 2382])
        .unwrap()
        .apiservers
}

fn status(id: u64, leader: u64, role: &str) -> Probe {
    Probe::Answered(rkube_proto::store::StatusResponse {
        id,
        name: format!("a{id}"),
        role: role.into(),
        term: 4,
        leader,
        commit_index: 10,
        applied_index: 10,
        ..Default::default()
    })
}

fn settled() -> Vec<Probe> {
    vec![
        status(1, 2, "follower"),
        status(2, 2, "leader"),
        status(3, 2, "follower"),
    ]
}

fn waiting_on(r: Readiness) -> (String, String) {
    match r {
        Readiness::Waiting { name, reason } => (name, reason),
        ready => panic!("expected waiting, got {ready:?}"),
    }
}

#[test]
fn a_settled_cluster_is_ready_with_its_leader_and_term() {
    assert_eq!(
        assess(&specs(), &settled()),
        Readiness::Ready { leader: 2, term: 4 }
    );
}

#[test]
fn an_unreachable_replica_is_waited_for_by_name() {
    let mut probes = settled();
    probes[2] = Probe::Unreachable(crate::status::Unreachable::TimedOut(Duration::from_secs(1)));
    let (name, reason) = waiting_on(assess(&specs(), &probes));
    assert_eq!(name, "a3");
    assert_eq!(reason, "no answer within 1s");
}

#[test]
fn a_replica_without_a_leader_is_not_ready() {
    let mut probes = settled();
    probes[0] = status(1, 0, "candidate");
    let (name, reason) = waiting_on(assess(&specs(), &probes));
    assert_eq!(name, "a1");
    assert_eq!(reason, "no leader known yet (role candidate, term 4)");
}

#[test]
fn a_replica_behind_its_commit_index_is_not_ready() {
    let mut probes = settled();
    if let Probe::Answered(s) = &mut probes[1] {
        s.applied_index = 9;
    }
    let (name, reason) = waiting_on(assess(&specs(), &probes));
    assert_eq!(name, "a2");
    assert!(reason.contains("applied 9 of 10"), "{reason}");
}

#[test]
fn replicas_that_disagree_on_the_leader_are_not_ready() {
    let mut probes = settled();
    probes[2] = status(3, 3, "leader");
    let (name, reason) = waiting_on(assess(&specs(), &probes));
    assert_eq!(name, "a3");
    assert_eq!(reason, "sees leader a3 while a1 sees leader a2");
}

#[test]
fn a_named_leader_that_does_not_lead_yet_is_not_ready() {
    let mut probes = settled();
    probes[1] = status(2, 2, "candidate");
    let (name, reason) = waiting_on(assess(&specs(), &probes));
    assert_eq!(name, "a2");
    assert!(reason.contains("says it is candidate"), "{reason}");
}

#[test]
fn a_leader_outside_the_layout_is_not_ready() {
    let probes = vec![
        status(1, 9, "follower"),
        status(2, 9, "follower"),
        status(3, 9, "follower"),
    ];
    let (name, reason) = waiting_on(assess(&specs(), &probes));
    assert_eq!(name, "a1");
    assert!(reason.contains("leader id 9 is not a member"), "{reason}");
}

#[test]
fn a_foreign_process_on_a_replicas_port_is_not_that_replica() {
    let mut probes = settled();
    probes[0] = status(7, 2, "follower");
    let (name, reason) = waiting_on(assess(&specs(), &probes));
    assert_eq!(name, "a1");
    assert!(reason.contains("another process owns the port"), "{reason}");
}

#[test]
fn every_replicas_serving_certificate_names_its_address_and_the_load_balancers() {
    let mut layout = ClusterLayout::plan(2, &[6443, 6444], &[2380, 2381]).unwrap();
    layout.load_balancer = Some("127.0.0.2:7443".parse().unwrap());
    let certs = serving_certs(&layout);
    assert_eq!(certs.len(), 2);
    assert_eq!(certs[1].name, "a2");
    assert_eq!(
        certs[1].ips,
        [
            "127.0.0.1".parse::<std::net::IpAddr>().unwrap(),
            "127.0.0.2".parse().unwrap()
        ]
    );
}

#[test]
fn base64_matches_rfc_4648_vectors() {
    for (plain, encoded) in [
        ("", ""),
        ("f", "Zg=="),
        ("fo", "Zm8="),
        ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="),
        ("fooba", "Zm9vYmE="),
        ("foobar", "Zm9vYmFy"),
    ] {
        assert_eq!(base64(plain.as_bytes()), encoded, "{plain:?}");
    }
    assert_eq!(base64(&[0xfb, 0xff]), "+/8=");
}

#[test]
fn the_kubeconfig_embeds_the_ca_and_the_admin_credentials_for_the_server() {
    let text = kubeconfig_text(
        "https://127.0.0.1:7443",
        &KubeconfigCredentials {
            ca_pem: "CA".into(),
            client_cert_pem: "CERT".into(),
            client_key_pem: "KEY".into(),
        },
    );
    assert_eq!(
        text,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rkube\n  cluster:\n\
         \x20   server: https://127.0.0.1:7443\n\
         \x20   certificate-authority-data: Q0E=\n\
         contexts:\n- name: rkube\n  context:\n    cluster: rkube\n    user: rkube-admin\n\
         current-context: rkube\nusers:\n- name: rkube-admin\n  user:\n\
         \x20   client-certificate-data: Q0VSVA==\n\
         \x20   client-key-data: S0VZ\n"
    );
}

#[test]
fn parse_duration_takes_seconds_by_default_and_common_units() {
    assert_eq!(parse_duration("60"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("60s"), Ok(Duration::from_secs(60)));
    assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
    assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
    assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
    assert!(parse_duration("").is_err());
    assert!(parse_duration("s").is_err());
    assert!(parse_duration("5 days")
        .unwrap_err()
        .to_string()
        .contains("unknown unit"));
    assert!(parse_duration("-5s").is_err());
    assert!(parse_duration("99999999999999999999h").is_err());
}

#[test]
fn shell_quote_leaves_plain_paths_alone() {
    assert_eq!(shell_quote(".rkube"), ".rkube");
    assert_eq!(shell_quote("/tmp/my-cluster_1"), "/tmp/my-cluster_1");
    assert_eq!(shell_quote("/tmp/my cluster"), "'/tmp/my cluster'");
    assert_eq!(shell_quote("it's"), r"'it'\''s'");
    assert_eq!(shell_quote(""), "''");
}

fn start(name: &str, kind: Kind, pid: u32, started: bool) -> ReplicaStart {
    ReplicaStart {
        name: name.into(),
        kind,
        pid,
        started,
    }
}

#[test]
fn summary_names_the_leader_every_replica_and_what_to_do_next() {
    let mut layout = ClusterLayout::plan(2, &[6443, 6444], &[2380, 2381]).unwrap();
    layout.load_balancer = Some("127.0.0.1:7443".parse().unwrap());
    let cluster = Cluster {
        dir: PathBuf::from("/home/me/.rkube"),
        apiservers: vec![
            start("a1", Kind::Apiserver, 11, true),
            start("a2", Kind::Apiserver, 12, false),
        ],
        load_balancer: start("lb", Kind::LoadBalancer, 13, true),
        components: vec![],
        leader: "a2".into(),
        term: 3,
        layout,
    };
    let text = cluster.summary(Path::new(".rkube"));
    assert!(
        text.starts_with("cluster ready: 2 apiservers, leader a2 (term 3)\n"),
        "{text}"
    );
    assert!(
        text.contains("a1   pid 11       api 127.0.0.1:6443"),
        "{text}"
    );
    assert!(text.contains("already running"));
    assert!(text.contains("rkube status --dir .rkube"));
    assert!(text.contains("rkube down --dir .rkube"));
    assert!(text.contains("/home/me/.rkube/logs/<name>.log"));
    assert!(
        text.contains("lb   pid 13       kubectl's address https://127.0.0.1:7443"),
        "{text}"
    );
    assert!(
        text.contains("the controller-manager, scheduler and kubelets are not available yet"),
        "{text}"
    );
    assert_eq!(
        cluster.api_endpoints(),
        ["https://127.0.0.1:6443", "https://127.0.0.1:6444"]
    );
}

#[test]
fn summary_lists_the_components_and_names_the_kinds_the_cluster_lacks() {
    let mut layout = ClusterLayout::plan(1, &[6443], &[2380]).unwrap();
    layout.load_balancer = Some("127.0.0.1:7443".parse().unwrap());
    layout
        .ensure_components(&[Kind::ControllerManager], 0)
        .unwrap();
    let listen = layout.components[0].listen;
    let cluster = Cluster {
        dir: PathBuf::from("/c"),
        apiservers: vec![start("a1", Kind::Apiserver, 11, true)],
        load_balancer: start("lb", Kind::LoadBalancer, 12, true),
        components: vec![
            start("controller-manager-1", Kind::ControllerManager, 13, false),
            start("controller-manager-2", Kind::ControllerManager, 14, true),
        ],
        leader: "a1".into(),
        term: 1,
        layout,
    };
    let text = cluster.summary(Path::new("/c"));
    assert!(
        text.contains(&format!(
            "  controller-manager-1 pid 13       health http://{listen}/readyz   already running\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("this cluster runs no scheduler and no kubelets\n"),
        "{text}"
    );
}

#[test]
fn nodes_must_be_zero_until_kubelets_exist_and_the_default_only_adds_a_note() {
    assert_eq!(check_nodes(Some(0), false).unwrap(), None);
    let note = check_nodes(None, false).unwrap().unwrap();
    assert!(note.contains("kubelets are not available yet"));
    assert_eq!(check_nodes(Some(3), true).unwrap(), None);
    assert_eq!(check_nodes(None, true).unwrap(), None);
    let err = check_nodes(Some(1), false).unwrap_err();
    assert!(err.is_usage());
    assert!(
        err.to_string().contains("kubelets are not available yet"),
        "{err}"
    );
}

#[tokio::test]
async fn up_refuses_nodes_it_cannot_run_before_touching_the_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("c");
    let opts = UpOptions {
        nodes: Some(2),
        components: vec![Kind::ControllerManager],
        ..UpOptions::new(&dir)
    };
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        up_with_progress(&opts, &mut |_: &str| {}),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, Error::NodesNotSupported { requested: 2 }));
    assert!(!dir.exists());
}

#[tokio::test]
async fn up_without_the_apiserver_binary_says_where_it_looked() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = UpOptions {
        nodes: Some(0),
        bin_dir: Some(tmp.path().to_path_buf()),
        ..UpOptions::new(tmp.path().join("c"))
    };
    let err = tokio::time::timeout(
        Duration::from_secs(10),
        up_with_progress(&opts, &mut |_: &str| {}),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert!(matches!(err, Error::BinaryNotFound { .. }), "{err}");
    assert!(err.to_string().contains(&tmp.path().display().to_string()));
}

#[test]
fn the_flags_defaults_are_the_options_defaults() {
    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        up: UpOptions,
    }
    let cli: Cli = clap::Parser::try_parse_from(["up", "--dir", "/c"]).unwrap();
    assert_eq!(
        UpOptions {
            bin_dir: None,
            ..cli.up
        },
        UpOptions::new("/c")
    );
    let cli: Cli = clap::Parser::try_parse_from(["up", "--nodes", "0", "--timeout", "2m"]).unwrap();
    assert_eq!(cli.up.nodes, Some(0));
    assert_eq!(cli.up.timeout, Duration::from_secs(120));
}
