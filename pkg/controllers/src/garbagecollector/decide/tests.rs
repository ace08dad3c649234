use super::*;

use Owner::{Dangling, Solid, Waiting};

fn owners(list: &[(&str, Owner)]) -> Vec<(Uid, Owner)> {
    list.iter().map(|(u, h)| (u.to_string(), *h)).collect()
}

fn delete(policy: Policy) -> Decision {
    Decision::Delete {
        policy,
        unblock: false,
    }
}

/// What the case is, the owners as found, whether the object has dependents, whether one
/// of them waits on it, its finalizers, and the decision.
type Case<'a> = (
    &'a str,
    Vec<(Uid, Owner)>,
    bool,
    bool,
    &'a [&'a str],
    Decision,
);

#[test]
fn dependents_are_kept_deleted_or_released_as_kubernetes_decides() {
    let none: &[&str] = &[];
    let cases: Vec<Case> = vec![
        (
            "no owner references",
            owners(&[]),
            false,
            false,
            none,
            Decision::Keep,
        ),
        (
            "a solid owner",
            owners(&[("a", Solid)]),
            false,
            false,
            none,
            Decision::Keep,
        ),
        (
            "one of two owners gone: the reference goes, the object stays",
            owners(&[("a", Solid), ("b", Dangling)]),
            false,
            false,
            none,
            Decision::RemoveReferences(vec!["b".into()]),
        ),
        (
            "a solid owner and one waiting: it stops holding the waiting one up",
            owners(&[("a", Waiting), ("b", Solid), ("c", Dangling)]),
            true,
            false,
            none,
            Decision::RemoveReferences(vec!["a".into(), "c".into()]),
        ),
        (
            "every owner gone: background",
            owners(&[("a", Dangling), ("b", Dangling)]),
            true,
            false,
            none,
            delete(Policy::Background),
        ),
        (
            "an owner waiting, no dependents of its own: background",
            owners(&[("a", Waiting)]),
            false,
            false,
            none,
            delete(Policy::Background),
        ),
        (
            "an owner waiting and dependents of its own: foreground carries down",
            owners(&[("a", Waiting), ("b", Dangling)]),
            true,
            false,
            none,
            delete(Policy::Foreground),
        ),
        (
            "and a dependent already waiting on it: unblock first (a cycle)",
            owners(&[("a", Waiting)]),
            true,
            true,
            none,
            Decision::Delete {
                policy: Policy::Foreground,
                unblock: true,
            },
        ),
        (
            "its own orphan finalizer chooses orphan",
            owners(&[("a", Dangling)]),
            true,
            false,
            &["orphan"],
            delete(Policy::Orphan),
        ),
        (
            "its own foreground finalizer chooses foreground",
            owners(&[("a", Dangling)]),
            false,
            false,
            &["example.com/x", "foregroundDeletion"],
            delete(Policy::Foreground),
        ),
    ];
    for (what, owners, has_dependents, waiting, finalizers, want) in cases {
        let finalizers: Vec<String> = finalizers.iter().map(|s| s.to_string()).collect();
        assert_eq!(
            decide(&owners, has_dependents, waiting, &finalizers),
            want,
            "{what}"
        );
    }
    assert_eq!(Policy::Foreground.as_str(), "Foreground");
}
