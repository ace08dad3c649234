//! The gRPC front door for rkube's components (`rkube.api.v1.Resources`).
//!
//! Each call resolves its resource, turns its envelope into the registry's
//! options and calls the same [`Registry`] function the REST handler for that
//! verb calls; this module must never implement a verb itself. Objects are
//! Kubernetes JSON in, Kubernetes JSON out. Failures are gRPC statuses with a
//! mapped code and the Kubernetes `Status` JSON as their details, so a client
//! sees exactly the reason, message and causes kubectl would.
//!
//! Authentication and authorization happen before a call gets here: the
//! API port's auth layer admits every request, gRPC included.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use rkube_api::registry::ResourceInfo;
use rkube_api::status::{Reason, Status};
use rkube_proto::api as pb;
use rkube_proto::api::resources_server::{Resources, ResourcesServer};
use serde_json::Value;
use tokio_stream::StreamExt as _;
use tonic::{Request, Response};

use crate::registry::{
    DeleteOptions, ListOptions, Object, Registry, WatchEvent, WatchOptions, WriteOptions,
};

/// Largest message either side sends: lists of many objects are big.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// The service, over the registry shared with the REST door.
pub struct ResourcesService {
    registry: Registry,
}

impl ResourcesService {
    pub fn new(registry: Registry) -> Self {
        Self { registry }
    }

    /// The tonic server for this service, with message limits fit for lists.
    pub fn into_server(self) -> ResourcesServer<Self> {
        ResourcesServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES)
    }
}

/// The gRPC code for a Kubernetes status code and reason. Pure.
pub fn grpc_code(s: &Status) -> tonic::Code {
    use tonic::Code;
    match (s.code, s.reason) {
        (409, Reason::AlreadyExists) => Code::AlreadyExists,
        (409, _) => Code::Aborted,
        (400 | 406 | 413 | 415 | 422, _) => Code::InvalidArgument,
        (401, _) => Code::Unauthenticated,
        (403, _) => Code::PermissionDenied,
        (404, _) => Code::NotFound,
        (405, _) => Code::Unimplemented,
        (410, _) => Code::OutOfRange,
        (429, _) => Code::ResourceExhausted,
        (503, _) => Code::Unavailable,
        (504, _) => Code::DeadlineExceeded,
        _ => Code::Internal,
    }
}

/// A Kubernetes `Status` as a gRPC status: mapped code, the same message,
/// and the Status JSON as details.
pub fn to_grpc(s: &Status) -> tonic::Status {
    tonic::Status::with_details(
        grpc_code(s),
        s.message.clone(),
        Bytes::from(s.to_json_bytes()),
    )
}

type GrpcResult<T> = Result<Response<T>, tonic::Status>;

fn resolve(
    r: Option<&pb::ResourceRef>,
) -> Result<(&'static ResourceInfo, pb::ResourceRef), Status> {
    let r = r.cloned().unwrap_or_default();
    let info = rkube_api::registry::lookup(&r.group, &r.version, &r.resource).ok_or_else(|| {
        Status::new(
            Reason::NotFound,
            format!(
                "the server could not find the requested resource ({}/{}, resource {:?})",
                r.group, r.version, r.resource
            ),
        )
    })?;
    if !info.namespaced && !r.namespace.is_empty() {
        return Err(Status::bad_request(format!(
            "{} is cluster-scoped: namespace must be empty",
            info.plural
        )));
    }
    Ok((info, r))
}

/// A namespaced resource's single-object call needs a namespace; a name is
/// always needed.
fn need_name(info: &ResourceInfo, r: &pb::ResourceRef) -> Result<(), Status> {
    if r.name.is_empty() {
        return Err(Status::bad_request("resource name may not be empty"));
    }
    if info.namespaced && r.namespace.is_empty() {
        return Err(Status::bad_request("namespace may not be empty"));
    }
    Ok(())
}

fn write_options(o: Option<&pb::WriteOptions>) -> Result<WriteOptions, Status> {
    let o = o.cloned().unwrap_or_default();
    let fv = Some(o.field_validation.as_str()).filter(|s| !s.is_empty());
    Ok(WriteOptions {
        dry_run: o.dry_run,
        field_validation: rkube_api::strict::FieldValidation::parse(fv)?,
    })
}

fn list_options(o: Option<&pb::ListOptions>) -> ListOptions {
    let o = o.cloned().unwrap_or_default();
    let some = |s: String| Some(s).filter(|s| !s.is_empty());
    ListOptions {
        label_selector: some(o.label_selector),
        field_selector: some(o.field_selector),
        limit: o.limit,
        continue_token: some(o.r#continue),
        resource_version: some(o.resource_version),
        resource_version_match: None,
    }
}

/// Kubernetes' DeleteOptions JSON (empty = defaults) as the registry's options.
fn delete_options(raw: &[u8]) -> Result<DeleteOptions, Status> {
    if raw.is_empty() {
        return Ok(DeleteOptions::default());
    }
    let b: Value = serde_json::from_slice(raw)
        .map_err(|e| Status::bad_request(format!("invalid DeleteOptions: {e}")))?;
    let text = |p: &str| b.pointer(p).and_then(Value::as_str).map(str::to_string);
    Ok(DeleteOptions {
        dry_run: b
            .get("dryRun")
            .and_then(Value::as_array)
            .is_some_and(|a| a.iter().any(|x| x == "All")),
        grace_period_seconds: b.get("gracePeriodSeconds").and_then(Value::as_i64),
        propagation_policy: text("/propagationPolicy"),
        precondition_uid: text("/preconditions/uid"),
        precondition_resource_version: text("/preconditions/resourceVersion"),
    })
}

fn object(v: &Value, warnings: Vec<String>) -> Response<pb::ObjectResponse> {
    Response::new(pb::ObjectResponse {
        object: Bytes::from(serde_json::to_vec(v).expect("JSON values encode")),
        warnings,
    })
}

fn watch_event(info: &ResourceInfo, ev: WatchEvent) -> pb::WatchEvent {
    use pb::watch_event::Type;
    match ev {
        WatchEvent::Bookmark {
            revision,
            initial_events_end,
        } => {
            let bm = serde_json::json!({"kind": info.kind, "apiVersion": info.api_version(), "metadata": {"resourceVersion": revision.to_string()}});
            pb::WatchEvent {
                r#type: Type::Bookmark as i32,
                object: Bytes::from(serde_json::to_vec(&bm).expect("JSON values encode")),
                resource_version: revision.to_string(),
                initial_events_end,
            }
        }
        WatchEvent::Added(o) => object_event(Type::Added, &o),
        WatchEvent::Modified(o) => object_event(Type::Modified, &o),
        WatchEvent::Deleted(o) => object_event(Type::Deleted, &o),
    }
}

/// An object event carrying the bytes the watch cache shares (no re-encoding).
fn object_event(typ: pb::watch_event::Type, o: &Object) -> pb::WatchEvent {
    pb::WatchEvent {
        r#type: typ as i32,
        object: o.json().clone(),
        resource_version: o.revision().to_string(),
        initial_events_end: false,
    }
}

type EventStream =
    Pin<Box<dyn futures_core::Stream<Item = Result<pb::WatchEvent, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl Resources for ResourcesService {
    async fn get(&self, req: Request<pb::GetRequest>) -> GrpcResult<pb::ObjectResponse> {
        let req = req.into_inner();
        let run = async {
            let (info, r) = resolve(req.r#ref.as_ref())?;
            need_name(info, &r)?;
            let rv = Some(req.resource_version.as_str()).filter(|s| !s.is_empty());
            self.registry.get(info, &r.namespace, &r.name, rv).await
        };
        run.await
            .map(|o| object(&o, vec![]))
            .map_err(|s| to_grpc(&s))
    }

    async fn list(&self, req: Request<pb::ListRequest>) -> GrpcResult<pb::ListResponse> {
        let req = req.into_inner();
        if let Some(lists) = discovery(req.r#ref.as_ref()) {
            return Ok(Response::new(lists));
        }
        let run = async {
            let (info, r) = resolve(req.r#ref.as_ref())?;
            let ns = Some(r.namespace.as_str()).filter(|s| !s.is_empty());
            self.registry
                .list(info, ns, &list_options(req.options.as_ref()))
                .await
        };
        let listed = run.await.map_err(|s| to_grpc(&s))?;
        Ok(Response::new(pb::ListResponse {
            items: listed.items.iter().map(|o| o.json().clone()).collect(),
            resource_version: listed.revision.to_string(),
            r#continue: listed.continue_token.unwrap_or_default(),
        }))
    }

    type WatchStream = EventStream;

    async fn watch(&self, req: Request<pb::WatchRequest>) -> GrpcResult<Self::WatchStream> {
        let req = req.into_inner();
        let (info, r) = resolve(req.r#ref.as_ref()).map_err(|s| to_grpc(&s))?;
        if !r.name.is_empty() {
            return Err(to_grpc(&Status::bad_request(
                "watch of a single object: use fieldSelector=metadata.name=<name>",
            )));
        }
        let opts = WatchOptions {
            list: list_options(req.options.as_ref()),
            bookmarks: req.allow_bookmarks,
            timeout: (req.timeout_seconds > 0)
                .then(|| Duration::from_secs(req.timeout_seconds as u64)),
        };
        let ns = Some(r.namespace.as_str()).filter(|s| !s.is_empty());
        let events = self
            .registry
            .watch(info, ns, &opts)
            .await
            .map_err(|s| to_grpc(&s))?;
        let stream = events.map(move |ev| match ev {
            Ok(ev) => Ok(watch_event(info, ev)),
            Err(s) => Err(to_grpc(&s)),
        });
        Ok(Response::new(Box::pin(stream)))
    }

    async fn create(&self, req: Request<pb::CreateRequest>) -> GrpcResult<pb::ObjectResponse> {
        let req = req.into_inner();
        let run = async {
            let (info, r) = resolve(req.r#ref.as_ref())?;
            if !info.has_verb("create") {
                return Err(Status::method_not_supported(
                    info.group,
                    info.plural,
                    "create",
                ));
            }
            if info.namespaced && r.namespace.is_empty() {
                return Err(Status::bad_request("namespace may not be empty"));
            }
            let opts = write_options(req.options.as_ref())?;
            self.registry
                .create(info, &r.namespace, &req.object, &opts)
                .await
        };
        run.await
            .map(|w| object(&w.object, w.warnings))
            .map_err(|s| to_grpc(&s))
    }

    async fn update(&self, req: Request<pb::UpdateRequest>) -> GrpcResult<pb::ObjectResponse> {
        self.update_sub(req.into_inner(), None).await
    }

    async fn update_status(
        &self,
        req: Request<pb::UpdateRequest>,
    ) -> GrpcResult<pb::ObjectResponse> {
        self.update_sub(req.into_inner(), Some("status")).await
    }

    async fn patch(&self, req: Request<pb::PatchRequest>) -> GrpcResult<pb::ObjectResponse> {
        use rkube_api::patch::PatchType;
        let req = req.into_inner();
        let run = async {
            let (info, r) = resolve(req.r#ref.as_ref())?;
            need_name(info, &r)?;
            let sub = subresource(info, &req.subresource)?;
            let pt = match pb::patch_request::Type::try_from(req.r#type) {
                Ok(pb::patch_request::Type::Json) => PatchType::Json,
                Ok(pb::patch_request::Type::Merge) => PatchType::Merge,
                Ok(pb::patch_request::Type::Strategic) => PatchType::StrategicMerge,
                Err(_) => {
                    return Err(Status::bad_request(format!(
                        "unknown patch type {}",
                        req.r#type
                    )))
                }
            };
            let opts = write_options(req.options.as_ref())?;
            self.registry
                .patch(info, &r.namespace, &r.name, sub, pt, &req.patch, &opts)
                .await
        };
        run.await
            .map(|w| object(&w.object, w.warnings))
            .map_err(|s| to_grpc(&s))
    }

    async fn delete(&self, req: Request<pb::DeleteRequest>) -> GrpcResult<pb::ObjectResponse> {
        let req = req.into_inner();
        let run = async {
            let (info, r) = resolve(req.r#ref.as_ref())?;
            need_name(info, &r)?;
            let opts = delete_options(&req.options)?;
            self.registry
                .delete(info, &r.namespace, &r.name, &opts)
                .await
        };
        run.await
            .map(|o| object(&o, vec![]))
            .map_err(|s| to_grpc(&s))
    }

    async fn bind(&self, req: Request<pb::BindRequest>) -> GrpcResult<pb::ObjectResponse> {
        let req = req.into_inner();
        let run = async {
            if req.namespace.is_empty() || req.name.is_empty() {
                return Err(Status::bad_request("namespace and name may not be empty"));
            }
            let opts = write_options(req.options.as_ref())?;
            self.registry
                .bind(&req.namespace, &req.name, &req.binding, &opts)
                .await
        };
        run.await
            .map(|o| object(&o, vec![]))
            .map_err(|s| to_grpc(&s))
    }
}

/// Discovery, for a list without a resource: every served group version's
/// `APIResourceList` (narrowed to the group, and version, the reference names), as the
/// REST door serves them at `/api/v1` and `/apis/<group>/<version>`. `None` for a list
/// of a resource.
fn discovery(r: Option<&pb::ResourceRef>) -> Option<pb::ListResponse> {
    let r = r.cloned().unwrap_or_default();
    if !r.resource.is_empty() {
        return None;
    }
    let wanted = |l: &Value| {
        let gv = l["groupVersion"].as_str().unwrap_or("");
        let (group, version) = gv.split_once('/').unwrap_or(("", gv));
        (r.group.is_empty() || r.group == group) && (r.version.is_empty() || r.version == version)
    };
    let items = rkube_api::discovery::api_resource_lists()
        .into_iter()
        .filter(|l| wanted(l))
        .map(|l| Bytes::from(serde_json::to_vec(&l).expect("JSON values encode")))
        .collect();
    Some(pb::ListResponse {
        items,
        resource_version: String::new(),
        r#continue: String::new(),
    })
}

/// "" or a subresource this resource has ("status"; "finalize" of namespaces, which
/// this door writes with a patch since its update call names no subresource).
fn subresource(info: &ResourceInfo, sub: &str) -> Result<Option<&'static str>, Status> {
    match sub {
        "" => Ok(None),
        "status" if info.subresource("status").is_some() => Ok(Some("status")),
        "finalize" if info.subresource("finalize").is_some() => Ok(Some("finalize")),
        other => Err(Status::bad_request(format!(
            "{}/{other} cannot be patched through this call",
            info.plural
        ))),
    }
}

impl ResourcesService {
    async fn update_sub(
        &self,
        req: pb::UpdateRequest,
        sub: Option<&str>,
    ) -> GrpcResult<pb::ObjectResponse> {
        let run = async {
            let (info, r) = resolve(req.r#ref.as_ref())?;
            need_name(info, &r)?;
            if let Some(s) = sub {
                subresource(info, s)?;
            }
            let opts = write_options(req.options.as_ref())?;
            self.registry
                .update(info, &r.namespace, &r.name, sub, &req.object, &opts)
                .await
        };
        run.await
            .map(|w| object(&w.object, w.warnings))
            .map_err(|s| to_grpc(&s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kubernetes_reasons_map_to_distinct_grpc_codes() {
        use tonic::Code;
        let cases = [
            (Status::not_found("", "pods", "a"), Code::NotFound),
            (Status::already_exists("", "pods", "a"), Code::AlreadyExists),
            (Status::optimistic_lock("", "pods", "a"), Code::Aborted),
            (Status::expired("too old"), Code::OutOfRange),
            (Status::bad_request("x"), Code::InvalidArgument),
            (Status::service_unavailable("x"), Code::Unavailable),
            (Status::internal_error("x"), Code::Internal),
        ];
        for (status, code) in cases {
            assert_eq!(grpc_code(&status), code, "{status:?}");
        }
    }

    #[test]
    fn the_status_json_travels_in_the_details() {
        let s = Status::already_exists("apps", "deployments", "web");
        let g = to_grpc(&s);
        let back: Value = serde_json::from_slice(g.details()).unwrap();
        assert_eq!(Status::from_json(&back).unwrap(), s);
        assert_eq!(g.message(), s.message);
    }

    #[test]
    fn a_list_without_a_resource_is_discovery() {
        let decode = |resp: pb::ListResponse| -> Vec<String> {
            resp.items
                .iter()
                .map(|b| {
                    let l: Value = serde_json::from_slice(b).unwrap();
                    assert_eq!(l["kind"], "APIResourceList");
                    l["groupVersion"].as_str().unwrap().to_string()
                })
                .collect()
        };
        let all = decode(discovery(None).unwrap());
        assert_eq!(all[0], "v1");
        assert!(all.contains(&"apps/v1".to_string()), "{all:?}");
        let apps = pb::ResourceRef {
            group: "apps".into(),
            ..Default::default()
        };
        assert_eq!(decode(discovery(Some(&apps)).unwrap()), ["apps/v1"]);
        let core = pb::ResourceRef {
            version: "v1".into(),
            ..Default::default()
        };
        assert!(decode(discovery(Some(&core)).unwrap()).contains(&"v1".to_string()));
        let pods = pb::ResourceRef {
            version: "v1".into(),
            resource: "pods".into(),
            ..Default::default()
        };
        assert!(discovery(Some(&pods)).is_none());
    }

    #[test]
    fn delete_options_read_kubernetes_json() {
        let o = delete_options(
            br#"{"propagationPolicy":"Foreground","preconditions":{"resourceVersion":"7"},"dryRun":["All"]}"#,
        )
        .unwrap();
        assert_eq!(o.propagation_policy.as_deref(), Some("Foreground"));
        assert_eq!(o.precondition_resource_version.as_deref(), Some("7"));
        assert!(o.dry_run);
        assert!(delete_options(b"").unwrap().propagation_policy.is_none());
        assert_eq!(delete_options(b"{").unwrap_err().code, 400);
    }
}
