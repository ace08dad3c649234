//! The schema definitions of the OpenAPI documents, generated from the
//! k8s-openapi types (each kind's entry in [`crate::kinds`] names its type):
//! each type's `JsonSchema` impl (the crate's `schemars` feature) gives its
//! Kubernetes name (`io.k8s.api.apps.v1.Deployment`), descriptions, types,
//! formats and required fields. What those impls do not
//! carry is added here from other sources, never typed in per field:
//!
//! - `x-kubernetes-group-version-kind`, from the types' `Resource` constants;
//! - `<Kind>List` schemas (k8s-openapi has no schema for its generic `List`);
//! - the patch extensions (`x-kubernetes-patch-strategy`,
//!   `x-kubernetes-patch-merge-key`, `x-kubernetes-list-type`,
//!   `x-kubernetes-list-map-keys`), from [`crate::patch::schema`], the table
//!   the server's strategic merge patch uses, so kubectl builds its patches
//!   with the merge keys the server applies them with;
//! - the forms Kubernetes publishes for `IntOrString` and `Quantity`.
//!
//! Definitions are kept in the Swagger 2.0 form (`#/definitions/` references
//! with sibling descriptions); the v3 renderer converts them.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::schemars::generate::SchemaSettings;
use serde_json::{json, Map, Value};

use crate::patch::{schema_for_kind, ListStrategy, Schema as PatchSchema};
use crate::registry::{self, RESOURCES};

/// How definitions reference each other (Swagger 2.0).
pub(crate) const REF_PREFIX: &str = "#/definitions/";

pub(crate) const INT_OR_STRING: &str = "io.k8s.apimachinery.pkg.util.intstr.IntOrString";
pub(crate) const QUANTITY: &str = "io.k8s.apimachinery.pkg.api.resource.Quantity";
pub(crate) const STATUS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Status";
pub(crate) const DELETE_OPTIONS: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions";
pub(crate) const PATCH: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.Patch";
pub(crate) const API_RESOURCE_LIST: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList";
const LIST_META: &str = "io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta";

/// A group, version and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Gvk {
    pub group: &'static str,
    pub version: &'static str,
    pub kind: &'static str,
}

impl Gvk {
    fn to_json(self) -> Value {
        json!({"group": self.group, "version": self.version, "kind": self.kind})
    }
}

/// The schema names of one kind and its list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KindSchema {
    pub gvk: Gvk,
    /// `io.k8s.api.apps.v1.Deployment`
    pub name: String,
    /// `DeploymentList` and `io.k8s.api.apps.v1.DeploymentList`, for kinds that are listed.
    pub list: Option<(&'static str, String)>,
}

/// Every definition the documents use, in the Swagger 2.0 form.
pub(crate) struct Definitions {
    pub defs: BTreeMap<String, Value>,
    kinds: Vec<KindSchema>,
}

impl Definitions {
    /// The schema of a kind, by the group and kind the resource table names.
    pub fn kind(&self, group: &str, kind: &str) -> Option<&KindSchema> {
        self.kinds
            .iter()
            .find(|k| k.gvk.group == group && k.gvk.kind == kind)
    }

    /// The definitions `roots` reference, directly or through others, and the roots.
    pub fn closure(&self, roots: impl IntoIterator<Item = String>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut todo: Vec<String> = roots.into_iter().collect();
        while let Some(name) = todo.pop() {
            if !seen.insert(name.clone()) {
                continue;
            }
            if let Some(def) = self.defs.get(&name) {
                refs_in(def, &mut todo);
            }
        }
        seen
    }
}

/// The definition names `v` references, appended to `out`.
pub(crate) fn refs_in(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => {
                        if let Some(name) = r.rsplit('/').next() {
                            out.push(name.to_owned());
                        }
                    }
                    _ => refs_in(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs_in(v, out)),
        _ => {}
    }
}

/// The kinds the documents describe: every resource's kind and every
/// subresource's, each once.
pub(crate) fn served_kinds() -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for r in RESOURCES {
        let mut push = |k| {
            if !out.contains(&k) {
                out.push(k);
            }
        };
        push((r.group, r.kind));
        for s in r.subresources {
            let group = s.group_version.map_or(r.group, |(g, _)| g);
            push((group, s.kind));
        }
    }
    out
}

/// Builds every definition. Panics if a served kind has no type: the unit
/// tests build this, so that cannot reach a server.
pub(crate) fn build() -> Definitions {
    let mut gen = SchemaSettings::draft2020_12()
        .with(|s| {
            s.definitions_path = "/definitions".into();
            s.meta_schema = None;
        })
        .into_generator();
    let mut kinds = Vec::new();
    let mut list_kinds = Vec::new();
    for (group, kind) in served_kinds() {
        let object = registry::object_type(group, kind)
            .unwrap_or_else(|| panic!("no k8s-openapi type for served kind {group}/{kind}"));
        let name = object.add_schema(&mut gen);
        let gvk = Gvk {
            group: object.group,
            version: object.version,
            kind: object.kind,
        };
        let list = object.list_kind.map(|list_kind| {
            list_kinds.push((name.clone(), gvk, list_kind));
            (list_kind, format!("{name}List"))
        });
        kinds.push(KindSchema { gvk, name, list });
    }
    {
        use k8s_openapi::apimachinery::pkg::apis::meta::v1 as meta;
        gen.subschema_for::<meta::Status>();
        gen.subschema_for::<meta::DeleteOptions>();
        gen.subschema_for::<meta::Patch>();
        gen.subschema_for::<meta::APIResourceList>();
        gen.subschema_for::<meta::ListMeta>();
    }
    let mut defs: BTreeMap<String, Value> = gen.take_definitions(false).into_iter().collect();

    for (item, gvk, list_kind) in list_kinds {
        let list = list_schema(&defs, &item, gvk.kind, list_kind);
        defs.insert(format!("{item}List"), list);
    }
    for k in &kinds {
        set_gvks(&mut defs, &k.name, &[k.gvk]);
        if let Some((list_kind, list_name)) = &k.list {
            let gvk = Gvk {
                kind: list_kind,
                ..k.gvk
            };
            set_gvks(&mut defs, list_name, &[gvk]);
        }
    }
    set_gvks(
        &mut defs,
        STATUS,
        &[Gvk {
            group: "",
            version: "v1",
            kind: "Status",
        }],
    );
    // Every group accepts DeleteOptions in its own version, as Kubernetes registers it.
    let mut delete_gvks = vec![Gvk {
        group: "",
        version: "v1",
        kind: "DeleteOptions",
    }];
    for g in registry::groups() {
        for v in &g.versions {
            delete_gvks.push(Gvk {
                group: g.group,
                version: v,
                kind: "DeleteOptions",
            });
        }
    }
    set_gvks(&mut defs, DELETE_OPTIONS, &delete_gvks);

    for def in defs.values_mut() {
        if def.get("x-kubernetes-group-version-kind").is_some() {
            metadata_optional(def);
        }
    }
    int_or_string_forms(&mut defs);
    for k in &kinds {
        if let Some(patch) = schema_for_kind(k.gvk.kind) {
            annotate_patch(&mut defs, &k.name, patch, &mut BTreeSet::new());
        }
    }
    Definitions { defs, kinds }
}

/// `<Kind>List`: Kubernetes' list shape around `item`, with the standard
/// `apiVersion`/`kind` descriptions taken from the item's schema.
fn list_schema(defs: &BTreeMap<String, Value>, item: &str, kind: &str, list_kind: &str) -> Value {
    let prop = |name: &str| {
        defs.get(item)
            .and_then(|d| d.pointer(&format!("/properties/{name}")))
            .cloned()
            .unwrap_or_else(|| json!({"type": "string"}))
    };
    json!({
        "description": format!("{list_kind} is a list of {kind} objects."),
        "type": "object",
        "required": ["items"],
        "properties": {
            "apiVersion": prop("apiVersion"),
            "kind": prop("kind"),
            "items": {
                "description": format!("Items is the list of {kind} objects."),
                "type": "array",
                "items": {"$ref": format!("{REF_PREFIX}{item}")},
            },
            "metadata": {
                "$ref": format!("{REF_PREFIX}{LIST_META}"),
                "description": "Standard list metadata. More info: https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#types-kinds",
            },
        },
    })
}

fn set_gvks(defs: &mut BTreeMap<String, Value>, name: &str, gvks: &[Gvk]) {
    if let Some(Value::Object(def)) = defs.get_mut(name) {
        def.insert(
            "x-kubernetes-group-version-kind".into(),
            Value::Array(gvks.iter().map(|g| g.to_json()).collect()),
        );
    }
}

/// k8s-openapi's objects hold their `metadata` as a plain (non-optional)
/// struct and so list it as required; Kubernetes requires no object's
/// metadata (`explain` would print `-required-` beside it).
fn metadata_optional(def: &mut Value) {
    let Some(Value::Array(required)) = def.get_mut("required") else {
        return;
    };
    required.retain(|f| f != "metadata");
    if required.is_empty() {
        if let Some(m) = def.as_object_mut() {
            m.remove("required");
        }
    }
}

/// k8s-openapi marks both int-or-string types with `x-kubernetes-int-or-string`
/// and no type; Kubernetes' Swagger 2.0 document gives them a string type (and
/// `IntOrString` the `int-or-string` format). The v3 renderer turns them into
/// `oneOf`s.
fn int_or_string_forms(defs: &mut BTreeMap<String, Value>) {
    for (name, format) in [(INT_OR_STRING, Some("int-or-string")), (QUANTITY, None)] {
        if let Some(Value::Object(def)) = defs.get_mut(name) {
            def.remove("x-kubernetes-int-or-string");
            def.insert("type".into(), json!("string"));
            if let Some(f) = format {
                def.insert("format".into(), json!(f));
            }
        }
    }
}

/// The definition a property's schema stands for: its `$ref`, or for a list
/// its elements' `$ref`.
fn target(prop: &Value) -> Option<String> {
    let r = prop
        .get("$ref")
        .or_else(|| prop.pointer("/items/$ref"))?
        .as_str()?;
    Some(r.strip_prefix(REF_PREFIX).unwrap_or(r).to_owned())
}

/// Publishes the patch metadata of the type `name` (and of the types below it)
/// on its properties.
fn annotate_patch(
    defs: &mut BTreeMap<String, Value>,
    name: &str,
    patch: &'static PatchSchema,
    seen: &mut BTreeSet<(String, usize)>,
) {
    if !seen.insert((name.to_owned(), patch as *const PatchSchema as usize)) {
        return;
    }
    for field in patch.fields() {
        let Some(Value::Object(prop)) = defs
            .get_mut(name)
            .and_then(|d| d.get_mut("properties"))
            .and_then(|p| p.get_mut(field.name))
        else {
            continue;
        };
        let mut ext = Map::new();
        match field.strategy {
            ListStrategy::Replace => {}
            ListStrategy::MergeSet => {
                ext.insert("x-kubernetes-list-type".into(), json!("set"));
                ext.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
            }
            ListStrategy::MergeByKey(key) => {
                ext.insert("x-kubernetes-list-type".into(), json!("map"));
                ext.insert("x-kubernetes-list-map-keys".into(), json!(field.map_keys));
                ext.insert("x-kubernetes-patch-merge-key".into(), json!(key));
                ext.insert("x-kubernetes-patch-strategy".into(), json!("merge"));
            }
        }
        prop.extend(ext);
        let child = target(&Value::Object(prop.clone()));
        if let Some(child) = child {
            annotate_patch(defs, &child, field.schema, seen);
        }
    }
}
