//! The Kubernetes REST front door: discovery and the resource paths, over the
//! shared [`Registry`]. Parses the URL into (group, version, namespace,
//! resource, name, subresource), picks the verb from the method and query,
//! and renders results and `Status` errors as Kubernetes' JSON.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use rkube_api::registry::ResourceInfo;
use rkube_api::status::Status;
use serde_json::{json, Value};
use tokio_stream::StreamExt as _;

use crate::registry::{
    DeleteOptions, ListOptions, Object, Registry, WatchEvent, WatchOptions, WriteOptions,
};

const JSON: &str = "application/json";

#[derive(Clone)]
struct Ctx {
    registry: Registry,
}

pub fn router(registry: Registry) -> Router {
    let ctx = Ctx { registry };
    Router::new()
        // Kubernetes serves these with and without the trailing slash; the
        // Python client asks for `/version/`, `/api/` and `/apis/`.
        .route("/version", get(version))
        .route("/version/", get(version))
        .route("/api", get(api_versions))
        .route("/api/", get(api_versions))
        .route("/apis", get(api_groups))
        .route("/apis/", get(api_groups))
        .route("/api/{*rest}", any(core_resources))
        .route("/apis/{*rest}", any(group_resources))
        .route("/openapi/{*rest}", get(openapi))
        .with_state(ctx)
}

/// What a path no route knows gets: gRPC's `UNIMPLEMENTED` for a gRPC call (as
/// tonic's own fallback answers), a 404 `Status` for anything else, as
/// Kubernetes answers an unknown path (never a gRPC answer to a REST client).
pub async fn fallback(headers: HeaderMap) -> Response {
    let grpc = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"));
    if grpc {
        let (parts, ()) = tonic::Status::unimplemented("")
            .into_http::<()>()
            .into_parts();
        return Response::from_parts(parts, Body::empty());
    }
    status_response(&Status::not_found_path())
}

fn json_response(code: StatusCode, v: &Value) -> Response {
    let mut r = (code, serde_json::to_vec(v).expect("JSON values encode")).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

/// A list as Kubernetes' JSON, its items' bytes copied as they are (not re-encoded).
fn list_response(info: &ResourceInfo, list_meta: &Value, items: &[Arc<Object>]) -> Response {
    let head = serde_json::to_vec(&json!({
        "kind": info.list_kind,
        "apiVersion": info.api_version(),
        "metadata": list_meta,
    }))
    .expect("JSON values encode");
    let size = head.len() + 12 + items.iter().map(|o| o.json().len() + 1).sum::<usize>();
    let mut body = Vec::with_capacity(size);
    // `{"kind":...,"metadata":{...}` + `,"items":[` + items + `]}`
    body.extend_from_slice(&head[..head.len() - 1]);
    body.extend_from_slice(br#","items":["#);
    for (i, o) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(o.json());
    }
    body.extend_from_slice(b"]}");
    let mut r = (StatusCode::OK, body).into_response();
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    r
}

fn status_response(s: &Status) -> Response {
    json_response(
        StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &s.to_json(),
    )
}

async fn version() -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "major": "1", "minor": "33", "gitVersion": concat!("v1.33.0-rkube.", env!("CARGO_PKG_VERSION")),
            "gitCommit": "", "gitTreeState": "clean", "buildDate": "1970-01-01T00:00:00Z",
            "goVersion": "rust", "compiler": "rustc", "platform": "linux/amd64"
        }),
    )
}

/// Whether the client's Accept prefers aggregated discovery
/// (`apidiscovery.k8s.io/v2`) over the legacy documents. Clients list the
/// versions they understand in order; kubectl 1.27 asks for v2beta1, which is
/// not served, so it gets the legacy form.
fn wants_aggregated(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    for entry in accept.split(',') {
        let params: Vec<&str> = entry.split(';').map(str::trim).collect();
        let aggregated = params.contains(&"as=APIGroupDiscoveryList");
        if aggregated && params.contains(&"v=v2") && params.contains(&"g=apidiscovery.k8s.io") {
            return true;
        }
        if !aggregated && matches!(params.first(), Some(&"application/json") | Some(&"*/*")) {
            return false;
        }
    }
    false
}

async fn api_versions(headers: HeaderMap) -> Response {
    if wants_aggregated(&headers) {
        return aggregated(true);
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    json_response(StatusCode::OK, &rkube_api::discovery::api_versions(host))
}

async fn api_groups(headers: HeaderMap) -> Response {
    if wants_aggregated(&headers) {
        return aggregated(false);
    }
    json_response(StatusCode::OK, &rkube_api::discovery::api_group_list())
}

fn aggregated(core: bool) -> Response {
    let mut r = json_response(
        StatusCode::OK,
        &rkube_api::discovery::aggregated_discovery(core),
    );
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(rkube_api::discovery::AGGREGATED_DISCOVERY_V2_MEDIA_TYPE),
    );
    r
}

/// `/openapi/v2`, `/openapi/v3` and `/openapi/v3/<group-version>`: the
/// documents and their HTTP semantics come from `rkube_api::openapi`. The
/// first request builds them (CPU work, kept off the async workers).
async fn openapi(
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let header = |name: header::HeaderName| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (accept, if_none_match) = (header(header::ACCEPT), header(header::IF_NONE_MATCH));
    let reply = tokio::task::spawn_blocking(move || {
        rkube_api::openapi::serve(
            &rkube_api::openapi::Request {
                path: uri.path(),
                hash: q.get("hash").map(String::as_str),
                accept: accept.as_deref(),
                if_none_match: if_none_match.as_deref(),
            },
            std::time::SystemTime::now(),
        )
    })
    .await;
    let reply = match reply {
        Ok(Some(reply)) => reply,
        Ok(None) => return status_response(&Status::not_found_path()),
        Err(e) => return status_response(&Status::internal_error(&e.to_string())),
    };
    let mut r = Response::new(Body::from(reply.body));
    *r.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            r.headers_mut().insert(name, v);
        }
    }
    r
}

/// A parsed resource URL.
#[derive(Debug)]
struct Target {
    info: &'static ResourceInfo,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

/// `/api/v1/...` and `/apis/<group>/<version>/...`; `segs` starts after the version.
fn parse_target(group: &str, version: &str, segs: &[&str]) -> Result<Target, Status> {
    let lookup = |plural: &str| rkube_api::registry::lookup(group, version, plural);
    let not_found = Status::not_found_path;
    let owned = |s: Option<&&str>| s.map(|s| s.to_string());
    if segs.len() >= 3 && segs[0] == "namespaces" {
        if let Some(info) = lookup(segs[2]).filter(|i| i.namespaced) {
            if segs.len() > 5 {
                return Err(not_found());
            }
            return Ok(Target {
                info,
                namespace: Some(segs[1].to_string()),
                name: owned(segs.get(3)),
                subresource: owned(segs.get(4)),
            });
        }
    }
    let info = segs.first().and_then(|p| lookup(p)).ok_or_else(not_found)?;
    if segs.len() > 3 {
        return Err(not_found());
    }
    Ok(Target {
        info,
        namespace: None,
        name: owned(segs.get(1)),
        subresource: owned(segs.get(2)),
    })
}

async fn core_resources(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri.path().trim_start_matches("/api/").trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    if segs[0] != "v1" {
        return status_response(&Status::not_found_path());
    }
    if segs.len() == 1 {
        return match rkube_api::discovery::api_resource_list("", "v1") {
            Some(v) => json_response(StatusCode::OK, &v),
            None => status_response(&Status::not_found_path()),
        };
    }
    serve(ctx, "", "v1", &segs[1..], method, q, headers, body).await
}

async fn group_resources(
    State(ctx): State<Ctx>,
    method: Method,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let path = uri
        .path()
        .trim_start_matches("/apis/")
        .trim_end_matches('/');
    let segs: Vec<&str> = path.split('/').collect();
    match segs.len() {
        1 => {
            return match rkube_api::discovery::api_group(segs[0]) {
                Some(v) => json_response(StatusCode::OK, &v),
                None => status_response(&Status::not_found_path()),
            }
        }
        2 => {
            return match rkube_api::discovery::api_resource_list(segs[0], segs[1]) {
                Some(v) => json_response(StatusCode::OK, &v),
                None => status_response(&Status::not_found_path()),
            }
        }
        _ => {}
    }
    serve(ctx, segs[0], segs[1], &segs[2..], method, q, headers, body).await
}

fn table_requested(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| {
            a.split(',')
                .next()
                .is_some_and(|first| first.contains("as=Table"))
        })
}

fn list_options(q: &HashMap<String, String>) -> Result<ListOptions, Status> {
    Ok(ListOptions {
        label_selector: q.get("labelSelector").cloned(),
        field_selector: q.get("fieldSelector").cloned(),
        limit: match q.get("limit") {
            Some(l) => l
                .parse()
                .map_err(|_| Status::bad_request(format!("invalid limit: {l:?}")))?,
            None => 0,
        },
        continue_token: q.get("continue").cloned(),
        resource_version: q.get("resourceVersion").cloned(),
        resource_version_match: q.get("resourceVersionMatch").cloned(),
    })
}

fn write_options(q: &HashMap<String, String>) -> Result<WriteOptions, Status> {
    let dry_run = match q.get("dryRun").map(String::as_str) {
        None | Some("") => false,
        Some("All") => true,
        Some(other) => {
            return Err(Status::bad_request(format!(
                "dryRun: Unsupported value: \"{other}\": supported values: \"All\""
            )))
        }
    };
    Ok(WriteOptions {
        dry_run,
        field_validation: rkube_api::strict::FieldValidation::parse(
            q.get("fieldValidation").map(String::as_str),
        )?,
    })
}

fn with_warnings(mut r: Response, warnings: &[String]) -> Response {
    for w in warnings {
        if let Ok(v) = HeaderValue::from_str(&format!("299 - \"{}\"", w.replace('"', "'"))) {
            r.headers_mut().append(header::WARNING, v);
        }
    }
    r
}

#[allow(clippy::too_many_arguments)]
async fn serve(
    ctx: Ctx,
    group: &str,
    version: &str,
    segs: &[&str],
    method: Method,
    q: HashMap<String, String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let t = match parse_target(group, version, segs) {
        Ok(t) => t,
        Err(s) => return status_response(&s),
    };
    let body = match read_body(body).await {
        Ok(b) => b,
        Err(s) => return status_response(&s),
    };
    match handle(&ctx, &t, method, &q, &headers, body).await {
        Ok(r) => r,
        Err(s) => status_response(&s),
    }
}

/// How much of an oversized body is read (and dropped) before answering 413, so
/// the connection stays usable and the client reads the answer rather than a reset.
const MAX_BODY_DRAIN: usize = 64 * 1024 * 1024;

/// The request body, at most [`crate::registry::MAX_BODY_BYTES`] (Kubernetes' 3 MiB) of it: a
/// larger one is 413 RequestEntityTooLarge, as Kubernetes answers.
async fn read_body(body: Body) -> Result<Bytes, Status> {
    let mut stream = body.into_data_stream();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(chunk) = tokio_stream::StreamExt::next(&mut stream).await {
        let chunk = chunk.map_err(|e| Status::bad_request(format!("reading the body: {e}")))?;
        seen += chunk.len();
        if seen <= crate::registry::MAX_BODY_BYTES {
            buf.extend_from_slice(&chunk);
        } else if seen > MAX_BODY_DRAIN {
            break;
        }
    }
    if seen > crate::registry::MAX_BODY_BYTES {
        return Err(Status::request_entity_too_large(&format!(
            "limit is {}",
            crate::registry::MAX_BODY_BYTES
        )));
    }
    Ok(buf.freeze())
}

/// The JSON form of a request body, and warnings about it. Bodies are JSON, or
/// Kubernetes' protobuf (kubectl 1.32+ sends its typed `create` subcommands so, and
/// client-go's typed clients send DeleteOptions so), decoded here into the same JSON;
/// the rest of the request never sees protobuf, and responses are always JSON. Fields the
/// protobuf schema does not know are dropped as Kubernetes drops them, with a warning
/// unless `fieldValidation=Ignore`. Patches keep their own media types (checked by the PATCH arm).
fn request_body(
    method: &Method,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    body: Bytes,
) -> Result<(Bytes, Vec<String>), Status> {
    if !matches!(*method, Method::POST | Method::PUT | Method::DELETE) {
        return Ok((body, Vec::new()));
    }
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if rkube_api::protobuf::is_protobuf(ct) && !body.is_empty() {
        let decoded = rkube_api::protobuf::decode(&body)?;
        let is_delete_options = decoded.object["kind"] == "DeleteOptions";
        if is_delete_options != (*method == Method::DELETE) {
            return Err(Status::bad_request(format!(
                "the body of the request was in an unknown format: unexpected kind {} for {method}",
                decoded.object["kind"]
            )));
        }
        // Kubernetes drops protobuf fields its schema does not know, whatever
        // fieldValidation says (a newer client may set fields this server's
        // Kubernetes version lacks; kubectl always asks for Strict). We drop them
        // too, but say so in a warning unless the client asked to ignore them.
        let mut warnings = Vec::new();
        if !decoded.unknown_fields.is_empty() && *method != Method::DELETE {
            match write_options(q)?.field_validation {
                rkube_api::strict::FieldValidation::Strict
                | rkube_api::strict::FieldValidation::Warn => warnings = decoded.unknown_fields,
                rkube_api::strict::FieldValidation::Ignore => {}
            }
        }
        let json = serde_json::to_vec(&decoded.object).expect("JSON values encode");
        return Ok((Bytes::from(json), warnings));
    }
    let media = ct.split(';').next().unwrap_or("").trim();
    match media {
        "" | "application/json" | "*/*" => Ok((body, Vec::new())),
        _ if *method == Method::DELETE => Ok((body, Vec::new())),
        rkube_api::yaml::MEDIA_TYPE => {
            let json = rkube_api::yaml::to_json(&body)?;
            Ok((
                Bytes::from(serde_json::to_vec(&json).expect("JSON values encode")),
                Vec::new(),
            ))
        }
        _ => Err(Status::unsupported_media_type(&[
            "application/json",
            rkube_api::yaml::MEDIA_TYPE,
            rkube_api::protobuf::MEDIA_TYPE,
        ])),
    }
}

async fn handle(
    ctx: &Ctx,
    t: &Target,
    method: Method,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, Status> {
    let info = t.info;
    let reg = &ctx.registry;
    let ns = t.namespace.clone().unwrap_or_default();
    if info.namespaced && t.name.is_some() && t.namespace.is_none() {
        return Err(Status::not_found_path());
    }
    let sub = t.subresource.as_deref();
    if let (Some("binding"), Some(name)) = (sub, t.name.as_deref()) {
        if method == Method::POST && info.subresource("binding").is_some() {
            let (body, _) = request_body(&method, headers, q, body)?;
            let pod = reg.bind(&ns, name, &body, &write_options(q)?).await?;
            let mut done = rkube_api::status::success(
                "",
                "pods",
                name,
                pod["metadata"]["uid"].as_str().unwrap_or(""),
            );
            done["code"] = json!(201);
            return Ok(json_response(StatusCode::CREATED, &done));
        }
    }
    match sub.and_then(|s| info.subresource(s)).map(|s| s.name) {
        _ if sub.is_none() => {}
        Some("status") => {}
        // namespaces/finalize takes only a PUT (Kubernetes' FinalizeREST is update-only).
        Some("finalize") if method != Method::PUT => {
            return Err(Status::method_not_supported(
                info.group,
                &format!("{}/finalize", info.plural),
                method.as_str(),
            ))
        }
        Some("finalize") => {}
        Some("scale") => {
            let (body, warnings) = request_body(&method, headers, q, body)?;
            return scale(ctx, t, method, q, headers, body, warnings).await;
        }
        Some("log") => return pod_log(ctx, t, method, q).await,
        _ => return Err(Status::not_found_path()),
    }
    // After the path is known to exist: a wrong path is 404 whatever its body.
    let (body, body_warnings) = request_body(&method, headers, q, body)?;
    let verb_denied = |verb: &str| Status::method_not_supported(info.group, info.plural, verb);
    match (&method, t.name.as_deref()) {
        (&Method::GET, Some(name)) => {
            let obj = reg
                .get(
                    info,
                    &ns,
                    name,
                    q.get("resourceVersion").map(String::as_str),
                )
                .await?;
            if table_requested(headers) {
                let rv = obj["metadata"]["resourceVersion"].clone();
                let table = info.to_table(
                    &[obj],
                    json!({"resourceVersion": rv}),
                    table_options(q),
                    crate::registry::now(),
                );
                return Ok(json_response(StatusCode::OK, &table));
            }
            Ok(json_response(StatusCode::OK, &obj))
        }
        (&Method::GET, None) => {
            let watch = matches!(q.get("watch").map(String::as_str), Some("true") | Some("1"));
            if watch {
                return watch_response(ctx, t, q, headers).await;
            }
            let opts = list_options(q)?;
            let listed = reg.list(info, t.namespace.as_deref(), &opts).await?;
            let mut list_meta = json!({"resourceVersion": listed.revision.to_string()});
            if let Some(tok) = &listed.continue_token {
                list_meta["continue"] = Value::String(tok.clone());
            }
            if table_requested(headers) {
                let items: Vec<Value> = listed.items.iter().map(|o| o.value()).collect();
                let table =
                    info.to_table(&items, list_meta, table_options(q), crate::registry::now());
                return Ok(json_response(StatusCode::OK, &table));
            }
            Ok(list_response(info, &list_meta, &listed.items))
        }
        (&Method::POST, None) => {
            if !info.has_verb("create") {
                return Err(verb_denied("create"));
            }
            let w = reg.create(info, &ns, &body, &write_options(q)?).await?;
            Ok(with_warnings(
                json_response(StatusCode::CREATED, &w.object),
                &[body_warnings, w.warnings].concat(),
            ))
        }
        (&Method::PUT, Some(name)) => {
            let w = reg
                .update(info, &ns, name, sub, &body, &write_options(q)?)
                .await?;
            Ok(with_warnings(
                json_response(StatusCode::OK, &w.object),
                &[body_warnings, w.warnings].concat(),
            ))
        }
        (&Method::PATCH, Some(name)) => {
            let ct = headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let pt = rkube_api::patch::PatchType::from_content_type(ct).ok_or_else(|| {
                Status::unsupported_media_type(&[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                ])
            })?;
            let w = reg
                .patch(info, &ns, name, sub, pt, &body, &write_options(q)?)
                .await?;
            Ok(with_warnings(
                json_response(StatusCode::OK, &w.object),
                &w.warnings,
            ))
        }
        (&Method::DELETE, Some(name)) => {
            let opts = delete_options(q, &body)?;
            let obj = reg.delete(info, &ns, name, &opts).await?;
            Ok(json_response(StatusCode::OK, &obj))
        }
        (&Method::DELETE, None) => {
            if !info.has_verb("deletecollection") {
                return Err(verb_denied("deletecollection"));
            }
            let opts = delete_options(q, &body)?;
            let items = reg
                .delete_collection(info, t.namespace.as_deref(), &list_options(q)?, &opts)
                .await?;
            let list = json!({"kind": info.list_kind, "apiVersion": info.api_version(), "metadata": {}, "items": items});
            Ok(json_response(StatusCode::OK, &list))
        }
        (m, _) => Err(Status::method_not_supported(
            info.group,
            info.plural,
            m.as_str(),
        )),
    }
}

/// `<deployments|replicasets>/<name>/scale`: get, update and patch of the
/// parent's autoscaling/v1 `Scale` (the logic is the registry's).
async fn scale(
    ctx: &Ctx,
    t: &Target,
    method: Method,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
    body: Bytes,
    body_warnings: Vec<String>,
) -> Result<Response, Status> {
    let (info, reg) = (t.info, &ctx.registry);
    let ns = t.namespace.as_deref().unwrap_or_default();
    let Some(name) = t.name.as_deref() else {
        return Err(Status::not_found_path());
    };
    let w = match method {
        Method::GET => {
            let s = reg.get_scale(info, ns, name).await?;
            if table_requested(headers) {
                let table = rkube_api::table::scale_table(&s, table_options(q));
                return Ok(json_response(StatusCode::OK, &table));
            }
            return Ok(json_response(StatusCode::OK, &s));
        }
        Method::PUT => {
            reg.update_scale(info, ns, name, &body, &write_options(q)?)
                .await?
        }
        Method::PATCH => {
            let pt = patch_type(headers)?;
            reg.patch_scale(info, ns, name, pt, &body, &write_options(q)?)
                .await?
        }
        m => {
            return Err(Status::method_not_supported(
                info.group,
                &format!("{}/scale", info.plural),
                m.as_str(),
            ))
        }
    };
    Ok(with_warnings(
        json_response(StatusCode::OK, &w.object),
        &[body_warnings, w.warnings].concat(),
    ))
}

/// `pods/<name>/log`: text when a kubelet serves it; until kubelets exist,
/// the registry's checks and Kubernetes' answers for a pod not running.
async fn pod_log(
    ctx: &Ctx,
    t: &Target,
    method: Method,
    q: &HashMap<String, String>,
) -> Result<Response, Status> {
    if method != Method::GET {
        return Err(Status::method_not_supported(
            "",
            "pods/log",
            method.as_str(),
        ));
    }
    let (Some(ns), Some(name)) = (t.namespace.as_deref(), t.name.as_deref()) else {
        return Err(Status::not_found_path());
    };
    let opts = rkube_api::validation::PodLogOptions::from_query(q)?;
    match ctx.registry.pod_log(ns, name, &opts).await? {
        crate::registry::PodLog::NoContent => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

fn patch_type(headers: &HeaderMap) -> Result<rkube_api::patch::PatchType, Status> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    rkube_api::patch::PatchType::from_content_type(ct).ok_or_else(|| {
        Status::unsupported_media_type(&[
            "application/json-patch+json",
            "application/merge-patch+json",
            "application/strategic-merge-patch+json",
        ])
    })
}

fn table_options(q: &HashMap<String, String>) -> rkube_api::table::TableOptions {
    let mut o = rkube_api::table::TableOptions::default();
    if q.get("includeObject").map(String::as_str) == Some("Object") {
        o.include_object = rkube_api::table::IncludeObject::Object;
    }
    o
}

fn delete_options(q: &HashMap<String, String>, body: &[u8]) -> Result<DeleteOptions, Status> {
    let b: Value = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(body)
            .map_err(|e| Status::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    let dry = q.get("dryRun").map(String::as_str) == Some("All")
        || b.get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All"));
    Ok(DeleteOptions {
        dry_run: dry,
        grace_period_seconds: q
            .get("gracePeriodSeconds")
            .and_then(|s| s.parse().ok())
            .or(b.get("gracePeriodSeconds").and_then(Value::as_i64)),
        propagation_policy: q.get("propagationPolicy").cloned().or(b
            .get("propagationPolicy")
            .and_then(Value::as_str)
            .map(str::to_string)),
        precondition_uid: b
            .pointer("/preconditions/uid")
            .and_then(Value::as_str)
            .map(str::to_string),
        precondition_resource_version: b
            .pointer("/preconditions/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// A watch: a chunked stream of JSON watch events, one per line, rendered
/// from [`Registry::watch`]; objects go out as the bytes the watch cache shares.
async fn watch_response(
    ctx: &Ctx,
    t: &Target,
    q: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Result<Response, Status> {
    let info = t.info;
    if t.name.is_some() {
        return Err(Status::bad_request(
            "watch of a single object: use fieldSelector=metadata.name=<name>",
        ));
    }
    let opts = WatchOptions {
        list: list_options(q)?,
        bookmarks: matches!(
            q.get("allowWatchBookmarks").map(String::as_str),
            Some("true") | Some("1")
        ),
        timeout: q
            .get("timeoutSeconds")
            .and_then(|s| s.parse::<u64>().ok())
            .map(Duration::from_secs),
    };
    let as_table = table_requested(headers);
    let events = ctx
        .registry
        .watch(info, t.namespace.as_deref(), &opts)
        .await?;
    let info = *info;
    let line = move |typ: &str, obj: Value| -> Bytes {
        let mut v = serde_json::to_vec(&json!({"type": typ, "object": obj})).expect("encode");
        v.push(b'\n');
        Bytes::from(v)
    };
    let stream = events.filter_map(move |ev| {
        let chunk = match ev {
            Ok(WatchEvent::Bookmark {
                initial_events_end: true,
                ..
            }) => return None,
            Ok(WatchEvent::Bookmark { revision, .. }) => {
                let bm = json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": revision.to_string()}});
                line("BOOKMARK", bm)
            }
            Ok(ev) => {
                let (kind, o) = ev.object().expect("bookmarks are handled above");
                if as_table {
                    // Tables are rendered per watcher (kubectl get -w): few of them.
                    let table = info.to_table(
                        &[o.value()],
                        json!({}),
                        rkube_api::table::TableOptions {
                            no_headers: false,
                            ..Default::default()
                        },
                        crate::registry::now(),
                    );
                    line(kind.as_str(), table)
                } else {
                    // The same bytes for every watcher of this event.
                    o.rest_line(kind)
                }
            }
            Err(s) => line("ERROR", s.to_json()),
        };
        Some(Ok::<_, Infallible>(chunk))
    });
    let mut r = Response::new(Body::from_stream(stream));
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    Ok(r)
}

#[cfg(test)]
mod tests {
    use tower::ServiceExt as _;

    use super::*;

    fn app() -> Router {
        Router::new().fallback(fallback)
    }

    #[tokio::test]
    async fn an_unknown_path_is_a_404_status_for_rest_and_unimplemented_for_grpc() {
        let r = app()
            .oneshot(
                axum::http::Request::get("/version/nope")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::NOT_FOUND);
        assert_eq!(r.headers()[header::CONTENT_TYPE], JSON);
        let body = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        let s: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            (s["kind"].as_str(), s["reason"].as_str()),
            (Some("Status"), Some("NotFound"))
        );
        assert_eq!(s["code"], 404);

        let r = app()
            .oneshot(
                axum::http::Request::post("/no.Such/Method")
                    .header(header::CONTENT_TYPE, "application/grpc")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["grpc-status"], "12");
    }
}
