//! Per-kind columns and cells, following Kubernetes' server-side printers
//! (`pkg/printers/internalversion`). Column descriptions come from the same API
//! documentation Kubernetes uses (the OpenAPI descriptions k8s-openapi carries). Each
//! kind's entry (`crate::kinds`) picks its columns, cells and row conditions from here;
//! nothing here dispatches on a kind.

use std::collections::BTreeSet;

use k8s_openapi::api::{
    apps::v1 as apps, coordination::v1 as coord, core::v1 as core, rbac::v1 as rbac,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use k8s_openapi::schemars::{JsonSchema, SchemaGenerator};
use serde_json::{json, Value};

use super::{human_duration, translate_timestamp_since, Column};
use crate::selectors::LabelSelector;

/// The description of `T`'s field `field` in the API documentation.
fn doc<T: JsonSchema>(field: &str) -> String {
    let schema = SchemaGenerator::default().into_root_schema_for::<T>();
    schema
        .as_value()
        .pointer(&format!("/properties/{field}/description"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

fn col(name: &'static str, type_: &'static str, priority: i32, description: String) -> Column {
    Column {
        name,
        type_,
        format: "",
        description,
        priority,
    }
}

fn name_col() -> Column {
    Column {
        format: "name",
        ..col("Name", "string", 0, doc::<ObjectMeta>("name"))
    }
}

fn age_col() -> Column {
    col("Age", "string", 0, doc::<ObjectMeta>("creationTimestamp"))
}

fn text(s: &str) -> String {
    s.to_string()
}

/// Pods: the columns Kubernetes defines.
pub(crate) fn pod_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Ready", "string", 0, text("The aggregate readiness state of this pod for accepting traffic.")),
        col("Status", "string", 0, text("The aggregate status of the containers in this pod.")),
        col(
            "Restarts",
            "string",
            0,
            text("The number of times the containers in this pod have been restarted and when the last container in this pod has restarted."),
        ),
        age_col(),
        col("IP", "string", 1, doc::<core::PodStatus>("podIP")),
        col("Node", "string", 1, doc::<core::PodSpec>("nodeName")),
        col("Nominated Node", "string", 1, doc::<core::PodStatus>("nominatedNodeName")),
        col("Readiness Gates", "string", 1, doc::<core::PodSpec>("readinessGates")),
    ]
}

/// Deployments: the columns Kubernetes defines.
pub(crate) fn deployment_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Ready",
            "string",
            0,
            text("Number of the pod with ready state"),
        ),
        col(
            "Up-to-date",
            "string",
            0,
            doc::<apps::DeploymentStatus>("updatedReplicas"),
        ),
        col(
            "Available",
            "string",
            0,
            doc::<apps::DeploymentStatus>("availableReplicas"),
        ),
        age_col(),
        col(
            "Containers",
            "string",
            1,
            text("Names of each container in the template."),
        ),
        col(
            "Images",
            "string",
            1,
            text("Images referenced by each container in the template."),
        ),
        col(
            "Selector",
            "string",
            1,
            doc::<apps::DeploymentSpec>("selector"),
        ),
    ]
}

/// ReplicaSets: the columns Kubernetes defines.
pub(crate) fn replica_set_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Desired",
            "integer",
            0,
            doc::<apps::ReplicaSetSpec>("replicas"),
        ),
        col(
            "Current",
            "integer",
            0,
            doc::<apps::ReplicaSetStatus>("replicas"),
        ),
        col(
            "Ready",
            "integer",
            0,
            doc::<apps::ReplicaSetStatus>("readyReplicas"),
        ),
        age_col(),
        col(
            "Containers",
            "string",
            1,
            text("Names of each container in the template."),
        ),
        col(
            "Images",
            "string",
            1,
            text("Images referenced by each container in the template."),
        ),
        col(
            "Selector",
            "string",
            1,
            doc::<apps::ReplicaSetSpec>("selector"),
        ),
    ]
}

/// Namespaces: the columns Kubernetes defines.
pub(crate) fn namespace_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Status", "string", 0, text("The status of the namespace")),
        age_col(),
    ]
}

/// ConfigMaps: the columns Kubernetes defines.
pub(crate) fn config_map_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Data", "string", 0, doc::<core::ConfigMap>("data")),
        age_col(),
    ]
}

/// Secrets: the columns Kubernetes defines.
pub(crate) fn secret_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Type", "string", 0, doc::<core::Secret>("type")),
        col("Data", "string", 0, doc::<core::Secret>("data")),
        age_col(),
    ]
}

/// Services: the columns Kubernetes defines.
pub(crate) fn service_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Type", "string", 0, doc::<core::ServiceSpec>("type")),
        col(
            "Cluster-IP",
            "string",
            0,
            doc::<core::ServiceSpec>("clusterIP"),
        ),
        col(
            "External-IP",
            "string",
            0,
            doc::<core::ServiceSpec>("externalIPs"),
        ),
        col("Port(s)", "string", 0, doc::<core::ServiceSpec>("ports")),
        age_col(),
        col(
            "Selector",
            "string",
            1,
            doc::<core::ServiceSpec>("selector"),
        ),
    ]
}

/// Nodes: the columns Kubernetes defines.
pub(crate) fn node_columns() -> Vec<Column> {
    vec![
        name_col(),
        col("Status", "string", 0, text("The status of the node")),
        col("Roles", "string", 0, text("The roles of the node")),
        age_col(),
        col(
            "Version",
            "string",
            0,
            doc::<core::NodeSystemInfo>("kubeletVersion"),
        ),
        col(
            "Internal-IP",
            "string",
            1,
            doc::<core::NodeStatus>("addresses"),
        ),
        col(
            "External-IP",
            "string",
            1,
            doc::<core::NodeStatus>("addresses"),
        ),
        col(
            "OS-Image",
            "string",
            1,
            doc::<core::NodeSystemInfo>("osImage"),
        ),
        col(
            "Kernel-Version",
            "string",
            1,
            doc::<core::NodeSystemInfo>("kernelVersion"),
        ),
        col(
            "Container-Runtime",
            "string",
            1,
            doc::<core::NodeSystemInfo>("containerRuntimeVersion"),
        ),
    ]
}

/// Events (both served versions): the columns Kubernetes defines.
pub(crate) fn event_columns() -> Vec<Column> {
    vec![
        col(
            "Last Seen",
            "string",
            0,
            doc::<core::Event>("lastTimestamp"),
        ),
        col("Type", "string", 0, doc::<core::Event>("type")),
        col("Reason", "string", 0, doc::<core::Event>("reason")),
        col("Object", "string", 0, doc::<core::Event>("involvedObject")),
        col(
            "Subobject",
            "string",
            1,
            doc::<core::ObjectReference>("fieldPath"),
        ),
        col("Source", "string", 1, doc::<core::Event>("source")),
        col("Message", "string", 0, doc::<core::Event>("message")),
        col(
            "First Seen",
            "string",
            1,
            doc::<core::Event>("firstTimestamp"),
        ),
        col("Count", "string", 1, doc::<core::Event>("count")),
        Column {
            format: "name",
            ..col("Name", "string", 1, doc::<ObjectMeta>("name"))
        },
    ]
}

/// Leases: the columns Kubernetes defines.
pub(crate) fn lease_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Holder",
            "string",
            0,
            doc::<coord::LeaseSpec>("holderIdentity"),
        ),
        age_col(),
    ]
}

/// ServiceAccounts: the columns Kubernetes defines.
pub(crate) fn service_account_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Secrets",
            "string",
            0,
            doc::<core::ServiceAccount>("secrets"),
        ),
        age_col(),
    ]
}

/// RoleBindings: the columns Kubernetes defines.
pub(crate) fn role_binding_columns() -> Vec<Column> {
    binding_columns(doc::<rbac::RoleBinding>("roleRef"), "roleBinding")
}

/// ClusterRoleBindings: the columns Kubernetes defines.
pub(crate) fn cluster_role_binding_columns() -> Vec<Column> {
    binding_columns(
        doc::<rbac::ClusterRoleBinding>("roleRef"),
        "clusterRoleBinding",
    )
}

/// Kinds without a printer of their own (Kubernetes' default table): the columns Kubernetes defines.
pub(crate) fn default_columns() -> Vec<Column> {
    vec![
        name_col(),
        col(
            "Created At",
            "date",
            0,
            doc::<ObjectMeta>("creationTimestamp"),
        ),
    ]
}

fn binding_columns(role_doc: String, what: &str) -> Vec<Column> {
    vec![
        name_col(),
        col("Role", "string", 0, role_doc),
        age_col(),
        col("Users", "string", 1, format!("Users in the {what}")),
        col("Groups", "string", 1, format!("Groups in the {what}")),
        col(
            "ServiceAccounts",
            "string",
            1,
            format!("ServiceAccounts in the {what}"),
        ),
    ]
}

fn str_at<'a>(v: &'a Value, p: &str) -> &'a str {
    v.pointer(p).and_then(Value::as_str).unwrap_or("")
}

fn int_at(v: &Value, p: &str) -> i64 {
    v.pointer(p).and_then(Value::as_i64).unwrap_or(0)
}

fn arr<'a>(v: &'a Value, p: &str) -> &'a [Value] {
    v.pointer(p)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn age(obj: &Value, now: Timestamp) -> Value {
    json!(translate_timestamp_since(
        obj.pointer("/metadata/creationTimestamp")
            .and_then(Value::as_str),
        now
    ))
}

fn or_none(s: &str) -> String {
    if s.is_empty() {
        "<none>".to_string()
    } else {
        s.to_string()
    }
}

fn name(obj: &Value) -> Value {
    json!(str_at(obj, "/metadata/name"))
}

/// Deployments: NAME READY UP-TO-DATE AVAILABLE AGE, and CONTAINERS IMAGES SELECTOR wide.
pub(crate) fn deployment_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = container_cells(obj);
    vec![
        name(obj),
        json!(format!(
            "{}/{}",
            int_at(obj, "/status/readyReplicas"),
            int_at(obj, "/spec/replicas")
        )),
        json!(int_at(obj, "/status/updatedReplicas")),
        json!(int_at(obj, "/status/availableReplicas")),
        age(obj, now),
        json!(containers),
        json!(images),
        json!(selector_string(obj)),
    ]
}

/// ReplicaSets: NAME DESIRED CURRENT READY AGE, and CONTAINERS IMAGES SELECTOR wide.
pub(crate) fn replica_set_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let (containers, images) = container_cells(obj);
    vec![
        name(obj),
        json!(int_at(obj, "/spec/replicas")),
        json!(int_at(obj, "/status/replicas")),
        json!(int_at(obj, "/status/readyReplicas")),
        age(obj, now),
        json!(containers),
        json!(images),
        json!(selector_string(obj)),
    ]
}

/// Namespaces: NAME STATUS AGE.
pub(crate) fn namespace_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(str_at(obj, "/status/phase")),
        age(obj, now),
    ]
}

/// ConfigMaps: NAME DATA (keys of data and binaryData) AGE.
pub(crate) fn config_map_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let n = obj
        .get("data")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len())
        + obj
            .get("binaryData")
            .and_then(Value::as_object)
            .map_or(0, |m| m.len());
    vec![name(obj), json!(n), age(obj, now)]
}

/// Secrets: NAME TYPE DATA AGE.
pub(crate) fn secret_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let n = obj
        .get("data")
        .and_then(Value::as_object)
        .map_or(0, |m| m.len());
    vec![
        name(obj),
        json!(str_at(obj, "/type")),
        json!(n),
        age(obj, now),
    ]
}

/// events.k8s.io/v1 Events print as their core/v1 form does.
pub(crate) fn events_v1_event_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let core = if str_at(obj, "/apiVersion") == "events.k8s.io/v1" {
        crate::convert::event_v1_to_core(obj)
    } else {
        obj.clone()
    };
    event_cells(&core, now)
}

/// Leases: NAME HOLDER AGE.
pub(crate) fn lease_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![
        name(obj),
        json!(str_at(obj, "/spec/holderIdentity")),
        age(obj, now),
    ]
}

/// ServiceAccounts: NAME SECRETS AGE.
pub(crate) fn service_account_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    vec![name(obj), json!(arr(obj, "/secrets").len()), age(obj, now)]
}

/// RoleBindings and ClusterRoleBindings: NAME ROLE AGE, and USERS GROUPS SERVICEACCOUNTS
/// wide.
pub(crate) fn binding_cells(obj: &Value, now: Timestamp) -> Vec<Value> {
    let role = format!(
        "{}/{}",
        str_at(obj, "/roleRef/kind"),
        str_at(obj, "/roleRef/name")
    );
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for s in arr(obj, "/subjects") {
        let n = str_at(s, "/name").to_string();
        match str_at(s, "/kind") {
            "User" => users.push(n),
            "Group" => groups.push(n),
            "ServiceAccount" => sas.push(format!("{}:{n}", str_at(s, "/namespace"))),
            _ => {}
        }
    }
    vec![
        name(obj),
        json!(role),
        age(obj, now),
        json!(users.join(", ")),
        json!(groups.join(", ")),
        json!(sas.join(", ")),
    ]
}

/// Kubernetes' default table: NAME and CREATED AT (RFC 3339, the zero time when unknown).
pub(crate) fn default_cells(obj: &Value, _now: Timestamp) -> Vec<Value> {
    let created = obj
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<Timestamp>().ok())
        .map_or("0001-01-01T00:00:00Z".to_string(), |t| {
            t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
        });
    vec![name(obj), json!(created)]
}

/// Pods that completed carry Kubernetes' `Completed` row condition.
pub(crate) fn pod_conditions(obj: &Value) -> Option<Value> {
    match str_at(obj, "/status/phase") {
        "Succeeded" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Succeeded",
            "message": "The pod has completed successfully."
        }])),
        "Failed" => Some(json!([{
            "type": "Completed", "status": "True", "reason": "Failed", "message": "The pod failed."
        }])),
        _ => None,
    }
}

fn container_cells(obj: &Value) -> (String, String) {
    let containers = arr(obj, "/spec/template/spec/containers");
    let names: Vec<&str> = containers.iter().map(|c| str_at(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| str_at(c, "/image")).collect();
    (names.join(","), images.join(","))
}

fn selector_string(obj: &Value) -> String {
    match LabelSelector::from_metav1_json(obj.pointer("/spec/selector")) {
        Ok(s) => s.to_string(),
        Err(_) => "<invalid>".to_string(),
    }
}

fn timestamp(v: Option<&Value>) -> Option<Timestamp> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

fn later(a: Option<Timestamp>, b: Option<Timestamp>) -> Option<Timestamp> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

fn condition_true(obj: &Value, typ: &str) -> bool {
    arr(obj, "/status/conditions")
        .iter()
        .any(|c| str_at(c, "/type") == typ && str_at(c, "/status") == "True")
}

struct PodSummary {
    ready: usize,
    total: usize,
    reason: String,
    restarts: i64,
    last_restart: Option<Timestamp>,
}

fn summarize_pod(pod: &Value) -> PodSummary {
    let mut restarts = 0i64;
    let mut restartable_init_restarts = 0i64;
    let mut total = arr(pod, "/spec/containers").len();
    let mut ready = 0usize;
    let mut last_restart: Option<Timestamp> = None;
    let mut last_restartable_init_restart: Option<Timestamp> = None;
    let phase = str_at(pod, "/status/phase");
    let mut reason = phase.to_string();
    if !str_at(pod, "/status/reason").is_empty() {
        reason = str_at(pod, "/status/reason").to_string();
    }
    for c in arr(pod, "/status/conditions") {
        if str_at(c, "/type") == "PodScheduled" && str_at(c, "/reason") == "SchedulingGated" {
            reason = "SchedulingGated".to_string();
        }
    }
    let init_specs = arr(pod, "/spec/initContainers");
    let restartable = |name: &str| {
        init_specs
            .iter()
            .any(|c| str_at(c, "/name") == name && str_at(c, "/restartPolicy") == "Always")
    };
    total += init_specs
        .iter()
        .filter(|c| str_at(c, "/restartPolicy") == "Always")
        .count();

    let mut initializing = false;
    let init_statuses = arr(pod, "/status/initContainerStatuses");
    for (i, c) in init_statuses.iter().enumerate() {
        restarts += int_at(c, "/restartCount");
        let terminated_at = timestamp(c.pointer("/lastState/terminated/finishedAt"));
        last_restart = later(last_restart, terminated_at);
        let name = str_at(c, "/name");
        if restartable(name) {
            restartable_init_restarts += int_at(c, "/restartCount");
            last_restartable_init_restart = later(last_restartable_init_restart, terminated_at);
        }
        let terminated = c.pointer("/state/terminated").filter(|t| !t.is_null());
        let waiting_reason = str_at(c, "/state/waiting/reason");
        if terminated.is_some_and(|t| int_at(t, "/exitCode") == 0) {
            continue;
        }
        if restartable(name) && c.get("started").and_then(Value::as_bool) == Some(true) {
            if c.get("ready").and_then(Value::as_bool) == Some(true) {
                ready += 1;
            }
            continue;
        }
        if let Some(t) = terminated {
            let r = str_at(t, "/reason");
            reason = if r.is_empty() {
                let signal = int_at(t, "/signal");
                if signal != 0 {
                    format!("Init:Signal:{signal}")
                } else {
                    format!("Init:ExitCode:{}", int_at(t, "/exitCode"))
                }
            } else {
                format!("Init:{r}")
            };
        } else if !waiting_reason.is_empty() && waiting_reason != "PodInitializing" {
            reason = format!("Init:{waiting_reason}");
        } else {
            reason = format!("Init:{i}/{}", init_specs.len());
        }
        initializing = true;
        break;
    }

    if !initializing || condition_true(pod, "Initialized") {
        restarts = restartable_init_restarts;
        last_restart = last_restartable_init_restart;
        let mut has_running = false;
        for c in arr(pod, "/status/containerStatuses").iter().rev() {
            restarts += int_at(c, "/restartCount");
            last_restart = later(
                last_restart,
                timestamp(c.pointer("/lastState/terminated/finishedAt")),
            );
            let waiting_reason = str_at(c, "/state/waiting/reason");
            let terminated = c.pointer("/state/terminated").filter(|t| !t.is_null());
            if !waiting_reason.is_empty() {
                reason = waiting_reason.to_string();
            } else if let Some(t) = terminated.filter(|t| !str_at(t, "/reason").is_empty()) {
                reason = str_at(t, "/reason").to_string();
            } else if let Some(t) = terminated {
                let signal = int_at(t, "/signal");
                reason = if signal != 0 {
                    format!("Signal:{signal}")
                } else {
                    format!("ExitCode:{}", int_at(t, "/exitCode"))
                };
            } else if c.get("ready").and_then(Value::as_bool) == Some(true)
                && c.pointer("/state/running").is_some_and(|r| !r.is_null())
            {
                has_running = true;
                ready += 1;
            }
        }
        if reason == "Completed" && has_running {
            reason = if condition_true(pod, "Ready") {
                "Running"
            } else {
                "NotReady"
            }
            .to_string();
        }
    }

    let deleting = pod
        .pointer("/metadata/deletionTimestamp")
        .is_some_and(|d| !d.is_null());
    if deleting && str_at(pod, "/status/reason") == "NodeLost" {
        reason = "Unknown".to_string();
    } else if deleting && phase != "Succeeded" && phase != "Failed" {
        reason = "Terminating".to_string();
    }
    PodSummary {
        ready,
        total,
        reason,
        restarts,
        last_restart,
    }
}

/// A pod's STATUS column as kubectl shows it: the phase, or the reason from container
/// states (`ContainerCreating`, `CrashLoopBackOff`, `Completed`, `Init:1/2`, `Error`),
/// `Terminating` while being deleted.
pub fn pod_status_reason(pod: &Value) -> String {
    summarize_pod(pod).reason
}

pub(crate) fn pod_cells(pod: &Value, now: Timestamp) -> Vec<Value> {
    let s = summarize_pod(pod);
    let mut restarts = s.restarts.to_string();
    if s.restarts != 0 {
        if let Some(t) = s.last_restart {
            restarts = format!(
                "{} ({} ago)",
                s.restarts,
                human_duration(now.duration_since(t))
            );
        }
    }
    let mut ip = str_at(pod, "/status/podIPs/0/ip").to_string();
    if ip.is_empty() {
        ip = str_at(pod, "/status/podIP").to_string();
    }
    let gates = arr(pod, "/spec/readinessGates");
    let readiness_gates = if gates.is_empty() {
        "<none>".to_string()
    } else {
        let true_count = gates
            .iter()
            .filter(|g| {
                let t = str_at(g, "/conditionType");
                arr(pod, "/status/conditions")
                    .iter()
                    .find(|c| str_at(c, "/type") == t)
                    .is_some_and(|c| str_at(c, "/status") == "True")
            })
            .count();
        format!("{true_count}/{}", gates.len())
    };
    vec![
        json!(str_at(pod, "/metadata/name")),
        json!(format!("{}/{}", s.ready, s.total)),
        json!(s.reason),
        json!(restarts),
        age(pod, now),
        json!(or_none(&ip)),
        json!(or_none(str_at(pod, "/spec/nodeName"))),
        json!(or_none(str_at(pod, "/status/nominatedNodeName"))),
        json!(readiness_gates),
    ]
}

pub(crate) fn service_cells(svc: &Value, now: Timestamp) -> Vec<Value> {
    let typ = str_at(svc, "/spec/type");
    let mut cluster_ip = str_at(svc, "/spec/clusterIPs/0").to_string();
    if cluster_ip.is_empty() {
        cluster_ip = str_at(svc, "/spec/clusterIP").to_string();
    }
    let external_ips: Vec<&str> = arr(svc, "/spec/externalIPs")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let external = match typ {
        "ClusterIP" | "NodePort" => {
            if external_ips.is_empty() {
                "<none>".to_string()
            } else {
                external_ips.join(",")
            }
        }
        "LoadBalancer" => {
            let lb: BTreeSet<&str> = arr(svc, "/status/loadBalancer/ingress")
                .iter()
                .filter_map(|i| {
                    let ip = str_at(i, "/ip");
                    let host = str_at(i, "/hostname");
                    if !ip.is_empty() {
                        Some(ip)
                    } else if !host.is_empty() {
                        Some(host)
                    } else {
                        None
                    }
                })
                .collect();
            let lb: Vec<&str> = lb.into_iter().collect();
            let mut all: Vec<&str> = lb.clone();
            all.extend(external_ips.iter());
            if all.is_empty() {
                "<pending>".to_string()
            } else {
                all.join(",")
            }
        }
        "ExternalName" => str_at(svc, "/spec/externalName").to_string(),
        _ => "<unknown>".to_string(),
    };
    let ports: Vec<String> = arr(svc, "/spec/ports")
        .iter()
        .map(|p| {
            let port = int_at(p, "/port");
            let proto = str_at(p, "/protocol");
            let node_port = int_at(p, "/nodePort");
            if node_port > 0 {
                format!("{port}:{node_port}/{proto}")
            } else {
                format!("{port}/{proto}")
            }
        })
        .collect();
    let selector = svc
        .pointer("/spec/selector")
        .and_then(Value::as_object)
        .filter(|m| !m.is_empty())
        .map_or("<none>".to_string(), |m| {
            let mut pairs: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect();
            pairs.sort();
            pairs.join(",")
        });
    vec![
        json!(str_at(svc, "/metadata/name")),
        json!(typ),
        json!(or_none(&cluster_ip)),
        json!(external),
        json!(if ports.is_empty() {
            "<none>".to_string()
        } else {
            ports.join(",")
        }),
        age(svc, now),
        json!(selector),
    ]
}

pub(crate) fn node_cells(node: &Value, now: Timestamp) -> Vec<Value> {
    let mut status: Vec<String> = Vec::new();
    if let Some(c) = arr(node, "/status/conditions")
        .iter()
        .rev()
        .find(|c| str_at(c, "/type") == "Ready")
    {
        status.push(
            if str_at(c, "/status") == "True" {
                "Ready"
            } else {
                "NotReady"
            }
            .to_string(),
        );
    }
    if status.is_empty() {
        status.push("Unknown".to_string());
    }
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push("SchedulingDisabled".to_string());
    }
    let mut roles = BTreeSet::new();
    for (k, v) in node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(role) = k.strip_prefix("node-role.kubernetes.io/") {
            if !role.is_empty() {
                roles.insert(role.to_string());
            }
        } else if k == "kubernetes.io/role" {
            if let Some(v) = v.as_str().filter(|v| !v.is_empty()) {
                roles.insert(v.to_string());
            }
        }
    }
    let roles: Vec<String> = roles.into_iter().collect();
    let address = |typ: &str| {
        arr(node, "/status/addresses")
            .iter()
            .find(|a| str_at(a, "/type") == typ)
            .map_or("<none>".to_string(), |a| str_at(a, "/address").to_string())
    };
    let unknown = |s: &str| {
        if s.is_empty() {
            "<unknown>".to_string()
        } else {
            s.to_string()
        }
    };
    vec![
        json!(str_at(node, "/metadata/name")),
        json!(status.join(",")),
        json!(if roles.is_empty() {
            "<none>".to_string()
        } else {
            roles.join(",")
        }),
        age(node, now),
        json!(str_at(node, "/status/nodeInfo/kubeletVersion")),
        json!(address("InternalIP")),
        json!(address("ExternalIP")),
        json!(unknown(str_at(node, "/status/nodeInfo/osImage"))),
        json!(unknown(str_at(node, "/status/nodeInfo/kernelVersion"))),
        json!(unknown(str_at(
            node,
            "/status/nodeInfo/containerRuntimeVersion"
        ))),
    ]
}

pub(crate) fn event_cells(ev: &Value, now: Timestamp) -> Vec<Value> {
    let since = |p: &str| {
        let v = ev
            .pointer(p)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty());
        v.map(|s| translate_timestamp_since(Some(s), now))
    };
    let first = since("/firstTimestamp")
        .or_else(|| since("/eventTime"))
        .unwrap_or_else(|| "<unknown>".to_string());
    let mut last = since("/lastTimestamp").unwrap_or_else(|| first.clone());
    let mut count = int_at(ev, "/count");
    if ev.get("series").is_some_and(|s| !s.is_null()) {
        last = since("/series/lastObservedTime").unwrap_or_else(|| "<unknown>".to_string());
        count = int_at(ev, "/series/count");
    } else if count == 0 {
        count = 1;
    }
    let kind = str_at(ev, "/involvedObject/kind").to_lowercase();
    let name = str_at(ev, "/involvedObject/name");
    let target = if name.is_empty() {
        kind
    } else {
        format!("{kind}/{name}")
    };
    let source = {
        let component = str_at(ev, "/source/component");
        let host = str_at(ev, "/source/host");
        let first_non_empty = |a: &'_ str, b: &'_ str| {
            if a.is_empty() {
                b.to_string()
            } else {
                a.to_string()
            }
        };
        let component = first_non_empty(component, str_at(ev, "/reportingComponent"));
        let host = first_non_empty(host, str_at(ev, "/reportingInstance"));
        if host.is_empty() {
            component
        } else {
            format!("{component}, {host}")
        }
    };
    vec![
        json!(last),
        json!(str_at(ev, "/type")),
        json!(str_at(ev, "/reason")),
        json!(target),
        json!(str_at(ev, "/involvedObject/fieldPath")),
        json!(source),
        json!(str_at(ev, "/message").trim()),
        json!(first),
        json!(count),
        json!(str_at(ev, "/metadata/name")),
    ]
}
