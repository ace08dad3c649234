//! Real kubectl (the release on the PATH, 1.32) driving Deployments through an apiserver
//! process and a `rkube-controller-manager` process: `create deployment`, `rollout
//! status`, `set image`, `rollout history` (with a change-cause), `rollout undo` (to the
//! previous revision and `--to-revision`), `scale` through deployments/scale, and pause
//! and resume. No kubelet runs yet: the test marks pods Running and Ready through
//! pods/status, as a kubelet would.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::core::v1::{Pod, PodCondition, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use rkube_client::{Api, Client, Config, TypedEvent, WatchParams, WriteParams};
use rkube_e2e::cluster::{bin, Cluster};
use rkube_e2e::kubectl::Kubectl;

/// The controller-manager against every replica of `cluster`, stopped when dropped.
struct ControllerManager(Child);

impl ControllerManager {
    fn start(cluster: &Cluster) -> Self {
        let mut cmd = Command::new(bin("rkube-controller-manager"));
        for r in &cluster.replicas {
            cmd.arg("--apiserver").arg(r.api.to_string());
        }
        let log = std::fs::File::create(cluster.dir.path().join("controller-manager.log")).unwrap();
        cmd.args(["--listen", "127.0.0.1:0", "--name", "cm-e2e"])
            .stdout(Stdio::null())
            .stderr(log);
        ControllerManager(cmd.spawn().expect("rkube-controller-manager starts"))
    }
}

impl Drop for ControllerManager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Marks every pod of `default` Running and Ready once it appears.
fn pretend_kubelet(client: Client) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let pods: Api<Pod> = Api::namespaced(&client, "default");
        let mut w = pods.watch(WatchParams::default()).await.unwrap();
        while let Some(ev) = w.next().await {
            let Ok(TypedEvent::Added(mut pod)) = ev else {
                continue;
            };
            pod.status = Some(PodStatus {
                phase: Some("Running".into()),
                conditions: Some(vec![PodCondition {
                    type_: "Ready".into(),
                    status: "True".into(),
                    last_transition_time: Some(Time(rkube_runtime::object::now())),
                    ..Default::default()
                }]),
                ..pod.status.unwrap_or_default()
            });
            // A pod deleted meanwhile needs no status.
            let _ = pods.update_status(&pod, &WriteParams::default()).await;
        }
    })
}

fn lines(s: &str) -> Vec<String> {
    s.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

fn image(k: &Kubectl) -> String {
    k.ok(&[
        "get",
        "deployment",
        "web",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
}

fn rolled_out(k: &Kubectl) {
    let out = k.ok(&["rollout", "status", "deployment/web", "--timeout=90s"]);
    assert!(
        out.trim_end()
            .ends_with("deployment \"web\" successfully rolled out"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_rolls_deployments_out_back_and_to_scale() {
    let cluster = Cluster::start_api_single().await;
    let client = Client::new(Config::new([cluster.replicas[0].api.to_string()])).unwrap();
    let kubelet = pretend_kubelet(client);
    let cm = ControllerManager::start(&cluster);
    let k = Kubectl::new(&cluster, None);
    let run = tokio::task::spawn_blocking(move || {
        k.ok(&[
            "create",
            "deployment",
            "web",
            "--image=nginx:1",
            "--replicas=3",
        ]);
        rolled_out(&k);
        let rs = k.ok(&[
            "get",
            "rs",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].status.readyReplicas}",
        ]);
        assert_eq!(rs.trim(), "3");

        // A new template: revision 2, with a change-cause for the history.
        k.ok(&["set", "image", "deployment/web", "nginx=nginx:2"]);
        rolled_out(&k);
        k.ok(&[
            "annotate",
            "deployment/web",
            "kubernetes.io/change-cause=image 2",
        ]);
        let mut history = String::new();
        for _ in 0..100 {
            history = k.ok(&["rollout", "history", "deployment/web"]);
            if history.contains("image 2") {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let h = lines(&history);
        assert!(
            h.contains(&"REVISION CHANGE-CAUSE".to_string()),
            "{history}"
        );
        assert!(h.contains(&"1 <none>".to_string()), "{history}");
        assert!(h.contains(&"2 image 2".to_string()), "{history}");
        let one = k.ok(&["rollout", "history", "deployment/web", "--revision=1"]);
        assert!(
            one.contains("nginx:1") && one.contains("pod-template-hash="),
            "{one}"
        );

        // Back to the previous revision: revision 1 becomes 3.
        let out = k.ok(&["rollout", "undo", "deployment/web"]);
        assert!(out.contains("deployment.apps/web rolled back"), "{out}");
        rolled_out(&k);
        assert_eq!(image(&k), "nginx:1");
        let h = lines(&k.ok(&["rollout", "history", "deployment/web"]));
        let revisions: Vec<&str> = h
            .iter()
            .map(|l| l.split(' ').next().unwrap())
            .filter(|w| w.parse::<u32>().is_ok())
            .collect();
        assert_eq!(revisions, ["2", "3"], "{h:?}");
        // And to a named one.
        k.ok(&["rollout", "undo", "deployment/web", "--to-revision=2"]);
        rolled_out(&k);
        assert_eq!(image(&k), "nginx:2");
        let rss = k.ok(&["get", "rs", "-l", "app=web", "-o", "name"]);
        assert_eq!(
            rss.lines().count(),
            2,
            "rollbacks reuse the old ReplicaSets: {rss}"
        );

        // Scale through deployments/scale.
        k.ok(&["scale", "deployment/web", "--replicas=5"]);
        rolled_out(&k);
        let ready = k.ok(&[
            "get",
            "deployment",
            "web",
            "-o",
            "jsonpath={.status.readyReplicas}",
        ]);
        assert_eq!(ready, "5");

        // Paused: no rollout (and no undo) until resumed.
        k.ok(&["rollout", "pause", "deployment/web"]);
        k.ok(&["set", "image", "deployment/web", "nginx=nginx:3"]);
        let err = k.fails(&["rollout", "undo", "deployment/web"]);
        assert!(
            err.contains("you cannot rollback a paused deployment"),
            "{err}"
        );
        k.ok(&["rollout", "resume", "deployment/web"]);
        rolled_out(&k);
        let images = k.ok(&[
            "get",
            "pods",
            "-l",
            "app=web",
            "-o",
            "jsonpath={.items[*].spec.containers[0].image}",
        ]);
        assert!(
            images.split_whitespace().all(|i| i == "nginx:3")
                && images.split_whitespace().count() == 5,
            "{images}"
        );
        let described = k.ok(&["describe", "deployment", "web"]);
        assert!(described.contains("ScalingReplicaSet"), "{described}");
        assert!(described.contains("NewReplicaSetAvailable"), "{described}");
    });
    tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the kubectl session finishes in time")
        .unwrap();
    kubelet.abort();
    drop(cm);
}
