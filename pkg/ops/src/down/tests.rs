use super::*;

fn report(stopped: Vec<StoppedProcess>, purged: bool) -> DownReport {
    DownReport {
        dir: PathBuf::from("/c"),
        existed: true,
        stopped,
        purged,
    }
}

fn stopped(name: &str, pid: u32, killed: bool) -> StoppedProcess {
    StoppedProcess {
        kind: "apiserver".into(),
        name: name.into(),
        pid,
        killed,
    }
}

#[test]
fn render_lists_stopped_and_killed_processes() {
    let text = report(
        vec![stopped("a1", 11, false), stopped("a2", 12, true)],
        true,
    )
    .render();
    assert_eq!(
        text,
        "stopped apiserver a1 (pid 11)\n\
         killed apiserver a2 (pid 12): it did not exit after SIGTERM\n\
         deleted /c\n"
    );
}

#[test]
fn render_says_when_nothing_was_running_or_there_was_no_directory() {
    assert_eq!(
        report(vec![], false).render(),
        "no process of the cluster in /c was running\n"
    );
    let missing = DownReport {
        existed: false,
        ..report(vec![], false)
    };
    assert_eq!(missing.render(), "nothing to stop: /c does not exist\n");
}

#[test]
fn natural_key_sorts_a2_before_a10() {
    let mut names = vec!["a10", "a2", "a1", "scheduler"];
    names.sort_by_key(|n| natural_key(n));
    assert_eq!(names, ["a1", "a2", "a10", "scheduler"]);
}

#[tokio::test]
async fn down_on_a_missing_directory_succeeds_and_creates_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("never-created");
    for purge in [false, true] {
        let r = down(&dir, purge).await.unwrap();
        assert!(!r.existed && r.stopped.is_empty() && !r.purged);
    }
    assert!(!dir.exists());
}

#[tokio::test]
async fn purge_refuses_a_directory_that_is_not_a_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("thesis.tex"), "precious").unwrap();
    let err = down(tmp.path(), true).await.unwrap_err();
    assert!(matches!(err, Error::NotAClusterDir { .. }), "{err}");
    assert!(tmp.path().join("thesis.tex").exists());
}

#[tokio::test]
async fn purge_deletes_a_cluster_directory_with_nothing_running() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = ClusterDir::create(&tmp.path().join("c")).unwrap();
    dir.save_layout(&ClusterLayout::plan(1, &[6443], &[2380]).unwrap())
        .unwrap();
    dir.create_subdirs().unwrap();
    // A stale pid file naming a pid that does not exist.
    std::fs::write(dir.pid_file("a1"), "999999999\n").unwrap();
    let r = down(dir.root(), true).await.unwrap();
    assert!(r.stopped.is_empty() && r.purged);
    assert!(!dir.root().exists());
}

#[tokio::test]
async fn purge_accepts_an_empty_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("empty");
    std::fs::create_dir(&dir).unwrap();
    assert!(down(&dir, true).await.unwrap().purged);
    assert!(!dir.exists());
}
