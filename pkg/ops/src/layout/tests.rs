use super::*;

fn three() -> ClusterLayout {
    ClusterLayout::plan(3, &[6443, 6444, 6445], &[2380, 2381, 2382]).unwrap()
}

#[test]
fn plan_names_replicas_a1_to_an_with_ids_from_one() {
    let layout = three();
    let names: Vec<_> = layout.apiservers.iter().map(|s| s.name.as_str()).collect();
    let ids: Vec<_> = layout.apiservers.iter().map(|s| s.id).collect();
    assert_eq!(names, ["a1", "a2", "a3"]);
    assert_eq!(ids, [1, 2, 3]);
    assert_eq!(
        layout.apiservers[1].api_address.to_string(),
        "127.0.0.1:6444"
    );
    assert_eq!(
        layout.apiservers[2].peer_address.to_string(),
        "127.0.0.1:2382"
    );
    assert_eq!(layout.version, LAYOUT_VERSION);
}

#[test]
fn plan_rejects_zero_replicas_and_reused_ports() {
    assert!(matches!(
        ClusterLayout::plan(0, &[], &[]),
        Err(Error::InvalidOptions(_))
    ));
    let err = ClusterLayout::plan(2, &[7000, 7001], &[7001, 7002]).unwrap_err();
    assert!(
        err.to_string().contains("127.0.0.1:7001 is used twice"),
        "{err}"
    );
    assert!(ClusterLayout::plan(2, &[7000], &[7001, 7002]).is_err());
}

#[test]
fn ports_from_base_gives_consecutive_ports_and_refuses_to_pass_65535() {
    assert_eq!(
        ports_from_base("--api-port-base", 6443, 3).unwrap(),
        [6443, 6444, 6445]
    );
    assert_eq!(
        ports_from_base("--api-port-base", 65533, 3).unwrap(),
        [65533, 65534, 65535]
    );
    let err = ports_from_base("--api-port-base", 65534, 3).unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("--api-port-base 65534"), "{err}");
    assert!(ports_from_base("--peer-port-base", 0, 1).is_err());
}

#[test]
fn allocate_with_both_bases_uses_exactly_them() {
    let layout = ClusterLayout::allocate(3, Some(16443), Some(12380)).unwrap();
    assert_eq!(
        layout,
        ClusterLayout::plan(3, &[16443, 16444, 16445], &[12380, 12381, 12382]).unwrap()
    );
}

#[test]
fn allocate_without_bases_gives_distinct_free_ports() {
    let layout = ClusterLayout::allocate(5, None, None).unwrap();
    assert_eq!(layout.apiservers.len(), 5);
    layout.validate().unwrap();
    for s in &layout.apiservers {
        assert!(s.api_address.ip().is_loopback() && s.peer_address.ip().is_loopback());
        // Released again, so the replica can bind it.
        std::net::TcpListener::bind(s.api_address).unwrap();
    }
}

#[test]
fn allocate_with_one_base_takes_free_ports_for_the_other() {
    let layout = ClusterLayout::allocate(2, Some(17000), None).unwrap();
    let api: Vec<u16> = layout
        .apiservers
        .iter()
        .map(|s| s.api_address.port())
        .collect();
    assert_eq!(api, [17000, 17001]);
    layout.validate().unwrap();
}

#[test]
fn initial_member_is_in_the_apiserver_flag_format() {
    assert_eq!(
        three().apiservers[0].initial_member(),
        "id=1,name=a1,peer=127.0.0.1:2380,api=127.0.0.1:6443"
    );
    assert_eq!(three().apiservers[0].api_url(), "https://127.0.0.1:6443");
}

#[test]
fn validate_rejects_broken_layouts() {
    let mut dup_name = three();
    dup_name.apiservers[1].name = "a1".into();
    assert!(dup_name
        .validate()
        .unwrap_err()
        .to_string()
        .contains("duplicate name a1"));
    let mut dup_id = three();
    dup_id.apiservers[2].id = 1;
    assert!(dup_id
        .validate()
        .unwrap_err()
        .to_string()
        .contains("duplicate replica id 1"));
    let mut zero_id = three();
    zero_id.apiservers[0].id = 0;
    assert!(zero_id.validate().is_err());
    let mut bad_name = three();
    bad_name.apiservers[0].name = "../x".into();
    assert!(bad_name.validate().is_err());
    let mut future = three();
    future.version = 99;
    assert!(future
        .validate()
        .unwrap_err()
        .to_string()
        .contains("version 99"));
    let empty = ClusterLayout {
        version: LAYOUT_VERSION,
        apiservers: vec![],
        load_balancer: None,
        components: vec![],
        extra_args: Default::default(),
    };
    assert!(empty.validate().is_err());
}

#[test]
fn check_request_accepts_omitted_or_matching_flags() {
    let layout = three();
    let dir = Path::new("/tmp/c");
    layout.check_request(dir, None, None, None, None).unwrap();
    layout
        .check_request(dir, Some(3), Some(6443), Some(2380), Some(0))
        .unwrap();
}

#[test]
fn check_request_refuses_what_contradicts_the_fixed_layout() {
    let layout = three();
    let dir = Path::new("/tmp/c");
    let err = layout
        .check_request(dir, Some(5), None, None, None)
        .unwrap_err();
    assert!(err.is_usage());
    let text = err.to_string();
    assert!(text.contains("--apiservers 5 was given"), "{text}");
    assert!(text.contains("rkube down --purge --dir /tmp/c"), "{text}");
    assert!(layout
        .check_request(dir, None, Some(7000), None, None)
        .is_err());
    assert!(layout
        .check_request(dir, None, None, Some(2381), None)
        .is_err());
}

#[test]
fn layout_round_trips_through_cluster_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ClusterDir::create(&tmp.path().join("c")).unwrap();
    assert!(!dir.has_layout());
    dir.save_layout(&three()).unwrap();
    assert!(dir.has_layout());
    assert_eq!(dir.load_layout().unwrap(), three());
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.layout_file()).unwrap()).unwrap();
    assert_eq!(json["apiservers"][0]["api_address"], "127.0.0.1:6443");
    assert_eq!(json["apiservers"][0]["peer_address"], "127.0.0.1:2380");
}

#[test]
fn load_layout_tells_missing_from_invalid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ClusterDir::create(tmp.path()).unwrap();
    let err = dir.load_layout().unwrap_err();
    assert!(matches!(err, Error::NoCluster { .. }));
    assert!(err.to_string().contains("rkube up --dir"), "{err}");
    std::fs::write(dir.layout_file(), "{not json").unwrap();
    assert!(matches!(
        dir.load_layout(),
        Err(Error::LayoutInvalid { .. })
    ));
}

#[test]
fn cluster_dir_paths_are_absolute_and_follow_the_layout() {
    let dir = ClusterDir::open(Path::new("some/relative/dir")).unwrap();
    assert!(dir.root().is_absolute());
    assert!(dir.root().ends_with("some/relative/dir"));
    assert_eq!(dir.data_dir("a1"), dir.root().join("data/a1"));
    assert_eq!(dir.log_file("a1"), dir.root().join("logs/a1.log"));
    assert_eq!(dir.pid_file("a1"), dir.root().join("pids/a1.pid"));
}

#[test]
fn the_directory_lock_is_exclusive_while_held() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ClusterDir::create(tmp.path()).unwrap();
    let held = dir.lock().unwrap();
    assert!(matches!(dir.lock(), Err(Error::Locked { .. })));
    drop(held);
    dir.lock().unwrap();
}

#[test]
fn a_layout_gets_one_load_balancer_address_and_keeps_it() {
    let dir = Path::new("/tmp/c");
    let mut layout = three();
    assert!(layout.ensure_load_balancer(dir, Some(7443)).unwrap());
    assert_eq!(
        layout.load_balancer,
        Some("127.0.0.1:7443".parse().unwrap())
    );
    assert!(!layout.ensure_load_balancer(dir, None).unwrap());
    assert!(!layout.ensure_load_balancer(dir, Some(7443)).unwrap());
    let err = layout.ensure_load_balancer(dir, Some(7444)).unwrap_err();
    assert!(err.to_string().contains("--lb-port 7444"), "{err}");

    let mut clash = three();
    let api_port = clash.apiservers[0].api_address.port();
    assert!(clash.ensure_load_balancer(dir, Some(api_port)).is_err());

    let mut free = three();
    assert!(free.ensure_load_balancer(dir, None).unwrap());
    let lb = free.load_balancer.unwrap();
    assert!(free
        .apiservers
        .iter()
        .all(|s| s.api_address != lb && s.peer_address != lb));
    // The address survives a round trip through cluster.json.
    let json = serde_json::to_string(&free).unwrap();
    assert_eq!(serde_json::from_str::<ClusterLayout>(&json).unwrap(), free);
}

#[test]
fn a_layout_written_before_the_load_balancer_still_loads() {
    let mut layout = three();
    layout.load_balancer = None;
    let json = serde_json::to_string(&layout).unwrap();
    assert!(!json.contains("load_balancer"));
    assert_eq!(
        serde_json::from_str::<ClusterLayout>(&json).unwrap(),
        layout
    );
}

#[test]
fn ensure_components_adds_what_is_missing_on_free_ports_and_keeps_what_exists() {
    let mut layout = three();
    layout.load_balancer = Some("127.0.0.1:7443".parse().unwrap());
    assert!(!layout.ensure_components(&[], 0).unwrap());
    assert!(layout
        .ensure_components(&[Kind::ControllerManager, Kind::Kubelet], 2)
        .unwrap());
    let names: Vec<(&str, Kind, Option<&str>)> = layout
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.kind, c.node.as_deref()))
        .collect();
    assert_eq!(
        names,
        [
            ("controller-manager-1", Kind::ControllerManager, None),
            ("controller-manager-2", Kind::ControllerManager, None),
            ("kubelet-n1", Kind::Kubelet, Some("n1")),
            ("kubelet-n2", Kind::Kubelet, Some("n2")),
        ]
    );
    assert_eq!(layout.nodes(), 2);
    layout.validate().unwrap();
    for c in &layout.components {
        assert!(c.listen.ip().is_loopback());
        std::net::TcpListener::bind(c.listen).expect("a component's port is free");
    }
    let before = layout.clone();
    assert!(!layout
        .ensure_components(&[Kind::ControllerManager], 2)
        .unwrap());
    assert_eq!(layout, before);
    assert!(layout
        .ensure_components(&[Kind::ControllerManager, Kind::Scheduler], 2)
        .unwrap());
    assert_eq!(&layout.components[..4], &before.components[..]);
    assert_eq!(layout.components[4].name, "scheduler-1");
    assert_eq!(layout.components[5].name, "scheduler-2");
}

#[test]
fn check_request_refuses_another_number_of_nodes() {
    let mut layout = three();
    layout.ensure_components(&[], 1).unwrap();
    let dir = Path::new("/tmp/c");
    layout
        .check_request(dir, None, None, None, Some(1))
        .unwrap();
    let err = layout
        .check_request(dir, None, None, None, Some(2))
        .unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("--nodes 2 was given"), "{err}");
}

#[test]
fn validate_rejects_components_that_clash_or_are_not_components() {
    let component = |name: &str, kind, port: u16, node: Option<&str>| ComponentAddress {
        name: name.into(),
        kind,
        listen: SocketAddr::from(([127, 0, 0, 1], port)),
        node: node.map(str::to_string),
    };
    let with = |components: Vec<ComponentAddress>| {
        let mut layout = three();
        layout.components = components;
        layout.validate().map_err(|e| e.to_string())
    };
    assert!(with(vec![component("scheduler", Kind::Scheduler, 9000, None)]).is_ok());
    let cases = [
        (
            vec![component("a1", Kind::Scheduler, 9000, None)],
            "duplicate name a1",
        ),
        (
            vec![component("lb", Kind::Scheduler, 9000, None)],
            "duplicate name lb",
        ),
        (
            vec![component("admin", Kind::Scheduler, 9000, None)],
            "invalid process name \"admin\"",
        ),
        (
            vec![component("x", Kind::Apiserver, 9000, None)],
            "not a component",
        ),
        (
            vec![component("k", Kind::Kubelet, 9000, None)],
            "kubelet k names no node",
        ),
        (
            vec![
                component("k1", Kind::Kubelet, 9000, Some("n1")),
                component("k2", Kind::Kubelet, 9001, Some("n1")),
            ],
            "node n1 is run by two kubelets",
        ),
        (
            vec![component("s", Kind::Scheduler, 6443, None)],
            "address 127.0.0.1:6443 is used twice",
        ),
    ];
    for (components, expected) in cases {
        let err = with(components).unwrap_err();
        assert!(err.contains(expected), "{err} lacks {expected}");
    }
}

#[test]
fn extra_component_flags_replace_a_kinds_flags_and_survive_a_save() {
    let mut layout = three();
    assert!(!layout.set_extra_args(&[]));
    let cm = |f: &str| (Kind::ControllerManager, f.to_string());
    assert!(layout.set_extra_args(&[cm("--a=1"), cm("--b=2")]));
    assert!(
        !layout.set_extra_args(&[cm("--a=1"), cm("--b=2")]),
        "the same: no change"
    );
    assert!(layout.set_extra_args(&[(Kind::Scheduler, "--c=3".into())]));
    assert_eq!(
        layout.extra_args[&Kind::ControllerManager],
        ["--a=1", "--b=2"],
        "kept"
    );
    assert!(layout.set_extra_args(&[cm("--a=9")]));
    assert_eq!(
        layout.extra_args[&Kind::ControllerManager],
        ["--a=9"],
        "replaced"
    );
    let json = serde_json::to_string(&layout).unwrap();
    let back: ClusterLayout = serde_json::from_str(&json).unwrap();
    assert_eq!(back, layout);
}
