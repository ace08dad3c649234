use std::time::{Duration, Instant};

use super::*;

fn cmdline(args: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for a in args {
        out.extend_from_slice(a.as_bytes());
        out.push(0);
    }
    out
}

#[test]
fn candidate_dirs_put_the_executables_dir_first_then_path() {
    let dirs = candidate_dirs(
        Some(Path::new("/opt/rkube/bin/rkube")),
        Some(OsStr::new("/usr/local/bin::/usr/bin")),
    );
    assert_eq!(
        dirs,
        [
            PathBuf::from("/opt/rkube/bin"),
            PathBuf::from("/usr/local/bin"),
            PathBuf::from("/usr/bin")
        ]
    );
}

#[test]
fn candidate_dirs_add_the_profile_dir_for_test_binaries_in_deps() {
    let dirs = candidate_dirs(
        Some(Path::new("/w/target/debug/deps/supervisor-1234")),
        None,
    );
    assert_eq!(
        dirs,
        [
            PathBuf::from("/w/target/debug/deps"),
            PathBuf::from("/w/target/debug")
        ]
    );
}

#[test]
fn find_binary_in_bin_dir_needs_an_executable_file() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("rkube-apiserver");
    std::fs::write(&path, "#!/bin/sh\n").unwrap();
    let err = find_binary("rkube-apiserver", Some(tmp.path())).unwrap_err();
    assert!(matches!(err, Error::BinaryNotFound { .. }));
    assert!(
        err.to_string()
            .contains("cargo build --bin rkube-apiserver"),
        "{err}"
    );
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert_eq!(
        find_binary("rkube-apiserver", Some(tmp.path())).unwrap(),
        path
    );
}

#[test]
fn cmdline_matches_the_program_and_its_data_dir() {
    let data = OsStr::new("/c/data/a1");
    let ours = cmdline(&[
        "/x/bin/rkube-apiserver",
        "--name",
        "a1",
        "--data-dir",
        "/c/data/a1",
    ]);
    assert!(cmdline_matches(&ours, "rkube-apiserver", data));
    let equals = cmdline(&["rkube-apiserver", "--data-dir=/c/data/a1"]);
    assert!(cmdline_matches(&equals, "rkube-apiserver", data));
    let other_replica = cmdline(&["/x/bin/rkube-apiserver", "--data-dir", "/c/data/a2"]);
    assert!(!cmdline_matches(&other_replica, "rkube-apiserver", data));
    let other_program = cmdline(&["/usr/bin/vim", "/c/data/a1"]);
    assert!(!cmdline_matches(&other_program, "rkube-apiserver", data));
    let prefix_only = cmdline(&["rkube-apiserver", "--data-dir", "/c/data/a10"]);
    assert!(!cmdline_matches(&prefix_only, "rkube-apiserver", data));
    // A zombie's cmdline is empty.
    assert!(!cmdline_matches(b"", "rkube-apiserver", data));
}

#[test]
fn cmdline_in_dir_wants_an_rkube_binary_working_inside_the_dir() {
    let dir = Path::new("/c");
    assert!(cmdline_in_dir(
        &cmdline(&["/b/rkube-scheduler", "--data-dir", "/c/data/s"]),
        dir
    ));
    assert!(cmdline_in_dir(
        &cmdline(&["rkube-kubelet", "--root=/c/data/n1"]),
        dir
    ));
    assert!(!cmdline_in_dir(
        &cmdline(&["rkube-kubelet", "--root=/cc/data/n1"]),
        dir
    ));
    assert!(!cmdline_in_dir(
        &cmdline(&["/bin/rm", "-rf", "/c/data"]),
        dir
    ));
    assert!(!cmdline_in_dir(b"", dir));
}

#[test]
fn parse_stat_state_reads_past_parentheses_in_the_command_name() {
    assert_eq!(
        parse_stat_state("42 (rkube-apiserver) S 1 42 42 0"),
        Some('S')
    );
    assert_eq!(parse_stat_state("42 (a) b) (c) Z 1 42"), Some('Z'));
    assert_eq!(parse_stat_state("garbage"), None);
}

#[test]
fn parse_pid_accepts_only_positive_numbers() {
    assert_eq!(parse_pid("123\n"), Some(123));
    assert_eq!(parse_pid(" 7 "), Some(7));
    assert_eq!(parse_pid("0"), None);
    assert_eq!(parse_pid(""), None);
    assert_eq!(parse_pid("12x"), None);
}

#[test]
fn last_lines_keeps_the_end() {
    assert_eq!(last_lines("a\nb\nc\n\n", 2), "b\nc");
    assert_eq!(last_lines("only", 5), "only");
    assert_eq!(last_lines("", 5), "");
}

#[test]
fn spawned_process_is_detached_logs_to_its_file_and_has_a_pid_file() {
    let tmp = tempfile::tempdir().unwrap();
    let log = tmp.path().join("x.log");
    let pid_file = tmp.path().join("x.pid");
    std::fs::write(&log, "earlier run\n").unwrap();
    let args: Vec<OsString> = vec![
        "-c".into(),
        "echo out; echo err >&2; pwd; exec sleep 30".into(),
    ];
    let mut child = spawn_detached(&Launch {
        name: "x",
        program: Path::new("/bin/sh"),
        args: &args,
        cwd: tmp.path(),
        log_file: &log,
        pid_file: &pid_file,
    })
    .unwrap();
    let pid = child.id();
    assert_eq!(read_pid_file(&pid_file).unwrap(), Some(pid));
    assert!(is_alive(pid));
    // Its own process group, so the terminal's Ctrl-C does not reach it.
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = &stat[stat.rfind(')').unwrap() + 2..];
    let pgrp: u32 = after.split(' ').nth(2).unwrap().parse().unwrap();
    assert_eq!(pgrp, pid);

    let deadline = Instant::now() + Duration::from_secs(10);
    while !std::fs::read_to_string(&log)
        .unwrap()
        .contains(&tmp.path().display().to_string())
    {
        assert!(Instant::now() < deadline, "log never filled");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.starts_with("earlier run\n"),
        "the log is appended to: {text}"
    );
    assert!(text.contains("out\n") && text.contains("err\n"), "{text}");

    // The shell has printed everything but may not have exec'd `sleep` yet.
    while running_pid(&pid_file, "sleep", Path::new("30")).unwrap() != Some(pid) {
        assert!(Instant::now() < deadline, "never became `sleep 30`");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        running_pid(&pid_file, APISERVER_BIN, Path::new("30")).unwrap(),
        None
    );

    assert!(send_signal(pid, Signal::SIGTERM).unwrap());
    child.wait().unwrap();
    assert!(!is_alive(pid));
    assert_eq!(
        running_pid(&pid_file, "sleep", Path::new("30")).unwrap(),
        None
    );
    assert!(!send_signal(pid, Signal::SIGTERM).unwrap());
    remove_pid_file(&pid_file).unwrap();
    remove_pid_file(&pid_file).unwrap();
    assert_eq!(read_pid_file(&pid_file).unwrap(), None);
}

#[test]
fn spawn_of_a_missing_program_names_it() {
    let tmp = tempfile::tempdir().unwrap();
    let err = spawn_detached(&Launch {
        name: "a1",
        program: Path::new("/nonexistent/rkube-apiserver"),
        args: &[],
        cwd: tmp.path(),
        log_file: &tmp.path().join("a1.log"),
        pid_file: &tmp.path().join("a1.pid"),
    })
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("failed to start a1 (/nonexistent/rkube-apiserver)"),
        "{err}"
    );
    assert!(!tmp.path().join("a1.pid").exists());
}

#[test]
fn log_tail_of_a_missing_file_is_empty() {
    assert_eq!(log_tail(Path::new("/nonexistent/x.log"), 5), "");
}
