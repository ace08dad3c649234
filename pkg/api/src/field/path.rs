//! Field paths as Kubernetes' `field.Path` prints them: `spec.containers[0].image`,
//! `metadata.labels[app]`. A path only names a place in an object; it never looks into one.

use std::fmt;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Name(String),
    Index(usize),
    Key(String),
}

/// A path to a field, built from a root with [`child`](FieldPath::child),
/// [`index`](FieldPath::index) and [`key`](FieldPath::key).
///
/// Printing follows Kubernetes exactly, including its corner: a root with an empty name
/// prints as `[]` (Kubernetes reports whole-object size errors at `field.NewPath("")`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldPath {
    segments: Vec<Segment>,
}

impl FieldPath {
    /// A root path, e.g. `FieldPath::new("spec")`.
    pub fn new(root: &str) -> Self {
        FieldPath {
            segments: vec![Segment::Name(root.to_string())],
        }
    }

    /// A root path of several names, e.g. `FieldPath::from_names(&["metadata", "name"])`.
    pub fn from_names(names: &[&str]) -> Self {
        FieldPath {
            segments: names.iter().map(|n| Segment::Name(n.to_string())).collect(),
        }
    }

    /// This path extended by a named child field.
    pub fn child(&self, name: &str) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Name(name.to_string()));
        p
    }

    /// This path extended by a list index: `[3]`.
    pub fn index(&self, i: usize) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Index(i));
        p
    }

    /// This path extended by a map key: `[app]`.
    pub fn key(&self, k: &str) -> Self {
        let mut p = self.clone();
        p.segments.push(Segment::Key(k.to_string()));
        p
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.segments.iter().enumerate() {
            match s {
                Segment::Name(n) if n.is_empty() => write!(f, "[]")?,
                Segment::Name(n) if i == 0 => write!(f, "{n}")?,
                Segment::Name(n) => write!(f, ".{n}")?,
                Segment::Index(x) => write!(f, "[{x}]")?,
                Segment::Key(k) => write!(f, "[{k}]")?,
            }
        }
        Ok(())
    }
}

impl From<&FieldPath> for String {
    fn from(p: &FieldPath) -> String {
        p.to_string()
    }
}
