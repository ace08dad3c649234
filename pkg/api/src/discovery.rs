//! Discovery documents built from the [registry](crate::registry), in Kubernetes' JSON
//! shapes: `APIVersions` (`/api`), `APIGroupList` (`/apis`), `APIGroup` (`/apis/<g>`),
//! `APIResourceList` (`/api/v1`, `/apis/<g>/<v>`, and all of them at once for the gRPC
//! door), and the aggregated
//! `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList` that kubectl 1.30+ asks for first.
//! Values only; the REST layer picks the document by path and `Accept` header.

use serde_json::{json, Map, Value};

use crate::registry::{self, ResourceInfo, Subresource};

/// The media type of aggregated discovery responses (and of the `Accept` that asks for it).
pub const AGGREGATED_DISCOVERY_V2_MEDIA_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// `/api`: the core group's versions and the address clients should use.
pub fn api_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    })
}

fn group_json(g: &registry::GroupVersions) -> Value {
    let versions: Vec<Value> = g
        .versions
        .iter()
        .map(|v| json!({"groupVersion": format!("{}/{v}", g.group), "version": v}))
        .collect();
    json!({
        "name": g.group,
        "versions": versions,
        "preferredVersion": {"groupVersion": format!("{}/{}", g.group, g.preferred), "version": g.preferred},
    })
}

/// `/apis`: every named group with its versions and preferred version.
pub fn api_group_list() -> Value {
    let groups: Vec<Value> = registry::groups().iter().map(group_json).collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `/apis/<group>`, or `None` for a group not served.
pub fn api_group(group: &str) -> Option<Value> {
    let g = registry::groups().into_iter().find(|g| g.group == group)?;
    let mut v = group_json(&g);
    let obj = v.as_object_mut()?;
    let mut out = Map::new();
    out.insert("kind".into(), json!("APIGroup"));
    out.insert("apiVersion".into(), json!("v1"));
    out.append(obj);
    Some(Value::Object(out))
}

fn resource_entry(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(r.plural));
    m.insert("singularName".into(), json!(r.singular));
    m.insert("namespaced".into(), json!(r.namespaced));
    m.insert("kind".into(), json!(r.kind));
    m.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), json!(r.categories));
    }
    Value::Object(m)
}

fn subresource_entry(r: &ResourceInfo, s: &Subresource) -> Value {
    let mut m = Map::new();
    m.insert("name".into(), json!(format!("{}/{}", r.plural, s.name)));
    m.insert("singularName".into(), json!(""));
    m.insert("namespaced".into(), json!(r.namespaced));
    if let Some((g, v)) = s.group_version {
        m.insert("group".into(), json!(g));
        m.insert("version".into(), json!(v));
    }
    m.insert("kind".into(), json!(s.kind));
    m.insert("verbs".into(), json!(s.verbs));
    Value::Object(m)
}

/// `/api/v1` or `/apis/<group>/<version>`: the resources and subresources served there,
/// sorted by name as Kubernetes' installer sorts them; `None` for a group version not
/// served.
pub fn api_resource_list(group: &str, version: &str) -> Option<Value> {
    let resources = registry::resources_in(group, version);
    if resources.is_empty() {
        return None;
    }
    let mut entries: Vec<(String, Value)> = Vec::new();
    for r in &resources {
        entries.push((r.plural.to_string(), resource_entry(r)));
        for s in r.subresources {
            entries.push((format!("{}/{}", r.plural, s.name), subresource_entry(r, s)));
        }
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let list: Vec<Value> = entries.into_iter().map(|(_, v)| v).collect();
    let mut m = Map::new();
    m.insert("kind".into(), json!("APIResourceList"));
    if group.is_empty() {
        m.insert("groupVersion".into(), json!(version));
    } else {
        // Kubernetes sets apiVersion on group lists but not on the core one.
        m.insert("apiVersion".into(), json!("v1"));
        m.insert("groupVersion".into(), json!(format!("{group}/{version}")));
    }
    m.insert("resources".into(), Value::Array(list));
    Some(Value::Object(m))
}

/// Every served group version's `APIResourceList`: core `v1` first, then the named groups
/// in `/apis` order. What components discover through the gRPC door (a list without a
/// resource), in the shape `/api/v1` and `/apis/<g>/<v>` serve to kubectl.
pub fn api_resource_lists() -> Vec<Value> {
    let mut out: Vec<Value> = api_resource_list("", "v1").into_iter().collect();
    for g in registry::groups() {
        out.extend(
            g.versions
                .iter()
                .filter_map(|v| api_resource_list(g.group, v)),
        );
    }
    out
}

fn aggregated_resource(r: &ResourceInfo) -> Value {
    let mut m = Map::new();
    m.insert("resource".into(), json!(r.plural));
    m.insert(
        "responseKind".into(),
        json!({"group": "", "version": "", "kind": r.kind}),
    );
    m.insert(
        "scope".into(),
        json!(if r.namespaced {
            "Namespaced"
        } else {
            "Cluster"
        }),
    );
    m.insert("singularResource".into(), json!(r.singular));
    m.insert("verbs".into(), json!(r.verbs));
    if !r.short_names.is_empty() {
        m.insert("shortNames".into(), json!(r.short_names));
    }
    if !r.categories.is_empty() {
        m.insert("categories".into(), json!(r.categories));
    }
    if !r.subresources.is_empty() {
        let mut subs: Vec<&Subresource> = r.subresources.iter().collect();
        subs.sort_by_key(|s| s.name);
        let subs: Vec<Value> = subs
            .into_iter()
            .map(|s| {
                let (g, v) = s.group_version.unwrap_or(("", ""));
                json!({
                    "subresource": s.name,
                    "responseKind": {"group": g, "version": v, "kind": s.kind},
                    "verbs": s.verbs,
                })
            })
            .collect();
        m.insert("subresources".into(), Value::Array(subs));
    }
    Value::Object(m)
}

fn aggregated_group(group: &str, versions: &[&str]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|v| {
            let mut rs = registry::resources_in(group, v);
            rs.sort_by_key(|r| r.plural);
            let resources: Vec<Value> = rs.into_iter().map(aggregated_resource).collect();
            json!({"version": v, "resources": resources, "freshness": "Current"})
        })
        .collect();
    let metadata = if group.is_empty() {
        json!({"creationTimestamp": null})
    } else {
        json!({"name": group, "creationTimestamp": null})
    };
    json!({"metadata": metadata, "versions": versions})
}

/// Aggregated discovery (`apidiscovery.k8s.io/v2` `APIGroupDiscoveryList`): for `/api`
/// when `core` is true (the core group alone), for `/apis` otherwise (every named group).
pub fn aggregated_discovery(core: bool) -> Value {
    let items: Vec<Value> = if core {
        vec![aggregated_group("", &["v1"])]
    } else {
        registry::groups()
            .iter()
            .map(|g| aggregated_group(g.group, &g.versions))
            .collect()
    };
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests;
