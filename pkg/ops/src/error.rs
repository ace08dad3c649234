//! The crate's error type. Variants are named for what failed; messages are lowercase and
//! say what to do next where there is something to do.

use std::path::PathBuf;
use std::time::Duration;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything `up`, `status` and `down` can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The caller asked for something that cannot be done (bad flag values, a request that
    /// contradicts the existing cluster's layout). Binaries map this to a usage exit code.
    #[error("{0}")]
    InvalidOptions(String),

    /// `--nodes` asked for kubelets, which do not exist yet.
    #[error(
        "--nodes {requested}: kubelets are not available yet; use --nodes 0 (control plane only)"
    )]
    NodesNotSupported { requested: usize },

    /// DIR holds no cluster.
    #[error(
        "no cluster in {}: {} does not exist (start one with `rkube up --dir {}`)",
        dir.display(), layout.display(), dir.display()
    )]
    NoCluster { dir: PathBuf, layout: PathBuf },

    /// `down --purge` refused to delete a directory that is not a cluster directory.
    #[error(
        "refusing to delete {}: it is not empty and holds no cluster.json, so it does not look like an rkube cluster directory",
        dir.display()
    )]
    NotAClusterDir { dir: PathBuf },

    /// A file an image is built from cannot be used (see [`crate::images`]).
    #[error("cannot build an image from {}: {reason}", path.display())]
    ImageInput { path: PathBuf, reason: String },

    /// A file-system operation failed.
    #[error("failed to {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// `cluster.json` exists but cannot be used.
    #[error("invalid cluster layout {}", path.display())]
    LayoutInvalid {
        path: PathBuf,
        #[source]
        source: crate::layout::LayoutProblem,
    },

    /// The flags lay out a cluster that cannot work (e.g. one port for two servers).
    #[error(transparent)]
    BadLayout(#[from] crate::layout::LayoutProblem),

    /// Not enough free local ports (see [`crate::ports`]).
    #[error("cannot find {count} free ports on 127.0.0.1 in {}-{}", range.start, range.end - 1)]
    PortAllocation {
        count: usize,
        range: std::ops::Range<u16>,
    },

    /// The binary to run was found nowhere.
    #[error(
        "cannot find `{name}` (looked in: {}); build it with `cargo build --bin {name}` or pass --bin-dir",
        searched.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    BinaryNotFound {
        name: String,
        searched: Vec<PathBuf>,
    },

    /// Starting a process failed.
    #[error("failed to start {name} ({})", program.display())]
    Spawn {
        name: String,
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A process started by this `up` exited before the cluster became ready.
    #[error(
        "{name} exited ({status}) before the cluster became ready; see its log {} \
         (stop the rest of the cluster with `rkube down --dir {dir}`){}",
        log.display(), tail_suffix(tail)
    )]
    ProcessExited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
        dir: String,
    },

    /// The cluster did not become ready before the deadline.
    #[error(
        "timed out after {}s waiting for the cluster: {name} is not ready ({reason}); see its log {} \
         (processes are left running: inspect with `rkube status --dir {dir}`, stop with `rkube down --dir {dir}`){}",
        timeout.as_secs_f64(), log.display(), tail_suffix(tail)
    )]
    NotReady {
        name: String,
        reason: String,
        log: PathBuf,
        tail: String,
        timeout: Duration,
        dir: String,
    },

    /// Another `rkube up`/`down` holds the directory's lock.
    #[error("another rkube command is working on {} (its lock {} is held); wait for it to finish", dir.display(), lock.display())]
    Locked { dir: PathBuf, lock: PathBuf },

    /// A process survived SIGKILL (stuck in the kernel); its pid file is kept.
    #[error("{name} (pid {pid}) is still alive after SIGKILL; its pid file {} is kept", pid_file.display())]
    StillRunning {
        name: String,
        pid: u32,
        pid_file: PathBuf,
    },

    /// A certificate or key file could not be used.
    #[error("{}: not a usable PEM file", path.display())]
    Pem {
        path: PathBuf,
        #[source]
        source: PemProblem,
    },

    /// A certificate or key could not be made.
    #[error("cluster certificates: cannot {action}")]
    Certificate {
        action: &'static str,
        #[source]
        source: rcgen::Error,
    },

    /// The TLS library refused the client configuration.
    #[error("cannot configure TLS")]
    Tls(#[source] rustls::Error),

    /// Sending a signal failed for a reason other than "no such process".
    #[error("failed to send {signal} to pid {pid}")]
    Signal {
        pid: u32,
        signal: &'static str,
        #[source]
        source: nix::Error,
    },
}

/// What is wrong with a PEM file.
#[derive(Debug, thiserror::Error)]
pub enum PemProblem {
    #[error("cannot parse it")]
    Parse(#[source] rustls::pki_types::pem::Error),
    #[error("it holds no certificate")]
    NoCertificate,
    #[error("TLS refuses it")]
    Refused(#[source] rustls::Error),
}

impl Error {
    /// Whether the error is the caller's to fix by changing flags (a usage error), as opposed
    /// to a failure of the cluster or of the machine.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidOptions(_) | Error::NodesNotSupported { .. } | Error::BadLayout(_)
        )
    }

    /// The `rkube` command's exit code for this error: 2 for a usage error, else 1.
    pub fn exit_code(&self) -> u8 {
        if self.is_usage() {
            2
        } else {
            1
        }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// `e` and its sources, joined by `: ` (a source whose text the chain already holds is
/// skipped, as some errors repeat their cause in their own message).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

fn tail_suffix(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        let lines: Vec<String> = tail.lines().map(|l| format!("    {l}")).collect();
        format!("; its last lines:\n{}", lines.join("\n"))
    }
}
