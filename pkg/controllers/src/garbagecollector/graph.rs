//! The garbage collector's dependency graph (Kubernetes' GraphBuilder `uidToNode`): one
//! node per object UID, with its owner references and the UIDs of its dependents. Owners
//! that are referenced but not (yet) observed are *virtual* nodes, to be verified with a
//! live read before anything is done about their dependents.
//!
//! [`Graph::apply`] takes one [`Change`] (an object observed or gone, a resource relisted,
//! an identity verified absent) and returns the [`Work`] it calls for: objects to attempt
//! to delete (their owners may be gone, or they may be waiting for their dependents) and
//! owners to orphan. Pure and single-threaded: the graph never calls the API, and never
//! decides to delete anything — the workers decide, from live reads.

use std::collections::{BTreeSet, HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rkube_client::Gvr;

use crate::discovery::group_of;

pub type Uid = String;

/// The finalizer of foreground deletion: the owner waits for its blocking dependents.
pub const FOREGROUND: &str = "foregroundDeletion";
/// The finalizer of orphan deletion: dependents lose their references first.
pub const ORPHAN: &str = "orphan";

/// An object's coordinates as an owner reference names it, and its namespace ("" for
/// cluster-scoped objects; for a virtual owner, the namespace of the dependent that named
/// it).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Identity {
    pub api_version: String,
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub uid: Uid,
}

impl Identity {
    /// Whether `r` names this object: its UID, kind, name and API group (the same
    /// object is served at several versions).
    pub fn matches(&self, r: &OwnerReference) -> bool {
        r.uid == self.uid
            && r.kind == self.kind
            && r.name == self.name
            && group_of(&r.api_version) == group_of(&self.api_version)
    }

    /// The identity an owner reference gives its owner, seen from a dependent in
    /// `namespace`.
    pub fn of_owner(r: &OwnerReference, namespace: &str) -> Identity {
        Identity {
            api_version: r.api_version.clone(),
            kind: r.kind.clone(),
            namespace: namespace.to_string(),
            name: r.name.clone(),
            uid: r.uid.clone(),
        }
    }

    fn same_coordinates(&self, other: &Identity) -> bool {
        self.uid == other.uid
            && self.kind == other.kind
            && self.name == other.name
            && self.namespace == other.namespace
            && group_of(&self.api_version) == group_of(&other.api_version)
    }
}

/// An object as a monitor saw it: only what the graph keeps.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// The resource it was listed or watched in.
    pub resource: Gvr,
    pub identity: Identity,
    pub owners: Vec<OwnerReference>,
    /// It has a deletionTimestamp.
    pub deleting: bool,
    pub finalizers: Vec<String>,
}

/// One object in the graph.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub identity: Identity,
    /// The resource it was observed in; `None` while it is virtual.
    pub resource: Option<Gvr>,
    pub owners: Vec<OwnerReference>,
    pub dependents: BTreeSet<Uid>,
    /// It has a deletionTimestamp.
    pub being_deleted: bool,
    /// Being deleted in the foreground: it waits for its blocking dependents.
    pub deleting_dependents: bool,
    /// Being deleted with the orphan finalizer: its dependents lose their references.
    pub orphaning: bool,
}

impl Node {
    fn new(identity: Identity, resource: Option<Gvr>) -> Node {
        Node {
            identity,
            resource,
            owners: Vec::new(),
            dependents: BTreeSet::new(),
            being_deleted: false,
            deleting_dependents: false,
            orphaning: false,
        }
    }

    /// Referenced as an owner but never observed (or not observed yet).
    pub fn is_virtual(&self) -> bool {
        self.resource.is_none()
    }
}

/// What happened, as the graph learns it.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An object was added or changed.
    Upsert(Observed),
    /// An object was deleted.
    Deleted(Observed),
    /// A resource was (re)listed: these are all its objects; nodes of it not among
    /// them were deleted meanwhile.
    Replace {
        resource: Gvr,
        objects: Vec<Observed>,
    },
    /// A worker's live read found no object with this identity (Kubernetes' virtual
    /// delete event).
    Absent(Identity),
}

/// What a change calls for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Work {
    /// Attempt to delete the object: check its owners (or, if it waits for its
    /// dependents, whether they are gone).
    Delete(Uid),
    /// Orphan the object's dependents, then drop its orphan finalizer.
    Orphan(Uid),
}

/// The graph; see the module documentation.
#[derive(Debug, Default)]
pub struct Graph {
    nodes: HashMap<Uid, Node>,
}

impl Graph {
    pub fn node(&self, uid: &str) -> Option<&Node> {
        self.nodes.get(uid)
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The dependents of `owner` whose reference to it blocks its deletion
    /// (`blockOwnerDeletion`), each with whether it is deleting its own dependents.
    pub fn blocking_dependents(&self, owner: &str) -> Vec<(Uid, bool)> {
        let Some(node) = self.nodes.get(owner) else {
            return Vec::new();
        };
        node.dependents
            .iter()
            .filter_map(|d| self.nodes.get(d).map(|n| (d, n)))
            .filter(|(_, n)| {
                n.owners
                    .iter()
                    .any(|r| r.uid == owner && r.block_owner_deletion == Some(true))
            })
            .map(|(d, n)| (d.clone(), n.deleting_dependents))
            .collect()
    }

    /// The dependents of `owner` the graph knows.
    pub fn dependents(&self, owner: &str) -> Vec<&Node> {
        self.nodes
            .get(owner)
            .into_iter()
            .flat_map(|n| n.dependents.iter())
            .filter_map(|d| self.nodes.get(d))
            .collect()
    }

    /// Applies `change`; returns the work it calls for (in no particular order, without
    /// duplicates).
    pub fn apply(&mut self, change: Change) -> Vec<Work> {
        let mut work = BTreeSet::new();
        match change {
            Change::Upsert(o) => self.upsert(o, &mut work),
            Change::Deleted(o) => self.remove(&o.identity.uid, &mut work),
            Change::Replace { resource, objects } => {
                let seen: HashSet<Uid> = objects.iter().map(|o| o.identity.uid.clone()).collect();
                for o in objects {
                    self.upsert(o, &mut work);
                }
                let stale: Vec<Uid> = self
                    .nodes
                    .iter()
                    .filter(|(uid, n)| {
                        n.resource.as_ref() == Some(&resource) && !seen.contains(*uid)
                    })
                    .map(|(uid, _)| uid.clone())
                    .collect();
                for uid in stale {
                    self.remove(&uid, &mut work);
                }
            }
            Change::Absent(identity) => self.absent(&identity, &mut work),
        }
        work.into_iter().collect()
    }

    fn upsert(&mut self, o: Observed, work: &mut BTreeSet<Work>) {
        let uid = o.identity.uid.clone();
        let node = self
            .nodes
            .entry(uid.clone())
            .or_insert_with(|| Node::new(o.identity.clone(), Some(o.resource.clone())));
        if node.is_virtual() && !node.identity.same_coordinates(&o.identity) {
            // Its dependents named it otherwise than it is: let each check its references.
            work.extend(node.dependents.iter().cloned().map(Work::Delete));
        }
        node.identity = o.identity.clone();
        node.resource = Some(o.resource.clone());
        let was = (node.deleting_dependents, node.orphaning);
        node.being_deleted = o.deleting;
        node.deleting_dependents = o.deleting && o.finalizers.iter().any(|f| f == FOREGROUND);
        node.orphaning = o.deleting && o.finalizers.iter().any(|f| f == ORPHAN);
        let now = (node.deleting_dependents, node.orphaning);
        self.set_owners(&uid, o.owners, work);
        let node = &self.nodes[&uid];
        if now.0 && !was.0 {
            // Foreground deletion starts: every dependent is to be deleted, and the
            // object itself checked (it may have none).
            work.extend(node.dependents.iter().cloned().map(Work::Delete));
            work.insert(Work::Delete(uid.clone()));
        }
        if now.1 && !was.1 {
            work.insert(Work::Orphan(uid));
        }
    }

    /// Replaces the owners of `uid` by `owners`, keeping the owners' dependents in step.
    fn set_owners(&mut self, uid: &str, owners: Vec<OwnerReference>, work: &mut BTreeSet<Work>) {
        let Some(node) = self.nodes.get_mut(uid) else {
            return;
        };
        let old = std::mem::replace(&mut node.owners, owners.clone());
        let namespace = node.identity.namespace.clone();
        // Removed references, and references that stopped blocking, may unblock an owner
        // deleting its dependents.
        for r in &old {
            let now = owners.iter().find(|n| n.uid == r.uid);
            let unblocked = match now {
                None => true,
                Some(n) => {
                    r.block_owner_deletion == Some(true) && n.block_owner_deletion != Some(true)
                }
            };
            if !unblocked {
                continue;
            }
            if let Some(owner) = self.nodes.get_mut(&r.uid) {
                if now.is_none() {
                    owner.dependents.remove(uid);
                }
                if owner.deleting_dependents {
                    work.insert(Work::Delete(r.uid.clone()));
                }
                if owner.is_virtual() && owner.dependents.is_empty() {
                    self.nodes.remove(&r.uid);
                }
            }
        }
        let mut doubtful = false;
        for r in owners
            .iter()
            .filter(|r| !old.iter().any(|o| o.uid == r.uid))
        {
            match self.nodes.get_mut(&r.uid) {
                None => {
                    let mut owner = Node::new(Identity::of_owner(r, &namespace), None);
                    owner.dependents.insert(uid.to_string());
                    self.nodes.insert(r.uid.clone(), owner);
                    // Verify the owner exists before anything is done about it.
                    work.insert(Work::Delete(r.uid.clone()));
                }
                Some(owner) => {
                    owner.dependents.insert(uid.to_string());
                    let wrong_namespace = !owner.identity.namespace.is_empty()
                        && owner.identity.namespace != namespace;
                    if wrong_namespace || !owner.identity.matches(r) {
                        doubtful = true;
                    }
                }
            }
        }
        if doubtful {
            // A reference that does not match its owner's observed coordinates (or names
            // an owner in another namespace): the worker checks it live.
            work.insert(Work::Delete(uid.to_string()));
        }
    }

    /// Drops the node of `uid`: its dependents are to be checked, and owners waiting for
    /// their dependents may be unblocked.
    fn remove(&mut self, uid: &str, work: &mut BTreeSet<Work>) {
        let Some(node) = self.nodes.remove(uid) else {
            return;
        };
        work.extend(node.dependents.iter().cloned().map(Work::Delete));
        for r in &node.owners {
            if let Some(owner) = self.nodes.get_mut(&r.uid) {
                owner.dependents.remove(uid);
                if owner.deleting_dependents {
                    work.insert(Work::Delete(r.uid.clone()));
                }
                if owner.is_virtual() && owner.dependents.is_empty() {
                    self.nodes.remove(&r.uid);
                }
            }
        }
    }

    fn absent(&mut self, identity: &Identity, work: &mut BTreeSet<Work>) {
        let Some(node) = self.nodes.get(&identity.uid) else {
            return;
        };
        if node.is_virtual() || node.identity.same_coordinates(identity) {
            self.remove(&identity.uid, work);
        } else {
            // The object exists under other coordinates; dependents that named these
            // check their references.
            work.extend(node.dependents.iter().cloned().map(Work::Delete));
        }
    }
}

#[cfg(test)]
mod tests;
