//! What to do with an object whose owners were checked live (Kubernetes'
//! `attemptToDeleteItem` after `classifyReferences`). Pure: the worker reads the owners,
//! calls [`decide`], and carries the [`Decision`] out.
//!
//! - An owner that exists (same UID) and is not waiting for its dependents is *solid*:
//!   the object stays. References to owners that are gone or waiting are removed from it,
//!   so it neither dangles nor holds a foreground deletion up.
//! - With no solid owner the object is deleted. If an owner waits for its dependents and
//!   this object has dependents of its own, the deletion is Foreground, so the wait
//!   carries down the chain (and when one of those dependents is itself waiting — a
//!   cycle — the object first stops blocking its owners). Otherwise the object's own
//!   finalizers choose: `orphan` → Orphan, `foregroundDeletion` → Foreground, else
//!   Background.

use super::graph::{Uid, FOREGROUND, ORPHAN};

/// How one owner reference was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// It exists and is not being deleted in the foreground.
    Solid,
    /// It does not exist, or an object of another UID holds its name.
    Dangling,
    /// It is being deleted in the foreground: it waits for its dependents.
    Waiting,
}

/// A deletion's propagation policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Background,
    Foreground,
    Orphan,
}

impl Policy {
    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Background => "Background",
            Policy::Foreground => "Foreground",
            Policy::Orphan => "Orphan",
        }
    }
}

/// What to do with the object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// It has no owner references, or only solid owners.
    Keep,
    /// It has a solid owner: drop the references to these owners (gone or waiting).
    RemoveReferences(Vec<Uid>),
    /// No owner remains: delete it with `policy`, after clearing `blockOwnerDeletion` on
    /// its references when `unblock`.
    Delete { policy: Policy, unblock: bool },
}

/// Decides from the owners as found (`(uid, how)` per reference), whether the object has
/// dependents and whether one of them is itself deleting its dependents, and the object's
/// finalizers.
pub fn decide(
    owners: &[(Uid, Owner)],
    has_dependents: bool,
    a_dependent_is_waiting: bool,
    finalizers: &[String],
) -> Decision {
    if owners.is_empty() {
        return Decision::Keep;
    }
    let of = |how: Owner| owners.iter().filter(move |(_, h)| *h == how);
    if of(Owner::Solid).next().is_some() {
        let drop: Vec<Uid> = owners
            .iter()
            .filter(|(_, h)| *h != Owner::Solid)
            .map(|(u, _)| u.clone())
            .collect();
        return if drop.is_empty() {
            Decision::Keep
        } else {
            Decision::RemoveReferences(drop)
        };
    }
    if of(Owner::Waiting).next().is_some() && has_dependents {
        return Decision::Delete {
            policy: Policy::Foreground,
            unblock: a_dependent_is_waiting,
        };
    }
    let has = |f: &str| finalizers.iter().any(|x| x == f);
    let policy = if has(ORPHAN) {
        Policy::Orphan
    } else if has(FOREGROUND) {
        Policy::Foreground
    } else {
        Policy::Background
    };
    Decision::Delete {
        policy,
        unblock: false,
    }
}

#[cfg(test)]
mod tests;
