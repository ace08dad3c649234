use super::*;

#[test]
fn merge_info_answers_kubernetes_patch_strategies_for_nested_types() {
    use ListStrategy::*;
    let cases: &[(&str, &[&str], Option<ListStrategy>)] = &[
        ("Pod", &["spec", "containers"], Some(MergeByKey("name"))),
        ("Pod", &["spec", "initContainers"], Some(MergeByKey("name"))),
        (
            "Pod",
            &["spec", "ephemeralContainers", "env"],
            Some(MergeByKey("name")),
        ),
        ("Pod", &["spec", "volumes"], Some(MergeByKey("name"))),
        (
            "Pod",
            &["spec", "imagePullSecrets"],
            Some(MergeByKey("name")),
        ),
        ("Pod", &["spec", "hostAliases"], Some(MergeByKey("ip"))),
        (
            "Pod",
            &["spec", "topologySpreadConstraints"],
            Some(MergeByKey("topologyKey")),
        ),
        ("Pod", &["spec", "resourceClaims"], Some(MergeByKey("name"))),
        (
            "Pod",
            &["spec", "schedulingGates"],
            Some(MergeByKey("name")),
        ),
        ("Pod", &["spec", "tolerations"], Some(Replace)),
        (
            "Pod",
            &["spec", "containers", "ports"],
            Some(MergeByKey("containerPort")),
        ),
        (
            "Pod",
            &["spec", "containers", "env"],
            Some(MergeByKey("name")),
        ),
        ("Pod", &["spec", "containers", "envFrom"], Some(Replace)),
        (
            "Pod",
            &["spec", "containers", "volumeMounts"],
            Some(MergeByKey("mountPath")),
        ),
        (
            "Pod",
            &["spec", "containers", "volumeDevices"],
            Some(MergeByKey("devicePath")),
        ),
        (
            "Pod",
            &["spec", "containers", "resizePolicy"],
            Some(Replace),
        ),
        ("Pod", &["spec", "containers", "args"], Some(Replace)),
        ("Pod", &["metadata", "finalizers"], Some(MergeSet)),
        (
            "Pod",
            &["metadata", "ownerReferences"],
            Some(MergeByKey("uid")),
        ),
        ("Pod", &["metadata", "managedFields"], Some(Replace)),
        ("Pod", &["status", "conditions"], Some(MergeByKey("type"))),
        ("Pod", &["status", "podIPs"], Some(MergeByKey("ip"))),
        ("Pod", &["status", "containerStatuses"], Some(Replace)),
        (
            "Deployment",
            &["spec", "template", "spec", "containers"],
            Some(MergeByKey("name")),
        ),
        (
            "Deployment",
            &["spec", "template", "spec", "containers", "env"],
            Some(MergeByKey("name")),
        ),
        (
            "Deployment",
            &["spec", "template", "metadata", "finalizers"],
            Some(MergeSet),
        ),
        (
            "Deployment",
            &["status", "conditions"],
            Some(MergeByKey("type")),
        ),
        (
            "ReplicaSet",
            &["spec", "template", "spec", "volumes"],
            Some(MergeByKey("name")),
        ),
        (
            "ReplicaSet",
            &["status", "conditions"],
            Some(MergeByKey("type")),
        ),
        (
            "CronJob",
            &[
                "spec",
                "jobTemplate",
                "spec",
                "template",
                "spec",
                "containers",
            ],
            Some(MergeByKey("name")),
        ),
        (
            "PodTemplate",
            &["template", "spec", "containers"],
            Some(MergeByKey("name")),
        ),
        ("Node", &["spec", "taints"], Some(Replace)),
        ("Node", &["spec", "podCIDRs"], Some(MergeSet)),
        ("Node", &["status", "conditions"], Some(MergeByKey("type"))),
        ("Node", &["status", "addresses"], Some(MergeByKey("type"))),
        ("Node", &["status", "images"], Some(Replace)),
        ("Service", &["spec", "ports"], Some(MergeByKey("port"))),
        ("Service", &["spec", "externalIPs"], Some(Replace)),
        ("Namespace", &["spec", "finalizers"], Some(Replace)),
        ("Namespace", &["metadata", "finalizers"], Some(MergeSet)),
        (
            "Namespace",
            &["status", "conditions"],
            Some(MergeByKey("type")),
        ),
        ("ServiceAccount", &["secrets"], Some(MergeByKey("name"))),
        ("ServiceAccount", &["imagePullSecrets"], Some(Replace)),
        ("ClusterRole", &["rules"], Some(Replace)),
        (
            "ConfigMap",
            &["metadata", "ownerReferences"],
            Some(MergeByKey("uid")),
        ),
        ("Event", &["series"], Some(Replace)),
        ("Widget", &["spec", "containers"], None),
        ("pods", &["spec", "containers"], None),
    ];
    for (kind, path, want) in cases {
        assert_eq!(merge_info(kind, path), *want, "{kind} {}", path.join("."));
    }
}

#[test]
fn an_empty_path_or_an_unknown_field_is_replaced() {
    let pod = schema_for_kind("Pod").expect("pods are known");
    assert_eq!(pod.list_strategy_at(&[]), ListStrategy::Replace);
    assert_eq!(
        pod.list_strategy_at(&["spec", "nosuchfield", "containers"]),
        ListStrategy::Replace
    );
    assert_eq!(
        Schema::ATOMIC.list_strategy("containers"),
        ListStrategy::Replace
    );
}
