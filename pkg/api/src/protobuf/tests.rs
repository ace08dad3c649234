//! Bodies are built byte by byte, the way Go clients (gogo-protobuf) write them: every
//! non-pointer field is sent even when zero, pointers only when set, and an empty
//! message for a zero `metav1.Time`.

use prost::Message as _;
use serde_json::json;

use super::*;

/// A protobuf message written field by field.
#[derive(Default, Clone)]
struct Wire(Vec<u8>);

impl Wire {
    fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, field: u32, wire_type: u32) {
        self.raw_varint(u64::from(field << 3 | wire_type));
    }

    fn raw_varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn varint(mut self, field: u32, v: u64) -> Self {
        self.key(field, 0);
        self.raw_varint(v);
        self
    }

    fn bytes(mut self, field: u32, b: &[u8]) -> Self {
        self.key(field, 2);
        self.raw_varint(b.len() as u64);
        self.0.extend_from_slice(b);
        self
    }

    fn str(self, field: u32, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    fn msg(self, field: u32, m: Wire) -> Self {
        self.bytes(field, &m.0)
    }

    /// One entry of a `map<string, V>` field: a message with key = 1, value = 2.
    fn entry(self, field: u32, key: &str, value: &[u8]) -> Self {
        self.msg(field, Wire::new().str(1, key).bytes(2, value))
    }
}

fn envelope(api_version: &str, kind: &str, raw: &Wire) -> Vec<u8> {
    let unknown = Wire::new()
        .msg(1, Wire::new().str(1, api_version).str(2, kind))
        .bytes(2, &raw.0)
        .str(3, "")
        .str(4, "");
    let mut body = MAGIC.to_vec();
    body.extend_from_slice(&unknown.0);
    body
}

/// `metav1.ObjectMeta` as a Go client sends a fresh object's: every string present and
/// empty, generation 0, creationTimestamp an empty message.
fn go_meta(name: &str, namespace: &str) -> Wire {
    Wire::new()
        .str(1, name)
        .str(2, "")
        .str(3, namespace)
        .str(4, "")
        .str(5, "")
        .str(6, "")
        .varint(7, 0)
        .msg(8, Wire::new())
}

fn decode_ok(body: &[u8]) -> Value {
    let d = decode(body).expect("decodes");
    assert_eq!(d.unknown_fields, Vec::<String>::new());
    d.object
}

#[test]
fn a_configmap_becomes_its_json_with_zero_fields_left_out() {
    let cm = Wire::new()
        .msg(1, go_meta("game", "default"))
        .entry(2, "lives", b"3")
        .entry(2, "mode", b"hard")
        .entry(3, "blob", &[0, 1, 254, 255]);
    let got = decode_ok(&envelope("v1", "ConfigMap", &cm));
    assert_eq!(
        got,
        json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "game", "namespace": "default"},
            "data": {"lives": "3", "mode": "hard"},
            "binaryData": {"blob": "AAH+/w=="}
        })
    );
}

#[test]
fn secret_data_bytes_become_base64_and_type_and_immutable_false_are_kept() {
    let secret = Wire::new()
        .msg(1, go_meta("creds", "apps"))
        .entry(2, "password", b"s3cr\xc3\xa9t\n")
        .str(3, "Opaque")
        .varint(5, 0);
    let got = decode_ok(&envelope("v1", "Secret", &secret));
    assert_eq!(got["data"]["password"], "czNjcsOpdAo=");
    assert_eq!(got["type"], "Opaque");
    // immutable is a *bool: an explicit false is a value.
    assert_eq!(got["immutable"], false);
    assert!(got.get("stringData").is_none());
}

fn quantity(s: &str) -> Vec<u8> {
    Wire::new().str(1, s).0
}

fn go_deployment(replicas: Option<u64>) -> Wire {
    let container = Wire::new()
        .str(1, "web")
        .str(2, "nginx:1.27")
        .str(5, "")
        .msg(
            6,
            Wire::new()
                .str(1, "http")
                .varint(2, 0)
                .varint(3, 8080)
                .str(4, "TCP")
                .str(5, ""),
        )
        .msg(
            8,
            Wire::new()
                .entry(1, "memory", &quantity("128Mi"))
                .entry(2, "cpu", &quantity("250m")),
        )
        .msg(
            10,
            Wire::new()
                .msg(
                    1,
                    Wire::new().msg(
                        2,
                        Wire::new()
                            .str(1, "/healthz")
                            .msg(2, Wire::new().varint(1, 1).varint(2, 0).str(3, "http"))
                            .str(3, "")
                            .str(4, ""),
                    ),
                )
                .varint(2, 0)
                .varint(3, 5),
        )
        .str(13, "")
        .str(14, "")
        .varint(16, 0)
        .varint(17, 0)
        .varint(18, 0)
        .str(20, "");
    let labels = Wire::new()
        .str(1, "")
        .entry(11, "app", b"web")
        .msg(8, Wire::new());
    let pod_spec = Wire::new()
        .msg(2, container)
        .str(3, "")
        .str(6, "")
        .varint(11, 0)
        .varint(4, 0);
    let mut spec = Wire::new();
    if let Some(r) = replicas {
        spec = spec.varint(1, r);
    }
    let spec = spec
        .msg(2, Wire::new().entry(1, "app", b"web"))
        .msg(3, Wire::new().msg(1, labels).msg(2, pod_spec))
        .msg(4, Wire::new().str(1, ""))
        .varint(5, 0)
        .varint(7, 0);
    Wire::new()
        .msg(1, go_meta("web", "default").entry(11, "app", b"web"))
        .msg(2, spec)
        .msg(3, Wire::new().varint(1, 0).varint(2, 0))
}

#[test]
fn a_deployment_decodes_with_quantities_int_or_string_and_pointer_zeros() {
    let got = decode_ok(&envelope("apps/v1", "Deployment", &go_deployment(Some(0))));
    assert_eq!(
        got,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
            "spec": {
                // *int32: zero replicas is a request for zero, not "unset".
                "replicas": 0,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"labels": {"app": "web"}},
                    "spec": {
                        // terminationGracePeriodSeconds is a pointer: its zero is kept.
                        "terminationGracePeriodSeconds": 0,
                        "containers": [{
                            "name": "web",
                            "image": "nginx:1.27",
                            "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
                            "resources": {
                                "limits": {"memory": "128Mi"},
                                "requests": {"cpu": "250m"}
                            },
                            // ProbeHandler is embedded in Probe: httpGet sits on the probe.
                            "livenessProbe": {
                                "httpGet": {"path": "/healthz", "port": "http"},
                                "timeoutSeconds": 5
                            }
                        }]
                    }
                },
                "strategy": {}
            },
            "status": {}
        })
    );
}

#[test]
fn an_unset_pointer_stays_unset() {
    let got = decode_ok(&envelope("apps/v1", "Deployment", &go_deployment(None)));
    assert!(got["spec"].get("replicas").is_none(), "{got}");
}

#[test]
fn int_or_string_ints_times_and_microtimes() {
    // A Service port with a numeric targetPort.
    let svc = Wire::new().msg(1, go_meta("db", "default")).msg(
        2,
        Wire::new().msg(
            1,
            Wire::new()
                .str(1, "")
                .str(2, "TCP")
                .varint(3, 5432)
                .msg(4, Wire::new().varint(1, 0).varint(2, 15432).str(3, ""))
                .varint(5, 0),
        ),
    );
    let got = decode_ok(&envelope("v1", "Service", &svc));
    assert_eq!(
        got["spec"],
        json!({"ports": [{"protocol": "TCP", "port": 5432, "targetPort": 15432}]})
    );

    // An event: Time has second precision, MicroTime microseconds, both in UTC.
    let event = Wire::new()
        .msg(1, go_meta("e1", "default"))
        .msg(2, Wire::new().str(1, "Pod").str(3, "web-1"))
        .str(3, "Started")
        .msg(
            6,
            Wire::new().varint(1, 1_700_000_000).varint(2, 999_000_000),
        )
        .varint(8, 2)
        .msg(
            10,
            Wire::new().varint(1, 1_700_000_001).varint(2, 123_456_789),
        )
        .str(14, "kubelet")
        .str(15, "");
    let got = decode_ok(&envelope("v1", "Event", &event));
    assert_eq!(got["firstTimestamp"], "2023-11-14T22:13:20Z");
    assert_eq!(got["eventTime"], "2023-11-14T22:13:21.123456Z");
    assert!(got.get("lastTimestamp").is_none());
    assert_eq!(got["count"], 2);
    assert_eq!(
        got["involvedObject"],
        json!({"kind": "Pod", "name": "web-1"})
    );
    // reportingComponent and reportingInstance have no omitempty: shown even empty.
    assert_eq!(got["reportingComponent"], "kubelet");
    assert_eq!(got["reportingInstance"], "");
}

#[test]
fn creation_timestamp_and_managed_fields_map_to_kubernetes_json() {
    let meta = go_meta("x", "").msg(8, Wire::new().varint(1, 86_400)).msg(
        17,
        Wire::new()
            .str(1, "kubectl-create")
            .str(2, "Update")
            .str(3, "v1")
            .msg(4, Wire::new().varint(1, 86_400))
            .str(6, "FieldsV1")
            .msg(7, Wire::new().bytes(1, br#"{"f:data":{".":{}}}"#)),
    );
    let got = decode_ok(&envelope("v1", "Namespace", &Wire::new().msg(1, meta)));
    assert_eq!(
        got["metadata"],
        json!({
            "name": "x",
            "creationTimestamp": "1970-01-02T00:00:00Z",
            "managedFields": [{
                "manager": "kubectl-create",
                "operation": "Update",
                "apiVersion": "v1",
                "time": "1970-01-02T00:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:data": {".": {}}}
            }]
        })
    );
}

#[test]
fn embedded_local_object_references_and_volume_sources_are_inlined() {
    let env = Wire::new().str(1, "PASSWORD").str(2, "").msg(
        3,
        Wire::new().msg(
            4,
            Wire::new()
                .msg(1, Wire::new().str(1, "creds"))
                .str(2, "password"),
        ),
    );
    let volume = Wire::new().str(1, "config").msg(
        2,
        Wire::new().msg(
            19,
            Wire::new()
                .msg(1, Wire::new().str(1, "settings"))
                .varint(3, 0o644),
        ),
    );
    let pod = Wire::new().msg(1, go_meta("p", "default")).msg(
        2,
        Wire::new()
            .msg(1, volume)
            .msg(2, Wire::new().str(1, "app").str(2, "busybox").msg(7, env)),
    );
    let got = decode_ok(&envelope("v1", "Pod", &pod));
    assert_eq!(
        got["spec"],
        json!({
            "volumes": [{"name": "config", "configMap": {"name": "settings", "defaultMode": 420}}],
            "containers": [{
                "name": "app",
                "image": "busybox",
                "env": [{"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "password"}}}]
            }]
        })
    );
}

#[test]
fn rbac_kinds_keep_their_required_fields() {
    let crb = Wire::new()
        .msg(1, go_meta("admins", ""))
        .msg(
            2,
            Wire::new()
                .str(1, "ServiceAccount")
                .str(2, "")
                .str(3, "robot")
                .str(4, "kube-system"),
        )
        .msg(
            3,
            Wire::new()
                .str(1, "rbac.authorization.k8s.io")
                .str(2, "ClusterRole")
                .str(3, "cluster-admin"),
        );
    let got = decode_ok(&envelope(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        &crb,
    ));
    assert_eq!(
        got,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "admins"},
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": "kube-system"}],
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"}
        })
    );
}

#[test]
fn a_body_built_by_reflection_round_trips() {
    // The same schema used to encode: a Lease with every pointer field set to zero.
    let mut lease = DynamicMessage::new(message("k8s.io.api.coordination.v1.Lease"));
    let mut meta = DynamicMessage::new(message("k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta"));
    meta.set_field_by_name("name", prost_reflect::Value::String("leader".into()));
    let mut spec = DynamicMessage::new(message("k8s.io.api.coordination.v1.LeaseSpec"));
    spec.set_field_by_name(
        "holderIdentity",
        prost_reflect::Value::String(String::new()),
    );
    spec.set_field_by_name("leaseDurationSeconds", prost_reflect::Value::I32(15));
    spec.set_field_by_name("leaseTransitions", prost_reflect::Value::I32(0));
    lease.set_field_by_name("metadata", prost_reflect::Value::Message(meta));
    lease.set_field_by_name("spec", prost_reflect::Value::Message(spec));
    let raw = Wire(lease.encode_to_vec());
    let got = decode_ok(&envelope("coordination.k8s.io/v1", "Lease", &raw));
    assert_eq!(
        got["spec"],
        json!({"holderIdentity": "", "leaseDurationSeconds": 15, "leaseTransitions": 0})
    );
}

#[test]
fn fields_unknown_to_kubernetes_1_33_are_reported_with_where_they_were() {
    // PodSpec field 41 (hostnameOverride) is newer than 1.33.
    let pod = Wire::new().msg(1, go_meta("p", "default")).msg(
        2,
        Wire::new()
            .str(41, "h")
            .msg(2, Wire::new().str(1, "c").str(99, "?")),
    );
    let d = decode(&envelope("v1", "Pod", &pod)).unwrap();
    assert_eq!(
        d.unknown_fields,
        vec![
            "unknown field number 41 in spec".to_string(),
            "unknown field number 99 in spec.containers[0]".to_string(),
        ]
    );
    assert_eq!(d.object["spec"], json!({"containers": [{"name": "c"}]}));
}

#[test]
fn a_body_without_the_magic_prefix_is_a_bad_request() {
    let s = decode(br#"{"kind":"ConfigMap"}"#).unwrap_err();
    assert_eq!(s.code, 400);
    assert!(s.message.contains("expected prefix"), "{}", s.message);
}

#[test]
fn a_truncated_message_is_a_bad_request() {
    let mut body = envelope("v1", "ConfigMap", &Wire::new().msg(1, go_meta("a", "b")));
    body.truncate(body.len() - 3);
    let s = decode(&body).unwrap_err();
    assert_eq!(s.code, 400, "{}", s.message);
    assert!(s.message.contains("malformed protobuf"), "{}", s.message);

    // A well-formed envelope whose raw object is garbage.
    let s = decode(&envelope(
        "v1",
        "ConfigMap",
        &Wire(vec![0x0a, 0xff, 0xff, 0xff]),
    ))
    .unwrap_err();
    assert_eq!(s.code, 400, "{}", s.message);
    assert!(
        s.message.contains("malformed protobuf ConfigMap"),
        "{}",
        s.message
    );
}

#[test]
fn kinds_without_a_schema_are_unsupported_media() {
    for (api_version, kind) in [
        ("batch/v1", "Job"),
        ("v1", "Nonsense"),
        ("apps/v1beta1", "Deployment"),
    ] {
        let s = decode(&envelope(api_version, kind, &Wire::new())).unwrap_err();
        assert_eq!(s.code, 415, "{api_version} {kind}: {}", s.message);
        assert!(s.message.contains(kind), "{}", s.message);
    }
}

#[test]
fn an_envelope_without_a_kind_is_a_bad_request() {
    let s = decode(&envelope("", "", &Wire::new())).unwrap_err();
    assert_eq!(s.code, 400);
}

#[test]
fn content_type_detection_ignores_parameters_and_case() {
    assert!(is_protobuf("application/vnd.kubernetes.protobuf"));
    assert!(is_protobuf(
        "Application/Vnd.Kubernetes.Protobuf; charset=binary"
    ));
    assert!(!is_protobuf("application/json"));
}

#[test]
fn every_served_kind_has_a_schema() {
    for info in crate::registry::RESOURCES {
        assert!(
            descriptor_for(&info.api_version(), info.kind).is_some(),
            "{} {}",
            info.api_version(),
            info.kind
        );
    }
}
