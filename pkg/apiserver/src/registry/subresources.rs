//! Subresources that are views of their parent rather than objects of their own:
//! `deployments/scale` and `replicasets/scale` (an autoscaling/v1 `Scale` read from
//! and written into the parent's `spec.replicas`), and `pods/log`.
//!
//! A scale write is an update of the parent: it goes through the same
//! compare-and-set as any update, so a `Scale` carrying a `resourceVersion` is a
//! precondition on the parent's (409 on `deployments.apps` when it moved), and one
//! without is retried on a moved parent like a patch. `pods/binding` is not here.

use rkube_api::registry::ResourceInfo;
use rkube_api::status::Status;
use rkube_api::validation::PodLogOptions;
use serde_json::{json, Value};

use super::{meta, meta_str, Registry, Result, WriteOptions, Written, MAX_BODY_BYTES};

/// How a scale write says what the new `Scale` is.
enum ScaleInput<'a> {
    /// PUT: the new `Scale` itself.
    Replace(&'a Value),
    /// PATCH: a patch of the current `Scale`.
    Patch(rkube_api::patch::PatchType, &'a [u8]),
}

/// What a `pods/log` read answers while no kubelet serves logs.
#[derive(Debug, PartialEq, Eq)]
pub enum PodLog {
    /// The pod is not on a node: Kubernetes has no log location for it and
    /// answers 204 No Content.
    NoContent,
}

/// The autoscaling/v1 `Scale` of a deployment or replica set, as Kubernetes'
/// `scaleFromDeployment` builds it: the parent's identity and resourceVersion,
/// `spec.replicas`, `status.replicas` and the parent's `spec.selector` as a string.
pub fn scale_of(parent: &Value) -> Result<Value> {
    let m = meta(parent);
    let mut metadata = serde_json::Map::new();
    for f in [
        "name",
        "namespace",
        "uid",
        "resourceVersion",
        "creationTimestamp",
    ] {
        if let Some(v) = m.get(f) {
            metadata.insert(f.into(), v.clone());
        }
    }
    let selector = match parent.pointer("/spec/selector") {
        None | Some(Value::Null) => String::new(),
        Some(s) => rkube_api::selectors::LabelSelector::from_metav1_json(Some(s))
            .map_err(|e| Status::internal_error(&format!("stored selector: {e}")))?
            .to_string(),
    };
    let replicas = parent
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    // autoscaling/v1 omits a zero spec.replicas and an empty selector.
    let spec = if replicas == 0 {
        json!({})
    } else {
        json!({ "replicas": replicas })
    };
    let mut status = json!({
        "replicas": parent.pointer("/status/replicas").and_then(Value::as_i64).unwrap_or(0)
    });
    if !selector.is_empty() {
        status["selector"] = Value::String(selector);
    }
    Ok(json!({
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": metadata,
        "spec": spec,
        "status": status,
    }))
}

fn scale_not_found(info: &ResourceInfo, name: &str) -> Status {
    Status::not_found(info.group, &format!("{}/scale", info.plural), name)
}

fn has_scale(info: &ResourceInfo) -> Result<()> {
    match info.subresource("scale") {
        Some(_) => Ok(()),
        None => Err(Status::not_found_path()),
    }
}

/// Decodes a PUT body as an autoscaling/v1 `Scale`.
fn decode_scale(raw: &[u8]) -> Result<Value> {
    if raw.len() > MAX_BODY_BYTES {
        return Err(Status::request_entity_too_large("limit is 3145728"));
    }
    let v: Value = serde_json::from_slice(raw).map_err(|e| {
        Status::bad_request(format!(
            "the body of the request was in an unknown format: {e}"
        ))
    })?;
    if !v.is_object() {
        return Err(Status::bad_request(
            "the body of the request must be a JSON object",
        ));
    }
    check_scale_kind(&v)?;
    Ok(v)
}

fn check_scale_kind(v: &Value) -> Result<()> {
    let kind = v.get("kind").and_then(Value::as_str).unwrap_or("Scale");
    let api_version = v
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("autoscaling/v1");
    if kind != "Scale" || api_version != "autoscaling/v1" {
        return Err(Status::bad_request(format!(
            "the API version in the data ({api_version}/{kind}) does not match the expected API version (autoscaling/v1/Scale)"
        )));
    }
    Ok(())
}

impl Registry {
    /// GET of `<parent>/scale`.
    pub async fn get_scale(&self, info: &ResourceInfo, ns: &str, name: &str) -> Result<Value> {
        has_scale(info)?;
        match self.read(&info.key(ns, name), false).await? {
            Some((parent, _)) => scale_of(&parent),
            None => Err(scale_not_found(info, name)),
        }
    }

    /// PUT of `<parent>/scale`: the body is an autoscaling/v1 `Scale`.
    pub async fn update_scale(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        raw: &[u8],
        opts: &WriteOptions,
    ) -> Result<Written> {
        has_scale(info)?;
        let scale = decode_scale(raw)?;
        self.write_scale(info, ns, name, ScaleInput::Replace(&scale), opts)
            .await
    }

    /// PATCH of `<parent>/scale`: the patch applies to the current `Scale`
    /// (`kubectl scale` sends `{"spec":{"replicas":N}}` as a merge patch).
    pub async fn patch_scale(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        patch_type: rkube_api::patch::PatchType,
        body: &[u8],
        opts: &WriteOptions,
    ) -> Result<Written> {
        has_scale(info)?;
        if body.len() > MAX_BODY_BYTES {
            return Err(Status::request_entity_too_large("limit is 3145728"));
        }
        self.write_scale(info, ns, name, ScaleInput::Patch(patch_type, body), opts)
            .await
    }

    async fn write_scale(
        &self,
        info: &ResourceInfo,
        ns: &str,
        name: &str,
        input: ScaleInput<'_>,
        opts: &WriteOptions,
    ) -> Result<Written> {
        for _ in 0..8 {
            let Some((mut parent, rev)) = self.read(&info.key(ns, name), false).await? else {
                return Err(scale_not_found(info, name));
            };
            let current = scale_of(&parent)?;
            let scale = match &input {
                ScaleInput::Replace(s) => (*s).clone(),
                ScaleInput::Patch(pt, body) => {
                    let s = rkube_api::patch::apply_patch(*pt, &current, body, "Scale")
                        .map_err(|e| super::patch_status(&e))?;
                    check_scale_kind(&s)?;
                    s
                }
            };
            if let Some(n) = meta_str(&scale, "name").filter(|n| !n.is_empty()) {
                if n != name {
                    return Err(Status::bad_request(format!(
                        "the name of the object ({n}) does not match the name on the URL ({name})"
                    )));
                }
            }
            rkube_api::validation::validate_scale(&scale)?;
            if let Some(uid) = meta_str(&scale, "uid").filter(|u| !u.is_empty()) {
                let actual = meta_str(&parent, "uid").unwrap_or_default();
                if uid != actual {
                    return Err(Status::conflict(
                        info.group,
                        &format!("{}/scale", info.plural),
                        name,
                        &format!("Precondition failed: UID in precondition: {uid}, UID in object meta: {actual}"),
                    ));
                }
            }
            // A resourceVersion the client sent is a precondition on the parent;
            // without one, the write is conditional on the parent just read and
            // retried if it moved (nothing else of the parent is ever lost).
            let sent_rv = meta_str(&scale, "resourceVersion")
                .filter(|rv| !rv.is_empty())
                .map(str::to_string);
            let explicit = match &input {
                ScaleInput::Replace(_) => sent_rv.is_some(),
                ScaleInput::Patch(..) => {
                    sent_rv.as_deref() != meta_str(&current, "resourceVersion")
                }
            };
            let replicas = scale
                .pointer("/spec/replicas")
                .and_then(Value::as_i64)
                .unwrap_or(0);
            parent["spec"]["replicas"] = json!(replicas);
            super::meta_mut(&mut parent).insert(
                "resourceVersion".into(),
                Value::String(sent_rv.unwrap_or_else(|| rev.to_string())),
            );
            match self
                .update_object(info, ns, name, None, parent, opts, true)
                .await
            {
                Err(s) if s.code == 409 && !explicit => continue,
                Err(s) => return Err(s),
                Ok(w) => {
                    return Ok(Written {
                        object: scale_of(&w.object)?,
                        ..w
                    })
                }
            }
        }
        Err(Status::optimistic_lock(info.group, info.plural, name))
    }

    /// GET of `pods/<name>/log`. Checks what Kubernetes checks before it asks the
    /// node's kubelet (options, pod, container); with no kubelet to ask yet, a pod
    /// on a node gets the answer a kubelet gives for a container that has not
    /// started, or 503 once the pod says its container ran.
    pub async fn pod_log(&self, ns: &str, name: &str, opts: &PodLogOptions) -> Result<PodLog> {
        rkube_api::validation::validate_pod_log_options(name, opts)?;
        let pods = rkube_api::registry::lookup("", "v1", "pods").expect("pods are registered");
        let Some((pod, _)) = self.read(&pods.key(ns, name), false).await? else {
            return Err(Status::not_found("", "pods", name));
        };
        let names = |field: &str| -> Vec<String> {
            pod.pointer(&format!("/spec/{field}"))
                .and_then(Value::as_array)
                .map(|cs| {
                    cs.iter()
                        .filter_map(|c| c.get("name").and_then(Value::as_str))
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default()
        };
        let containers = names("containers");
        let all: Vec<String> = [
            names("initContainers"),
            containers.clone(),
            names("ephemeralContainers"),
        ]
        .concat();
        let container = match &opts.container {
            Some(c) if all.contains(c) => c.clone(),
            Some(c) => {
                return Err(Status::bad_request(format!(
                    "container {c} is not valid for pod {name}"
                )))
            }
            None if containers.len() == 1 => containers[0].clone(),
            None if containers.is_empty() => {
                return Err(Status::bad_request(format!(
                    "a container name must be specified for pod {name}"
                )))
            }
            None => {
                return Err(Status::bad_request(format!(
                    "a container name must be specified for pod {name}, choose one of: [{}]",
                    all.join(" ")
                )))
            }
        };
        let node = pod
            .pointer("/spec/nodeName")
            .and_then(Value::as_str)
            .unwrap_or("");
        if node.is_empty() {
            return Ok(PodLog::NoContent);
        }
        let nodes = rkube_api::registry::lookup("", "v1", "nodes").expect("nodes are registered");
        if self.read(&nodes.key("", node), false).await?.is_none() {
            return Err(Status::not_found("", "nodes", node));
        }
        let status = [
            "containerStatuses",
            "initContainerStatuses",
            "ephemeralContainerStatuses",
        ]
        .iter()
        .filter_map(|f| {
            pod.pointer(&format!("/status/{f}"))
                .and_then(Value::as_array)
        })
        .flatten()
        .find(|s| s.get("name").and_then(Value::as_str) == Some(container.as_str()));
        let state = status.and_then(|s| s.get("state"));
        let started = state
            .is_some_and(|s| s.get("running").is_some() || s.get("terminated").is_some())
            || status.is_some_and(|s| s.pointer("/lastState/terminated").is_some());
        if started {
            return Err(Status::service_unavailable(format!(
                "the logs of container {container:?} in pod {name:?} are on node {node:?}, and no kubelet serves logs yet"
            )));
        }
        let reason = state
            .and_then(|s| s.pointer("/waiting/reason"))
            .and_then(Value::as_str)
            .unwrap_or("ContainerCreating");
        let why = match reason {
            "ErrImagePull" => "image can't be pulled".to_string(),
            "ImagePullBackOff" => "trying and failing to pull image".to_string(),
            other => other.to_string(),
        };
        Err(Status::bad_request(format!(
            "container {container:?} in pod {name:?} is waiting to start: {why}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scale_shows_the_parents_replicas_and_selector_as_a_string() {
        let d = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1",
                         "resourceVersion": "42", "creationTimestamp": "2024-01-01T00:00:00Z",
                         "labels": {"x": "y"}},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"app": "web", "tier": "fe"},
                     "matchExpressions": [{"key": "env", "operator": "In", "values": ["b", "a"]}]}},
            "status": {"replicas": 2}
        });
        let s = scale_of(&d).unwrap();
        assert_eq!(s["kind"], "Scale");
        assert_eq!(s["apiVersion"], "autoscaling/v1");
        assert_eq!(s["metadata"]["resourceVersion"], "42");
        assert_eq!(s["metadata"]["uid"], "u1");
        assert!(s["metadata"].get("labels").is_none());
        assert_eq!(s["spec"]["replicas"], 3);
        assert_eq!(s["status"]["replicas"], 2);
        assert_eq!(s["status"]["selector"], "app=web,env in (a,b),tier=fe");
    }

    #[test]
    fn a_scale_of_zero_replicas_omits_them_as_autoscaling_v1_does() {
        let s = scale_of(&json!({"metadata": {"name": "a"}, "spec": {"replicas": 0}})).unwrap();
        assert_eq!(s["spec"], json!({}));
        assert_eq!(s["status"], json!({"replicas": 0}));
    }

    #[test]
    fn a_scale_body_of_another_kind_is_refused() {
        assert_eq!(
            decode_scale(br#"{"kind":"Deployment","apiVersion":"apps/v1"}"#)
                .unwrap_err()
                .code,
            400
        );
        assert!(decode_scale(br#"{"spec":{"replicas":2}}"#).is_ok());
        assert_eq!(decode_scale(b"{").unwrap_err().code, 400);
    }
}
