//! kubectl's typed `create` subcommands, which kubectl 1.32+ sends as Kubernetes
//! protobuf (`application/vnd.kubernetes.protobuf`), against a real cluster: the
//! objects must be stored as the same Kubernetes JSON a JSON client would get, and
//! protobuf bodies the server cannot read must be refused without storing anything.

use std::time::Duration;

use rkube_e2e::cluster::Cluster;
use rkube_e2e::http::Http;
use rkube_e2e::kubectl::Kubectl;
use serde_json::{json, Value};

const PROTOBUF: &str = "application/vnd.kubernetes.protobuf";

fn b64(s: &str) -> String {
    const ABC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in s.as_bytes().chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every typed create subcommand kubectl has for the kinds rkube serves, then the
/// stored objects as `kubectl get -o json` shows them.
fn create_and_check(k: &Kubectl) {
    let version = k.version();
    let ns = format!("team-{}", version.replace('.', "-"));
    let ns = ns.as_str();

    // kubectl really sends protobuf (otherwise this test would prove nothing).
    let (ok, _, log) = k.run(&["create", "namespace", ns, "-v=8"]);
    assert!(ok, "{log}");
    assert!(
        log.contains(&format!("Content-Type: {PROTOBUF}")),
        "kubectl {version} did not send protobuf:\n{log}"
    );
    let got = k.json(&["get", "namespace", ns]);
    assert_eq!(got["metadata"]["name"], ns);
    assert_eq!(got["status"]["phase"], "Active", "{got}");

    k.ok(&[
        "create",
        "configmap",
        "settings",
        "-n",
        ns,
        "--from-literal=mode=fast",
        "--from-literal=retries=3",
    ]);
    let cm = k.json(&["get", "configmap", "settings", "-n", ns]);
    assert_eq!(cm["data"], json!({"mode": "fast", "retries": "3"}));
    assert!(cm.get("binaryData").is_none(), "{cm}");

    k.ok(&[
        "create",
        "secret",
        "generic",
        "db",
        "-n",
        ns,
        "--from-literal=password=s3cr#t é",
        "--from-literal=user=admin",
    ]);
    let secret = k.json(&["get", "secret", "db", "-n", ns]);
    assert_eq!(secret["type"], "Opaque");
    assert_eq!(
        secret["data"],
        json!({"password": b64("s3cr#t é"), "user": b64("admin")})
    );
    // The value decodes back through kubectl too.
    let pw = k.ok(&[
        "get",
        "secret",
        "db",
        "-n",
        ns,
        "-o",
        "jsonpath={.data.password}",
    ]);
    assert_eq!(pw, b64("s3cr#t é"));

    k.ok(&[
        "create",
        "deployment",
        "web",
        "-n",
        ns,
        "--image=rkube.local/busybox:1.35",
        "--replicas=3",
        "--port=8080",
    ]);
    let d = k.json(&["get", "deployment", "web", "-n", ns]);
    assert_eq!(d["metadata"]["labels"], json!({"app": "web"}));
    assert_eq!(d["metadata"]["generation"], 1);
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(
        d["spec"]["selector"],
        json!({"matchLabels": {"app": "web"}})
    );
    assert_eq!(
        d["spec"]["template"]["metadata"]["labels"],
        json!({"app": "web"})
    );
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .unwrap();
    assert_eq!(containers.len(), 1, "{d}");
    assert_eq!(containers[0]["name"], "busybox");
    assert_eq!(containers[0]["image"], "rkube.local/busybox:1.35");
    assert_eq!(
        containers[0]["ports"],
        json!([{"containerPort": 8080, "protocol": "TCP"}])
    );
    // Defaults were applied to the decoded object as to a JSON one.
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert_eq!(d["spec"]["revisionHistoryLimit"], 10);

    // --replicas=0 is a pointer set to zero: it must not turn into the default 1.
    k.ok(&[
        "create",
        "deployment",
        "idle",
        "-n",
        ns,
        "--image=rkube.local/busybox:1.35",
        "--replicas=0",
    ]);
    let idle = k.json(&["get", "deployment", "idle", "-n", ns]);
    assert_eq!(idle["spec"]["replicas"], 0, "{idle}");

    k.ok(&["create", "serviceaccount", "robot", "-n", ns]);
    let sa = k.json(&["get", "serviceaccount", "robot", "-n", ns]);
    assert_eq!(sa["metadata"]["namespace"], ns);

    k.ok(&[
        "create",
        "role",
        "reader",
        "-n",
        ns,
        "--verb=get,list",
        "--resource=pods,configmaps",
    ]);
    let role = k.json(&["get", "role", "reader", "-n", ns]);
    assert_eq!(
        role["rules"],
        json!([{"apiGroups": [""], "resources": ["pods", "configmaps"], "verbs": ["get", "list"]}])
    );

    k.ok(&[
        "create",
        "rolebinding",
        "robot-reads",
        "-n",
        ns,
        "--role=reader",
        &format!("--serviceaccount={ns}:robot"),
    ]);
    let rb = k.json(&["get", "rolebinding", "robot-reads", "-n", ns]);
    assert_eq!(
        rb["roleRef"],
        json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reader"})
    );
    assert_eq!(
        rb["subjects"],
        json!([{"kind": "ServiceAccount", "name": "robot", "namespace": ns}])
    );

    let cr = format!("node-viewer-{ns}");
    k.ok(&[
        "create",
        "clusterrole",
        &cr,
        "--verb=get,watch",
        "--resource=nodes",
    ]);
    let got = k.json(&["get", "clusterrole", &cr]);
    assert_eq!(
        got["rules"],
        json!([{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "watch"]}])
    );

    let crb = format!("ops-{ns}");
    k.ok(&[
        "create",
        "clusterrolebinding",
        &crb,
        &format!("--clusterrole={cr}"),
        "--user=alice",
        "--group=ops",
    ]);
    let got = k.json(&["get", "clusterrolebinding", &crb]);
    assert_eq!(got["roleRef"]["kind"], "ClusterRole");
    assert_eq!(got["roleRef"]["name"], cr.as_str());
    assert_eq!(
        got["subjects"],
        json!([
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"},
            {"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "ops"}
        ])
    );

    k.ok(&[
        "create",
        "service",
        "clusterip",
        "web",
        "-n",
        ns,
        "--tcp=80:8080",
    ]);
    let svc = k.json(&["get", "service", "web", "-n", ns]);
    assert_eq!(svc["spec"]["selector"], json!({"app": "web"}));
    assert_eq!(
        svc["spec"]["ports"],
        json!([{"name": "80-8080", "port": 80, "protocol": "TCP", "targetPort": 8080}])
    );
    assert_eq!(svc["spec"]["type"], "ClusterIP");

    // A second create of the same name is the usual conflict, reported through protobuf too.
    let (ok, _, err) = k.run(&["create", "serviceaccount", "robot", "-n", ns]);
    assert!(
        !ok && err.contains(r#"serviceaccounts "robot" already exists"#),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_33_and_1_32_typed_create_subcommands_store_the_right_objects() {
    let cluster = Cluster::start_api_single().await;
    let kubectls = [
        Kubectl::new(&cluster, Some("1.33")),
        Kubectl::new(&cluster, Some("1.32")),
    ];
    let run = tokio::task::spawn_blocking(move || {
        for k in &kubectls {
            create_and_check(k);
        }
    });
    tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("kubectl runs finish in time")
        .unwrap();
}

/// A protobuf message written field by field (just what these tests send).
struct Wire(Vec<u8>);

impl Wire {
    fn new() -> Self {
        Wire(Vec::new())
    }

    fn bytes(mut self, field: u8, b: &[u8]) -> Self {
        assert!(field < 16 && b.len() < 128, "short fields only");
        self.0.push(field << 3 | 2);
        self.0.push(b.len() as u8);
        self.0.extend_from_slice(b);
        self
    }

    fn str(self, field: u8, s: &str) -> Self {
        self.bytes(field, s.as_bytes())
    }

    fn msg(self, field: u8, m: Wire) -> Self {
        self.bytes(field, &m.0)
    }
}

fn envelope(api_version: &str, kind: &str, raw: Wire) -> Vec<u8> {
    let mut body = b"k8s\0".to_vec();
    body.extend(
        Wire::new()
            .msg(1, Wire::new().str(1, api_version).str(2, kind))
            .bytes(2, &raw.0)
            .0,
    );
    body
}

/// POSTs `body` as `content_type`; see [`request`].
fn post(http: &Http, path: &str, content_type: &str, body: &[u8]) -> (u16, String, Value) {
    request(http, "POST", path, content_type, body)
}

/// One request accepting protobuf first, as kubectl 1.32+ does; asserts that the
/// reply is JSON all the same (with a body); returns the code, head and body.
fn request(
    http: &Http,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String, Value) {
    let r = http.request(method, path, content_type, body);
    assert!(r.is_json(), "responses stay JSON: {}", r.head);
    assert!(!r.body.is_null(), "a JSON body: {}", r.head);
    (r.code, r.head, r.body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_bodies_the_server_cannot_read_are_refused_and_nothing_is_stored() {
    let cluster = Cluster::start_api_single().await;
    let http = Http::new(
        &cluster.endpoint(0),
        &format!("{PROTOBUF}, application/json"),
        Duration::from_secs(10),
    );
    let k = Kubectl::new(&cluster, Some("1.33"));
    let run = tokio::task::spawn_blocking(move || {
        let path = "/api/v1/namespaces/default/configmaps";
        let meta = |name: &str| Wire::new().str(1, name);

        // Not a Kubernetes protobuf envelope at all.
        let (code, _, status) = post(&http, path, PROTOBUF, br#"{"kind":"ConfigMap"}"#);
        assert_eq!(code, 400, "{status}");
        assert_eq!(status["kind"], "Status");
        assert_eq!(status["reason"], "BadRequest");

        // The right envelope around a truncated ConfigMap.
        let mut body = envelope("v1", "ConfigMap", Wire::new().msg(1, meta("broken")));
        body.truncate(body.len() - 2);
        let (code, _, status) = post(&http, path, PROTOBUF, &body);
        assert_eq!(code, 400, "{status}");

        // A kind this server has no protobuf schema for.
        let body = envelope("v1", "ResourceQuota", Wire::new().msg(1, meta("quota")));
        let (code, _, status) = post(&http, path, PROTOBUF, &body);
        assert_eq!(code, 415, "{status}");
        assert_eq!(status["reason"], "UnsupportedMediaType");

        // A served kind posted to another kind's path.
        let body = envelope("v1", "Secret", Wire::new().msg(1, meta("misplaced")));
        let (code, _, status) = post(&http, path, PROTOBUF, &body);
        assert_eq!(code, 400, "{status}");

        // A field Kubernetes 1.33 does not have (ConfigMap field 9): dropped, as
        // Kubernetes drops unknown protobuf fields even under fieldValidation=Strict
        // (kubectl's default, and a newer kubectl may send fields we lack), with a
        // warning unless the client asked to ignore them.
        let with_unknown = |name: &str| {
            envelope(
                "v1",
                "ConfigMap",
                Wire::new().msg(1, meta(name)).str(9, "?"),
            )
        };
        let strict = format!("{path}?fieldValidation=Strict");
        let (code, head, obj) = post(&http, &strict, PROTOBUF, &with_unknown("extra-strict"));
        assert_eq!(code, 201, "{obj}");
        assert!(head.contains("unknown field number 9"), "{head}");
        assert_eq!(obj["metadata"]["name"], "extra-strict");
        let ignore = format!("{path}?fieldValidation=Ignore");
        let (code, head, obj) = post(&http, &ignore, PROTOBUF, &with_unknown("extra-ignored"));
        assert_eq!(code, 201, "{obj}");
        assert!(!head.contains("unknown field number 9"), "{head}");
        let (code, head, obj) = post(&http, path, PROTOBUF, &with_unknown("extra"));
        assert_eq!(code, 201, "{obj}");
        assert!(head.contains("unknown field number 9"), "{head}");
        assert_eq!(obj["metadata"]["name"], "extra");

        // DeleteOptions arrive as protobuf too (client-go's typed clients): a uid
        // precondition that does not match is a conflict, and nothing is deleted.
        let wrong_uid = envelope(
            "v1",
            "DeleteOptions",
            Wire::new().msg(2, Wire::new().str(1, "not-the-uid")),
        );
        let (code, _, status) = request(
            &http,
            "DELETE",
            &format!("{path}/extra"),
            PROTOBUF,
            &wrong_uid,
        );
        assert_eq!(code, 409, "{status}");
        // A ConfigMap is no DeleteOptions.
        let (code, _, status) = request(
            &http,
            "DELETE",
            &format!("{path}/extra"),
            PROTOBUF,
            &with_unknown("extra"),
        );
        assert_eq!(code, 400, "{status}");

        // Only the accepted ones were stored.
        let names = k.ok(&["get", "configmaps", "-n", "default", "-o", "name"]);
        let mut names: Vec<&str> = names.lines().collect();
        names.sort();
        assert_eq!(
            names,
            [
                "configmap/extra",
                "configmap/extra-ignored",
                "configmap/extra-strict"
            ]
        );
        let secrets = k.ok(&["get", "secrets", "-n", "default", "-o", "name"]);
        assert_eq!(secrets.trim(), "");
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("requests finish in time")
        .unwrap();
}
