//! What the apiserver serves, as its discovery says (a list without a resource through the
//! gRPC door: every group version's `APIResourceList`): each resource's group, version,
//! kind, scope and verbs, and a mapping from an owner reference's `apiVersion` and `kind`
//! to the resource that holds such objects. The garbage collector and the namespace
//! controller act on every resource found here instead of a list compiled into them.
//!
//! Never: hard-code a resource, or read the apiserver's own table; a resource this
//! controller-manager does not know is handled the same as one it does.

use std::collections::BTreeSet;

use rkube_client::{Client, Gvr, ListParams};
use serde_json::Value;

/// Why the served resources could not be discovered.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("discovery through the apiserver failed")]
    Request(#[source] rkube_client::Error),
    #[error("the discovery answer is not an APIResourceList: {0}")]
    Malformed(String),
}

/// One served resource (subresources are left out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiResource {
    pub gvr: Gvr,
    /// `v1`, `apps/v1`: what objects of it carry as `apiVersion`.
    pub api_version: String,
    pub kind: String,
    pub namespaced: bool,
    pub verbs: BTreeSet<String>,
}

impl ApiResource {
    pub fn supports(&self, verbs: &[&str]) -> bool {
        verbs.iter().all(|v| self.verbs.contains(*v))
    }

    /// `configmaps`, `deployments.apps`: how kubectl and messages name it.
    pub fn qualified_name(&self) -> String {
        if self.gvr.group.is_empty() {
            self.gvr.resource.clone()
        } else {
            format!("{}.{}", self.gvr.resource, self.gvr.group)
        }
    }
}

/// Every served resource, in discovery order (core first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub all: Vec<ApiResource>,
}

/// The group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    api_version.split_once('/').map_or("", |(g, _)| g)
}

impl Resources {
    /// Reads the `APIResourceList`s the apiserver answers. Pure.
    pub fn parse(lists: &[Value]) -> Result<Resources, Error> {
        let mut all = Vec::new();
        for list in lists {
            let gv = list
                .get("groupVersion")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Malformed(format!("no groupVersion in {list}")))?;
            let (group, version) = gv.split_once('/').unwrap_or(("", gv));
            let entries = list
                .get("resources")
                .and_then(Value::as_array)
                .ok_or_else(|| Error::Malformed(format!("no resources in {gv}")))?;
            for r in entries {
                let name = r.get("name").and_then(Value::as_str).unwrap_or("");
                if name.is_empty() || name.contains('/') {
                    continue;
                }
                all.push(ApiResource {
                    gvr: Gvr::new(group, version, name),
                    api_version: gv.to_string(),
                    kind: r
                        .get("kind")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string(),
                    namespaced: r.get("namespaced").and_then(Value::as_bool) == Some(true),
                    verbs: r
                        .get("verbs")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect(),
                });
            }
        }
        Ok(Resources { all })
    }

    /// The resource holding objects of `kind` at `api_version`; when that exact version
    /// is not served, the same group's resource of that kind at another version.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<&ApiResource> {
        self.all
            .iter()
            .find(|r| r.api_version == api_version && r.kind == kind)
            .or_else(|| {
                let group = group_of(api_version);
                self.all
                    .iter()
                    .find(|r| r.gvr.group == group && r.kind == kind)
            })
    }

    /// Resources supporting every verb of `verbs`.
    pub fn supporting<'a>(
        &'a self,
        verbs: &'a [&'a str],
    ) -> impl Iterator<Item = &'a ApiResource> + 'a {
        self.all.iter().filter(move |r| r.supports(verbs))
    }
}

/// Asks the apiserver what it serves.
pub async fn discover(client: &Client) -> Result<Resources, Error> {
    let lists = client
        .list(&Gvr::new("", "", ""), "", &ListParams::default())
        .await
        .map_err(Error::Request)?;
    Resources::parse(&lists.items)
}

#[cfg(test)]
mod tests;
