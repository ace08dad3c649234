//! Process supervision primitives: finding binaries, starting them detached, pid files,
//! and deciding whether a pid still is the process we started.
//!
//! Processes are started in their own process group with stdin on `/dev/null` and
//! stdout/stderr appended to their log file, so they survive the `rkube` command that
//! started them and a Ctrl-C in its terminal (the terminal signals only its foreground
//! group). A pid file alone proves nothing (pids are reused), so "running" always means:
//! the pid is alive, not a zombie, and its `/proc/PID/cmdline` is the expected binary with
//! the expected marker argument (its data directory, which is unique per cluster and
//! replica). This module never decides *what* to run; `up` and `down` do.

use std::ffi::{OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::os::unix::ffi::OsStrExt as _;
use std::os::unix::fs::PermissionsExt as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag};
use nix::unistd::Pid;

use crate::{Error, Result};

/// The apiserver binary's file name.
pub const APISERVER_BIN: &str = "rkube-apiserver";
/// The operator tool's file name; `rkube lb` runs the load balancer.
pub const RKUBE_BIN: &str = "rkube";
/// The load balancer's name in `DIR/pids` and `DIR/logs`.
pub const LB_NAME: &str = "lb";

/// Finds the binary `name`: only in `bin_dir` when given; otherwise next to the running
/// executable (and, for test binaries in `target/<profile>/deps`, one level up, where cargo
/// puts the workspace's binaries), then on `PATH`.
pub fn find_binary(name: &str, bin_dir: Option<&Path>) -> Result<PathBuf> {
    let (dirs, searched) = match bin_dir {
        Some(dir) => (vec![dir.to_path_buf()], vec![dir.to_path_buf()]),
        None => {
            let exe = std::env::current_exe().ok();
            let path_var = std::env::var_os("PATH");
            // PATH can be long: the error names the specific places and "$PATH".
            let mut searched = candidate_dirs(exe.as_deref(), None);
            searched.push(PathBuf::from("$PATH"));
            (
                candidate_dirs(exe.as_deref(), path_var.as_deref()),
                searched,
            )
        }
    };
    dirs.iter()
        .map(|dir| dir.join(name))
        .find(|path| is_executable(path))
        .ok_or_else(|| Error::BinaryNotFound {
            name: name.to_string(),
            searched,
        })
}

/// The directories [`find_binary`] searches, in order. Pure.
pub fn candidate_dirs(current_exe: Option<&Path>, path_var: Option<&OsStr>) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(exe_dir) = current_exe.and_then(Path::parent) {
        dirs.push(exe_dir.to_path_buf());
        if exe_dir.file_name() == Some(OsStr::new("deps")) {
            if let Some(profile_dir) = exe_dir.parent() {
                dirs.push(profile_dir.to_path_buf());
            }
        }
    }
    if let Some(path_var) = path_var {
        dirs.extend(std::env::split_paths(path_var).filter(|d| !d.as_os_str().is_empty()));
    }
    dirs
}

fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// What to start and where its traces go.
#[derive(Debug, Clone)]
pub struct Launch<'a> {
    /// Replica or component name, for messages.
    pub name: &'a str,
    pub program: &'a Path,
    pub args: &'a [OsString],
    /// Working directory (the cluster directory, so no process pins the caller's cwd).
    pub cwd: &'a Path,
    pub log_file: &'a Path,
    pub pid_file: &'a Path,
}

/// Starts a process detached from the caller (own process group, stdin `/dev/null`,
/// stdout and stderr appended to its log file) and records its pid file.
///
/// The returned [`Child`] may be dropped at any time without affecting the process; `up`
/// keeps it to notice an early exit (and to reap it).
pub fn spawn_detached(launch: &Launch<'_>) -> Result<Child> {
    let log = OpenOptions::new()
        .create(true)
        .append(true)
        .open(launch.log_file)
        .map_err(|e| Error::io("open log file", launch.log_file, e))?;
    let log_err = log
        .try_clone()
        .map_err(|e| Error::io("open log file", launch.log_file, e))?;
    let mut child = Command::new(launch.program)
        .args(launch.args)
        .current_dir(launch.cwd)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|source| Error::Spawn {
            name: launch.name.to_string(),
            program: launch.program.to_path_buf(),
            source,
        })?;
    if let Err(e) = write_pid_file(launch.pid_file, child.id()) {
        // A process nobody can find again must not be left behind.
        let _ = child.kill();
        let _ = child.wait();
        return Err(e);
    }
    Ok(child)
}

/// Writes `pid` to `path` atomically.
pub fn write_pid_file(path: &Path, pid: u32) -> Result<()> {
    let tmp = path.with_extension("pid.tmp");
    std::fs::write(&tmp, format!("{pid}\n")).map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
}

/// Reads a pid file: `None` when it does not exist or does not hold a pid (a stale or
/// torn file is as good as none; the caller replaces or removes it).
pub fn read_pid_file(path: &Path) -> Result<Option<u32>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(parse_pid(&text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// Parses a pid file's contents. Pure.
pub fn parse_pid(text: &str) -> Option<u32> {
    text.trim().parse().ok().filter(|&pid| pid > 0)
}

/// Removes a pid file; a missing one is fine.
pub fn remove_pid_file(path: &Path) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io("remove", path, e)),
    }
}

/// The pid in `pid_file` if that process is alive and is `program` started with the
/// argument `marker`; `None` otherwise.
pub fn running_pid(pid_file: &Path, program: &str, marker: &Path) -> Result<Option<u32>> {
    let Some(pid) = read_pid_file(pid_file)? else {
        return Ok(None);
    };
    Ok((is_alive(pid)
        && read_cmdline(pid).is_some_and(|c| cmdline_matches(&c, program, marker.as_os_str())))
    .then_some(pid))
}

/// Whether a `/proc/PID/cmdline` is `program` (by file name of argv\[0\]) with `marker` as
/// one of its arguments (alone or as `--flag=marker`). Pure.
pub fn cmdline_matches(cmdline: &[u8], program: &str, marker: &OsStr) -> bool {
    let mut args = split_cmdline(cmdline);
    let Some(argv0) = args.next() else {
        return false;
    };
    if Path::new(OsStr::from_bytes(argv0)).file_name() != Some(OsStr::new(program)) {
        return false;
    }
    let marker = marker.as_bytes();
    args.any(|arg| arg == marker || flag_value(arg) == Some(marker))
}

/// Whether a `/proc/PID/cmdline` belongs to some rkube process of the cluster in `dir`:
/// argv\[0\] is an `rkube-*` binary and an argument is a path inside `dir`. Used by `down`
/// for pid files it has no specific expectation for. Pure.
pub fn cmdline_in_dir(cmdline: &[u8], dir: &Path) -> bool {
    let mut args = split_cmdline(cmdline);
    let Some(argv0) = args.next() else {
        return false;
    };
    let is_rkube = Path::new(OsStr::from_bytes(argv0))
        .file_name()
        .is_some_and(|n| n.as_bytes().starts_with(b"rkube-"));
    is_rkube
        && args.any(|arg| {
            let value = flag_value(arg).unwrap_or(arg);
            Path::new(OsStr::from_bytes(value)).starts_with(dir)
        })
}

fn split_cmdline(cmdline: &[u8]) -> impl Iterator<Item = &[u8]> {
    // An empty cmdline (zombie, kernel thread) yields one empty argv[0], matching nothing.
    cmdline
        .strip_suffix(b"\0")
        .unwrap_or(cmdline)
        .split(|&b| b == 0)
}

fn flag_value(arg: &[u8]) -> Option<&[u8]> {
    if !arg.starts_with(b"-") {
        return None;
    }
    let eq = arg.iter().position(|&b| b == b'=')?;
    Some(&arg[eq + 1..])
}

/// The raw `/proc/PID/cmdline` (empty for zombies and kernel threads); `None` when the
/// process is gone or unreadable.
pub fn read_cmdline(pid: u32) -> Option<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/cmdline")).ok()
}

/// Whether `pid` exists and is not a zombie (a zombie has exited; only its parent's wait
/// is missing, which is none of our business unless we are that parent, see [`reap`]).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat_state(&stat))
        .is_some_and(|state| !matches!(state, 'Z' | 'X' | 'x'))
}

/// The state letter of a `/proc/PID/stat` line. The command name in parentheses may itself
/// hold spaces and parentheses, so the state is found after the *last* `)`. Pure.
pub fn parse_stat_state(stat: &str) -> Option<char> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.trim_start().chars().next()
}

/// Sends `signal` to `pid`. `Ok(false)` when the process no longer exists.
pub fn send_signal(pid: u32, signal: Signal) -> Result<bool> {
    let raw = i32::try_from(pid).map_err(|_| Error::Signal {
        pid,
        signal: signal.as_str(),
        source: Errno::ESRCH,
    })?;
    match nix::sys::signal::kill(Pid::from_raw(raw), signal) {
        Ok(()) => Ok(true),
        Err(Errno::ESRCH) => Ok(false),
        Err(source) => Err(Error::Signal {
            pid,
            signal: signal.as_str(),
            source,
        }),
    }
}

/// Collects `pid`'s exit status if it is a child of this process that has exited, so it
/// does not linger as a zombie (tests that run `up` and `down` in one process need this).
/// Does nothing for processes that are not our children.
pub fn reap(pid: u32) {
    if let Ok(raw) = i32::try_from(pid) {
        let _ = waitpid(Pid::from_raw(raw), Some(WaitPidFlag::WNOHANG));
    }
}

/// The last `max_lines` lines of a log file (reading at most its last 16 KiB), for error
/// messages, joined by newlines. Empty when the file cannot be read.
pub fn log_tail(path: &Path, max_lines: usize) -> String {
    const MAX_BYTES: u64 = 16 * 1024;
    let Ok(mut file) = File::open(path) else {
        return String::new();
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    let _ = file.seek(SeekFrom::Start(len.saturating_sub(MAX_BYTES)));
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    last_lines(&String::from_utf8_lossy(&bytes), max_lines)
}

/// The last `max_lines` lines of `text` (trailing blank lines dropped), joined by
/// newlines. Pure.
pub fn last_lines(text: &str, max_lines: usize) -> String {
    let lines: Vec<&str> = text.trim_end().lines().collect();
    lines[lines.len().saturating_sub(max_lines)..].join("\n")
}

#[cfg(test)]
mod tests;
