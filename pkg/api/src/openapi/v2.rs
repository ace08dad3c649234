//! The Swagger 2.0 document (`/openapi/v2`): every served group version's
//! paths and every definition, in one document, as Kubernetes serves it.
//! kubectl reads it (as protobuf, see `gnostic`) for client-side validation
//! and as `apply`'s fallback when the v3 documents are missing.

use serde_json::{json, Map, Value};

use super::paths::{self, Body, In, Operation, Param, Payload};
use super::schemas::{Definitions, PATCH, REF_PREFIX};
use crate::registry;

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("{REF_PREFIX}{name}")})
}

/// Every served group version, core first.
pub(crate) fn group_versions() -> Vec<(&'static str, &'static str)> {
    let mut out = vec![("", "v1")];
    for g in registry::groups() {
        for v in g.versions {
            out.push((g.group, v));
        }
    }
    out
}

pub(crate) fn document(defs: &Definitions) -> Value {
    let mut paths_json = Map::new();
    for (group, version) in group_versions() {
        for p in paths::paths(defs, group, version) {
            let mut item = Map::new();
            for op in &p.operations {
                item.insert(op.method.into(), operation(op));
            }
            if !p.params.is_empty() {
                item.insert(
                    "parameters".into(),
                    p.params.iter().map(parameter).collect(),
                );
            }
            paths_json.insert(p.path, Value::Object(item));
        }
    }
    let definitions: Map<String, Value> = defs
        .defs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths_json,
        "definitions": definitions,
        "securityDefinitions": {
            "BearerToken": {
                "type": "apiKey",
                "description": "Bearer Token authentication",
                "name": "authorization",
                "in": "header",
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
        "type": p.ty,
        "uniqueItems": true,
    });
    if p.location == In::Path {
        v["required"] = json!(true);
    }
    v
}

fn operation(op: &Operation) -> Value {
    let mut params: Vec<Value> = op.params.iter().map(parameter).collect();
    let consumes: Vec<&str> = match &op.body {
        Some(Body::Object(name)) => {
            params.insert(
                0,
                json!({"name": "body", "in": "body", "required": true, "schema": schema_ref(name)}),
            );
            vec!["*/*"]
        }
        Some(Body::Patch(types)) => {
            params.insert(
                0,
                json!({"name": "body", "in": "body", "required": true, "schema": schema_ref(PATCH)}),
            );
            types.clone()
        }
        None => vec!["*/*"],
    };
    let mut produces = vec!["application/json"];
    let mut responses = Map::new();
    for (code, payload) in &op.responses {
        let description = match code {
            200 => "OK",
            201 => "Created",
            202 => "Accepted",
            _ => "",
        };
        let mut r = json!({"description": description});
        match payload {
            Payload::Object(name) => r["schema"] = schema_ref(name),
            Payload::Text => {
                r["schema"] = json!({"type": "string"});
                produces = vec!["text/plain"];
            }
        }
        responses.insert(code.to_string(), r);
    }
    if op.watchable {
        produces.push("application/json;stream=watch");
    }
    responses.insert("401".into(), json!({"description": "Unauthorized"}));
    let mut v = json!({
        "tags": [op.tag],
        "description": op.description,
        "operationId": op.id,
        "consumes": consumes,
        "produces": produces,
        "responses": responses,
    });
    if !params.is_empty() {
        v["parameters"] = Value::Array(params);
    }
    if !op.action.is_empty() {
        v["x-kubernetes-action"] = json!(op.action);
    }
    if let Some(gvk) = op.gvk {
        v["x-kubernetes-group-version-kind"] =
            json!({"group": gvk.group, "version": gvk.version, "kind": gvk.kind});
    }
    v
}
