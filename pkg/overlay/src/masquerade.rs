//! Masquerading at the node's edge (flannel's rules): pod-to-pod traffic keeps its source
//! address across the tunnel; pod traffic leaving the cluster range leaves with the
//! node's address; host traffic to another node's pods is masqueraded too, so the
//! answers come back through the tunnel. The rules live in their own chain,
//! `RKUBE-OVERLAY` in the nat table, replaced as a whole with `iptables-restore
//! --noflush` (atomic; nothing else is touched) and jumped to from POSTROUTING.
//! iptables has no netlink interface of its own, so these are the one thing the agent
//! runs a command for (through nsenter(1) when it programs another namespace).

use std::path::Path;
use std::process::Command;

use ipnet::Ipv4Net;

/// The chain the rules live in.
pub const CHAIN: &str = "RKUBE-OVERLAY";

/// Why the rules could not be written.
#[derive(Debug, thiserror::Error)]
pub enum MasqueradeError {
    #[error("run {program}")]
    Spawn {
        program: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed {
        program: &'static str,
        stderr: String,
    },
}

/// The chain's rules (`iptables-restore` lines without `-A CHAIN`). Pure.
pub fn rules(cluster: Ipv4Net, subnet: Ipv4Net) -> Vec<String> {
    vec![
        // Pod to pod: unchanged, whichever node.
        format!("-s {cluster} -d {cluster} -j RETURN"),
        // Pods to the world (not multicast): the node's address.
        format!("-s {cluster} ! -d 224.0.0.0/4 -j MASQUERADE --random-fully"),
        // The world to this node's pods: unchanged.
        format!("! -s {cluster} -d {subnet} -j RETURN"),
        // This host to other nodes' pods: the host's address on the tunnel, so the answer
        // comes back through it.
        format!("! -s {cluster} -d {cluster} -j MASQUERADE --random-fully"),
    ]
}

/// The `iptables-restore --noflush` input that replaces the chain. Pure.
pub fn restore_input(cluster: Ipv4Net, subnet: Ipv4Net) -> String {
    let mut s = format!("*nat\n:{CHAIN} - [0:0]\n");
    for r in rules(cluster, subnet) {
        s.push_str(&format!("-A {CHAIN} {r}\n"));
    }
    s.push_str("COMMIT\n");
    s
}

/// Writes the chain and makes sure POSTROUTING jumps to it, in `netns` if given.
pub fn apply(
    cluster: Ipv4Net,
    subnet: Ipv4Net,
    netns: Option<&Path>,
) -> Result<(), MasqueradeError> {
    run(
        "iptables-restore",
        &["-w", "--noflush"],
        Some(&restore_input(cluster, subnet)),
        netns,
    )?;
    let jump = ["-w", "-t", "nat", "-C", "POSTROUTING", "-j", CHAIN];
    if run("iptables", &jump, None, netns).is_err() {
        run(
            "iptables",
            &["-w", "-t", "nat", "-I", "POSTROUTING", "1", "-j", CHAIN],
            None,
            netns,
        )?;
    }
    Ok(())
}

/// Removes the jump and the chain (when the agent stops with `--delete-on-exit`).
pub fn remove(netns: Option<&Path>) -> Result<(), MasqueradeError> {
    while run(
        "iptables",
        &["-w", "-t", "nat", "-D", "POSTROUTING", "-j", CHAIN],
        None,
        netns,
    )
    .is_ok()
    {}
    let _ = run("iptables", &["-w", "-t", "nat", "-F", CHAIN], None, netns);
    let _ = run("iptables", &["-w", "-t", "nat", "-X", CHAIN], None, netns);
    Ok(())
}

fn run(
    program: &'static str,
    args: &[&str],
    stdin: Option<&str>,
    netns: Option<&Path>,
) -> Result<(), MasqueradeError> {
    // In another namespace, through nsenter(1) (util-linux): the workspace has no
    // `unsafe`, which entering a namespace between fork and exec would need.
    let mut cmd = match netns {
        Some(path) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--net={}", path.display())).arg(program);
            c
        }
        None => Command::new(program),
    };
    cmd.args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd
        .spawn()
        .map_err(|source| MasqueradeError::Spawn { program, source })?;
    if let Some(input) = stdin {
        use std::io::Write as _;
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input.as_bytes())
                .map_err(|source| MasqueradeError::Spawn { program, source })?;
        }
    }
    let out = child
        .wait_with_output()
        .map_err(|source| MasqueradeError::Spawn { program, source })?;
    if !out.status.success() {
        return Err(MasqueradeError::Failed {
            program,
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_to_pod_keeps_its_source_and_leaving_traffic_is_masqueraded() {
        let r = rules(
            "10.244.0.0/16".parse().unwrap(),
            "10.244.3.0/24".parse().unwrap(),
        );
        assert_eq!(
            r,
            [
                "-s 10.244.0.0/16 -d 10.244.0.0/16 -j RETURN",
                "-s 10.244.0.0/16 ! -d 224.0.0.0/4 -j MASQUERADE --random-fully",
                "! -s 10.244.0.0/16 -d 10.244.3.0/24 -j RETURN",
                "! -s 10.244.0.0/16 -d 10.244.0.0/16 -j MASQUERADE --random-fully",
            ]
        );
    }

    #[test]
    fn the_restore_input_replaces_only_our_chain() {
        let s = restore_input(
            "10.244.0.0/16".parse().unwrap(),
            "10.244.3.0/24".parse().unwrap(),
        );
        assert!(s.starts_with("*nat\n:RKUBE-OVERLAY - [0:0]\n"));
        assert!(s.ends_with("COMMIT\n"));
        assert_eq!(
            s.lines()
                .filter(|l| l.starts_with("-A RKUBE-OVERLAY "))
                .count(),
            4
        );
        assert!(
            !s.contains("POSTROUTING"),
            "the jump is added on its own: {s}"
        );
    }
}
