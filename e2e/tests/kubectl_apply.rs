//! Real kubectl (1.33 and 1.27) against the OpenAPI documents of a
//! cluster started by `rkube up --nodes 0` (kubectl through DIR/kubeconfig:
//! HTTPS via the load balancer, the admin certificate): `apply` creates and then patches with the merge
//! keys the v3 documents publish, `explain` prints the types' docs, and
//! strict validation is left to the server, which refuses unknown fields.

use std::time::Duration;

use rkube_e2e::kubectl::Kubectl;
use rkube_e2e::local::LocalCluster;

/// The kubectl releases these tests drive, as `kubectl.<version>` beside the
/// `kubectl` on the PATH.
const VERSIONS: &[&str] = &["1.33", "1.27"];

async fn cluster() -> LocalCluster {
    tokio::task::spawn_blocking(LocalCluster::up).await.unwrap()
}

/// One kubectl of each of [`VERSIONS`].
fn clients(cluster: &LocalCluster) -> Vec<Kubectl> {
    VERSIONS
        .iter()
        .map(|&v| Kubectl::with_kubeconfig(&cluster.kubeconfig(), cluster.dir(), Some(v)))
        .collect()
}

/// A deployment with two containers; `replicas` and the second container's
/// image vary between applies, and `with_sidecar: false` drops it.
fn deployment(ns: &str, replicas: u32, sidecar_image: &str, with_sidecar: bool) -> String {
    let sidecar = if with_sidecar {
        format!(
            r#",{{"name":"sidecar","image":"{sidecar_image}","env":[{{"name":"MODE","value":"{replicas}"}}]}}"#
        )
    } else {
        String::new()
    };
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"web","namespace":"{ns}","labels":{{"app":"web"}}}},
"spec":{{"replicas":{replicas},"selector":{{"matchLabels":{{"app":"web"}}}},
"template":{{"metadata":{{"labels":{{"app":"web"}}}},"spec":{{"containers":[
{{"name":"main","image":"nginx:1","ports":[{{"containerPort":80}}]}}{sidecar}]}}}}}}}}"#
    )
}

fn stored(k: &Kubectl, ns: &str) -> serde_json::Value {
    serde_json::from_str(&k.ok(&["-n", ns, "get", "deployment", "web", "-o", "json"])).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_creates_then_patches_by_merge_key_and_keeps_the_last_applied_configuration()
{
    let cluster = cluster().await;
    let clients = clients(&cluster);
    tokio::time::timeout(
        Duration::from_secs(180),
        tokio::task::spawn_blocking(move || {
            for k in clients {
                let ns = format!("apply-{}", k.version().replace('.', "-"));
                k.ok(&["create", "namespace", &ns]);

                let out = k.ok_with(
                    &["apply", "-f", "-"],
                    Some(&deployment(&ns, 1, "busybox:1", true)),
                );
                assert!(out.contains("deployment.apps/web created"), "{out}");
                let d = stored(&k, &ns);
                let last = d["metadata"]["annotations"]
                    ["kubectl.kubernetes.io/last-applied-configuration"]
                    .as_str()
                    .expect("last-applied annotation after the first apply");
                assert!(last.contains("\"replicas\":1"), "{last}");

                // The second apply is a strategic merge patch computed from the
                // served OpenAPI v3 document, not a replace.
                let (ok, out, err) = k.run_with(
                    &["apply", "-f", "-", "-v=6"],
                    Some(&deployment(&ns, 3, "busybox:2", true)),
                    &[],
                );
                assert!(ok, "{out}\n{err}");
                assert!(out.contains("deployment.apps/web configured"), "{out}");
                assert!(
                    err.contains("/openapi/v3/apis/apps/v1?hash=") && err.contains("200 OK"),
                    "kubectl did not read the apps/v1 document:\n{err}"
                );
                assert!(
                    err.contains("PATCH")
                        && !err.contains("verb=\"PUT\"")
                        && !err.contains("PUT http"),
                    "the second apply was not a patch:\n{err}"
                );
                assert!(
                    !err.contains("error calculating patch from openapi"),
                    "kubectl could not use the v3 document:\n{err}"
                );
                let d = stored(&k, &ns);
                assert_eq!(d["spec"]["replicas"], 3, "{d}");
                let containers = &d["spec"]["template"]["spec"]["containers"];
                assert_eq!(containers[0]["name"], "main", "{containers}");
                assert_eq!(containers[0]["image"], "nginx:1", "{containers}");
                assert_eq!(
                    containers[0]["ports"][0]["containerPort"], 80,
                    "{containers}"
                );
                assert_eq!(containers[1]["name"], "sidecar", "{containers}");
                assert_eq!(containers[1]["image"], "busybox:2", "{containers}");
                assert_eq!(containers[1]["env"][0]["value"], "3", "{containers}");
                let last = d["metadata"]["annotations"]
                    ["kubectl.kubernetes.io/last-applied-configuration"]
                    .as_str()
                    .unwrap();
                assert!(last.contains("\"replicas\":3"), "{last}");
                assert!(d["metadata"]["generation"].as_i64() >= Some(2), "{d}");

                // Dropping a container from the manifest deletes just that
                // element (a `$patch: delete` keyed by name).
                let out = k.ok_with(
                    &["apply", "-f", "-"],
                    Some(&deployment(&ns, 3, "busybox:2", false)),
                );
                assert!(out.contains("configured"), "{out}");
                let containers = stored(&k, &ns)["spec"]["template"]["spec"]["containers"].clone();
                assert_eq!(containers.as_array().map(Vec::len), Some(1), "{containers}");
                assert_eq!(containers[0]["name"], "main", "{containers}");

                // Applying the same manifest again changes nothing.
                let out = k.ok_with(
                    &["apply", "-f", "-"],
                    Some(&deployment(&ns, 3, "busybox:2", false)),
                );
                assert!(out.contains("unchanged"), "{out}");
            }
        }),
    )
    .await
    .expect("kubectl apply finished in time")
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_explain_prints_the_field_docs_of_the_served_schemas() {
    let cluster = cluster().await;
    let clients = clients(&cluster);
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || {
            for k in &clients {
                let out = k.ok(&["explain", "deployment.spec.replicas"]);
                assert!(
                    out.contains("KIND:       Deployment")
                        && out.contains("replicas <integer>")
                        && out.contains("Number of desired pods"),
                    "kubectl {}:\n{out}",
                    k.version()
                );
                let out = k.ok(&["explain", "pods.spec.containers"]);
                assert!(
                    out.contains("containers <[]Container>")
                        && out.contains("List of containers belonging to the pod")
                        && out.contains("image\t<string>"),
                    "kubectl {}:\n{out}",
                    k.version()
                );
                assert!(
                    out.lines()
                        .any(|l| l.contains("name\t<string>") && l.contains("-required-")),
                    "kubectl {}:\n{out}",
                    k.version()
                );
                let out = k.ok(&["explain", "deployment"]);
                assert!(
                    out.lines()
                        .any(|l| l.trim_start().starts_with("metadata\t")
                            && !l.contains("-required-")),
                    "metadata is optional, as in Kubernetes:\n{out}"
                );
                let (ok, _, err) = k.run(&["explain", "deployment.spec.nosuchfield"]);
                assert!(!ok && err.contains("nosuchfield"), "{err}");
            }
            // The Swagger 2.0 document (protobuf) explains too.
            let out = clients[0].ok(&[
                "explain",
                "pods.spec.containers.ports",
                "--output=plaintext-openapiv2",
            ]);
            assert!(
                out.contains("RESOURCE: ports <[]Object>") && out.contains("containerPort"),
                "{out}"
            );
        }),
    )
    .await
    .expect("kubectl explain finished in time")
    .unwrap();
}

const BAD_CONFIGMAP: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"NAME"},"data":{"a":"1"},"bogus":1}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_create_with_an_unknown_field_fails_under_strict_validation() {
    let cluster = cluster().await;
    let clients = clients(&cluster);
    tokio::time::timeout(
        Duration::from_secs(120),
        tokio::task::spawn_blocking(move || {
            for k in clients {
                let name = format!("bad-{}", k.version().replace('.', "-"));
                let manifest = BAD_CONFIGMAP.replace("NAME", &name);
                // The default is --validate=strict: kubectl sees in the v3
                // document that the server validates fields, and sends
                // fieldValidation=Strict instead of validating itself.
                let (ok, out, err) =
                    k.run_with(&["create", "-f", "-", "-v=6"], Some(&manifest), &[]);
                assert!(!ok, "kubectl {} created it:\n{out}", k.version());
                assert!(
                    err.contains("fieldValidation=Strict")
                        && err.contains("BadRequest")
                        && err.contains("unknown field \"bogus\""),
                    "kubectl {}:\n{err}",
                    k.version()
                );
                let (ok, _, err) = k.run(&["get", "configmap", &name]);
                assert!(!ok && err.contains("not found"), "{err}");

                // Without validation the server drops the field and stores the rest.
                k.ok_with(&["create", "-f", "-", "--validate=false"], Some(&manifest));
                let data = k.ok(&["get", "configmap", &name, "-o", "jsonpath={.data.a}"]);
                assert_eq!(data, "1");
            }
        }),
    )
    .await
    .expect("kubectl create finished in time")
    .unwrap();
}
