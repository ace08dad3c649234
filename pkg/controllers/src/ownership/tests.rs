use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::*;

fn meta(ns: &str, controller: Option<&str>, deleting: bool) -> ObjectMeta {
    ObjectMeta {
        namespace: Some(ns.into()),
        name: Some("p".into()),
        owner_references: controller.map(|uid| {
            vec![OwnerReference {
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            }]
        }),
        deletion_timestamp: deleting.then(|| Time(rkube_runtime::object::now())),
        ..Default::default()
    }
}

#[test]
fn claims_follow_kubernetes_controller_ref_rules() {
    use Decision::*;
    // (name, candidate, owner deleting, selector matches, decision)
    let cases = [
        (
            "ours and matching",
            meta("ns", Some("me"), false),
            false,
            true,
            Owned,
        ),
        (
            "ours, matching, owner deleting",
            meta("ns", Some("me"), false),
            true,
            true,
            Owned,
        ),
        (
            "ours, no longer matching",
            meta("ns", Some("me"), false),
            false,
            false,
            Release,
        ),
        (
            "ours, not matching, owner deleting",
            meta("ns", Some("me"), false),
            true,
            false,
            Ignore,
        ),
        (
            "someone else's",
            meta("ns", Some("other"), false),
            false,
            true,
            Ignore,
        ),
        (
            "matching orphan",
            meta("ns", None, false),
            false,
            true,
            Adopt,
        ),
        (
            "orphan, not matching",
            meta("ns", None, false),
            false,
            false,
            Ignore,
        ),
        (
            "orphan, owner deleting",
            meta("ns", None, false),
            true,
            true,
            Ignore,
        ),
        (
            "orphan being deleted",
            meta("ns", None, true),
            false,
            true,
            Ignore,
        ),
        (
            "orphan in another namespace",
            meta("elsewhere", None, false),
            false,
            true,
            Ignore,
        ),
    ];
    for (name, m, deleting, matches, want) in cases {
        assert_eq!(decide(&m, "me", "ns", deleting, matches), want, "{name}");
    }
}

fn owner() -> ReplicaSet {
    let mut rs = ReplicaSet::default();
    rs.metadata.name = Some("web".into());
    rs.metadata.namespace = Some("ns".into());
    rs.metadata.uid = Some("me".into());
    rs
}

#[test]
fn adopting_adds_a_controller_reference_and_keeps_other_owners() {
    let mut m = meta("ns", None, false);
    m.owner_references = Some(vec![OwnerReference {
        uid: "cm".into(),
        kind: "ConfigMap".into(),
        ..Default::default()
    }]);
    let refs = adopted_refs(&m, &owner());
    assert_eq!(refs.len(), 2);
    assert_eq!(refs[0].uid, "cm");
    assert_eq!(
        (
            refs[1].uid.as_str(),
            refs[1].kind.as_str(),
            refs[1].controller
        ),
        ("me", "ReplicaSet", Some(true))
    );
    assert_eq!(refs[1].block_owner_deletion, Some(true));
}

#[test]
fn releasing_removes_only_the_owners_reference() {
    let mut m = meta("ns", Some("me"), false);
    m.owner_references.as_mut().unwrap().push(OwnerReference {
        uid: "cm".into(),
        ..Default::default()
    });
    let refs = released_refs(&m, "me");
    assert_eq!(
        refs.iter().map(|r| r.uid.as_str()).collect::<Vec<_>>(),
        ["cm"]
    );
    assert!(released_refs(&meta("ns", Some("me"), false), "me").is_empty());
}

#[test]
fn only_objects_without_a_controller_are_indexed_as_orphans() {
    let f = index_orphans::<ReplicaSet>();
    let orphan = ReplicaSet {
        metadata: meta("ns", None, false),
        ..Default::default()
    };
    let owned = ReplicaSet {
        metadata: meta("ns", Some("me"), false),
        ..Default::default()
    };
    assert_eq!(f(&orphan), ["ns"]);
    assert!(f(&owned).is_empty());
}
