//! The request pipeline's storage half, shared by both front doors: one
//! generic registry over every resource of `rkube_api::registry`, turning
//! Kubernetes verbs into store transactions.
//!
//! Objects are stored as their Kubernetes JSON under etcd's key layout, without
//! `resourceVersion` (it is the key's mod revision, set on the way out).
//! Creates are compare-and-set on absence, updates on the mod revision the
//! caller read (409 Conflict when it moved), deletes on the revision they
//! inspected. Defaulting, validation and strict field checking come from
//! `rkube_api`; this module owns only what needs the store. Watches and
//! `resourceVersion=0` lists are served by the [`crate::watch_cache`] when the
//! registry has one; this module must never fan events out itself.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use k8s_openapi::jiff::Timestamp;
use rkube_api::registry::ResourceInfo;
use rkube_api::status::Status;
use rkube_store::{Compare, CompareResult, CompareTarget, KeyRange, Op, RangeOp, Store, Txn};
use serde_json::{json, Value};

use crate::watch_cache::{Filter, Start, WatchCache};
pub use crate::watch_cache::{Object, WatchEvent, WatchStream};

mod store_watch;
mod subresources;
pub use subresources::{scale_of, PodLog};

/// Largest request body the REST door accepts (Kubernetes: 3 MiB).
pub const MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

pub type Result<T, E = Status> = std::result::Result<T, E>;

#[derive(Clone)]
pub struct Registry {
    store: Arc<Store>,
    admission: Arc<crate::admission::Chain>,
    cache: Option<Arc<WatchCache>>,
}

/// A list: the items (shared, so the doors send their bytes as they are), the revision
/// they were read at, and the continue token of the next page.
#[derive(Debug, Clone)]
pub struct ListResult {
    pub items: Vec<Arc<Object>>,
    pub revision: i64,
    pub continue_token: Option<String>,
}

/// Options of a list (and of a watch's initial state).
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    pub label_selector: Option<String>,
    pub field_selector: Option<String>,
    pub limit: i64,
    pub continue_token: Option<String>,
    /// "" or unset: most recent (linearizable); "0": any (served locally);
    /// another value: see `resource_version_match`.
    pub resource_version: Option<String>,
    /// With a resourceVersion other than "0": `Exact` reads at that revision;
    /// `NotOlderThan` reads the most recent state, which must be at least that
    /// revision. Unset means NotOlderThan, but Exact with a `limit`, as
    /// Kubernetes' etcd storage reads it.
    pub resource_version_match: Option<String>,
}

impl ListOptions {
    /// Kubernetes' `ValidateListOptions` for `resourceVersionMatch` (422).
    fn validate(&self) -> Result<()> {
        use rkube_api::validation::{FieldError, FieldPath};
        let Some(m) = self
            .resource_version_match
            .as_deref()
            .filter(|m| !m.is_empty())
        else {
            return Ok(());
        };
        let path = FieldPath::new("resourceVersionMatch");
        let rv = self.resource_version.as_deref().unwrap_or("");
        let mut errs = Vec::new();
        if rv.is_empty() {
            errs.push(FieldError::forbidden(
                &path,
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ));
        }
        if self
            .continue_token
            .as_deref()
            .is_some_and(|c| !c.is_empty())
        {
            errs.push(FieldError::forbidden(
                &path,
                "resourceVersionMatch is forbidden when continue is provided",
            ));
        }
        if m != "Exact" && m != "NotOlderThan" {
            errs.push(FieldError::not_supported(
                &path,
                m,
                &["Exact", "NotOlderThan", ""],
            ));
        }
        if m == "Exact" && rv == "0" {
            errs.push(FieldError::forbidden(
                &path,
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Status::invalid("meta.k8s.io", "ListOptions", "", &errs))
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    pub dry_run: bool,
    pub field_validation: rkube_api::strict::FieldValidation,
}

#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    pub dry_run: bool,
    pub grace_period_seconds: Option<i64>,
    pub propagation_policy: Option<String>,
    pub precondition_uid: Option<String>,
    pub precondition_resource_version: Option<String>,
}

/// Options of a watch: which objects, from where, and how the stream behaves.
#[derive(Debug, Clone, Default)]
pub struct WatchOptions {
    /// Selectors and `resource_version` ("" or "0": the current objects first,
    /// as ADDED events; anything else: every change after that revision).
    /// `limit` and `continue_token` are ignored.
    pub list: ListOptions,
    /// Send progress bookmarks while nothing changes.
    pub bookmarks: bool,
    /// End the stream after this long (Kubernetes' default: 30 minutes).
    pub timeout: Option<Duration>,
}

/// A created/updated object and the warnings to send back (`Warning` headers).
pub struct Written {
    pub object: Value,
    pub warnings: Vec<String>,
    pub created: bool,
}

fn store_err(e: rkube_store::Error) -> Status {
    use rkube_store::Error as E;
    match e {
        E::Compacted { .. } => Status::expired(format!("too old resource version: {e}")),
        E::FutureRevision { .. } => Status::timeout(&format!("Too large resource version: {e}"), 1),
        E::TooLarge { .. } => Status::request_entity_too_large(&e.to_string()),
        E::InvalidArgument(m) => Status::bad_request(m),
        E::NoQuorum(_) | E::LeaderUnreachable { .. } | E::Shutdown => {
            Status::service_unavailable(format!("the store is unavailable: {e}"))
        }
        E::Timeout(m) => Status::timeout(&m, 1),
        other => Status::internal_error(&other.to_string()),
    }
}

fn cache_err(e: crate::watch_cache::Error) -> Status {
    use crate::watch_cache::Error as E;
    match e {
        E::InitialRead { source, .. } => store_err(source),
        E::Stopped => Status::service_unavailable("the apiserver is shutting down"),
    }
}

/// The label and field selectors of a list or watch, parsed and checked for `info`.
fn selectors(
    info: &ResourceInfo,
    opts: &ListOptions,
) -> Result<(
    rkube_api::selectors::LabelSelector,
    rkube_api::selectors::FieldSelector,
)> {
    let labels =
        rkube_api::selectors::LabelSelector::parse(opts.label_selector.as_deref().unwrap_or(""))
            .map_err(|e| Status::bad_request(e.to_string()))?;
    let fields =
        rkube_api::selectors::FieldSelector::parse(opts.field_selector.as_deref().unwrap_or(""))
            .and_then(|f| f.for_resource(info))
            .map_err(|e| Status::bad_request(e.to_string()))?;
    Ok((labels, fields))
}

/// Now, to the second (Kubernetes' timestamps have second precision).
pub fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    Timestamp::from_second(secs).expect("the clock is within jiff's range")
}

/// The grace period of a graceful pod deletion (Kubernetes' pod strategy): the request's,
/// else the pod's terminationGracePeriodSeconds (30 by default); none for a pod that is
/// not bound to a node or has finished, or when the grace is 0.
fn pod_deletion_grace(info: &ResourceInfo, obj: &Value, opts: &DeleteOptions) -> Option<i64> {
    if !info.group.is_empty() || info.plural != "pods" {
        return None;
    }
    let bound = obj
        .pointer("/spec/nodeName")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let finished = matches!(
        obj.pointer("/status/phase").and_then(Value::as_str),
        Some("Succeeded" | "Failed")
    );
    let grace = opts.grace_period_seconds.unwrap_or_else(|| {
        obj.pointer("/spec/terminationGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(30)
    });
    (bound && !finished && grace > 0).then_some(grace)
}

pub fn now_rfc3339() -> String {
    now().to_string()
}

fn new_uid() -> String {
    let b: [u8; 16] = rand::random();
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
        u16::from_be_bytes([b[4], b[5]]),
        u16::from_be_bytes([b[6], b[7]]) & 0x0fff,
        (u16::from_be_bytes([b[8], b[9]]) & 0x3fff) | 0x8000,
        u64::from_be_bytes([0, 0, b[10], b[11], b[12], b[13], b[14], b[15]])
    )
}

fn random_suffix() -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| ALPHABET[rand::random::<u8>() as usize % ALPHABET.len()] as char)
        .collect()
}

/// The decoded object with `resourceVersion` set from the key's revision.
fn from_stored(bytes: &[u8], mod_revision: i64) -> Result<Value> {
    crate::watch_cache::decode_stored(bytes, mod_revision)
        .map_err(|e| Status::internal_error(&format!("stored object is not JSON: {e}")))
}

fn to_stored(obj: &Value) -> Bytes {
    let mut o = obj.clone();
    if let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("resourceVersion");
    }
    Bytes::from(serde_json::to_vec(&o).expect("JSON values encode"))
}

fn meta(obj: &Value) -> &Value {
    obj.get("metadata").unwrap_or(&Value::Null)
}

fn meta_str<'a>(obj: &'a Value, field: &str) -> Option<&'a str> {
    meta(obj).get(field).and_then(Value::as_str)
}

fn meta_mut(obj: &mut Value) -> &mut serde_json::Map<String, Value> {
    if !obj.get("metadata").is_some_and(Value::is_object) {
        obj["metadata"] = json!({});
    }
    obj["metadata"]
        .as_object_mut()
        .expect("metadata is an object")
}

fn parse_rv(rv: &str) -> Result<i64> {
    rv.parse::<i64>()
        .map_err(|_| Status::bad_request(format!("invalid resource version: {rv:?}")))
}

impl Registry {
    /// A registry with the default admission chain.
    pub fn new(store: Arc<Store>) -> Self {
        Self::with_admission(store, crate::admission::Chain::default())
    }

    pub fn with_admission(store: Arc<Store>, admission: crate::admission::Chain) -> Self {
        Self {
            store,
            admission: Arc::new(admission),
            cache: None,
        }
    }

    /// This registry, serving watches and `resourceVersion=0` lists from `cache`.
    pub fn with_watch_cache(self, cache: Arc<WatchCache>) -> Self {
        Self {
            cache: Some(cache),
            ..self
        }
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    async fn read(&self, key: &str, local: bool) -> Result<Option<(Value, i64)>> {
        let (res, _) = self
            .store
            .range(RangeOp::get(Bytes::from(key.to_string())), local)
            .await
            .map_err(store_err)?;
        match res.kvs.into_iter().next() {
            Some(kv) => Ok(Some((
                from_stored(&kv.value, kv.mod_revision)?,
                kv.mod_revision,
            ))),
            None => Ok(None),
        }
    }

    pub async fn get(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        resource_version: Option<&str>,
    ) -> Result<Value> {
        let local = resource_version == Some("0");
        match self.read(&info.key(ns, name), local).await? {
            Some((obj, _)) => Ok(obj),
            None => Err(Status::not_found(info.group, info.plural, name)),
        }
    }

    /// The namespace check of `NamespaceLifecycle` admission.
    pub(crate) async fn ensure_namespace(&self, info: &ResourceInfo, ns: &str) -> Result<()> {
        if !info.namespaced {
            return Ok(());
        }
        let nsinfo =
            rkube_api::registry::lookup("", "v1", "namespaces").expect("namespaces are registered");
        let key = nsinfo.key("", ns);
        // The local read is cheap but may lag this replica's own acknowledged writes (a
        // namespace created through a follower a moment ago); as Kubernetes' namespace
        // lifecycle admission does with its cache, a miss is checked again live.
        let found = match self.read(&key, true).await? {
            Some(found) => Some(found),
            None => self.read(&key, false).await?,
        };
        match found {
            Some((obj, _)) => {
                if meta(&obj).get("deletionTimestamp").is_some() {
                    return Err(Status::namespace_terminating(
                        info.group,
                        info.plural,
                        "",
                        ns,
                    ));
                }
                Ok(())
            }
            None => Err(Status::not_found("", "namespaces", ns)),
        }
    }

    /// Decodes, defaults and validates a body for `info`; returns the object and warnings.
    fn admit_body(
        &self,
        info: &ResourceInfo,
        raw: &[u8],
        opts: &WriteOptions,
    ) -> Result<(Value, Vec<String>)> {
        if raw.len() > MAX_BODY_BYTES {
            return Err(Status::request_entity_too_large("limit is 3145728"));
        }
        let obj: Value = serde_json::from_slice(raw).map_err(|e| {
            Status::bad_request(format!(
                "the body of the request was in an unknown format: {e}"
            ))
        })?;
        if !obj.is_object() {
            return Err(Status::bad_request(
                "the body of the request must be a JSON object",
            ));
        }
        let (kind, api_version) = (
            obj.get("kind").and_then(Value::as_str),
            obj.get("apiVersion").and_then(Value::as_str),
        );
        if let Some(kind) = kind {
            if kind != info.kind {
                return Err(Status::bad_request(format!(
                    "the API version in the data ({}) does not match the expected API version ({})",
                    format_args!("{}/{kind}", api_version.unwrap_or("")),
                    format_args!("{}/{}", info.api_version(), info.kind)
                )));
            }
        }
        if let Some(av) = api_version {
            if av != info.api_version() {
                return Err(Status::bad_request(format!(
                    "the API version in the data ({av}) does not match the expected API version ({})",
                    info.api_version()
                )));
            }
        }
        let mut warnings = Vec::new();
        if opts.field_validation != rkube_api::strict::FieldValidation::Ignore {
            let errs = info.strict_errors(raw)?;
            if !errs.is_empty() {
                if opts.field_validation == rkube_api::strict::FieldValidation::Strict {
                    return Err(rkube_api::strict::strict_decoding_status(&errs));
                }
                warnings.extend(errs);
            }
        }
        Ok((obj, warnings))
    }

    pub async fn create(
        &self,
        info: &ResourceInfo,
        ns: &str,
        raw: &[u8],
        opts: &WriteOptions,
    ) -> Result<Written> {
        let (mut obj, warnings) = self.admit_body(info, raw, opts)?;
        obj["kind"] = Value::String(info.kind.into());
        obj["apiVersion"] = Value::String(info.api_version());
        let m = meta_mut(&mut obj);
        if info.namespaced {
            match m.get("namespace").and_then(Value::as_str) {
                Some(n) if !n.is_empty() && n != ns => {
                    return Err(Status::bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request",
                    ))
                }
                _ => {
                    m.insert("namespace".into(), Value::String(ns.into()));
                }
            }
        } else {
            m.remove("namespace");
        }
        let generated = m
            .get("name")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if generated {
            if let Some(prefix) = m
                .get("generateName")
                .and_then(Value::as_str)
                .map(str::to_string)
            {
                m.insert(
                    "name".into(),
                    Value::String(format!("{prefix}{}", random_suffix())),
                );
            }
        }
        m.insert("uid".into(), Value::String(new_uid()));
        m.insert("creationTimestamp".into(), Value::String(now_rfc3339()));
        m.remove("resourceVersion");
        m.remove("deletionTimestamp");
        m.remove("deletionGracePeriodSeconds");
        // Generation, the kind's defaults, and no status where /status writes it.
        info.prepare_for_create(&mut obj);
        let name = meta_str(&obj, "name").unwrap_or_default().to_string();
        let attrs = crate::admission::Attributes {
            info,
            namespace: ns,
            name: &name,
            subresource: None,
            operation: crate::admission::Operation::Create,
            dry_run: opts.dry_run,
        };
        self.admission.mutate(&attrs, &mut obj)?;
        info.validate_create(&obj)?;
        self.admission.validate(&attrs, &obj, self).await?;
        if opts.dry_run {
            return Ok(Written {
                object: obj,
                warnings,
                created: true,
            });
        }
        let key = Bytes::from(info.key(ns, &name));
        let txn = Txn {
            compare: vec![Compare {
                key: key.clone(),
                result: CompareResult::Equal,
                target: CompareTarget::Mod(0),
            }],
            success: vec![Op::Put {
                key: key.clone(),
                value: to_stored(&obj),
                prev_kv: false,
            }],
            failure: vec![],
        };
        let res = self.store.txn(txn).await.map_err(store_err)?;
        if !res.succeeded {
            return Err(if generated {
                Status::generate_name_conflict(info.group, info.plural, &name, 1)
            } else {
                Status::already_exists(info.group, info.plural, &name)
            });
        }
        meta_mut(&mut obj).insert(
            "resourceVersion".into(),
            Value::String(res.revision.to_string()),
        );
        Ok(Written {
            object: obj,
            warnings,
            created: true,
        })
    }

    /// Replaces an object (PUT). `subresource` is None or "status".
    pub async fn update(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        raw: &[u8],
        opts: &WriteOptions,
    ) -> Result<Written> {
        let (obj, warnings) = self.admit_body(info, raw, opts)?;
        let w = self
            .update_object(info, ns, name, subresource, obj, opts, true)
            .await?;
        Ok(Written { warnings, ..w })
    }

    /// The shared tail of update and patch: merge with the stored object per
    /// the subresource, check preconditions, validate and compare-and-set.
    #[allow(clippy::too_many_arguments)]
    async fn update_object(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        mut obj: Value,
        opts: &WriteOptions,
        check_rv: bool,
    ) -> Result<Written> {
        if let Some(n) = meta_str(&obj, "name") {
            if n != name {
                return Err(Status::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        let key = info.key(ns, name);
        let Some((old, old_rev)) = self.read(&key, false).await? else {
            return Err(Status::not_found(info.group, info.plural, name));
        };
        if check_rv {
            if let Some(rv) = meta_str(&obj, "resourceVersion").filter(|s| !s.is_empty()) {
                if parse_rv(rv)? != old_rev {
                    return Err(Status::optimistic_lock(info.group, info.plural, name));
                }
            }
        }
        obj["kind"] = Value::String(info.kind.into());
        obj["apiVersion"] = Value::String(info.api_version());
        // Fields a client never owns.
        {
            let om = meta(&old).clone();
            let m = meta_mut(&mut obj);
            for f in [
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
            ] {
                match om.get(f) {
                    Some(v) => m.insert(f.into(), v.clone()),
                    None => m.remove(f),
                };
            }
            m.insert("name".into(), Value::String(name.into()));
            if info.namespaced {
                m.insert("namespace".into(), Value::String(ns.into()));
            }
        }
        // What each kind keeps from the stored object (status or everything but it),
        // then its defaults.
        match subresource {
            Some("status") => info.prepare_for_status_update(&mut obj, &old),
            Some("finalize") => info.prepare_for_finalize(&mut obj, &old),
            _ => info.prepare_for_update(&mut obj, &old),
        }
        let attrs = crate::admission::Attributes {
            info,
            namespace: ns,
            name,
            subresource,
            operation: crate::admission::Operation::Update,
            dry_run: opts.dry_run,
        };
        self.admission.mutate(&attrs, &mut obj)?;
        match subresource {
            Some("status") => info.validate_status_update(&obj, &old)?,
            _ => info.validate_update(&obj, &old)?,
        }
        self.admission.validate(&attrs, &obj, self).await?;
        let mut out = obj.clone();
        // A delete waiting on finalizers completes when the last one is removed.
        let finished =
            meta(&obj).get("deletionTimestamp").is_some() && !info.finalizers_pending(&obj);
        if opts.dry_run {
            meta_mut(&mut out).insert("resourceVersion".into(), Value::String(old_rev.to_string()));
            return Ok(Written {
                object: out,
                warnings: vec![],
                created: false,
            });
        }
        let k = Bytes::from(key);
        let cmp = vec![Compare {
            key: k.clone(),
            result: CompareResult::Equal,
            target: CompareTarget::Mod(old_rev),
        }];
        let op = if finished {
            Op::Delete {
                range: KeyRange::single(k.clone()),
                prev_kv: false,
            }
        } else {
            Op::Put {
                key: k.clone(),
                value: to_stored(&obj),
                prev_kv: false,
            }
        };
        let res = self
            .store
            .txn(Txn {
                compare: cmp,
                success: vec![op],
                failure: vec![],
            })
            .await
            .map_err(store_err)?;
        if !res.succeeded {
            return Err(Status::optimistic_lock(info.group, info.plural, name));
        }
        meta_mut(&mut out).insert(
            "resourceVersion".into(),
            Value::String(res.revision.to_string()),
        );
        Ok(Written {
            object: out,
            warnings: vec![],
            created: false,
        })
    }

    /// PATCH: apply the patch to the current object and update it, retrying
    /// from the new state when the object moved in between (a patch has no
    /// resourceVersion precondition unless it carries one, but is never written
    /// over a state it was not computed from).
    #[allow(clippy::too_many_arguments)]
    pub async fn patch(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        subresource: Option<&str>,
        patch_type: rkube_api::patch::PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Written> {
        if body.len() > MAX_BODY_BYTES {
            return Err(Status::request_entity_too_large("limit is 3145728"));
        }
        // Like Kubernetes' GuaranteedUpdate, no bound on the retries: each one means
        // another write to the object succeeded, so contention cannot starve a patch
        // for longer than the writes queued ahead of it.
        loop {
            let current = self.get(info, ns, name, None).await?;
            let mut patched = rkube_api::patch::apply_patch(patch_type, &current, body, info.kind)
                .map_err(|e| patch_status(&e))?;
            let precondition = meta_str(&patched, "resourceVersion")
                .filter(|rv| !rv.is_empty())
                .map(str::to_string);
            let explicit = precondition.is_some()
                && precondition.as_deref() != meta_str(&current, "resourceVersion");
            if precondition.is_none() {
                if let Some(rv) = meta(&current).get("resourceVersion").cloned() {
                    meta_mut(&mut patched).insert("resourceVersion".into(), rv);
                }
            }
            // The patched object always carries a resourceVersion to check: the caller's
            // (a precondition, answered with 409) or the one it was patched from. Writing
            // it over a newer object would undo whatever landed in between, so a write
            // that moved underneath is retried from the new state instead.
            match self
                .update_object(info, ns, name, subresource, patched, opts, true)
                .await
            {
                Err(s) if s.code == 409 && !explicit => continue,
                other => return other,
            }
        }
    }

    /// Deletes an object, or marks it for deletion (deletionTimestamp) while finalizers
    /// remain: its own, the garbage collector's that the propagation policy adds
    /// (`foregroundDeletion`, `orphan`), and for namespaces `spec.finalizers` too (they
    /// turn `Terminating`). The update that removes the last of them deletes it.
    pub async fn delete(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        opts: &DeleteOptions,
    ) -> Result<Value> {
        let key = info.key(ns, name);
        for _ in 0..8 {
            let Some((mut obj, rev)) = self.read(&key, false).await? else {
                return Err(Status::not_found(info.group, info.plural, name));
            };
            let attrs = crate::admission::Attributes {
                info,
                namespace: ns,
                name,
                subresource: None,
                operation: crate::admission::Operation::Delete,
                dry_run: opts.dry_run,
            };
            self.admission.validate(&attrs, &obj, self).await?;
            if let Some(uid) = &opts.precondition_uid {
                if meta_str(&obj, "uid") != Some(uid.as_str()) {
                    return Err(Status::conflict(
                        info.group,
                        info.plural,
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {}", meta_str(&obj, "uid").unwrap_or("")),
                    ));
                }
            }
            if let Some(rv) = &opts.precondition_resource_version {
                if parse_rv(rv)? != rev {
                    return Err(Status::conflict(
                        info.group,
                        info.plural,
                        name,
                        &format!("Precondition failed: ResourceVersion in precondition: {rv}, ResourceVersion in object meta: {rev}"),
                    ));
                }
            }
            let mut finalizers: Vec<Value> = meta(&obj)
                .get("finalizers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // Foreground/orphan deletion is carried out by the garbage collector
            // through these finalizers (Kubernetes' protocol).
            match opts.propagation_policy.as_deref() {
                Some("Foreground") if !finalizers.contains(&json!("foregroundDeletion")) => finalizers.push(json!("foregroundDeletion")),
                Some("Orphan") if !finalizers.contains(&json!("orphan")) => finalizers.push(json!("orphan")),
                Some("Foreground") | Some("Orphan") | Some("Background") | None => {}
                Some(other) => {
                    return Err(Status::bad_request(format!(
                        "propagationPolicy: Unsupported value: \"{other}\": supported values: \"Foreground\", \"Background\", \"Orphan\""
                    )))
                }
            }
            if opts.dry_run {
                return Ok(obj);
            }
            let k = Bytes::from(key.clone());
            let cmp = vec![Compare {
                key: k.clone(),
                result: CompareResult::Equal,
                target: CompareTarget::Mod(rev),
            }];
            if !finalizers.is_empty() {
                meta_mut(&mut obj).insert("finalizers".into(), Value::Array(finalizers));
            }
            // Namespaces also wait for their spec.finalizers (the namespace controller's).
            // A pod bound to a node is deleted gracefully: it stays, marked, until its
            // kubelet has stopped its containers and deletes it with grace 0.
            let grace = pod_deletion_grace(info, &obj, opts);
            let (op, gone) = if !info.finalizers_pending(&obj) && grace.is_none() {
                (
                    Op::Delete {
                        range: KeyRange::single(k.clone()),
                        prev_kv: false,
                    },
                    true,
                )
            } else {
                let current = meta(&obj)
                    .get("deletionGracePeriodSeconds")
                    .and_then(Value::as_i64);
                let marked = meta(&obj).get("deletionTimestamp").is_some();
                let shorter = grace.is_some_and(|g| current.is_none_or(|c| g < c));
                if marked && grace.is_some() && !shorter && !info.finalizers_pending(&obj) {
                    // Already terminating within this grace period: nothing changes.
                    return Ok(obj);
                }
                if !marked || shorter {
                    let g = grace.unwrap_or(opts.grace_period_seconds.unwrap_or(0));
                    let at = now()
                        .checked_add(k8s_openapi::jiff::SignedDuration::from_secs(g))
                        .unwrap_or_else(|_| now());
                    let m = meta_mut(&mut obj);
                    m.insert("deletionTimestamp".into(), Value::String(at.to_string()));
                    m.insert("deletionGracePeriodSeconds".into(), json!(g));
                }
                info.prepare_for_delete(&mut obj);
                (
                    Op::Put {
                        key: k.clone(),
                        value: to_stored(&obj),
                        prev_kv: false,
                    },
                    false,
                )
            };
            let res = self
                .store
                .txn(Txn {
                    compare: cmp,
                    success: vec![op],
                    failure: vec![],
                })
                .await
                .map_err(store_err)?;
            if !res.succeeded {
                continue;
            }
            if !gone {
                meta_mut(&mut obj).insert(
                    "resourceVersion".into(),
                    Value::String(res.revision.to_string()),
                );
            }
            return Ok(obj);
        }
        Err(Status::optimistic_lock(info.group, info.plural, name))
    }

    /// Lists at one revision: the items, the revision they were read at, and the
    /// continue token of the next page. `resourceVersion=0` (any state, no continue
    /// token) is served from the watch cache when there is one; everything else reads
    /// the store.
    pub async fn list(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &ListOptions,
    ) -> Result<ListResult> {
        opts.validate()?;
        let (labels, fields) = selectors(info, opts)?;
        let limit = opts.limit.max(0) as usize;
        let no_token = opts.continue_token.as_deref().is_none_or(str::is_empty);
        if let (Some(cache), Some("0"), true) =
            (&self.cache, opts.resource_version.as_deref(), no_token)
        {
            let resource = cache.resource(info, None).await.map_err(cache_err)?;
            let filter = Filter::new(info, ns, labels, fields);
            let (items, revision, next) = resource.list(&filter, limit);
            let continue_token = next.map(|after| {
                encode_continue(revision, &format!("{}\0", String::from_utf8_lossy(&after)))
            });
            return Ok(ListResult {
                items,
                revision,
                continue_token,
            });
        }
        let prefix = info.key_prefix(ns);
        let end = rkube_store::prefix_end(prefix.as_bytes());
        let (mut start, mut revision) = (Bytes::from(prefix.clone()), 0i64);
        // The revision the most recent state must have reached (NotOlderThan).
        let mut at_least = 0i64;
        if let Some(tok) = opts.continue_token.as_deref().filter(|t| !t.is_empty()) {
            let (rev, key) = decode_continue(tok)?;
            if !key.starts_with(&prefix) {
                return Err(Status::bad_request(
                    "continue key is not in the requested range",
                ));
            }
            revision = rev;
            start = Bytes::from(key);
        } else if let Some(rv) = opts
            .resource_version
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "0")
        {
            let rv = parse_rv(rv)?;
            match opts.resource_version_match.as_deref() {
                Some("Exact") => revision = rv,
                Some("NotOlderThan") => at_least = rv,
                _ if limit > 0 => revision = rv,
                _ => at_least = rv,
            }
        }
        let local = opts.resource_version.as_deref() == Some("0");
        let mut items = Vec::new();
        let mut token = None;
        'pages: loop {
            let op = RangeOp {
                range: KeyRange {
                    key: start.clone(),
                    end: end.clone(),
                },
                limit: if limit > 0 {
                    (limit as i64 + 1).max(64)
                } else {
                    0
                },
                revision,
                keys_only: false,
                count_only: false,
            };
            let (res, current) = self.store.range(op, local).await.map_err(|e| match e {
                rkube_store::Error::Compacted { .. } if opts.continue_token.is_some() => {
                    Status::continue_expired()
                }
                other => store_err(other),
            })?;
            if revision == 0 {
                revision = current;
                if at_least > current {
                    // What Kubernetes answers once its cache has waited for
                    // the revision in vain; a linearizable read is as fresh
                    // as it gets, so there is nothing to wait for.
                    return Err(Status::timeout(
                        &format!("Too large resource version: {at_least}, current: {current}"),
                        1,
                    ));
                }
            }
            let mut last_seen = None;
            for kv in res.kvs {
                if limit > 0 && items.len() == limit {
                    // Another key exists after a full page: continue after the
                    // last key examined, at the same revision.
                    let after = last_seen
                        .as_ref()
                        .map(|k: &Bytes| String::from_utf8_lossy(k).into_owned())
                        .unwrap_or_default();
                    token = Some(encode_continue(revision, &format!("{after}\0")));
                    break 'pages;
                }
                let obj = from_stored(&kv.value, kv.mod_revision)?;
                if labels.matches_object(&obj) && fields.matches(&info.field_set(&obj)) {
                    items.push(Arc::new(Object::from_value(
                        info,
                        kv.key.clone(),
                        &obj,
                        kv.mod_revision,
                    )));
                }
                last_seen = Some(kv.key);
            }
            match (res.more, last_seen) {
                (true, Some(k)) => {
                    let mut next = k.to_vec();
                    next.push(0);
                    start = Bytes::from(next);
                }
                _ => break,
            }
        }
        Ok(ListResult {
            items,
            revision,
            continue_token: token,
        })
    }
    pub async fn delete_collection(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        list: &ListOptions,
        opts: &DeleteOptions,
    ) -> Result<Vec<Value>> {
        let listed = self
            .list(
                info,
                ns,
                &ListOptions {
                    limit: 0,
                    continue_token: None,
                    ..list.clone()
                },
            )
            .await?;
        let mut out = Vec::new();
        for it in listed.items {
            match self.delete(info, it.namespace(), it.name(), opts).await {
                Ok(v) => out.push(v),
                Err(s) if s.code == 404 => {}
                Err(s) => return Err(s),
            }
        }
        Ok(out)
    }

    /// Watches `info`'s objects (in `ns`, or everywhere): the initial state when asked
    /// for (resourceVersion "" or "0"), then every change in revision order, filtered by
    /// the selectors (an object entering the selection is ADDED, one leaving it is
    /// DELETED). Changes come from the watch cache; a resourceVersion older than its
    /// window is watched on the store instead. A start revision the store compacted is
    /// an error here (410); a watcher that falls too far behind later gets a 410 item.
    /// The stream stops when dropped or after the timeout.
    pub async fn watch(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &WatchOptions,
    ) -> Result<WatchStream> {
        let list = &opts.list;
        let (labels, fields) = selectors(info, list)?;
        let timeout = opts.timeout.unwrap_or(Duration::from_secs(1800));
        let filter = Filter::new(info, ns, labels.clone(), fields.clone());
        let Some(cache) = &self.cache else {
            return self
                .watch_store(info, ns, opts, labels, fields, timeout)
                .await;
        };
        let (initial, after) = match list.resource_version.as_deref() {
            Some("0") => {
                let resource = cache.resource(info, None).await.map_err(cache_err)?;
                return Ok(resource
                    .watch(Start::InitialState, filter, opts.bookmarks, timeout)
                    .expect("a watch from the current state always starts"));
            }
            Some(rv) if !rv.is_empty() => (None, parse_rv(rv)?),
            // "": the initial state is a linearizable list, as a list without a
            // resourceVersion is; changes after it come from the cache.
            _ => {
                let all = ListOptions {
                    limit: 0,
                    continue_token: None,
                    ..list.clone()
                };
                let listed = self.list(info, ns, &all).await?;
                (Some(listed.items), listed.revision)
            }
        };
        let resource = cache.resource(info, Some(after)).await.map_err(cache_err)?;
        let mut stream = match resource.watch(Start::After(after), filter, opts.bookmarks, timeout)
        {
            Ok(stream) => stream,
            Err(too_old) => {
                tracing::debug!(resource = info.plural, %too_old, "watching the store instead of the cache");
                cache.metrics().store_fallback(info);
                let from = WatchOptions {
                    list: ListOptions {
                        resource_version: Some(after.to_string()),
                        ..list.clone()
                    },
                    ..opts.clone()
                };
                self.watch_store(info, ns, &from, labels, fields, timeout)
                    .await?
            }
        };
        if let Some(items) = initial {
            stream.prepend(
                items
                    .into_iter()
                    .map(WatchEvent::Added)
                    .chain(std::iter::once(WatchEvent::Bookmark {
                        revision: after,
                        initial_events_end: true,
                    })),
            );
        }
        Ok(stream)
    }

    /// A watch served by a store watch of its own (no cache, or a revision older than
    /// the cache's window).
    async fn watch_store(
        &self,
        info: &ResourceInfo,
        ns: Option<&str>,
        opts: &WatchOptions,
        labels: rkube_api::selectors::LabelSelector,
        fields: rkube_api::selectors::FieldSelector,
        timeout: Duration,
    ) -> Result<WatchStream> {
        let list = &opts.list;
        let (initial, start) = match list.resource_version.as_deref() {
            Some(rv) if !rv.is_empty() && rv != "0" => (None, parse_rv(rv)? + 1),
            _ => {
                let all = ListOptions {
                    limit: 0,
                    continue_token: None,
                    ..list.clone()
                };
                let listed = self.list(info, ns, &all).await?;
                (Some(listed.items), listed.revision + 1)
            }
        };
        let filter = Filter::new(info, ns, labels, fields);
        store_watch::watch(
            &self.store,
            info,
            ns,
            filter,
            initial,
            start,
            opts.bookmarks,
            timeout,
        )
    }
    /// pods/binding: assigns a pod to the node `binding` names, once. 404 when
    /// the pod is missing, 409 when it is already assigned or being deleted,
    /// 400 when the binding names another pod. Sets `spec.nodeName`, the
    /// `PodScheduled` condition and the binding's annotations, as Kubernetes'
    /// binding REST does. Returns the bound pod.
    pub async fn bind(
        &self,
        ns: &str,
        name: &str,
        raw: &[u8],
        opts: &WriteOptions,
    ) -> Result<Value> {
        let pods = rkube_api::registry::lookup("", "v1", "pods").expect("pods are registered");
        if raw.len() > MAX_BODY_BYTES {
            return Err(Status::request_entity_too_large("limit is 3145728"));
        }
        let binding: Value = serde_json::from_slice(raw).map_err(|e| {
            Status::bad_request(format!(
                "the body of the request was in an unknown format: {e}"
            ))
        })?;
        if let Some(kind) = binding.get("kind").and_then(Value::as_str) {
            if kind != "Binding" {
                return Err(Status::bad_request(format!(
                    "the kind in the data ({kind}) does not match the expected kind (Binding)"
                )));
            }
        }
        if let Some(n) = meta_str(&binding, "name").filter(|n| !n.is_empty()) {
            if n != name {
                return Err(Status::bad_request(
                    "name in URL does not match name in Binding object",
                ));
            }
        }
        rkube_api::validation::validate_binding(&binding)?;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or("");
        let key = pods.key(ns, name);
        let conflict = |why: String| Status::conflict("", "pods/binding", name, &why);
        for _ in 0..8 {
            let Some((mut pod, rev)) = self.read(&key, false).await? else {
                return Err(Status::not_found("", "pods", name));
            };
            if let Some(uid) = meta_str(&binding, "uid").filter(|u| !u.is_empty()) {
                if meta_str(&pod, "uid") != Some(uid) {
                    return Err(conflict(format!(
                        "Precondition failed: UID in precondition: {uid}, UID in object meta: {}",
                        meta_str(&pod, "uid").unwrap_or("")
                    )));
                }
            }
            if meta(&pod).get("deletionTimestamp").is_some() {
                return Err(conflict(format!(
                    "pod {name} is being deleted, cannot be assigned to a host"
                )));
            }
            if let Some(current) = pod
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .filter(|n| !n.is_empty())
            {
                return Err(conflict(format!(
                    "pod {name} is already assigned to node \"{current}\""
                )));
            }
            pod["spec"]["nodeName"] = Value::String(node.to_string());
            if let Some(ann) = meta(&binding).get("annotations").and_then(Value::as_object) {
                let m = meta_mut(&mut pod);
                if !m.get("annotations").is_some_and(Value::is_object) {
                    m.insert("annotations".into(), json!({}));
                }
                let target = m["annotations"].as_object_mut().expect("an object");
                for (k, v) in ann {
                    target.insert(k.clone(), v.clone());
                }
            }
            set_pod_scheduled(&mut pod);
            if opts.dry_run {
                return Ok(pod);
            }
            let k = Bytes::from(key.clone());
            let res = self
                .store
                .txn(Txn {
                    compare: vec![Compare {
                        key: k.clone(),
                        result: CompareResult::Equal,
                        target: CompareTarget::Mod(rev),
                    }],
                    success: vec![Op::Put {
                        key: k,
                        value: to_stored(&pod),
                        prev_kv: false,
                    }],
                    failure: vec![],
                })
                .await
                .map_err(store_err)?;
            if !res.succeeded {
                // Someone else wrote the pod in between: look again (it may
                // now be bound, or gone).
                continue;
            }
            meta_mut(&mut pod).insert(
                "resourceVersion".into(),
                Value::String(res.revision.to_string()),
            );
            return Ok(pod);
        }
        Err(Status::optimistic_lock("", "pods", name))
    }

    /// Creates the namespaces every cluster has, if missing; gives up when `shutdown`
    /// is cancelled.
    pub async fn ensure_system_namespaces(&self, shutdown: &tokio_util::sync::CancellationToken) {
        let info =
            rkube_api::registry::lookup("", "v1", "namespaces").expect("namespaces are registered");
        for ns in ["default", "kube-system", "kube-public", "kube-node-lease"] {
            let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            let body = serde_json::to_vec(&body).expect("JSON values encode");
            let opts = WriteOptions::default();
            for attempt in 0..50 {
                let created = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    r = self.create(info, "", &body, &opts) => r,
                };
                match created {
                    Ok(_) => break,
                    Err(s) if s.code == 409 => break,
                    Err(s) => {
                        if attempt == 49 {
                            tracing::warn!(namespace = ns, error = %s, "could not create a system namespace");
                        }
                        tokio::select! {
                            _ = shutdown.cancelled() => return,
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                    }
                }
            }
        }
    }
}

/// Sets (or adds) the pod's `PodScheduled` condition to True.
fn set_pod_scheduled(pod: &mut Value) {
    let now = now_rfc3339();
    if !pod.get("status").is_some_and(Value::is_object) {
        pod["status"] = json!({});
    }
    let status = pod["status"].as_object_mut().expect("an object");
    let conditions = status.entry("conditions").or_insert_with(|| json!([]));
    if !conditions.is_array() {
        *conditions = json!([]);
    }
    let list = conditions.as_array_mut().expect("an array");
    let cond = json!({"type": "PodScheduled", "status": "True", "lastProbeTime": null, "lastTransitionTime": now});
    match list.iter_mut().find(|c| c["type"] == "PodScheduled") {
        Some(c) => *c = cond,
        None => list.push(cond),
    }
}

fn patch_status(e: &rkube_api::patch::PatchError) -> Status {
    let mut s = Status::bad_request(e.to_string());
    s.code = e.status_code();
    s.reason = match s.code {
        422 => rkube_api::status::Reason::Invalid,
        413 => rkube_api::status::Reason::RequestEntityTooLarge,
        415 => rkube_api::status::Reason::UnsupportedMediaType,
        500 => rkube_api::status::Reason::InternalError,
        _ => rkube_api::status::Reason::BadRequest,
    };
    s
}

/// Kubernetes-style continue token: base64 of {"rv": revision, "start": key}.
pub fn encode_continue(revision: i64, start_key: &str) -> String {
    use base64::Engine as _;
    CONTINUE_ENCODING
        .encode(json!({"v": "meta.k8s.io/v1", "rv": revision, "start": start_key}).to_string())
}

/// Standard base64, padded when encoding; padding optional when decoding, as tokens from
/// other clients may come without it.
const CONTINUE_ENCODING: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

pub fn decode_continue(tok: &str) -> Result<(i64, String)> {
    let bad = || {
        Status::bad_request("continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)")
    };
    let raw = {
        use base64::Engine as _;
        CONTINUE_ENCODING.decode(tok).map_err(|_| bad())?
    };
    let v: Value = serde_json::from_slice(&raw).map_err(|_| bad())?;
    let rv = v.get("rv").and_then(Value::as_i64).ok_or_else(bad)?;
    let start = v
        .get("start")
        .and_then(Value::as_str)
        .ok_or_else(bad)?
        .to_string();
    Ok((rv, start))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_version_match_is_validated_as_kubernetes_validates_list_options() {
        let opts = |rv: &str, m: &str, cont: &str| ListOptions {
            resource_version: Some(rv.to_string()).filter(|s| !s.is_empty()),
            resource_version_match: Some(m.to_string()).filter(|s| !s.is_empty()),
            continue_token: Some(cont.to_string()).filter(|s| !s.is_empty()),
            ..Default::default()
        };
        for ok in [
            ("", "", ""),
            ("5", "Exact", ""),
            ("5", "NotOlderThan", ""),
            ("0", "NotOlderThan", ""),
        ] {
            assert!(opts(ok.0, ok.1, ok.2).validate().is_ok(), "{ok:?}");
        }
        for (rv, m, cont, why) in [
            (
                "",
                "Exact",
                "",
                "resourceVersionMatch is forbidden unless resourceVersion is provided",
            ),
            (
                "5",
                "Exact",
                "tok",
                "resourceVersionMatch is forbidden when continue is provided",
            ),
            ("5", "Newest", "", "Unsupported value: \"Newest\""),
            (
                "0",
                "Exact",
                "",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\"",
            ),
        ] {
            let s = opts(rv, m, cont).validate().unwrap_err();
            assert_eq!(s.code, 422);
            let msg = s.to_json()["message"].as_str().unwrap().to_string();
            assert!(
                msg.starts_with("ListOptions.meta.k8s.io \"\" is invalid: resourceVersionMatch: "),
                "{msg}"
            );
            assert!(msg.contains(why), "{msg}");
        }
    }

    #[test]
    fn continue_tokens_round_trip() {
        let t = encode_continue(42, "/registry/pods/default/a\0");
        assert_eq!(
            decode_continue(&t).unwrap(),
            (42, "/registry/pods/default/a\0".to_string())
        );
        assert_eq!(decode_continue("!!").unwrap_err().code, 400);
    }

    #[test]
    fn uids_look_like_uuid_v4() {
        let u = new_uid();
        assert_eq!(u.len(), 36);
        assert_eq!(&u[14..15], "4");
    }
}
