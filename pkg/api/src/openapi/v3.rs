//! OpenAPI 3.0 documents, one per group version (`/openapi/v3/apis/apps/v1`),
//! in the shape Kubernetes serves: the group version's paths, and in
//! `components.schemas` every definition they reach. A reference with a
//! description beside it becomes `allOf: [{$ref}]` (OpenAPI 3.0 ignores the
//! siblings of a `$ref`), and the int-or-string types become `oneOf`s.

use serde_json::{json, Map, Value};

use super::paths::{self, Body, In, Operation, Param, Payload};
use super::schemas::{Definitions, INT_OR_STRING, QUANTITY, REF_PREFIX};

const REF_PREFIX_V3: &str = "#/components/schemas/";

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX_V3}{name}")})
}

/// The document of `(group, version)`.
pub(crate) fn document(defs: &Definitions, group: &str, version: &str) -> Value {
    let mut paths_json = Map::new();
    let mut roots = Vec::new();
    for p in paths::paths(defs, group, version) {
        let mut item = Map::new();
        for op in &p.operations {
            item.insert(op.method.into(), operation(op, &mut roots));
        }
        if !p.params.is_empty() {
            item.insert(
                "parameters".into(),
                p.params.iter().map(parameter).collect(),
            );
        }
        paths_json.insert(p.path, Value::Object(item));
    }
    let schemas: Map<String, Value> = defs
        .closure(roots)
        .into_iter()
        .filter_map(|name| {
            let def = defs.defs.get(&name)?;
            Some((name.clone(), definition(&name, def)))
        })
        .collect();
    json!({
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "unversioned"},
        "paths": paths_json,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "BearerToken": {
                    "type": "apiKey",
                    "description": "Bearer Token authentication",
                    "name": "authorization",
                    "in": "header",
                },
            },
        },
        "security": [{"BearerToken": []}],
    })
}

fn parameter(p: &Param) -> Value {
    let mut v = json!({
        "name": p.name,
        "in": match p.location { In::Path => "path", In::Query => "query" },
        "description": p.description,
        "schema": {"type": p.ty, "uniqueItems": true},
    });
    if p.location == In::Path {
        v["required"] = json!(true);
    }
    v
}

fn operation(op: &Operation, roots: &mut Vec<String>) -> Value {
    let mut v = json!({
        "tags": [op.tag],
        "description": op.description,
        "operationId": op.id,
    });
    if !op.params.is_empty() {
        v["parameters"] = op.params.iter().map(parameter).collect();
    }
    match &op.body {
        Some(Body::Object(name)) => {
            roots.push(name.clone());
            v["requestBody"] = json!({
                "content": {"*/*": {"schema": schema_ref(name)}},
                "required": true,
            });
        }
        Some(Body::Patch(types)) => {
            roots.push(super::schemas::PATCH.into());
            let content: Map<String, Value> = types
                .iter()
                .map(|t| {
                    (
                        (*t).to_owned(),
                        json!({"schema": schema_ref(super::schemas::PATCH)}),
                    )
                })
                .collect();
            v["requestBody"] = json!({"content": content, "required": true});
        }
        None => {}
    }
    let mut responses = Map::new();
    for (code, payload) in &op.responses {
        let content = match payload {
            Payload::Object(name) => {
                roots.push(name.clone());
                let mut c = Map::new();
                c.insert(
                    "application/json".into(),
                    json!({"schema": schema_ref(name)}),
                );
                if op.watchable {
                    c.insert(
                        "application/json;stream=watch".into(),
                        json!({"schema": schema_ref(name)}),
                    );
                }
                c
            }
            Payload::Text => {
                let mut c = Map::new();
                c.insert("text/plain".into(), json!({"schema": {"type": "string"}}));
                c
            }
        };
        let description = match code {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            _ => "",
        };
        responses.insert(
            code.to_string(),
            json!({"description": description, "content": content}),
        );
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    v["responses"] = Value::Object(responses);
    if !op.action.is_empty() {
        v["x-kubernetes-action"] = json!(op.action);
    }
    if let Some(gvk) = op.gvk {
        v["x-kubernetes-group-version-kind"] =
            json!({"group": gvk.group, "version": gvk.version, "kind": gvk.kind});
    }
    v
}

/// A definition in its OpenAPI 3.0 form.
fn definition(name: &str, def: &Value) -> Value {
    let mut v = convert(def);
    if let Value::Object(m) = &mut v {
        match name {
            INT_OR_STRING => {
                m.remove("type");
                m.insert(
                    "oneOf".into(),
                    json!([{"type": "integer"}, {"type": "string"}]),
                );
            }
            QUANTITY => {
                m.remove("type");
                m.insert(
                    "oneOf".into(),
                    json!([{"type": "string"}, {"type": "number"}]),
                );
            }
            _ => {}
        }
    }
    v
}

/// Rewrites references and wraps the ones that carry siblings in `allOf`.
fn convert(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut out: Map<String, Value> =
                m.iter().map(|(k, v)| (k.clone(), convert(v))).collect();
            if let Some(Value::String(r)) = out.remove("$ref") {
                let name = r.strip_prefix(REF_PREFIX).unwrap_or(&r);
                let reference = schema_ref(name);
                if out.is_empty() {
                    return reference;
                }
                out.insert("allOf".into(), json!([reference]));
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(items.iter().map(convert).collect()),
        other => other.clone(),
    }
}
