use super::*;

fn cms() -> Gvr {
    Gvr::new("", "v1", "configmaps")
}

fn identity(uid: &str, kind: &str, name: &str) -> Identity {
    Identity {
        api_version: "v1".into(),
        kind: kind.into(),
        namespace: "ns".into(),
        name: name.into(),
        uid: uid.into(),
    }
}

fn owner_ref(uid: &str, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: format!("cm-{uid}"),
        uid: uid.into(),
        block_owner_deletion: block.then_some(true),
        controller: None,
    }
}

/// A ConfigMap `cm-<uid>` owned by `owners` (uid, blockOwnerDeletion).
fn cm(uid: &str, owners: &[(&str, bool)]) -> Observed {
    Observed {
        resource: cms(),
        identity: identity(uid, "ConfigMap", &format!("cm-{uid}")),
        owners: owners.iter().map(|(u, b)| owner_ref(u, *b)).collect(),
        deleting: false,
        finalizers: vec![],
    }
}

fn deleting(mut o: Observed, finalizer: &str) -> Observed {
    o.deleting = true;
    o.finalizers = vec![finalizer.to_string()];
    o
}

fn del(uid: &str) -> Work {
    Work::Delete(uid.into())
}

/// Applies each change and checks the work it returns (sorted).
fn run(g: &mut Graph, steps: Vec<(Change, Vec<Work>)>) {
    for (i, (change, mut want)) in steps.into_iter().enumerate() {
        want.sort();
        let what = format!("step {i}: {change:?}");
        assert_eq!(g.apply(change), want, "{what}");
    }
}

#[test]
fn an_unseen_owner_is_a_virtual_node_verified_before_anything_else() {
    let mut g = Graph::default();
    run(
        &mut g,
        vec![(Change::Upsert(cm("d", &[("o", true)])), vec![del("o")])],
    );
    let o = g.node("o").unwrap();
    assert!(o.is_virtual());
    assert_eq!(o.identity, identity("o", "ConfigMap", "cm-o"));
    assert_eq!(o.dependents, BTreeSet::from(["d".to_string()]));
    // Observed: no longer virtual, the dependents stay; nothing to do.
    run(&mut g, vec![(Change::Upsert(cm("o", &[])), vec![])]);
    assert!(!g.node("o").unwrap().is_virtual());
    assert_eq!(g.dependents("o").len(), 1);
    // Verified absent while virtual: the node goes and its dependents are checked.
    let mut g = Graph::default();
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("d", &[("o", true)])), vec![del("o")]),
            (
                Change::Absent(identity("o", "ConfigMap", "cm-o")),
                vec![del("d")],
            ),
        ],
    );
    assert!(g.node("o").is_none());
}

#[test]
fn a_deleted_owner_has_its_dependents_checked() {
    let mut g = Graph::default();
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("o", &[])), vec![]),
            (Change::Upsert(cm("d1", &[("o", true)])), vec![]),
            (
                Change::Upsert(cm("d2", &[("o", false), ("p", true)])),
                vec![del("p")],
            ),
            (Change::Deleted(cm("o", &[])), vec![del("d1"), del("d2")]),
            // Deleting something unknown does nothing.
            (Change::Deleted(cm("zz", &[])), vec![]),
        ],
    );
    assert!(g.node("o").is_none());
    assert_eq!(g.len(), 3, "d1, d2 and the virtual p");
}

#[test]
fn foreground_deletion_checks_every_dependent_and_waits_for_the_blocking_ones() {
    let mut g = Graph::default();
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("o", &[])), vec![]),
            (Change::Upsert(cm("b", &[("o", true)])), vec![]),
            (Change::Upsert(cm("n", &[("o", false)])), vec![]),
            (
                Change::Upsert(deleting(cm("o", &[]), FOREGROUND)),
                vec![del("b"), del("n"), del("o")],
            ),
            // The same state again is no news.
            (Change::Upsert(deleting(cm("o", &[]), FOREGROUND)), vec![]),
        ],
    );
    assert_eq!(g.blocking_dependents("o"), vec![("b".to_string(), false)]);
    run(
        &mut g,
        vec![
            // A non-blocking dependent going does not concern the owner... but any
            // removal of a dependent of a waiting owner has it checked again.
            (Change::Deleted(cm("n", &[("o", false)])), vec![del("o")]),
            // A blocking dependent that stops blocking unblocks the owner.
            (Change::Upsert(cm("b", &[("o", false)])), vec![del("o")]),
        ],
    );
    assert!(g.blocking_dependents("o").is_empty());
    run(&mut g, vec![(Change::Upsert(cm("b", &[])), vec![del("o")])]);
    assert!(g.dependents("o").is_empty());
}

#[test]
fn orphan_deletion_is_work_once_when_it_starts() {
    let mut g = Graph::default();
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("o", &[])), vec![]),
            (Change::Upsert(cm("d", &[("o", true)])), vec![]),
            (
                Change::Upsert(deleting(cm("o", &[]), ORPHAN)),
                vec![Work::Orphan("o".into())],
            ),
            (Change::Upsert(deleting(cm("o", &[]), ORPHAN)), vec![]),
        ],
    );
    assert!(g.node("o").unwrap().orphaning);
    // Being deleted without a garbage-collector finalizer calls for nothing.
    run(
        &mut g,
        vec![(
            Change::Upsert(deleting(cm("x", &[]), "example.com/hold")),
            vec![],
        )],
    );
    assert!(g.node("x").unwrap().being_deleted);
}

#[test]
fn a_relist_drops_what_it_no_longer_lists_of_its_resource() {
    let mut g = Graph::default();
    let secret = Observed {
        resource: Gvr::new("", "v1", "secrets"),
        identity: identity("s", "Secret", "s"),
        owners: vec![],
        deleting: false,
        finalizers: vec![],
    };
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("o", &[])), vec![]),
            (Change::Upsert(cm("gone", &[])), vec![]),
            (Change::Upsert(secret), vec![]),
            (Change::Upsert(cm("d", &[("gone", true)])), vec![]),
            (
                Change::Replace {
                    resource: cms(),
                    objects: vec![cm("o", &[]), cm("d", &[("gone", true)])],
                },
                vec![del("d")],
            ),
        ],
    );
    assert!(g.node("gone").is_none());
    assert!(g.node("s").is_some(), "other resources are untouched");
}

#[test]
fn references_that_disagree_with_the_observed_owner_are_checked() {
    let mut g = Graph::default();
    let mut wrong_kind = cm("d", &[]);
    wrong_kind.owners = vec![OwnerReference {
        kind: "Secret".into(),
        ..owner_ref("o", true)
    }];
    let mut elsewhere = cm("o2", &[]);
    elsewhere.identity.namespace = "other".into();
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("o", &[])), vec![]),
            (Change::Upsert(wrong_kind), vec![del("d")]),
            (Change::Upsert(elsewhere), vec![]),
            (Change::Upsert(cm("e", &[("o2", false)])), vec![del("e")]),
            // A live read found `o` absent under other coordinates: it stays, and its
            // dependents are checked.
            (
                Change::Absent(identity("o", "Secret", "cm-o")),
                vec![del("d")],
            ),
        ],
    );
    assert!(g.node("o").is_some());
    // Under its own coordinates, it goes.
    run(
        &mut g,
        vec![(
            Change::Absent(identity("o", "ConfigMap", "cm-o")),
            vec![del("d")],
        )],
    );
    assert!(g.node("o").is_none());
}

#[test]
fn a_virtual_owner_without_dependents_leaves_the_graph() {
    let mut g = Graph::default();
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("d", &[("o", true)])), vec![del("o")]),
            (Change::Upsert(cm("d", &[])), vec![]),
        ],
    );
    assert!(g.node("o").is_none());
    run(
        &mut g,
        vec![
            (Change::Upsert(cm("e", &[("p", true)])), vec![del("p")]),
            (Change::Deleted(cm("e", &[("p", true)])), vec![]),
        ],
    );
    assert!(g.node("p").is_none());
    assert_eq!(g.len(), 1, "only d remains");
}
