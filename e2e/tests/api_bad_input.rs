//! Bad input to the REST door, over raw HTTP/1.1: every refusal is a Kubernetes
//! `Status` with the right code and reason, and nothing refused is stored.
//! Also what a raw client may send that kubectl does not: YAML bodies, Scale
//! writes with a stale resourceVersion, and bad `pods/log` options.

use std::time::Duration;

use rkube_e2e::cluster::Cluster;
use rkube_e2e::http::{Http, Reply};
use serde_json::{json, Value};

const JSON: &str = "application/json";
const YAML: &str = "application/yaml";
const CONFIGMAPS: &str = "/api/v1/namespaces/default/configmaps";

/// Requests to replica 0 of `cluster`, accepting JSON.
fn http(cluster: &Cluster) -> Http {
    Http::new(&cluster.endpoint(0), JSON, Duration::from_secs(30))
}

/// Asserts a `Status` reply of `code` and `reason`; returns its message.
fn status(r: &Reply, code: u16, reason: &str) -> String {
    assert_eq!(r.code, code, "{}\n{}", r.head, r.body);
    assert!(r.is_json(), "{}", r.head);
    assert_eq!(r.body["kind"], "Status", "{}", r.body);
    assert_eq!(r.body["apiVersion"], "v1", "{}", r.body);
    assert_eq!(r.body["status"], "Failure", "{}", r.body);
    assert_eq!(r.body["code"], code, "{}", r.body);
    assert_eq!(r.body["reason"], reason, "{}", r.body);
    r.body["message"].as_str().unwrap().to_string()
}

fn names(http: &Http, path: &str) -> Vec<String> {
    let r = http.request("GET", path, JSON, b"");
    assert_eq!(r.code, 200, "{}", r.body);
    let mut names: Vec<String> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

fn configmap(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": {"a": "1"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_get_status_errors_and_nothing_is_stored() {
    let cluster = Cluster::start_api_single().await;
    let api = http(&cluster);
    let run = tokio::task::spawn_blocking(move || {
        let post = |ct: &str, path: &str, body: &[u8]| api.request("POST", path, ct, body);

        // Malformed JSON.
        let r = post(
            JSON,
            CONFIGMAPS,
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"broken""#,
        );
        status(&r, 400, "BadRequest");

        // YAML bodies are accepted, as Kubernetes accepts them; malformed YAML is not.
        let r = post(
            YAML,
            CONFIGMAPS,
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: from-yaml\ndata:\n  a: \"1\"\n",
        );
        assert_eq!(r.code, 201, "{}", r.body);
        assert_eq!(r.body["data"]["a"], "1");
        let r = post(
            YAML,
            CONFIGMAPS,
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad-yaml\n bad: [\n",
        );
        let msg = status(&r, 400, "BadRequest");
        assert!(msg.contains("YAML"), "{msg}");
        // A media type the server does not read.
        let r = post("text/plain", CONFIGMAPS, b"name: x");
        status(&r, 415, "UnsupportedMediaType");

        // Unknown fields: refused under Strict, a Warning header under Warn.
        let mut unknown = configmap("strict");
        unknown["bogus"] = json!(1);
        unknown["data"]["b"] = json!("2");
        let body = serde_json::to_vec(&unknown).unwrap();
        let r = post(JSON, &format!("{CONFIGMAPS}?fieldValidation=Strict"), &body);
        let msg = status(&r, 400, "BadRequest");
        assert!(
            msg.contains(r#"strict decoding error: unknown field "bogus""#),
            "{msg}"
        );
        let mut warned = unknown.clone();
        warned["metadata"]["name"] = json!("warned");
        let r = post(
            JSON,
            &format!("{CONFIGMAPS}?fieldValidation=Warn"),
            &serde_json::to_vec(&warned).unwrap(),
        );
        assert_eq!(r.code, 201, "{}", r.body);
        assert!(
            r.head.to_ascii_lowercase().contains("warning: 299")
                && r.head.contains(r#"unknown field 'bogus'"#),
            "{}",
            r.head
        );
        let r = post(
            YAML,
            &format!("{CONFIGMAPS}?fieldValidation=Strict"),
            b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: strict-yaml\nbogus: 1\n",
        );
        status(&r, 400, "BadRequest");

        // A body whose kind is not the URL's.
        let secret =
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "misplaced"}});
        let r = post(JSON, CONFIGMAPS, &serde_json::to_vec(&secret).unwrap());
        status(&r, 400, "BadRequest");
        let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "misplaced"}});
        let r = post(JSON, CONFIGMAPS, &serde_json::to_vec(&deployment).unwrap());
        status(&r, 400, "BadRequest");

        // Names that are not DNS-1123 subdomains: 422 Invalid naming the field.
        for bad in ["Bad_Name", "-leading", "trailing-", "UPPER"] {
            let r = post(
                JSON,
                CONFIGMAPS,
                &serde_json::to_vec(&configmap(bad)).unwrap(),
            );
            let msg = status(&r, 422, "Invalid");
            assert!(
                msg.starts_with(&format!("ConfigMap \"{bad}\" is invalid: metadata.name: Invalid value: \"{bad}\": a lowercase RFC 1123 subdomain")),
                "{msg}"
            );
            let causes = r.body["details"]["causes"].as_array().unwrap();
            assert_eq!(causes[0]["field"], "metadata.name", "{}", r.body);
            assert_eq!(causes[0]["reason"], "FieldValueInvalid", "{}", r.body);
            assert_eq!(r.body["details"]["kind"], "ConfigMap", "{}", r.body);
        }
        // A namespace must be a DNS-1123 label: no dots.
        let r = post(
            JSON,
            "/api/v1/namespaces",
            br#"{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"a.b"}}"#,
        );
        status(&r, 422, "Invalid");

        // A body over 3 MiB.
        let mut big = configmap("big");
        big["data"]["a"] = json!("x".repeat(3 * 1024 * 1024 + 1024));
        let r = post(JSON, CONFIGMAPS, &serde_json::to_vec(&big).unwrap());
        let msg = status(&r, 413, "RequestEntityTooLarge");
        assert_eq!(msg, "Request entity too large: limit is 3145728");
        // Also as an update of something that exists.
        let r = api.request(
            "PUT",
            &format!("{CONFIGMAPS}/from-yaml"),
            JSON,
            &serde_json::to_vec(&big).unwrap(),
        );
        status(&r, 413, "RequestEntityTooLarge");

        // NamespaceLifecycle admission: the namespaces every cluster relies on
        // cannot be deleted (dry run or not), and nothing is created in a
        // namespace that does not exist.
        for ns in ["default", "kube-system", "kube-public"] {
            for query in ["", "?dryRun=All"] {
                let r = api.request(
                    "DELETE",
                    &format!("/api/v1/namespaces/{ns}{query}"),
                    JSON,
                    b"",
                );
                let msg = status(&r, 403, "Forbidden");
                assert_eq!(
                    msg,
                    format!("namespaces \"{ns}\" is forbidden: this namespace may not be deleted")
                );
            }
        }
        assert!(names(&api, "/api/v1/namespaces").contains(&"kube-system".to_string()));
        let r = api.request(
            "POST",
            "/api/v1/namespaces/nowhere/configmaps",
            JSON,
            configmap("lost").to_string().as_bytes(),
        );
        status(&r, 404, "NotFound");

        // A verb the resource does not serve at that path: 405 MethodNotAllowed.
        let r = api.request(
            "POST",
            &format!("{CONFIGMAPS}/from-yaml"),
            JSON,
            configmap("from-yaml").to_string().as_bytes(),
        );
        status(&r, 405, "MethodNotAllowed");

        // Only what was accepted is stored.
        assert_eq!(names(&api, CONFIGMAPS), ["from-yaml", "warned"]);
        assert_eq!(
            names(&api, "/api/v1/namespaces/default/secrets"),
            Vec::<String>::new()
        );
        assert!(!names(&api, "/api/v1/namespaces").contains(&"a.b".to_string()));
        let r = api.request("GET", &format!("{CONFIGMAPS}/from-yaml"), JSON, b"");
        assert_eq!(
            r.body["data"],
            json!({"a": "1"}),
            "the big update was not applied"
        );
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("requests finish in time")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_and_log_subresources_refuse_bad_requests_like_kubernetes() {
    let cluster = Cluster::start_api_single().await;
    let api = http(&cluster);
    let run = tokio::task::spawn_blocking(move || {
        let deployments = "/apis/apps/v1/namespaces/default/deployments";
        let web = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox"}]}}}
        });
        let r = api.request(
            "POST",
            deployments,
            JSON,
            &serde_json::to_vec(&web).unwrap(),
        );
        assert_eq!(r.code, 201, "{}", r.body);
        let scale_path = format!("{deployments}/web/scale");

        let r = api.request("GET", &scale_path, JSON, b"");
        assert_eq!(r.code, 200, "{}", r.body);
        let scale = r.body;
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["spec"]["replicas"], 2);
        assert_eq!(
            scale["status"],
            json!({"replicas": 0, "selector": "app=web"})
        );

        // A write with the Scale's resourceVersion succeeds and moves the parent.
        let mut up = scale.clone();
        up["spec"]["replicas"] = json!(3);
        let r = api.request("PUT", &scale_path, JSON, &serde_json::to_vec(&up).unwrap());
        assert_eq!(r.code, 200, "{}", r.body);
        assert_eq!(r.body["spec"]["replicas"], 3);
        assert_ne!(
            r.body["metadata"]["resourceVersion"],
            scale["metadata"]["resourceVersion"]
        );
        // The same stale resourceVersion again: a conflict on the deployment.
        up["spec"]["replicas"] = json!(7);
        let r = api.request("PUT", &scale_path, JSON, &serde_json::to_vec(&up).unwrap());
        let msg = status(&r, 409, "Conflict");
        assert_eq!(
            msg,
            "Operation cannot be fulfilled on deployments.apps \"web\": the object has been modified; please apply your changes to the latest version and try again"
        );
        // Negative replicas: 422 on the Scale.
        let r = api.request(
            "PATCH",
            &scale_path,
            "application/merge-patch+json",
            br#"{"spec":{"replicas":-1}}"#,
        );
        let msg = status(&r, 422, "Invalid");
        assert!(
            msg.starts_with("Scale.autoscaling \"web\" is invalid: spec.replicas"),
            "{msg}"
        );
        // Another kind in the body.
        let r = api.request("PUT", &scale_path, JSON, &serde_json::to_vec(&web).unwrap());
        status(&r, 400, "BadRequest");
        // A merge patch without a resourceVersion always applies.
        let r = api.request(
            "PATCH",
            &scale_path,
            "application/merge-patch+json",
            br#"{"spec":{"replicas":4}}"#,
        );
        assert_eq!(r.code, 200, "{}", r.body);
        let r = api.request("GET", &format!("{deployments}/web"), JSON, b"");
        assert_eq!(r.body["spec"]["replicas"], 4, "{}", r.body);
        assert_eq!(r.body["metadata"]["generation"], 3, "{}", r.body);
        // Scale of something that does not exist, or has no scale.
        let r = api.request("GET", &format!("{deployments}/nope/scale"), JSON, b"");
        status(&r, 404, "NotFound");
        let r = api.request(
            "GET",
            "/api/v1/namespaces/default/configmaps/x/scale",
            JSON,
            b"",
        );
        status(&r, 404, "NotFound");

        // pods/log: bad options are 422 on PodLogOptions; a pod on no node has no logs (204).
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                         "spec": {"containers": [{"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox"}]}});
        let pods = "/api/v1/namespaces/default/pods";
        let r = api.request("POST", pods, JSON, &serde_json::to_vec(&pod).unwrap());
        assert_eq!(r.code, 201, "{}", r.body);
        let r = api.request(
            "GET",
            &format!("{pods}/p/log?container=a&tailLines=-1"),
            JSON,
            b"",
        );
        let msg = status(&r, 422, "Invalid");
        assert!(
            msg.starts_with("PodLogOptions \"p\" is invalid: tailLines"),
            "{msg}"
        );
        let r = api.request("GET", &format!("{pods}/p/log"), JSON, b"");
        let msg = status(&r, 400, "BadRequest");
        assert_eq!(
            msg,
            "a container name must be specified for pod p, choose one of: [a b]"
        );
        let r = api.request("GET", &format!("{pods}/p/log?container=a"), JSON, b"");
        assert_eq!(r.code, 204, "{}", r.head);
        let r = api.request("GET", &format!("{pods}/nope/log"), JSON, b"");
        status(&r, 404, "NotFound");
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("requests finish in time")
        .unwrap();
}
