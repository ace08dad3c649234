//! rkube-pause: the first process of every pod sandbox. It only exists so the pod's
//! namespaces have an owner: it blocks every signal it cares about, then waits for them
//! one at a time. SIGCHLD reaps whatever exited (as PID 1 it inherits orphans);
//! SIGTERM or SIGINT end it with status 0. It never touches the filesystem or network.

use nix::sys::signal::{SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

fn main() -> std::process::ExitCode {
    if std::env::args().nth(1).as_deref() == Some("--help") {
        println!(
            "rkube-pause: PID 1 of a pod sandbox. Takes no arguments; reaps zombies and \
             exits with status 0 on SIGTERM or SIGINT."
        );
        return std::process::ExitCode::SUCCESS;
    }
    let mut set = SigSet::empty();
    for s in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGCHLD] {
        set.add(s);
    }
    if let Err(e) = nix::sys::signal::sigprocmask(SigmaskHow::SIG_BLOCK, Some(&set), None) {
        eprintln!("rkube-pause: cannot block signals: {e}");
        return std::process::ExitCode::from(1);
    }
    loop {
        match set.wait() {
            Ok(Signal::SIGCHLD) => reap(),
            Ok(Signal::SIGTERM | Signal::SIGINT) => return std::process::ExitCode::SUCCESS,
            Ok(_) => {}
            Err(e) => {
                eprintln!("rkube-pause: waiting for signals: {e}");
                return std::process::ExitCode::from(1);
            }
        }
    }
}

/// Reaps every exited child without blocking.
fn reap() {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
