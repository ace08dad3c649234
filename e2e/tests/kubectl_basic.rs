//! Real kubectl against the REST front door of a three-replica cluster of the
//! e2e harness (plain HTTP, anonymous requests allowed). TLS, credentials and
//! the load-balanced kubeconfig of `rkube up` are tested in kubectl_tls.rs.

use std::time::{Duration, Instant};

use rkube_e2e::cluster::{Cluster, Options};
use rkube_e2e::kubectl::Kubectl;

const CM: &str = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cfg","labels":{"app":"demo"}},"data":{"a":"1"}}"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_creates_reads_patches_and_deletes_through_the_rest_api() {
    let mut cluster = Cluster::start_with(Options {
        system_namespaces: true,
        ..Default::default()
    })
    .await;
    cluster.leader(Duration::from_secs(30)).await;
    let k = Kubectl::new(&cluster, None);
    tokio::task::spawn_blocking(move || {
        let v = k.ok(&["version", "-o", "json"]);
        assert!(v.contains("\"serverVersion\""), "{v}");
        let res = k.ok(&["api-resources"]);
        for r in [
            "configmaps",
            "deployments",
            "pods",
            "leases",
            "clusterroles",
        ] {
            assert!(res.contains(r), "api-resources lacks {r}:\n{res}");
        }
        // The system namespaces exist.
        let ns = k.ok(&["get", "namespaces", "-o", "name"]);
        assert!(
            ns.contains("namespace/default") && ns.contains("namespace/kube-system"),
            "{ns}"
        );

        let (ok, out, err) = k.run_with(&["create", "-f", "-"], Some(CM), &[]);
        assert!(ok, "{out}{err}");
        let got = k.ok(&[
            "get",
            "configmap",
            "cfg",
            "-o",
            "jsonpath={.data.a} {.metadata.uid}",
        ]);
        assert!(got.starts_with("1 ") && got.len() > 10, "{got}");
        // Creating it again is a conflict with Kubernetes' message.
        let (ok, _, err) = k.run_with(&["create", "-f", "-"], Some(CM), &[]);
        assert!(
            !ok && err.contains("AlreadyExists")
                && err.contains("configmaps \"cfg\" already exists"),
            "{err}"
        );

        k.ok(&["label", "configmap", "cfg", "env=prod"]);
        k.ok(&["annotate", "configmap", "cfg", "note=hi"]);
        k.ok(&[
            "patch",
            "configmap",
            "cfg",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"b":"2"}}"#,
        ]);
        k.ok(&[
            "patch",
            "configmap",
            "cfg",
            "--type",
            "json",
            "-p",
            r#"[{"op":"add","path":"/data/c","value":"3"}]"#,
        ]);
        k.ok(&["patch", "configmap", "cfg", "-p", r#"{"data":{"d":"4"}}"#]);
        let data = k.ok(&["get", "cm", "cfg", "-o", "jsonpath={.data}"]);
        for kv in ["\"a\":\"1\"", "\"b\":\"2\"", "\"c\":\"3\"", "\"d\":\"4\""] {
            assert!(data.contains(kv), "{data}");
        }
        assert!(k
            .ok(&["get", "cm", "-l", "env=prod", "-o", "name"])
            .contains("configmap/cfg"));
        assert!(!k
            .ok(&["get", "cm", "-l", "env=dev", "-o", "name"])
            .contains("configmap/cfg"));

        // A stale update is refused with a conflict.
        let stale = k.ok(&["get", "cm", "cfg", "-o", "json"]);
        k.ok(&["label", "cm", "cfg", "again=yes"]);
        let (ok, _, err) = k.run_with(&["replace", "-f", "-"], Some(&stale), &[]);
        assert!(!ok && err.contains("the object has been modified"), "{err}");

        // Pods print with Kubernetes' columns.
        k.ok(&["run", "pod1", "--image=busybox", "--", "sleep", "1000"]);
        let wide = k.ok(&["get", "pods", "-o", "wide"]);
        assert!(
            wide.contains("NOMINATED NODE") && wide.contains("pod1") && wide.contains("Pending"),
            "{wide}"
        );

        // Dry run stores nothing.
        let (ok, out, err) = k.run_with(
            &["create", "-f", "-", "--dry-run=server", "-o", "name"],
            Some(&CM.replace("\"cfg\"", "\"dry\"")),
            &[],
        );
        assert!(ok, "{out}{err}");
        let (ok, _, err) = k.run(&["get", "cm", "dry"]);
        assert!(!ok && err.contains("NotFound"), "{err}");

        k.ok(&["delete", "cm", "cfg"]);
        let (ok, _, err) = k.run(&["get", "cm", "cfg"]);
        assert!(!ok && err.contains("configmaps \"cfg\" not found"), "{err}");
    })
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_watch_sees_a_later_change() {
    let mut cluster = Cluster::start_with(Options {
        system_namespaces: true,
        ..Default::default()
    })
    .await;
    cluster.leader(Duration::from_secs(30)).await;
    let k = Kubectl::new(&cluster, Some("1.27"));
    tokio::task::spawn_blocking(move || {
        k.ok(&["create", "namespace", "w"]);
        let (ok, out, err) = k.run_with(&["-n", "w", "create", "-f", "-"], Some(CM), &[]);
        assert!(ok, "{out}{err}");
        let mut watch = k
            .command(&[
                "-n",
                "w",
                "get",
                "cm",
                "-w",
                "-o",
                "jsonpath={.metadata.name}={.data.a}{\"\\n\"}",
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = watch.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
            {
                let _ = tx.send(line);
            }
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(20)).unwrap(), "cfg=1");
        k.ok(&[
            "-n",
            "w",
            "patch",
            "cm",
            "cfg",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"a":"2"}}"#,
        ]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        while Instant::now() < deadline {
            if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
                if l == "cfg=2" {
                    seen = true;
                    break;
                }
            }
        }
        let _ = watch.kill();
        let _ = watch.wait();
        assert!(seen, "the watch did not show the change");
    })
    .await
    .unwrap();
}
