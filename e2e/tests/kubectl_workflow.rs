//! The everyday kubectl workflow against a cluster started by `rkube up --nodes 0`, repeated for
//! kubectl 1.27, 1.32 and 1.33 (the oldest, the default and the newest
//! installed), each in its own namespace of one cluster: api-versions,
//! describe, every `-o` format, scale (also with its preconditions), edit
//! through a non-interactive EDITOR, `get -w` seeing a later change, a stale
//! replace refused, logs of a pod that is on no node, and deletes with
//! `--grace-period` and each `--cascade` mode.
//!
//! Deletion semantics while no garbage collector runs: `--cascade=foreground`
//! and `--cascade=orphan` leave the object terminating (deletionTimestamp set,
//! the `foregroundDeletion` or `orphan` finalizer added, as Kubernetes does) until
//! something removes the finalizer; removing it completes the delete.

use std::io::BufRead;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rkube_e2e::kubectl::Kubectl;
use rkube_e2e::local::LocalCluster;
use serde_json::Value;

/// The kubectl releases driven here.
const VERSIONS: &[&str] = &["1.27", "1.32", "1.33"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_1_27_1_32_and_1_33_run_the_everyday_workflow() {
    // As users run it: `rkube up --nodes 0`, kubectl through DIR/kubeconfig
    // (HTTPS via the load balancer, the admin's client certificate).
    let cluster = tokio::task::spawn_blocking(LocalCluster::up).await.unwrap();
    let ks: Vec<Kubectl> = VERSIONS
        .iter()
        .map(|&v| Kubectl::with_kubeconfig(&cluster.kubeconfig(), cluster.dir(), Some(v)))
        .collect();
    let run = tokio::task::spawn_blocking(move || {
        for k in &ks {
            workflow(k);
        }
    });
    tokio::time::timeout(Duration::from_secs(600), run)
        .await
        .expect("the workflow finishes in time")
        .unwrap();
}

fn workflow(k: &Kubectl) {
    let ns = format!("wf-{}", k.version().replace('.', ""));
    let ns = ns.as_str();

    // Version and discovery.
    let v = k.json(&["version"]);
    assert_eq!(v["serverVersion"]["major"], "1", "{}: {v}", k.version());
    assert_eq!(v["serverVersion"]["minor"], "33", "{}: {v}", k.version());
    let resources = k.ok(&["api-resources", "-o", "name"]);
    for r in [
        "pods",
        "deployments.apps",
        "leases.coordination.k8s.io",
        "roles.rbac.authorization.k8s.io",
    ] {
        assert!(
            resources.lines().any(|l| l == r),
            "{}: api-resources lacks {r}:\n{resources}",
            k.version()
        );
    }
    let versions = k.ok(&["api-versions"]);
    for gv in [
        "v1",
        "apps/v1",
        "coordination.k8s.io/v1",
        "rbac.authorization.k8s.io/v1",
    ] {
        assert!(
            versions.lines().any(|l| l == gv),
            "{}: api-versions lacks {gv}:\n{versions}",
            k.version()
        );
    }

    // Objects to work on.
    k.ok(&["create", "namespace", ns]);
    k.ok(&[
        "-n",
        ns,
        "create",
        "configmap",
        "cfg",
        "--from-literal=a=edit-me",
    ]);
    k.ok(&[
        "-n",
        ns,
        "create",
        "secret",
        "generic",
        "creds",
        "--from-literal=password=hunter22",
    ]);
    k.ok(&[
        "-n",
        ns,
        "create",
        "deployment",
        "web",
        "--image=busybox:1.36",
        "--replicas=2",
    ]);

    describe(k, ns);
    output_formats(k, ns);
    scale(k, ns);
    edit(k, ns);
    watch_sees_a_later_change(k, ns);
    stale_replace_is_a_conflict(k, ns);
    logs_of_a_pod_on_no_node(k, ns);
    deletes(k, ns);
}

fn describe(k: &Kubectl, ns: &str) {
    let d = k.ok(&["describe", "namespace", ns]);
    assert!(
        d.contains("Name:") && d.contains(ns) && d.contains("Active"),
        "{d}"
    );
    let d = k.ok(&["-n", ns, "describe", "configmap", "cfg"]);
    assert!(
        d.contains("cfg") && d.contains("edit-me") && d.contains("Data"),
        "{d}"
    );
    let d = k.ok(&["-n", ns, "describe", "secret", "creds"]);
    // describe shows a secret's sizes, never its values.
    assert!(
        d.contains("creds") && d.contains("password:  8 bytes") && !d.contains("hunter22"),
        "{d}"
    );
    let d = k.ok(&["-n", ns, "describe", "deployment", "web"]);
    for want in [
        "Name:",
        "web",
        "Replicas:",
        "2 desired",
        "Selector:",
        "app=web",
        "busybox:1.36",
        "RollingUpdate",
    ] {
        assert!(
            d.contains(want),
            "{}: describe lacks {want}:\n{d}",
            k.version()
        );
    }
}

fn output_formats(k: &Kubectl, ns: &str) {
    let get = |fmt: &str| k.ok(&["-n", ns, "get", "deployment", "web", "-o", fmt]);
    let j: Value = serde_json::from_str(&get("json")).unwrap();
    assert_eq!(j["kind"], "Deployment");
    assert_eq!(j["spec"]["replicas"], 2);
    let y = get("yaml");
    assert!(
        y.contains("kind: Deployment") && y.contains("replicas: 2") && y.contains("name: web"),
        "{y}"
    );
    let wide = get("wide");
    for col in [
        "NAME",
        "READY",
        "UP-TO-DATE",
        "AVAILABLE",
        "CONTAINERS",
        "IMAGES",
        "SELECTOR",
    ] {
        assert!(
            wide.contains(col),
            "{}: -o wide lacks {col}:\n{wide}",
            k.version()
        );
    }
    assert!(
        wide.contains("busybox:1.36") && wide.contains("app=web"),
        "{wide}"
    );
    assert_eq!(get("name").trim(), "deployment.apps/web");
    assert_eq!(
        get("jsonpath={.metadata.name}:{.spec.template.spec.containers[0].image}"),
        "web:busybox:1.36"
    );
    assert_eq!(
        get("go-template={{.metadata.name}}={{.spec.replicas}}"),
        "web=2"
    );
    let cols =
        get("custom-columns=NAME:.metadata.name,REPLICAS:.spec.replicas,NS:.metadata.namespace");
    let rows: Vec<Vec<&str>> = cols
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![vec!["NAME", "REPLICAS", "NS"], vec!["web", "2", ns]],
        "{cols}"
    );
    // A list in every format too.
    let names = k.ok(&["-n", ns, "get", "configmaps,secrets", "-o", "name"]);
    assert!(
        names.contains("configmap/cfg") && names.contains("secret/creds"),
        "{names}"
    );
}

fn scale(k: &Kubectl, ns: &str) {
    let generation = |k: &Kubectl| {
        k.json(&["-n", ns, "get", "deployment", "web"])["metadata"]["generation"]
            .as_i64()
            .unwrap()
    };
    let g0 = generation(k);
    let out = k.ok(&["-n", ns, "scale", "deployment/web", "--replicas=5"]);
    assert!(out.contains("deployment.apps/web scaled"), "{out}");
    let d = k.json(&["-n", ns, "get", "deployment", "web"]);
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["metadata"]["generation"].as_i64().unwrap(), g0 + 1);

    // The Scale subresource itself.
    let raw = k.ok(&[
        "get",
        "--raw",
        &format!("/apis/apps/v1/namespaces/{ns}/deployments/web/scale"),
    ]);
    let s: Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(s["kind"], "Scale");
    assert_eq!(s["apiVersion"], "autoscaling/v1");
    assert_eq!(s["spec"]["replicas"], 5);
    // The controllers are creating the pods meanwhile: whatever they reached, at most 5.
    assert!(s["status"]["replicas"].as_i64().unwrap() <= 5, "{s}");
    assert_eq!(s["status"]["selector"], "app=web");
    let rv = |v: &Value| {
        v["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert!(
        rv(&s) >= rv(&d),
        "the Scale is read at the deployment's revision or later"
    );
    assert_eq!(s["metadata"]["uid"], d["metadata"]["uid"]);

    // kubectl prints the server's Table of the Scale.
    let table = k.ok(&["-n", ns, "get", "deployment", "web", "--subresource=scale"]);
    let rows: Vec<Vec<&str>> = table
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    // AVAILABLE is the Scale's status.replicas: the pods the controllers made so far.
    assert_eq!(rows.len(), 2, "{}: {table}", k.version());
    assert_eq!(
        rows[0],
        ["NAME", "DESIRED", "AVAILABLE"],
        "{}: {table}",
        k.version()
    );
    assert_eq!(rows[1][..2], ["web", "5"], "{}: {table}", k.version());
    assert!(
        rows[1][2].parse::<u32>().is_ok_and(|n| n <= 5),
        "{}: {table}",
        k.version()
    );

    // --current-replicas is checked against the Scale before writing it.
    k.ok(&[
        "-n",
        ns,
        "scale",
        "deployment/web",
        "--current-replicas=5",
        "--replicas=3",
    ]);
    let err = k.fails(&[
        "-n",
        ns,
        "scale",
        "deployment/web",
        "--current-replicas=5",
        "--replicas=1",
    ]);
    assert!(err.contains("Expected replicas to be 5, was 3"), "{err}");
    // --resource-version: the current one writes, a stale one does not.
    let rv = k.ok(&[
        "-n",
        ns,
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.metadata.resourceVersion}",
    ]);
    k.ok(&[
        "-n",
        ns,
        "scale",
        "deployment/web",
        &format!("--resource-version={rv}"),
        "--replicas=4",
    ]);
    let err = k.fails(&[
        "-n",
        ns,
        "scale",
        "deployment/web",
        &format!("--resource-version={rv}"),
        "--replicas=6",
    ]);
    assert!(err.contains("Expected resource version to be"), "{err}");
    assert_eq!(
        k.ok(&[
            "-n",
            ns,
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.replicas}"
        ]),
        "4"
    );
}

fn edit(k: &Kubectl, ns: &str) {
    // kubectl runs "$EDITOR <file>" through the shell when EDITOR has spaces.
    let (ok, out, err) = k.run_with(
        &["-n", ns, "edit", "configmap", "cfg"],
        None,
        &[("EDITOR", "sed -i s/edit-me/edited/")],
    );
    assert!(ok, "{}: edit failed:\n{out}\n{err}", k.version());
    assert!(out.contains("configmap/cfg edited"), "{out}");
    assert_eq!(
        k.ok(&["-n", ns, "get", "cm", "cfg", "-o", "jsonpath={.data.a}"]),
        "edited"
    );
    // Editing a deployment's spec goes through the same patch path.
    let (ok, out, err) = k.run_with(
        &["-n", ns, "edit", "deployment", "web"],
        None,
        &[("EDITOR", "sed -i s/busybox:1.36/busybox:1.37/")],
    );
    assert!(ok, "{}: edit failed:\n{out}\n{err}", k.version());
    assert_eq!(
        k.ok(&[
            "-n",
            ns,
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.spec.template.spec.containers[0].image}"
        ]),
        "busybox:1.37"
    );
}

fn watch_sees_a_later_change(k: &Kubectl, ns: &str) {
    let mut watch = k
        .command(&[
            "-n",
            ns,
            "get",
            "cm",
            "cfg",
            "-w",
            "-o",
            "jsonpath={.metadata.name}={.data.a}{\"\\n\"}",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(20));
    let seen = first.as_deref() == Ok("cfg=edited") && {
        k.ok(&[
            "-n",
            ns,
            "patch",
            "cm",
            "cfg",
            "--type",
            "merge",
            "-p",
            r#"{"data":{"a":"watched"}}"#,
        ]);
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = false;
        while !seen && Instant::now() < deadline {
            seen = rx.recv_timeout(Duration::from_millis(200)).as_deref() == Ok("cfg=watched");
        }
        seen
    };
    let _ = watch.kill();
    let _ = watch.wait();
    assert!(
        seen,
        "{}: the watch did not show the change (first line {first:?})",
        k.version()
    );
}

fn stale_replace_is_a_conflict(k: &Kubectl, ns: &str) {
    let stale = k.ok(&["-n", ns, "get", "cm", "cfg", "-o", "json"]);
    k.ok(&["-n", ns, "label", "cm", "cfg", "touched=yes"]);
    let (ok, _, err) = k.run_with(&["-n", ns, "replace", "-f", "-"], Some(&stale), &[]);
    assert!(
        !ok && err.contains("Conflict") && err.contains("the object has been modified"),
        "{}: {err}",
        k.version()
    );
    // The label written in between survived.
    assert_eq!(
        k.ok(&[
            "-n",
            ns,
            "get",
            "cm",
            "cfg",
            "-o",
            "jsonpath={.metadata.labels.touched}"
        ]),
        "yes"
    );
}

fn logs_of_a_pod_on_no_node(k: &Kubectl, ns: &str) {
    k.ok(&[
        "-n",
        ns,
        "run",
        "solo",
        "--image=busybox",
        "--",
        "sleep",
        "1000",
    ]);
    // Kubernetes answers a pod with no node 204 No Content: no logs, no error.
    assert_eq!(k.ok(&["-n", ns, "logs", "solo"]), "");
    // kubectl checks the container name itself before asking (so does the server:
    // api_bad_input.rs).
    let err = k.fails(&["-n", ns, "logs", "solo", "-c", "nope"]);
    assert!(
        err.contains("container nope is not valid for pod solo"),
        "{err}"
    );
    let err = k.fails(&["-n", ns, "logs", "missing"]);
    assert!(err.contains("pods \"missing\" not found"), "{err}");
}

fn deletes(k: &Kubectl, ns: &str) {
    let gone = |kind: &str, name: &str| {
        let err = k.fails(&["-n", ns, "get", kind, name]);
        assert!(err.contains("NotFound"), "{err}");
    };

    // A pod on no node goes at once, whatever grace period is asked for.
    k.ok(&["-n", ns, "delete", "pod", "solo", "--grace-period=5"]);
    gone("pod", "solo");

    // Background (kubectl's default): the object goes at once.
    k.ok(&[
        "-n",
        ns,
        "delete",
        "secret",
        "creds",
        "--cascade=background",
    ]);
    gone("secret", "creds");

    // Foreground and orphan, carried out by the garbage collector (rkube up runs the
    // controller-manager). Each owner is a ConfigMap with one Secret depending on it.
    let owned = |owner: &str| {
        k.ok(&["-n", ns, "create", "configmap", owner, "--from-literal=x=1"]);
        let uid = k.json(&["-n", ns, "get", "configmap", owner])["metadata"]["uid"]
            .as_str()
            .unwrap()
            .to_string();
        let child = format!("{owner}-child");
        k.ok(&[
            "-n",
            ns,
            "create",
            "secret",
            "generic",
            &child,
            "--from-literal=y=2",
        ]);
        let refs = serde_json::json!({"metadata": {"ownerReferences": [{
            "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid,
            "blockOwnerDeletion": true,
        }]}});
        k.ok(&[
            "-n",
            ns,
            "patch",
            "secret",
            &child,
            "--type",
            "merge",
            "-p",
            &refs.to_string(),
        ]);
        child
    };
    let wait_gone = |kind: &str, name: &str| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !k.run(&["-n", ns, "get", kind, name]).2.contains("NotFound") {
            assert!(
                std::time::Instant::now() < deadline,
                "{kind}/{name} was never collected"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };

    // Foreground: the owner stays, terminating with the foregroundDeletion finalizer, while
    // a dependent that blocks it is held (here by a finalizer of its own); then both go.
    let child = owned("fg");
    k.ok(&[
        "-n",
        ns,
        "patch",
        "secret",
        &child,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":["example.com/hold"]}}"#,
    ]);
    k.ok(&[
        "-n",
        ns,
        "delete",
        "configmap",
        "fg",
        "--cascade=foreground",
        "--wait=false",
    ]);
    let cm = k.json(&["-n", ns, "get", "configmap", "fg"]);
    assert!(
        cm["metadata"]["deletionTimestamp"].is_string(),
        "{}: {cm}",
        k.version()
    );
    assert_eq!(
        cm["metadata"]["finalizers"],
        serde_json::json!(["foregroundDeletion"])
    );
    k.ok(&[
        "-n",
        ns,
        "patch",
        "secret",
        &child,
        "--type",
        "merge",
        "-p",
        r#"{"metadata":{"finalizers":null}}"#,
    ]);
    wait_gone("secret", &child);
    wait_gone("configmap", "fg");

    // Orphan: the owner goes, the dependent stays without its owner reference.
    let child = owned("or");
    k.ok(&["-n", ns, "delete", "configmap", "or", "--cascade=orphan"]);
    gone("configmap", "or");
    let secret = k.json(&["-n", ns, "get", "secret", &child]);
    assert!(secret["metadata"]["ownerReferences"].is_null(), "{secret}");

    // Background: the owner goes at once, the collector takes the dependent after it.
    let child = owned("bg");
    k.ok(&[
        "-n",
        ns,
        "delete",
        "configmap",
        "bg",
        "--cascade=background",
    ]);
    gone("configmap", "bg");
    wait_gone("secret", &child);

    k.ok(&["-n", ns, "delete", "deployment", "web"]);
    gone("deployment", "web");
}
