//! Defaulting, as Kubernetes' defaulters (and the few admission plugins every cluster
//! runs) fill in what a client left out, applied to an object's JSON in place: pods
//! (restartPolicy, dnsPolicy, schedulerName, grace period, pull policy from the image
//! tag, termination message settings, probe timings, volume modes, QoS class),
//! deployments and replicasets (replicas, strategy, history, progress deadline, and the
//! template's pod spec), services (type, affinity, protocols, target ports, traffic
//! policies, IP families), namespaces, secrets, nodes and RBAC references.
//!
//! Defaulting only adds what is missing; it never overwrites a value a client set and
//! never validates (an invalid value stays for validation to report). Server-owned
//! fields (uid, creationTimestamp, resourceVersion, generation, cluster IPs) are the
//! registry's to set. Which defaulter a kind gets is its entry's business
//! (`crate::kinds`); this module never dispatches on a kind. Part of the client side of
//! the crate (no `server` feature): components compute QoS classes and pull policies as
//! the apiserver does.

use serde_json::{json, Map, Value};

use crate::quantity::Quantity;

/// The default scheduler's name.
pub const DEFAULT_SCHEDULER_NAME: &str = "default-scheduler";
/// Seconds a pod gets to stop unless it says otherwise.
pub const DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS: i64 = 30;
/// The file a container's termination message is read from.
pub const TERMINATION_MESSAGE_PATH_DEFAULT: &str = "/dev/termination-log";
/// File mode of secret, configMap, downwardAPI and projected volumes (0644).
pub const DEFAULT_VOLUME_MODE: i64 = 0o644;
/// How long ClientIP session affinity sticks (3 hours).
pub const DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS: i64 = 10800;
/// How long a pod tolerates its node being not-ready or unreachable (DefaultTolerationSeconds).
pub const DEFAULT_NOT_READY_TOLERATION_SECONDS: i64 = 300;

fn obj_mut<'a>(v: &'a mut Value, key: &str) -> Option<&'a mut Map<String, Value>> {
    let m = v.as_object_mut()?;
    let e = m.entry(key.to_string()).or_insert_with(|| json!({}));
    if e.is_null() {
        *e = json!({});
    }
    e.as_object_mut()
}

fn set_default(m: &mut Map<String, Value>, key: &str, value: Value) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.to_string(), value);
        }
        Some(Value::String(s)) if s.is_empty() && value.is_string() => {
            m.insert(key.to_string(), value);
        }
        _ => {}
    }
}

fn set_default_number(m: &mut Map<String, Value>, key: &str, value: i64) {
    match m.get(key) {
        None | Some(Value::Null) => {
            m.insert(key.to_string(), json!(value));
        }
        Some(v) if v.as_i64() == Some(0) => {
            m.insert(key.to_string(), json!(value));
        }
        _ => {}
    }
}

fn each_in<'a>(
    m: &'a mut Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = &'a mut Map<String, Value>> {
    m.get_mut(key)
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(Value::as_object_mut)
}

/// The pull policy Kubernetes picks for an image: `Always` for `:latest` or no tag (and
/// no digest), `IfNotPresent` otherwise (including references it cannot parse).
pub fn image_pull_policy_for(image: &str) -> &'static str {
    if image_tag(image).as_deref() == Some("latest") {
        "Always"
    } else {
        "IfNotPresent"
    }
}

/// The tag of an image reference as Kubernetes' `ParseImageName` sees it: the explicit
/// tag, `latest` when there is neither tag nor digest, `None` when there is only a digest
/// or the reference does not parse (empty, uppercase repository, bad characters).
fn image_tag(image: &str) -> Option<String> {
    if image.is_empty() || image.trim() != image {
        return None;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let last_slash = name.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match name[last_slash..].rfind(':') {
        Some(i) => (&name[..last_slash + i], Some(&name[last_slash + i + 1..])),
        None => (name, None),
    };
    // The first component may be a registry host (with a port, dots, uppercase); the
    // path after it must be lowercase.
    let path = match repo.split_once('/') {
        Some((host, rest))
            if host.contains(['.', ':'])
                || host == "localhost"
                || host.chars().any(|c| c.is_ascii_uppercase()) =>
        {
            rest
        }
        _ => repo,
    };
    let path_ok = !path.is_empty()
        && path.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '/')
        });
    if !path_ok {
        return None;
    }
    if let Some(t) = tag {
        let ok = !t.is_empty()
            && t.len() <= 128
            && t.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        return ok.then(|| t.to_string());
    }
    if digest.is_some() {
        return None;
    }
    Some("latest".to_string())
}

fn default_probe(p: &mut Map<String, Value>) {
    set_default_number(p, "timeoutSeconds", 1);
    set_default_number(p, "periodSeconds", 10);
    set_default_number(p, "successThreshold", 1);
    set_default_number(p, "failureThreshold", 3);
    default_handler(p);
}

fn default_handler(h: &mut Map<String, Value>) {
    if let Some(g) = h.get_mut("httpGet").and_then(Value::as_object_mut) {
        set_default(g, "path", json!("/"));
        set_default(g, "scheme", json!("HTTP"));
    }
}

fn default_container(c: &mut Map<String, Value>) {
    if !matches!(c.get("imagePullPolicy"), Some(Value::String(s)) if !s.is_empty()) {
        let image = c.get("image").and_then(Value::as_str).unwrap_or("");
        c.insert(
            "imagePullPolicy".into(),
            json!(image_pull_policy_for(image)),
        );
    }
    set_default(
        c,
        "terminationMessagePath",
        json!(TERMINATION_MESSAGE_PATH_DEFAULT),
    );
    set_default(c, "terminationMessagePolicy", json!("File"));
    // Go always serializes the (struct-valued) resources field.
    set_default(c, "resources", json!({}));
    for p in each_in(c, "ports") {
        set_default(p, "protocol", json!("TCP"));
    }
    for probe in ["livenessProbe", "readinessProbe", "startupProbe"] {
        if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
            default_probe(p);
        }
    }
    if let Some(l) = c.get_mut("lifecycle").and_then(Value::as_object_mut) {
        for h in ["postStart", "preStop"] {
            if let Some(h) = l.get_mut(h).and_then(Value::as_object_mut) {
                default_handler(h);
            }
        }
    }
    for e in each_in(c, "env") {
        if let Some(f) = e
            .get_mut("valueFrom")
            .and_then(|v| v.get_mut("fieldRef"))
            .and_then(Value::as_object_mut)
        {
            set_default(f, "apiVersion", json!("v1"));
        }
    }
}

fn default_volume(v: &mut Map<String, Value>) {
    let has_source = v.iter().any(|(k, x)| k != "name" && !x.is_null());
    if !has_source {
        v.insert("emptyDir".into(), json!({}));
    }
    for src in ["secret", "configMap", "downwardAPI", "projected"] {
        if let Some(s) = v.get_mut(src).and_then(Value::as_object_mut) {
            set_default(s, "defaultMode", json!(DEFAULT_VOLUME_MODE));
        }
    }
    if let Some(p) = v.get_mut("projected").and_then(Value::as_object_mut) {
        for s in each_in(p, "sources") {
            if let Some(t) = s
                .get_mut("serviceAccountToken")
                .and_then(Value::as_object_mut)
            {
                set_default(t, "expirationSeconds", json!(3600));
            }
            if let Some(d) = s.get_mut("downwardAPI").and_then(Value::as_object_mut) {
                for item in each_in(d, "items") {
                    if let Some(f) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
                        set_default(f, "apiVersion", json!("v1"));
                    }
                }
            }
        }
    }
    if let Some(d) = v.get_mut("downwardAPI").and_then(Value::as_object_mut) {
        for item in each_in(d, "items") {
            if let Some(f) = item.get_mut("fieldRef").and_then(Value::as_object_mut) {
                set_default(f, "apiVersion", json!("v1"));
            }
        }
    }
    if let Some(h) = v.get_mut("hostPath").and_then(Value::as_object_mut) {
        if !h.contains_key("type") || h["type"].is_null() {
            h.insert("type".into(), json!(""));
        }
    }
}

/// The defaults of a pod spec wherever it appears (pods and pod templates):
/// Kubernetes' `SetDefaults_PodSpec` and everything below it.
pub fn default_pod_spec(spec: &mut Value) {
    let Some(s) = spec.as_object_mut() else {
        return;
    };
    set_default(s, "dnsPolicy", json!("ClusterFirst"));
    set_default(s, "restartPolicy", json!("Always"));
    set_default(s, "securityContext", json!({}));
    set_default(
        s,
        "terminationGracePeriodSeconds",
        json!(DEFAULT_TERMINATION_GRACE_PERIOD_SECONDS),
    );
    set_default(s, "schedulerName", json!(DEFAULT_SCHEDULER_NAME));
    for key in ["containers", "initContainers"] {
        for c in each_in(s, key) {
            default_container(c);
        }
    }
    for v in each_in(s, "volumes") {
        default_volume(v);
    }
}

/// A Pod's defaults: the pod spec's, then what only pods get (enableServiceLinks,
/// requests copied from limits, host ports under hostNetwork, priority and preemption
/// policy as the Priority admission plugin sets them without a priority class), and the
/// status a new pod starts with (Pending, its QoS class).
pub fn default_pod(pod: &mut Value) {
    if let Some(spec) = obj_mut(pod, "spec") {
        let mut spec_value = Value::Object(std::mem::take(spec));
        default_pod_spec(&mut spec_value);
        let Value::Object(mut s) = spec_value else {
            return;
        };
        set_default(&mut s, "enableServiceLinks", json!(true));
        for key in ["containers", "initContainers"] {
            for c in each_in(&mut s, key) {
                requests_from_limits(c);
            }
        }
        if s.get("hostNetwork").and_then(Value::as_bool) == Some(true) {
            for key in ["containers", "initContainers"] {
                for c in each_in(&mut s, key) {
                    for p in each_in(c, "ports") {
                        let port = p.get("containerPort").cloned().unwrap_or(json!(0));
                        set_default_number(p, "hostPort", port.as_i64().unwrap_or(0));
                    }
                }
            }
        }
        if !s.contains_key("priority")
            && s.get("priorityClassName")
                .and_then(Value::as_str)
                .unwrap_or("")
                .is_empty()
        {
            s.insert("priority".into(), json!(0));
        }
        set_default(&mut s, "preemptionPolicy", json!("PreemptLowerPriority"));
        // v1's deprecated serviceAccount mirrors serviceAccountName.
        let sa = s
            .get("serviceAccountName")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let deprecated = s
            .get("serviceAccount")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if sa.is_empty() && !deprecated.is_empty() {
            s.insert("serviceAccountName".into(), json!(deprecated));
        } else if !sa.is_empty() {
            s.insert("serviceAccount".into(), json!(sa));
        }
        if let Some(spec) = pod.get_mut("spec") {
            *spec = Value::Object(s);
        }
    }
    let qos = pod_qos_class(pod);
    if let Some(status) = obj_mut(pod, "status") {
        set_default(status, "phase", json!("Pending"));
        set_default(status, "qosClass", json!(qos));
    }
}

fn requests_from_limits(c: &mut Map<String, Value>) {
    let Some(r) = c.get_mut("resources").and_then(Value::as_object_mut) else {
        return;
    };
    let Some(limits) = r.get("limits").and_then(Value::as_object).cloned() else {
        return;
    };
    let requests = r.entry("requests").or_insert_with(|| json!({}));
    if requests.is_null() {
        *requests = json!({});
    }
    if let Some(req) = requests.as_object_mut() {
        for (k, v) in limits {
            req.entry(k).or_insert(v);
        }
    }
}

/// What the admission plugins of every Kubernetes cluster add to a new pod: the
/// `default` service account (ServiceAccount) and tolerations of not-ready and
/// unreachable nodes for 300 seconds (DefaultTolerationSeconds).
pub fn admit_pod(pod: &mut Value) {
    let Some(s) = obj_mut(pod, "spec") else {
        return;
    };
    if s.get("serviceAccountName")
        .and_then(Value::as_str)
        .unwrap_or("")
        .is_empty()
    {
        s.insert("serviceAccountName".into(), json!("default"));
        s.insert("serviceAccount".into(), json!("default"));
    }
    let tolerations = s.entry("tolerations").or_insert_with(|| json!([]));
    if tolerations.is_null() {
        *tolerations = json!([]);
    }
    let Some(list) = tolerations.as_array_mut() else {
        return;
    };
    for key in [
        "node.kubernetes.io/not-ready",
        "node.kubernetes.io/unreachable",
    ] {
        let tolerated = list.iter().any(|t| {
            let k = t.get("key").and_then(Value::as_str).unwrap_or("");
            let op = t.get("operator").and_then(Value::as_str).unwrap_or("Equal");
            let effect = t.get("effect").and_then(Value::as_str).unwrap_or("");
            (k == key || (k.is_empty() && op == "Exists"))
                && (effect.is_empty() || effect == "NoExecute")
        });
        if !tolerated {
            list.push(json!({
                "key": key,
                "operator": "Exists",
                "effect": "NoExecute",
                "tolerationSeconds": DEFAULT_NOT_READY_TOLERATION_SECONDS,
            }));
        }
    }
}

/// A pod's QoS class as Kubernetes computes it from cpu and memory requests and limits
/// of all its containers: `BestEffort` (none), `Guaranteed` (every container limits both,
/// requests equal limits) or `Burstable`.
pub fn pod_qos_class(pod: &Value) -> &'static str {
    let mut requests: std::collections::BTreeMap<String, Quantity> = Default::default();
    let mut limits: std::collections::BTreeMap<String, Quantity> = Default::default();
    let mut guaranteed = true;
    let containers = ["containers", "initContainers"].into_iter().flat_map(|k| {
        pod.pointer(&format!("/spec/{k}"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
    });
    for c in containers {
        let res = c.get("resources");
        let read = |which: &str| -> Vec<(String, Quantity)> {
            res.and_then(|r| r.get(which))
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .filter(|(k, _)| *k == "cpu" || *k == "memory")
                .filter_map(|(k, v)| {
                    let q = match v {
                        Value::String(s) => Quantity::parse(s).ok()?,
                        Value::Number(n) => Quantity::parse(&n.to_string()).ok()?,
                        _ => return None,
                    };
                    (q > Quantity::ZERO).then(|| (k.clone(), q))
                })
                .collect()
        };
        let mut req = read("requests");
        let lim = read("limits");
        // Requests default to limits on pods.
        for (k, q) in &lim {
            if !req.iter().any(|(rk, _)| rk == k)
                && res
                    .and_then(|r| r.pointer(&format!("/requests/{k}")))
                    .is_none()
            {
                req.push((k.clone(), *q));
            }
        }
        for (k, q) in req {
            let e = requests.entry(k).or_insert(Quantity::ZERO);
            *e = *e + q;
        }
        let mut found = std::collections::BTreeSet::new();
        for (k, q) in lim {
            found.insert(k.clone());
            let e = limits.entry(k).or_insert(Quantity::ZERO);
            *e = *e + q;
        }
        if !(found.contains("cpu") && found.contains("memory")) {
            guaranteed = false;
        }
    }
    if requests.is_empty() && limits.is_empty() {
        return "BestEffort";
    }
    if guaranteed
        && requests.iter().all(|(k, r)| limits.get(k) == Some(r))
        && requests.len() == limits.len()
    {
        return "Guaranteed";
    }
    "Burstable"
}

/// A Deployment's defaults: 1 replica, RollingUpdate with 25% surge and unavailability,
/// 10 old ReplicaSets kept, a 600 s progress deadline, and the template's pod spec.
pub fn default_deployment(d: &mut Value) {
    let Some(spec) = obj_mut(d, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    let strategy = spec.entry("strategy").or_insert_with(|| json!({}));
    if strategy.is_null() {
        *strategy = json!({});
    }
    if let Some(st) = strategy.as_object_mut() {
        set_default(st, "type", json!("RollingUpdate"));
        if st.get("type").and_then(Value::as_str) == Some("RollingUpdate") {
            let ru = st.entry("rollingUpdate").or_insert_with(|| json!({}));
            if ru.is_null() {
                *ru = json!({});
            }
            if let Some(ru) = ru.as_object_mut() {
                set_default(ru, "maxUnavailable", json!("25%"));
                set_default(ru, "maxSurge", json!("25%"));
            }
        }
    }
    set_default(spec, "revisionHistoryLimit", json!(10));
    set_default(spec, "progressDeadlineSeconds", json!(600));
    if let Some(t) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(t);
    }
}

/// A ReplicaSet's defaults: 1 replica and the template's pod spec.
pub fn default_replica_set(rs: &mut Value) {
    let Some(spec) = obj_mut(rs, "spec") else {
        return;
    };
    set_default(spec, "replicas", json!(1));
    if let Some(t) = spec.get_mut("template").and_then(|t| t.get_mut("spec")) {
        default_pod_spec(t);
    }
}

/// A Service's defaults: ClusterIP, no session affinity (or 3 hours of ClientIP), TCP
/// ports targeting their own port, Cluster traffic policies, allocated load-balancer node
/// ports, and single-stack IPv4 (dual-stack for selectorless headless services, as the
/// allocator decides in Kubernetes).
pub fn default_service(svc: &mut Value) {
    let Some(spec) = obj_mut(svc, "spec") else {
        return;
    };
    set_default(spec, "sessionAffinity", json!("None"));
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("None") {
        spec.remove("sessionAffinityConfig");
    }
    set_default(spec, "type", json!("ClusterIP"));
    for p in each_in(spec, "ports") {
        set_default(p, "protocol", json!("TCP"));
        let target_unset = match p.get("targetPort") {
            None | Some(Value::Null) => true,
            Some(Value::Number(n)) => n.as_i64() == Some(0),
            Some(Value::String(s)) => s.is_empty(),
            _ => false,
        };
        if target_unset {
            let port = p.get("port").cloned().unwrap_or(json!(0));
            p.insert("targetPort".into(), port);
        }
    }
    // clusterIP and clusterIPs describe one allocation; a client may set either.
    let cluster_ip = spec
        .get("clusterIP")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let first_ip = spec
        .get("clusterIPs")
        .and_then(|a| a.get(0))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !cluster_ip.is_empty() && first_ip.is_empty() {
        spec.insert("clusterIPs".into(), json!([cluster_ip]));
    } else if cluster_ip.is_empty() && !first_ip.is_empty() {
        spec.insert("clusterIP".into(), json!(first_ip));
    }
    let typ = spec
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let has_external_ips = spec
        .get("externalIPs")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty());
    let externally_accessible =
        typ == "LoadBalancer" || typ == "NodePort" || (typ == "ClusterIP" && has_external_ips);
    if externally_accessible {
        set_default(spec, "externalTrafficPolicy", json!("Cluster"));
    }
    if matches!(typ.as_str(), "ClusterIP" | "NodePort" | "LoadBalancer") {
        set_default(spec, "internalTrafficPolicy", json!("Cluster"));
    }
    if typ == "LoadBalancer" {
        set_default(spec, "allocateLoadBalancerNodePorts", json!(true));
    }
    if spec.get("sessionAffinity").and_then(Value::as_str) == Some("ClientIP") {
        let has_timeout = spec
            .get("sessionAffinityConfig")
            .and_then(|c| c.pointer("/clientIP/timeoutSeconds"))
            .is_some_and(|t| !t.is_null());
        if !has_timeout {
            spec.insert(
                "sessionAffinityConfig".into(),
                json!({"clientIP": {"timeoutSeconds": DEFAULT_CLIENT_IP_SERVICE_AFFINITY_SECONDS}}),
            );
        }
    }
    if typ != "ExternalName" {
        let headless = spec.get("clusterIP").and_then(Value::as_str) == Some("None")
            || spec
                .get("clusterIPs")
                .and_then(|a| a.get(0))
                .and_then(Value::as_str)
                == Some("None");
        let selectorless = spec
            .get("selector")
            .and_then(Value::as_object)
            .is_none_or(Map::is_empty);
        if headless && selectorless {
            set_default(spec, "ipFamilyPolicy", json!("RequireDualStack"));
            set_default(spec, "ipFamilies", json!(["IPv4", "IPv6"]));
        } else {
            set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            set_default(spec, "ipFamilies", json!(["IPv4"]));
        }
    }
}

/// A Namespace's defaults: the `kubernetes.io/metadata.name` label and the Active phase.
/// (The `kubernetes` finalizer is added on create only, as Kubernetes' namespace strategy
/// does: defaulting runs on every write and would bring it back after the namespace
/// controller removed it.)
pub fn default_namespace(ns: &mut Value) {
    let name = ns
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if !name.is_empty() {
        if let Some(meta) = obj_mut(ns, "metadata") {
            let labels = meta.entry("labels").or_insert_with(|| json!({}));
            if labels.is_null() {
                *labels = json!({});
            }
            if let Some(l) = labels.as_object_mut() {
                l.insert("kubernetes.io/metadata.name".into(), json!(name));
            }
        }
    }
    if let Some(status) = obj_mut(ns, "status") {
        set_default(status, "phase", json!("Active"));
    }
}

/// A Secret's defaults: type Opaque, and `stringData` merged into `data` (base64) and
/// dropped, as Kubernetes converts it on the way in.
pub fn default_secret(secret: &mut Value) {
    let Some(m) = secret.as_object_mut() else {
        return;
    };
    set_default(m, "type", json!("Opaque"));
    let Some(Value::Object(string_data)) = m.remove("stringData") else {
        return;
    };
    let data = m.entry("data").or_insert_with(|| json!({}));
    if data.is_null() {
        *data = json!({});
    }
    if let Some(d) = data.as_object_mut() {
        for (k, v) in string_data {
            let bytes = v.as_str().unwrap_or("").as_bytes().to_vec();
            let encoded =
                serde_json::to_value(k8s_openapi::ByteString(bytes)).unwrap_or(Value::Null);
            d.insert(k, encoded);
        }
    }
}

/// A Node's defaults: allocatable is its capacity unless reported.
pub fn default_node(node: &mut Value) {
    let Some(status) = node.get_mut("status").and_then(Value::as_object_mut) else {
        return;
    };
    if matches!(status.get("allocatable"), None | Some(Value::Null)) {
        if let Some(cap) = status.get("capacity").filter(|c| !c.is_null()).cloned() {
            status.insert("allocatable".into(), cap);
        }
    }
}

/// RoleBinding and ClusterRoleBinding defaults: the RBAC group on the role reference and
/// on User and Group subjects.
pub fn default_role_binding(b: &mut Value) {
    const RBAC: &str = "rbac.authorization.k8s.io";
    if let Some(r) = obj_mut(b, "roleRef") {
        set_default(r, "apiGroup", json!(RBAC));
    }
    let Some(m) = b.as_object_mut() else { return };
    for s in each_in(m, "subjects") {
        let kind = s.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind == "User" || kind == "Group" {
            set_default(s, "apiGroup", json!(RBAC));
        }
    }
}

// The cases go through the resource table, which only the server side has.
#[cfg(all(test, feature = "server"))]
mod tests;
