//! Admission: the pipeline stage between authorization and storage.
//!
//! As in Kubernetes, admission runs in two phases over every write, whichever
//! door it came through (both call the registry, and the registry calls the
//! chain): **mutating** plugins may change the object after it was defaulted
//! and before it is validated; **validating** plugins see the final object
//! (and may read cluster state) and can only refuse. A refusal is a
//! Kubernetes `Status` and nothing is stored. Deletes go through the
//! validating phase with the object about to be deleted.
//!
//! First plugins (both on by default, in this order):
//! - [`NamespaceLifecycle`]: a namespaced object may only be created in a
//!   namespace that exists and is not terminating; the namespaces every
//!   cluster relies on (`default`, `kube-system`, `kube-public`) cannot be
//!   deleted (Kubernetes' plugin of the same name).
//! - [`TraceContext`]: a new pod, ReplicaSet or Deployment carries its creating
//!   request's W3C `traceparent` in the `tracing.k8s.io/traceparent` annotation,
//!   so the controllers, the scheduler and the kubelet continue the same trace
//!   (a Deployment's trace runs through its ReplicaSets to every pod).
//! - [`DefaultTolerationSeconds`]: a new pod that does not say otherwise
//!   tolerates the `not-ready` and `unreachable` NoExecute taints for 300 s, so
//!   the node lifecycle controller evicts it five minutes after its node fails
//!   (Kubernetes' plugin of the same name).

use rkube_api::registry::ResourceInfo;
use rkube_api::status::Status;
use serde_json::Value;

use crate::registry::Registry;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

/// What is being written.
#[derive(Debug, Clone, Copy)]
pub struct Attributes<'a> {
    pub info: &'a ResourceInfo,
    pub namespace: &'a str,
    pub name: &'a str,
    /// `None` for the object itself, `Some("status")`, `Some("scale")`, ...
    pub subresource: Option<&'a str>,
    pub operation: Operation,
    pub dry_run: bool,
}

/// One admission plugin. Both phases default to "admit unchanged".
#[tonic::async_trait]
pub trait Plugin: Send + Sync {
    fn name(&self) -> &'static str;

    /// Mutating phase (creates and updates): may change `obj`.
    fn mutate(&self, _attrs: &Attributes<'_>, _obj: &mut Value) -> Result<(), Status> {
        Ok(())
    }

    /// Validating phase: may refuse; may read cluster state through `registry`.
    async fn validate(
        &self,
        _attrs: &Attributes<'_>,
        _obj: &Value,
        _registry: &Registry,
    ) -> Result<(), Status> {
        Ok(())
    }
}

/// The configured plugins, run in order.
pub struct Chain {
    plugins: Vec<Box<dyn Plugin>>,
}

impl Default for Chain {
    fn default() -> Self {
        Self::new(vec![
            Box::new(NamespaceLifecycle),
            Box::new(TraceContext),
            Box::new(DefaultTolerationSeconds::default()),
        ])
    }
}

impl Chain {
    pub fn new(plugins: Vec<Box<dyn Plugin>>) -> Self {
        Self { plugins }
    }

    pub fn names(&self) -> Vec<&'static str> {
        self.plugins.iter().map(|p| p.name()).collect()
    }

    pub fn mutate(&self, attrs: &Attributes<'_>, obj: &mut Value) -> Result<(), Status> {
        for p in &self.plugins {
            p.mutate(attrs, obj)?;
        }
        Ok(())
    }

    pub async fn validate(
        &self,
        attrs: &Attributes<'_>,
        obj: &Value,
        registry: &Registry,
    ) -> Result<(), Status> {
        for p in &self.plugins {
            p.validate(attrs, obj, registry).await?;
        }
        Ok(())
    }
}

/// Namespaces that may not be deleted (Kubernetes protects the same three).
pub const IMMORTAL_NAMESPACES: [&str; 3] = ["default", "kube-system", "kube-public"];

pub struct NamespaceLifecycle;

#[tonic::async_trait]
impl Plugin for NamespaceLifecycle {
    fn name(&self) -> &'static str {
        "NamespaceLifecycle"
    }

    async fn validate(
        &self,
        attrs: &Attributes<'_>,
        _obj: &Value,
        registry: &Registry,
    ) -> Result<(), Status> {
        match attrs.operation {
            Operation::Create if attrs.info.namespaced && attrs.subresource.is_none() => {
                registry.ensure_namespace(attrs.info, attrs.namespace).await
            }
            Operation::Delete
                if attrs.info.kind == "Namespace" && IMMORTAL_NAMESPACES.contains(&attrs.name) =>
            {
                Err(Status::forbidden(
                    "",
                    "namespaces",
                    attrs.name,
                    "this namespace may not be deleted",
                ))
            }
            _ => Ok(()),
        }
    }
}

pub struct TraceContext;

/// The kinds whose new objects carry their creating request's trace.
pub const TRACED_KINDS: [&str; 3] = ["Pod", "ReplicaSet", "Deployment"];

impl TraceContext {
    /// Sets the annotation on a pod that has none (a client may bring its own
    /// trace context, e.g. a controller continuing its own trace).
    pub fn annotate(obj: &mut Value, traceparent: &str) {
        let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
            return;
        };
        let annotations = meta
            .entry("annotations")
            .or_insert_with(|| Value::Object(Default::default()));
        if let Some(a) = annotations.as_object_mut() {
            a.entry(rkube_telemetry::propagation::TRACEPARENT_ANNOTATION)
                .or_insert_with(|| Value::String(traceparent.to_string()));
        }
    }
}

#[tonic::async_trait]
impl Plugin for TraceContext {
    fn name(&self) -> &'static str {
        "TraceContext"
    }

    fn mutate(&self, attrs: &Attributes<'_>, obj: &mut Value) -> Result<(), Status> {
        if attrs.operation == Operation::Create
            && TRACED_KINDS.contains(&attrs.info.kind)
            && attrs.subresource.is_none()
        {
            // Only when tracing is on (an OTLP endpoint configured): otherwise
            // there is no trace to continue.
            if let Some(tp) = rkube_telemetry::propagation::current_traceparent() {
                Self::annotate(obj, &tp);
            }
        }
        Ok(())
    }
}

/// Adds the default `not-ready` / `unreachable` NoExecute tolerations to new pods.
pub struct DefaultTolerationSeconds {
    pub not_ready_seconds: i64,
    pub unreachable_seconds: i64,
}

impl Default for DefaultTolerationSeconds {
    /// Kubernetes' `--default-not-ready-toleration-seconds` and
    /// `--default-unreachable-toleration-seconds`.
    fn default() -> Self {
        DefaultTolerationSeconds {
            not_ready_seconds: 300,
            unreachable_seconds: 300,
        }
    }
}

impl DefaultTolerationSeconds {
    /// Whether one of `tolerations` already covers NoExecute taints of `key` (its key is
    /// `key` or empty, its effect NoExecute or empty), as Kubernetes decides it.
    fn covered(tolerations: &[Value], key: &str) -> bool {
        tolerations.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let e = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || k.is_empty()) && (e == "NoExecute" || e.is_empty())
        })
    }
}

#[tonic::async_trait]
impl Plugin for DefaultTolerationSeconds {
    fn name(&self) -> &'static str {
        "DefaultTolerationSeconds"
    }

    fn mutate(&self, attrs: &Attributes<'_>, obj: &mut Value) -> Result<(), Status> {
        if attrs.operation != Operation::Create
            || attrs.info.kind != "Pod"
            || attrs.subresource.is_some()
        {
            return Ok(());
        }
        let Some(spec) = obj.get_mut("spec").and_then(Value::as_object_mut) else {
            return Ok(());
        };
        let list = spec
            .entry("tolerations")
            .or_insert_with(|| Value::Array(Vec::new()));
        let Some(list) = list.as_array_mut() else {
            // Not a list: validation refuses the pod with the right message.
            return Ok(());
        };
        for (key, seconds) in [
            (rkube_api::taints::NOT_READY, self.not_ready_seconds),
            (rkube_api::taints::UNREACHABLE, self.unreachable_seconds),
        ] {
            if !Self::covered(list, key) {
                list.push(serde_json::json!({
                    "key": key,
                    "operator": "Exists",
                    "effect": "NoExecute",
                    "tolerationSeconds": seconds,
                }));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs<'a>(info: &'a ResourceInfo, op: Operation, name: &'a str) -> Attributes<'a> {
        Attributes {
            info,
            namespace: "",
            name,
            subresource: None,
            operation: op,
            dry_run: false,
        }
    }

    #[test]
    fn the_trace_annotation_is_added_but_never_replaced() {
        let mut pod = json!({"metadata": {"name": "p"}});
        TraceContext::annotate(&mut pod, "00-aa-bb-01");
        assert_eq!(
            pod["metadata"]["annotations"]["tracing.k8s.io/traceparent"],
            "00-aa-bb-01"
        );
        TraceContext::annotate(&mut pod, "00-cc-dd-01");
        assert_eq!(
            pod["metadata"]["annotations"]["tracing.k8s.io/traceparent"],
            "00-aa-bb-01"
        );
    }

    #[test]
    fn without_a_trace_a_pod_is_admitted_unchanged() {
        let info = rkube_api::registry::lookup("", "v1", "pods").unwrap();
        let mut pod = json!({"metadata": {"name": "p"}});
        let before = pod.clone();
        TraceContext
            .mutate(&attrs(info, Operation::Create, "p"), &mut pod)
            .unwrap();
        assert_eq!(pod, before, "no OpenTelemetry context in a unit test");
    }

    #[test]
    fn the_default_chain_runs_namespace_lifecycle_the_trace_context_then_default_tolerations() {
        assert_eq!(
            Chain::default().names(),
            [
                "NamespaceLifecycle",
                "TraceContext",
                "DefaultTolerationSeconds"
            ]
        );
    }

    #[test]
    fn new_pods_tolerate_not_ready_and_unreachable_for_300_seconds_unless_they_say_otherwise() {
        let info = rkube_api::registry::lookup("", "v1", "pods").unwrap();
        let mut a = attrs(info, Operation::Create, "p");
        a.namespace = "default";
        let tolerations = |spec: Value| {
            let mut pod = json!({"metadata": {"name": "p"}, "spec": spec});
            DefaultTolerationSeconds::default()
                .mutate(&a, &mut pod)
                .unwrap();
            pod["spec"]["tolerations"].clone()
        };
        let both = json!([
            {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
            {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
        ]);
        assert_eq!(tolerations(json!({"containers": []})), both);
        let own = json!({"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 5});
        let got = tolerations(json!({"tolerations": [own.clone()]}));
        assert_eq!(
            got,
            json!([own, both[0].clone()]),
            "its own unreachable toleration is kept"
        );
        let everything = json!({"operator": "Exists"});
        assert_eq!(
            tolerations(json!({"tolerations": [everything.clone()]})),
            json!([everything])
        );
        let mut update = json!({"spec": {}});
        let u = attrs(info, Operation::Update, "p");
        DefaultTolerationSeconds::default()
            .mutate(&u, &mut update)
            .unwrap();
        assert_eq!(update, json!({"spec": {}}), "updates are left alone");
    }
}
