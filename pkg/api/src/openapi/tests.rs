use std::time::{Duration, UNIX_EPOCH};

use serde_json::{json, Value};

use super::schemas::{self, served_kinds};
use super::*;
use crate::registry::RESOURCES;

fn v3(path: &str) -> Value {
    serde_json::from_slice(&v3_document(path).expect(path).bytes).unwrap()
}

fn v2() -> Value {
    serde_json::from_slice(&v2_json().bytes).unwrap()
}

/// The component schema of `gvk` as kubectl finds it: the one whose
/// `x-kubernetes-group-version-kind` list names it.
fn schema_for_gvk<'a>(doc: &'a Value, group: &str, version: &str, kind: &str) -> Option<&'a Value> {
    let want = json!({"group": group, "version": version, "kind": kind});
    doc["components"]["schemas"]
        .as_object()?
        .values()
        .find(|s| {
            s["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| l.contains(&want))
        })
}

/// Resolves `allOf: [{$ref}]` and `$ref` the way kubectl's v3 patch lookup does.
fn resolve<'a>(doc: &'a Value, mut s: &'a Value) -> &'a Value {
    if let Some(first) = s["allOf"].get(0) {
        s = first;
    }
    match s["$ref"].as_str() {
        Some(r) => {
            let name = r.strip_prefix("#/components/schemas/").expect(r);
            &doc["components"]["schemas"][name]
        }
        None => s,
    }
}

/// The property schema at `path` below `root`, stepping into list elements.
fn field<'a>(doc: &'a Value, root: &'a Value, path: &[&str]) -> &'a Value {
    let mut s = root;
    let mut prop = root;
    for name in path {
        s = resolve(doc, s);
        if s["type"] == "array" {
            s = resolve(doc, &s["items"]);
        }
        prop = &s["properties"][name];
        assert!(!prop.is_null(), "no field {name} on the way to {path:?}");
        s = prop;
    }
    prop
}

#[test]
fn every_served_kind_has_a_schema_with_its_group_version_kind() {
    for r in RESOURCES {
        let doc = v3(&v3_path(r.group, r.version));
        for kind in [r.kind, r.list_kind] {
            let s = schema_for_gvk(&doc, r.group, r.version, kind)
                .unwrap_or_else(|| panic!("{}/{} has no schema for {kind}", r.group, r.version));
            assert_eq!(s["type"], "object", "{kind}");
            assert!(s["properties"]["metadata"].is_object(), "{kind}");
            let required = s["required"].as_array().cloned().unwrap_or_default();
            assert!(
                !required.contains(&json!("metadata")),
                "{kind}: {required:?}"
            );
        }
        for s in r.subresources.iter().filter(|s| s.name != "log") {
            let (group, version) = s.group_version.unwrap_or((r.group, r.version));
            assert!(
                schema_for_gvk(&doc, group, version, s.kind).is_some(),
                "{}/{} lacks {group}/{version} {} for {}/{}",
                r.group,
                r.version,
                s.kind,
                r.plural,
                s.name
            );
        }
    }
}

#[test]
fn kinds_take_their_group_version_kind_from_the_types() {
    let defs = schemas::build();
    for (group, kind) in served_kinds() {
        let k = defs.kind(group, kind).expect(kind);
        assert_eq!((k.gvk.group, k.gvk.kind), (group, kind));
        assert!(k.name.starts_with("io.k8s.api."), "{}", k.name);
    }
    let k = defs.kind("apps", "Deployment").unwrap();
    assert_eq!(k.name, "io.k8s.api.apps.v1.Deployment");
    assert_eq!(
        k.list,
        Some(("DeploymentList", "io.k8s.api.apps.v1.DeploymentList".into()))
    );
}

#[test]
fn the_index_lists_every_group_version_at_its_hashed_address() {
    let index: Value = serde_json::from_slice(&v3_index().bytes).unwrap();
    let paths = index["paths"].as_object().unwrap();
    for (group, version) in v2::group_versions() {
        let key = v3_path(group, version);
        let url = paths[&key]["serverRelativeURL"].as_str().unwrap();
        let hash = &v3_document(&key).unwrap().hash;
        assert_eq!(url, format!("/openapi/v3/{key}?hash={hash}"));
        assert_eq!(hash.len(), 128, "SHA-512 in hex");
    }
    assert!(paths.contains_key("api/v1") && paths.contains_key("apis/apps/v1"));
    assert!(
        !paths.contains_key("apis/autoscaling/v1"),
        "not a served group"
    );
}

#[test]
fn containers_ports_and_env_carry_their_merge_keys() {
    let doc = v3("apis/apps/v1");
    let deploy = schema_for_gvk(&doc, "apps", "v1", "Deployment").unwrap();
    let containers = field(&doc, deploy, &["spec", "template", "spec", "containers"]);
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(containers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(containers["x-kubernetes-list-type"], "map");
    assert_eq!(containers["x-kubernetes-list-map-keys"], json!(["name"]));
    let ports = field(
        &doc,
        deploy,
        &["spec", "template", "spec", "containers", "ports"],
    );
    assert_eq!(ports["x-kubernetes-patch-merge-key"], "containerPort");
    assert_eq!(
        ports["x-kubernetes-list-map-keys"],
        json!(["containerPort", "protocol"])
    );
    let env = field(
        &doc,
        deploy,
        &["spec", "template", "spec", "containers", "env"],
    );
    assert_eq!(env["x-kubernetes-patch-merge-key"], "name");
    assert_eq!(env["x-kubernetes-patch-strategy"], "merge");
    let finalizers = field(&doc, deploy, &["metadata", "finalizers"]);
    assert_eq!(finalizers["x-kubernetes-patch-strategy"], "merge");
    assert_eq!(finalizers["x-kubernetes-list-type"], "set");
    // Lists without a merge strategy are replaced: no patch extensions.
    let args = field(
        &doc,
        deploy,
        &["spec", "template", "spec", "containers", "args"],
    );
    assert!(args.get("x-kubernetes-patch-strategy").is_none(), "{args}");
    let tolerations = field(&doc, deploy, &["spec", "template", "spec", "tolerations"]);
    assert!(tolerations.get("x-kubernetes-patch-merge-key").is_none());

    let core = v3("api/v1");
    let pod = schema_for_gvk(&core, "", "v1", "Pod").unwrap();
    let containers = field(&core, pod, &["spec", "containers"]);
    assert_eq!(containers["x-kubernetes-patch-merge-key"], "name");
    let service = schema_for_gvk(&core, "", "v1", "Service").unwrap();
    assert_eq!(
        field(&core, service, &["spec", "ports"])["x-kubernetes-patch-merge-key"],
        "port"
    );
}

#[test]
fn the_published_merge_keys_are_the_ones_the_server_patches_with() {
    use crate::patch::{merge_info, ListStrategy};
    let doc = v3("api/v1");
    let pod = schema_for_gvk(&doc, "", "v1", "Pod").unwrap();
    for path in [
        &["spec", "volumes"][..],
        &["spec", "initContainers", "volumeMounts"],
        &["spec", "ephemeralContainers", "env"],
        &["spec", "imagePullSecrets"],
        &["status", "conditions"],
        &["metadata", "ownerReferences"],
    ] {
        let published = field(&doc, pod, path)["x-kubernetes-patch-merge-key"].clone();
        match merge_info("Pod", path).unwrap() {
            ListStrategy::MergeByKey(key) => assert_eq!(published, key, "{path:?}"),
            other => panic!("{path:?}: {other:?}"),
        }
    }
}

#[test]
fn patch_operations_take_field_validation_and_strategic_merge_patches() {
    for (group, version) in v2::group_versions() {
        let doc = v3(&v3_path(group, version));
        let mut patches = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "put", "patch"] {
                let Some(op) = item.get(method) else { continue };
                let names: Vec<&str> = op["parameters"]
                    .as_array()
                    .map(|ps| {
                        ps.iter()
                            .filter(|p| p["in"] == "query")
                            .filter_map(|p| p["name"].as_str())
                            .collect()
                    })
                    .unwrap_or_default();
                assert!(
                    names.contains(&"fieldValidation") && names.contains(&"dryRun"),
                    "{method} {path}: {names:?}"
                );
                assert!(op["x-kubernetes-group-version-kind"]["kind"].is_string());
            }
            if let Some(op) = item.get("patch") {
                patches += 1;
                let content = &op["requestBody"]["content"];
                for t in [
                    "application/strategic-merge-patch+json",
                    "application/merge-patch+json",
                    "application/json-patch+json",
                ] {
                    assert!(content.get(t).is_some(), "{path} lacks {t}");
                }
            }
        }
        assert!(patches > 0, "{group}/{version} has no PATCH operation");
    }
}

#[test]
fn paths_follow_kubernetes_operation_ids_and_verbs() {
    let doc = v3("apis/apps/v1");
    let p = &doc["paths"];
    let coll = &p["/apis/apps/v1/namespaces/{namespace}/deployments"];
    assert_eq!(coll["get"]["operationId"], "listAppsV1NamespacedDeployment");
    assert_eq!(
        coll["post"]["operationId"],
        "createAppsV1NamespacedDeployment"
    );
    assert_eq!(
        coll["delete"]["operationId"],
        "deleteAppsV1CollectionNamespacedDeployment"
    );
    assert_eq!(coll["parameters"][0]["name"], "namespace");
    let item = &p["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"];
    assert_eq!(
        item["patch"]["operationId"],
        "patchAppsV1NamespacedDeployment"
    );
    assert_eq!(item["patch"]["x-kubernetes-action"], "patch");
    let scale = &p["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"];
    assert_eq!(
        scale["put"]["x-kubernetes-group-version-kind"],
        json!({"group": "autoscaling", "version": "v1", "kind": "Scale"})
    );
    assert_eq!(
        p["/apis/apps/v1/deployments"]["get"]["operationId"],
        "listAppsV1DeploymentForAllNamespaces"
    );
    // Namespaces have no deletecollection, like Kubernetes'.
    let core = v3("api/v1");
    assert!(core["paths"]["/api/v1/namespaces"].get("delete").is_none());
    assert_eq!(
        core["paths"]["/api/v1/namespaces/{namespace}/pods/{name}/binding"]["post"]["operationId"],
        "createCoreV1NamespacedPodBinding"
    );
    let rbac = v3("apis/rbac.authorization.k8s.io/v1");
    assert_eq!(
        rbac["paths"]["/apis/rbac.authorization.k8s.io/v1/clusterroles"]["get"]["tags"][0],
        "rbacAuthorization_v1"
    );
}

#[test]
fn v3_references_resolve_and_carry_descriptions_beside_them_in_all_of() {
    for (group, version) in v2::group_versions() {
        let doc = v3(&v3_path(group, version));
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        let mut refs = Vec::new();
        schemas::refs_in(&doc, &mut refs);
        for r in refs {
            assert!(schemas.contains_key(&r), "{group}/{version}: dangling {r}");
        }
        assert!(!text.contains("#/definitions/"), "{group}/{version}");
    }
    let doc = v3("apis/apps/v1");
    let deploy = schema_for_gvk(&doc, "apps", "v1", "Deployment").unwrap();
    let replicas = field(&doc, deploy, &["spec", "replicas"]);
    assert_eq!(replicas["type"], "integer");
    assert!(replicas["description"]
        .as_str()
        .unwrap()
        .contains("Number of desired pods"));
    let spec = &deploy["properties"]["spec"];
    assert!(spec.get("$ref").is_none(), "{spec}");
    assert_eq!(
        spec["allOf"][0]["$ref"],
        "#/components/schemas/io.k8s.api.apps.v1.DeploymentSpec"
    );
    assert!(spec["description"].is_string());
    let ios = &doc["components"]["schemas"]["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(
        ios["oneOf"],
        json!([{"type": "integer"}, {"type": "string"}])
    );
    assert_eq!(ios["format"], "int-or-string");
}

#[test]
fn v2_holds_every_group_version_with_swagger_references() {
    let doc = v2();
    assert_eq!(doc["swagger"], "2.0");
    let defs = doc["definitions"].as_object().unwrap();
    let mut refs = Vec::new();
    schemas::refs_in(&doc, &mut refs);
    for r in refs {
        assert!(defs.contains_key(&r), "dangling {r}");
    }
    assert!(!doc.to_string().contains("#/components/"));
    for r in RESOURCES {
        let want = json!({"group": r.group, "version": r.version, "kind": r.kind});
        assert!(
            defs.values().any(|d| d["x-kubernetes-group-version-kind"]
                .as_array()
                .is_some_and(|l| l.contains(&want))),
            "{want}"
        );
    }
    let patch = &doc["paths"]["/api/v1/namespaces/{namespace}/configmaps/{name}"]["patch"];
    assert!(patch["consumes"]
        .as_array()
        .unwrap()
        .contains(&json!("application/strategic-merge-patch+json")));
    assert!(patch["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "fieldValidation" && p["in"] == "query" && p["type"] == "string"));
    assert_eq!(
        defs["io.k8s.api.rbac.v1.RoleBinding"]["required"],
        json!(["roleRef"])
    );
    assert!(defs["io.k8s.api.core.v1.ConfigMap"]
        .get("required")
        .is_none());
    let metadata = &defs["io.k8s.api.core.v1.ConfigMap"]["properties"]["metadata"];
    assert!(metadata["$ref"].is_string() && metadata["description"].is_string());
    let ios = &defs["io.k8s.apimachinery.pkg.util.intstr.IntOrString"];
    assert_eq!(
        (ios["type"].as_str(), ios["format"].as_str()),
        (Some("string"), Some("int-or-string"))
    );
}

/// A minimal protobuf reader for the tests: the fields of one message.
fn fields(mut b: &[u8]) -> Vec<(u32, Field<'_>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = b[0];
            *b = &b[1..];
            v |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !b.is_empty() {
        let key = varint(&mut b);
        let field = (key >> 3) as u32;
        match key & 7 {
            0 => out.push((field, Field::Varint(varint(&mut b)))),
            1 => {
                out.push((field, Field::Fixed64(&b[..8])));
                b = &b[8..];
            }
            2 => {
                let len = varint(&mut b) as usize;
                out.push((field, Field::Bytes(&b[..len])));
                b = &b[len..];
            }
            w => panic!("wire type {w}"),
        }
    }
    out
}

#[derive(Debug, Clone, Copy)]
enum Field<'a> {
    Varint(#[allow(dead_code)] u64),
    Fixed64(#[allow(dead_code)] &'a [u8]),
    Bytes(&'a [u8]),
}

fn bytes_of<'a>(f: &[(u32, Field<'a>)], n: u32) -> Vec<&'a [u8]> {
    f.iter()
        .filter(|(k, _)| *k == n)
        .filter_map(|(_, v)| match v {
            Field::Bytes(b) => Some(*b),
            _ => None,
        })
        .collect()
}

fn str_of<'a>(f: &[(u32, Field<'a>)], n: u32) -> &'a str {
    let b = f
        .iter()
        .find_map(|(k, v)| match v {
            Field::Bytes(b) if *k == n => Some(*b),
            _ => None,
        })
        .unwrap_or_default();
    std::str::from_utf8(b).unwrap()
}

#[test]
fn v2_protobuf_is_gnostic_document_with_nothing_left_out() {
    let (bytes, dropped) = gnostic::encode(&v2());
    assert!(
        dropped.is_empty(),
        "members with no gnostic field: {dropped:?}"
    );
    assert_eq!(bytes, v2_protobuf().bytes);

    let doc = fields(&bytes);
    assert_eq!(str_of(&doc, 1), "2.0");
    // definitions (9) → NamedSchema (1) { name 1, value 2: Schema }
    let defs = fields(bytes_of(&doc, 9)[0]);
    let deployment = bytes_of(&defs, 1)
        .into_iter()
        .map(fields)
        .find(|named| str_of(named, 1) == "io.k8s.api.apps.v1.Deployment")
        .expect("Deployment definition");
    let schema = fields(bytes_of(&deployment, 2)[0]);
    // vendor_extension (31) → NamedAny { name 1, value 2: Any { yaml 2 } }
    let gvk = bytes_of(&schema, 31)
        .into_iter()
        .map(fields)
        .find(|ext| str_of(ext, 1) == "x-kubernetes-group-version-kind")
        .expect("GVK extension");
    let yaml = str_of(&fields(bytes_of(&gvk, 2)[0]), 2);
    assert_eq!(
        serde_json::from_str::<Value>(yaml).unwrap(),
        json!([{"group": "apps", "version": "v1", "kind": "Deployment"}])
    );
    // type (22) → TypeItem { value 1 }
    assert_eq!(str_of(&fields(bytes_of(&schema, 22)[0]), 1), "object");

    // paths (8) → NamedPathItem (2) → PathItem.patch (8) → parameters (8) →
    // ParametersItem.parameter (1) → Parameter.non_body (2) → query (3) → name (4)
    let paths = fields(bytes_of(&doc, 8)[0]);
    let item = bytes_of(&paths, 2)
        .into_iter()
        .map(fields)
        .find(|named| str_of(named, 1) == "/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
        .expect("deployment path");
    let patch = fields(bytes_of(&fields(bytes_of(&item, 2)[0]), 8)[0]);
    let names: Vec<&str> = bytes_of(&patch, 8)
        .into_iter()
        .filter_map(|p| {
            let param = fields(bytes_of(&fields(p), 1).first()?);
            let non_body = fields(bytes_of(&param, 2).first()?);
            let query = fields(bytes_of(&non_body, 3).first()?);
            Some(str_of(&query, 4))
        })
        .collect();
    assert!(names.contains(&"fieldValidation"), "{names:?}");
}

#[test]
fn documents_are_negotiated_and_versioned_like_kubernetes() {
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let get = |path, accept, hash, inm| {
        serve(
            &Request {
                path,
                hash,
                accept,
                if_none_match: inm,
            },
            now,
        )
        .unwrap()
    };
    let header = |r: &Reply, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };

    let pb = get("/openapi/v2", Some(serve::V2_PROTOBUF_ACCEPT), None, None);
    assert_eq!(pb.status, 200);
    assert_eq!(pb.body, &v2_protobuf().bytes[..]);
    assert_eq!(header(&pb, "content-type").unwrap(), serve::V2_PROTOBUF);
    let json = get("/openapi/v2", Some("application/json, */*"), None, None);
    assert_eq!(json.body, &v2_json().bytes[..]);
    assert_eq!(get("/openapi/v2", None, None, None).body, json.body);
    assert_eq!(
        get("/openapi/v2", Some("text/html"), None, None).status,
        406
    );
    let etag = header(&json, "etag").unwrap();
    assert_eq!(etag, format!("\"{}\"", v2_json().hash));
    let again = get("/openapi/v2", Some("application/json"), None, Some(&etag));
    assert_eq!((again.status, again.body.len()), (304, 0));

    let index = get("/openapi/v3", Some("application/json, */*"), None, None);
    assert_eq!(index.status, 200);
    let doc = v3_document("apis/apps/v1").unwrap();
    let hashed = get(
        "/openapi/v3/apis/apps/v1",
        Some("application/json"),
        Some(&doc.hash),
        None,
    );
    assert_eq!(hashed.status, 200);
    assert_eq!(
        header(&hashed, "cache-control").unwrap(),
        "public, immutable"
    );
    assert_eq!(
        header(&hashed, "expires").unwrap(),
        "Wed, 13 Nov 2024 22:13:20 GMT"
    );
    let plain = get(
        "/openapi/v3/apis/apps/v1",
        Some("application/json"),
        None,
        None,
    );
    assert_eq!(plain.status, 200);
    assert!(header(&plain, "cache-control").is_none());
    let stale = get("/openapi/v3/apis/apps/v1", None, Some("00"), None);
    assert_eq!(stale.status, 301);
    assert_eq!(
        header(&stale, "location").unwrap(),
        format!("/openapi/v3/apis/apps/v1?hash={}", doc.hash)
    );
    assert_eq!(
        get("/openapi/v3/apis/nope/v1", None, None, None).status,
        404
    );
    assert_eq!(
        get(
            "/openapi/v3/api/v1",
            Some("application/com.github.proto-openapi.spec.v3@v1.0+protobuf"),
            None,
            None
        )
        .status,
        406
    );
    assert!(serve(
        &Request {
            path: "/openapi/v4",
            ..Default::default()
        },
        now
    )
    .is_none());
}

#[test]
fn http_dates_are_imf_fixdates() {
    assert_eq!(
        serve::http_date(UNIX_EPOCH),
        "Thu, 01 Jan 1970 00:00:00 GMT"
    );
    assert_eq!(
        serve::http_date(UNIX_EPOCH + Duration::from_secs(784_111_777)),
        "Sun, 06 Nov 1994 08:49:37 GMT"
    );
    assert_eq!(
        serve::http_date(UNIX_EPOCH + Duration::from_secs(951_782_400)),
        "Tue, 29 Feb 2000 00:00:00 GMT"
    );
}
