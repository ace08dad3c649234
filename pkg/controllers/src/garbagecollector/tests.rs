//! The garbage collector against an in-process apiserver: each deletion mode, dangling and
//! recreated owners, several owners, a foreground chain, and real kubectl's `--cascade`.
//! Owners and dependents are ConfigMaps, Secrets and Pods (no ReplicaSet controller is
//! needed: the collector treats every kind alike).

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Container, Pod, PodSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use rkube_client::{Api, DeleteParams, PatchType, WriteParams};
use serde_json::json;

use super::*;
use crate::testing::{eventually, Harness};

const NS: &str = "default";
const WITHIN: Duration = Duration::from_secs(20);

/// Runs `body` against an apiserver with the garbage collector running, within a minute.
async fn with_gc<F, Fut>(body: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = Harness>,
{
    let h = Harness::start().await;
    let ctx = h.context(&[]);
    let gc = tokio::spawn(run(ctx.clone()));
    ctx.factory.start(h.shutdown.clone());
    let h = tokio::time::timeout(Duration::from_secs(60), body(h))
        .await
        .expect("the test finishes within a minute");
    h.shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), gc)
        .await
        .expect("the garbage collector stops")
        .unwrap();
    h.stop().await;
}

fn meta(name: &str, owners: Vec<OwnerReference>) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.into()),
        namespace: Some(NS.into()),
        owner_references: Some(owners).filter(|o| !o.is_empty()),
        ..Default::default()
    }
}

fn owned_by(owner: &ConfigMap, block: bool) -> OwnerReference {
    OwnerReference {
        api_version: "v1".into(),
        kind: "ConfigMap".into(),
        name: owner.metadata.name.clone().unwrap(),
        uid: owner.metadata.uid.clone().unwrap(),
        controller: None,
        block_owner_deletion: Some(block),
    }
}

async fn config_map(h: &Harness, name: &str, owners: Vec<OwnerReference>) -> ConfigMap {
    let cm = ConfigMap {
        metadata: meta(name, owners),
        data: Some(BTreeMap::from([("k".to_string(), "v".to_string())])),
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(&h.client, NS)
        .create(&cm, &WriteParams::default())
        .await
        .unwrap()
}

async fn secret(h: &Harness, name: &str, owners: Vec<OwnerReference>) -> Secret {
    let s = Secret {
        metadata: meta(name, owners),
        ..Default::default()
    };
    Api::<Secret>::namespaced(&h.client, NS)
        .create(&s, &WriteParams::default())
        .await
        .unwrap()
}

async fn pod(h: &Harness, name: &str, owners: Vec<OwnerReference>) -> Pod {
    let p = Pod {
        metadata: meta(name, owners),
        spec: Some(PodSpec {
            containers: vec![Container {
                name: "c".into(),
                image: Some("rkube.local/busybox:1.35".into()),
                ..Default::default()
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    Api::<Pod>::namespaced(&h.client, NS)
        .create(&p, &WriteParams::default())
        .await
        .unwrap()
}

fn configmaps(h: &Harness) -> Api<ConfigMap> {
    Api::namespaced(&h.client, NS)
}

fn secrets(h: &Harness) -> Api<Secret> {
    Api::namespaced(&h.client, NS)
}

fn pods(h: &Harness) -> Api<Pod> {
    Api::namespaced(&h.client, NS)
}

fn policy(p: &str) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(p.into()),
        ..Default::default()
    }
}

/// Waits until `get` answers 404.
async fn gone<K, F, Fut>(what: &str, get: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = rkube_client::Result<K>>,
{
    eventually(&format!("{what} is gone"), WITHIN, || {
        let r = get();
        async move { matches!(r.await, Err(e) if e.is_not_found()) }
    })
    .await;
}

/// Removes every finalizer of a Secret.
async fn release(h: &Harness, name: &str) {
    secrets(h)
        .patch(
            name,
            PatchType::Merge,
            &json!({"metadata": {"finalizers": null}}),
            &WriteParams::default(),
        )
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_deletion_of_an_owner_collects_its_dependents_of_every_kind() {
    with_gc(|h| async move {
        let owner = config_map(&h, "owner", vec![]).await;
        secret(&h, "s1", vec![owned_by(&owner, true)]).await;
        secret(&h, "s2", vec![owned_by(&owner, false)]).await;
        pod(&h, "p", vec![owned_by(&owner, true)]).await;
        config_map(&h, "child", vec![owned_by(&owner, false)]).await;
        secret(&h, "bystander", vec![]).await;

        configmaps(&h)
            .delete("owner", &policy("Background"))
            .await
            .unwrap();
        let (s, p, c) = (secrets(&h), pods(&h), configmaps(&h));
        gone("secret s1", || s.get("s1")).await;
        gone("secret s2", || s.get("s2")).await;
        gone("pod p", || p.get("p")).await;
        gone("configmap child", || c.get("child")).await;
        assert!(secrets(&h).get("bystander").await.is_ok());
        h
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_keeps_the_owner_until_its_blocking_dependents_are_gone() {
    with_gc(|h| async move {
        let owner = config_map(&h, "owner", vec![]).await;
        // A blocking dependent that cannot go until its own finalizer is removed.
        let mut held = Secret {
            metadata: meta("held", vec![owned_by(&owner, true)]),
            ..Default::default()
        };
        held.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        secrets(&h)
            .create(&held, &WriteParams::default())
            .await
            .unwrap();
        secret(&h, "loose", vec![owned_by(&owner, false)]).await;

        configmaps(&h)
            .delete("owner", &policy("Foreground"))
            .await
            .unwrap();
        let s = secrets(&h);
        gone("the non-blocking dependent", || s.get("loose")).await;
        eventually("the blocking dependent is being deleted", WITHIN, || {
            let s = s.clone();
            async move {
                s.get("held")
                    .await
                    .is_ok_and(|x| x.metadata.deletion_timestamp.is_some())
            }
        })
        .await;
        // The owner waits for it, terminating, with the finalizer.
        let o = configmaps(&h).get("owner").await.unwrap();
        assert!(o.metadata.deletion_timestamp.is_some());
        assert_eq!(
            o.metadata.finalizers.as_deref(),
            Some(&["foregroundDeletion".to_string()][..])
        );

        release(&h, "held").await;
        gone("the blocking dependent", || s.get("held")).await;
        let c = configmaps(&h);
        gone("the owner", || c.get("owner")).await;
        h
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn foreground_deletion_carries_down_a_chain_of_owners() {
    with_gc(|h| async move {
        let top = config_map(&h, "top", vec![]).await;
        let middle = config_map(&h, "middle", vec![owned_by(&top, true)]).await;
        let mut leaf = Secret {
            metadata: meta("leaf", vec![owned_by(&middle, true)]),
            ..Default::default()
        };
        leaf.metadata.finalizers = Some(vec!["example.com/hold".into()]);
        secrets(&h)
            .create(&leaf, &WriteParams::default())
            .await
            .unwrap();

        configmaps(&h)
            .delete("top", &policy("Foreground"))
            .await
            .unwrap();
        // The middle is deleted in the foreground too: it waits for the leaf, and the top
        // waits for it.
        let c = configmaps(&h);
        eventually("the middle waits for the leaf", WITHIN, || {
            let c = c.clone();
            async move {
                c.get("middle").await.is_ok_and(|m| {
                    m.metadata.finalizers.as_deref()
                        == Some(&["foregroundDeletion".to_string()][..])
                })
            }
        })
        .await;
        assert!(configmaps(&h).get("top").await.is_ok());

        release(&h, "leaf").await;
        gone("the middle", || c.get("middle")).await;
        gone("the top", || c.get("top")).await;
        h
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orphan_deletion_leaves_dependents_without_the_owner_reference() {
    with_gc(|h| async move {
        let owner = config_map(&h, "owner", vec![]).await;
        let other = config_map(&h, "other", vec![]).await;
        secret(&h, "only", vec![owned_by(&owner, true)]).await;
        secret(
            &h,
            "both",
            vec![owned_by(&owner, true), owned_by(&other, true)],
        )
        .await;

        configmaps(&h)
            .delete("owner", &policy("Orphan"))
            .await
            .unwrap();
        let c = configmaps(&h);
        gone("the owner", || c.get("owner")).await;
        let only = secrets(&h).get("only").await.unwrap();
        assert_eq!(only.metadata.owner_references, None);
        let both = secrets(&h).get("both").await.unwrap();
        let uids: Vec<String> = both
            .metadata
            .owner_references
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.uid)
            .collect();
        assert_eq!(uids, [other.metadata.uid.clone().unwrap()]);
        h
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_whose_owner_never_existed_or_was_recreated_is_collected() {
    with_gc(|h| async move {
        // An owner that never existed.
        let ghost = OwnerReference {
            api_version: "v1".into(),
            kind: "ConfigMap".into(),
            name: "ghost".into(),
            uid: "00000000-0000-4000-8000-000000000001".into(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        };
        secret(&h, "haunted", vec![ghost]).await;
        // An owner deleted and recreated under the same name: a new UID.
        let first = config_map(&h, "again", vec![]).await;
        configmaps(&h)
            .delete("again", &DeleteParams::default())
            .await
            .unwrap();
        let second = config_map(&h, "again", vec![]).await;
        assert_ne!(first.metadata.uid, second.metadata.uid);
        pod(&h, "stale", vec![owned_by(&first, true)]).await;
        secret(&h, "current", vec![owned_by(&second, true)]).await;

        let (s, p) = (secrets(&h), pods(&h));
        gone("the secret of an owner that never existed", || {
            s.get("haunted")
        })
        .await;
        gone("the pod of the first 'again'", || p.get("stale")).await;
        // The recreated owner and its own dependent are untouched.
        let again = configmaps(&h).get("again").await.unwrap();
        assert_eq!(again.metadata.uid, second.metadata.uid);
        assert!(secrets(&h).get("current").await.is_ok());
        h
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dependent_with_two_owners_survives_the_deletion_of_one() {
    with_gc(|h| async move {
        let a = config_map(&h, "a", vec![]).await;
        let b = config_map(&h, "b", vec![]).await;
        secret(&h, "shared", vec![owned_by(&a, true), owned_by(&b, true)]).await;

        configmaps(&h)
            .delete("a", &policy("Background"))
            .await
            .unwrap();
        // The dangling reference is removed; the secret stays, owned by b alone.
        let s = secrets(&h);
        let b_uid = b.metadata.uid.clone();
        eventually("the reference to a is removed", WITHIN, || {
            let (s, b_uid) = (s.clone(), b_uid.clone());
            async move {
                s.get("shared").await.is_ok_and(|x| {
                    let refs = x.metadata.owner_references.unwrap_or_default();
                    refs.len() == 1 && Some(&refs[0].uid) == b_uid.as_ref()
                })
            }
        })
        .await;

        configmaps(&h)
            .delete("b", &policy("Background"))
            .await
            .unwrap();
        gone("the shared secret", || s.get("shared")).await;
        h
    })
    .await;
}

/// Real kubectl (the PATH's) against the in-process apiserver.
fn kubectl(dir: &std::path::Path, server: &str, args: &[&str]) -> (bool, String) {
    let config = dir.join("kubeconfig");
    if !config.exists() {
        std::fs::write(
            &config,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {{server: \"http://{server}\"}}\n  name: t\ncontexts:\n- context: {{cluster: t, user: u}}\n  name: t\ncurrent-context: t\nusers:\n- name: u\n  user: {{}}\n"
            ),
        )
        .unwrap();
    }
    let out = std::process::Command::new("kubectl")
        .args(args)
        .env("KUBECONFIG", &config)
        .env("HOME", dir)
        .output()
        .expect("kubectl is on the PATH");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_delete_cascades_background_foreground_and_orphan() {
    with_gc(|h| async move {
        let dir = tempfile::tempdir().unwrap();
        for (cascade, name) in [("background", "bg"), ("foreground", "fg"), ("orphan", "or")] {
            let owner = config_map(&h, name, vec![]).await;
            secret(&h, &format!("{name}-dep"), vec![owned_by(&owner, true)]).await;
            pod(&h, &format!("{name}-pod"), vec![owned_by(&owner, true)]).await;
            let (path, server) = (dir.path().to_path_buf(), h.api.addr.clone());
            let args: Vec<String> = [
                "-n",
                NS,
                "delete",
                "configmap",
                name,
                &format!("--cascade={cascade}"),
                "--timeout=30s",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect();
            // kubectl waits until the owner is gone, which only the collector can bring
            // about for foreground and orphan.
            let (ok, out) = tokio::task::spawn_blocking(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kubectl(&path, &server, &args)
            })
            .await
            .unwrap();
            assert!(ok, "kubectl delete --cascade={cascade}: {out}");
            assert!(
                out.contains(&format!("configmap \"{name}\" deleted")),
                "{out}"
            );
            assert!(configmaps(&h)
                .get(name)
                .await
                .is_err_and(|e| e.is_not_found()));
            let (s, p) = (secrets(&h), pods(&h));
            let dep = format!("{name}-dep");
            let pd = format!("{name}-pod");
            if cascade == "orphan" {
                let d = s.get(&dep).await.unwrap();
                assert_eq!(d.metadata.owner_references, None, "{cascade}");
                let q = p.get(&pd).await.unwrap();
                assert_eq!(q.metadata.owner_references, None, "{cascade}");
            } else {
                gone(&format!("{cascade}: the secret"), || s.get(&dep)).await;
                gone(&format!("{cascade}: the pod"), || p.get(&pd)).await;
            }
        }
        h
    })
    .await;
}
