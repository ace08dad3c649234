use k8s_openapi::api::apps::v1::DeploymentSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

use super::*;
use crate::replicaset::tests::{labels, template};

fn deployment(image: &str) -> Deployment {
    Deployment {
        metadata: ObjectMeta {
            name: Some("web".into()),
            namespace: Some("prod".into()),
            uid: Some("d-uid".into()),
            ..Default::default()
        },
        spec: Some(DeploymentSpec {
            replicas: Some(3),
            min_ready_seconds: Some(5),
            selector: LabelSelector {
                match_labels: Some(labels(&[("app", "web")])),
                ..Default::default()
            },
            template: template(&[("app", "web")], image),
            ..Default::default()
        }),
        status: None,
    }
}

#[test]
fn the_hash_is_stable_and_changes_with_the_template_and_collisions() {
    let t = template(&[("app", "web")], "nginx:1");
    let h = template_hash(&t, None);
    assert_eq!(h, template_hash(&t.clone(), None), "stable");
    assert!(!h.is_empty() && h.len() <= 10, "{h}");
    assert!(
        h.bytes().all(|b| ALPHANUMS.contains(&b)),
        "{h} uses the name-safe alphabet"
    );
    let others = [
        template_hash(&template(&[("app", "web")], "nginx:2"), None),
        template_hash(&template(&[("app", "web2")], "nginx:1"), None),
        template_hash(&t, Some(1)),
        template_hash(&t, Some(2)),
    ];
    for o in &others {
        assert_ne!(&h, o);
    }
    assert_ne!(others[2], others[3]);
    // FNV-1a's published test vector: the hash function itself is the standard one.
    assert_eq!(fnv1a(b"a", 0x811c_9dc5), 0xe40c_292c);
}

#[test]
fn templates_compare_equal_ignoring_only_the_hash_label() {
    let base = template(&[("app", "web")], "nginx:1");
    let hashed = template(&[("app", "web"), (HASH_LABEL, "abc")], "nginx:1");
    let other_image = template(&[("app", "web"), (HASH_LABEL, "abc")], "nginx:2");
    let other_label = template(&[("app", "web"), ("tier", "x")], "nginx:1");
    assert!(equal_ignore_hash(&base, &hashed));
    assert!(equal_ignore_hash(&hashed, &base));
    assert!(!equal_ignore_hash(&base, &other_image));
    assert!(!equal_ignore_hash(&base, &other_label));
    let only_hash = template(&[(HASH_LABEL, "abc")], "nginx:1");
    let no_labels = PodTemplateSpec {
        metadata: Some(ObjectMeta::default()),
        ..only_hash.clone()
    };
    assert!(equal_ignore_hash(&only_hash, &no_labels));
}

#[test]
fn the_new_replicaset_carries_the_hash_and_its_deployment_as_controller() {
    let d = deployment("nginx:1");
    let rs = new_replica_set(&d, "5d9c", 2);
    assert_eq!(rs.metadata.name.as_deref(), Some("web-5d9c"));
    assert_eq!(rs.metadata.namespace.as_deref(), Some("prod"));
    let want = labels(&[("app", "web"), (HASH_LABEL, "5d9c")]);
    assert_eq!(rs.metadata.labels.as_ref(), Some(&want));
    let spec = rs.spec.as_ref().unwrap();
    assert_eq!(spec.selector.match_labels.as_ref(), Some(&want));
    let t = spec.template.as_ref().unwrap();
    assert_eq!(t.metadata.as_ref().unwrap().labels.as_ref(), Some(&want));
    assert!(equal_ignore_hash(t, &d.spec.as_ref().unwrap().template));
    assert_eq!((spec.replicas, spec.min_ready_seconds), (Some(2), Some(5)));
    let owner = &rs.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str(), owner.controller),
        ("Deployment", "d-uid", Some(true))
    );
}

#[test]
fn the_new_replicaset_is_the_oldest_with_the_deployments_template() {
    let d = deployment("nginx:2");
    let at = |s: i64| Some(Time(Timestamp::from_second(s).unwrap()));
    let mut rss = vec![
        new_replica_set(&deployment("nginx:1"), "a", 0),
        new_replica_set(&d, "c", 1),
        new_replica_set(&d, "b", 1),
    ];
    rss[0].metadata.creation_timestamp = at(10);
    rss[1].metadata.creation_timestamp = at(30);
    rss[2].metadata.creation_timestamp = at(20);
    assert_eq!(find_new(&d, &rss), Some(2));
    assert_eq!(find_new(&deployment("nginx:9"), &rss), None);
    assert_eq!(find_new(&d, &[]), None);
}
