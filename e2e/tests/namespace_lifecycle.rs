//! A namespace's deletion as Kubernetes' namespace storage does it, through real kubectl
//! against one apiserver process (no controller-manager runs here): a delete marks the
//! namespace `Terminating` and keeps it while `spec.finalizers` holds `kubernetes`; an
//! update cannot remove that finalizer; `namespaces/<name>/finalize` (PUT only) can, and
//! then the namespace goes. The namespace controller that does this for real is tested
//! in pkg/controllers.

use std::time::Duration;

use rkube_e2e::cluster::Cluster;
use rkube_e2e::kubectl::Kubectl;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_namespace_terminates_until_its_kubernetes_finalizer_is_finalized_away() {
    let cluster = Cluster::start_api_single().await;
    let k = Kubectl::new(&cluster, None);
    let run = tokio::task::spawn_blocking(move || {
        k.ok(&["create", "namespace", "team"]);
        let ns = k.json(&["get", "namespace", "team"]);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]), "{ns}");
        assert_eq!(ns["status"]["phase"], "Active", "{ns}");

        k.ok(&["delete", "namespace", "team", "--wait=false"]);
        let ns = k.json(&["get", "namespace", "team"]);
        assert_eq!(ns["status"]["phase"], "Terminating", "{ns}");
        assert!(ns["metadata"]["deletionTimestamp"].is_string(), "{ns}");
        let table = k.ok(&["get", "namespace", "team", "--no-headers"]);
        assert!(table.contains("Terminating"), "{table}");
        // Nothing new may be created in it.
        let err = k.fails(&["-n", "team", "create", "configmap", "late"]);
        assert!(err.contains("because it is being terminated"), "{err}");

        // An ordinary update keeps spec.finalizers: only finalize writes it.
        k.ok(&[
            "patch",
            "namespace",
            "team",
            "--type=merge",
            "-p",
            r#"{"spec":{"finalizers":[]}}"#,
        ]);
        let ns = k.json(&["get", "namespace", "team"]);
        assert_eq!(ns["spec"]["finalizers"], json!(["kubernetes"]), "{ns}");

        // finalize takes a PUT only.
        let err = k.fails(&["get", "--raw", "/api/v1/namespaces/team/finalize"]);
        assert!(
            err.contains("MethodNotAllowed") || err.contains("405"),
            "{err}"
        );

        // Finalized: the namespace goes.
        let mut body = ns.clone();
        body["spec"]["finalizers"] = json!([]);
        k.ok_with(
            &[
                "replace",
                "--raw",
                "/api/v1/namespaces/team/finalize",
                "-f",
                "-",
            ],
            Some(&body.to_string()),
        );
        let err = k.fails(&["get", "namespace", "team"]);
        assert!(err.contains("NotFound"), "{err}");

        // With a finalizer of its own as well, the namespace waits for both.
        k.ok(&["create", "namespace", "held"]);
        k.ok(&[
            "patch",
            "namespace",
            "held",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
        ]);
        k.ok(&["delete", "namespace", "held", "--wait=false"]);
        let mut body = k.json(&["get", "namespace", "held"]);
        body["spec"]["finalizers"] = json!([]);
        k.ok_with(
            &[
                "replace",
                "--raw",
                "/api/v1/namespaces/held/finalize",
                "-f",
                "-",
            ],
            Some(&body.to_string()),
        );
        let ns = k.json(&["get", "namespace", "held"]);
        assert_eq!(ns["status"]["phase"], "Terminating", "{ns}");
        k.ok(&[
            "patch",
            "namespace",
            "held",
            "--type=merge",
            "-p",
            r#"{"metadata":{"finalizers":null}}"#,
        ]);
        let err = k.fails(&["get", "namespace", "held"]);
        assert!(err.contains("NotFound"), "{err}");
    });
    tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("the namespace lifecycle finishes in time")
        .unwrap();
}
