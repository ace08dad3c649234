//! The node's CNI configuration, which containerd's CRI plugin applies to every sandbox:
//! a bridge (its own name per node, so several nodes share a machine) with host-local
//! addresses from the node's pod CIDR and a default route through it, the firewall plugin
//! (pod traffic is accepted even where the FORWARD policy drops), portmap for hostPort, and
//! loopback. The kubelet writes it once it knows the pod CIDR (its flag, or the Node's
//! `spec.podCIDR` from the node IPAM controller). The conflist is pure; writing is atomic.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

/// The file the kubelet writes in the CNI configuration directory.
pub const CONFLIST: &str = "10-rkube.conflist";

/// The network's configuration list. Pure.
pub fn conflist(network: &str, bridge: &str, pod_cidr: &str) -> Value {
    json!({
        "cniVersion": "1.0.0",
        "name": network,
        "plugins": [
            {
                "type": "bridge",
                "bridge": bridge,
                "isGateway": true,
                "ipMasq": true,
                "hairpinMode": true,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": pod_cidr}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            },
            {"type": "firewall"},
            {"type": "portmap", "capabilities": {"portMappings": true}},
            {"type": "loopback"},
        ],
    })
}

/// The bridge of node `node`: `rk-<node>` cut to the 15 bytes an interface name may have.
pub fn bridge_name(node: &str) -> String {
    let clean: String = node
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let mut name = format!("rk-{clean}");
    name.truncate(15);
    name
}

/// Writes the conflist into `dir` (atomically); returns whether the file changed.
pub fn write(dir: &Path, network: &str, bridge: &str, pod_cidr: &str) -> std::io::Result<bool> {
    let text = serde_json::to_string_pretty(&conflist(network, bridge, pod_cidr))
        .expect("JSON values encode");
    let path: PathBuf = dir.join(CONFLIST);
    if std::fs::read_to_string(&path).ok().as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{CONFLIST}.tmp"));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, &path)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_conflist_chains_bridge_firewall_portmap_and_loopback_on_the_pod_cidr() {
        let c = conflist("rkube", "rk-n1", "10.244.1.0/24");
        let types: Vec<&str> = c["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["type"].as_str().unwrap())
            .collect();
        assert_eq!(types, ["bridge", "firewall", "portmap", "loopback"]);
        assert_eq!(c["plugins"][0]["bridge"], "rk-n1");
        assert_eq!(c["plugins"][0]["ipam"]["type"], "host-local");
        assert_eq!(
            c["plugins"][0]["ipam"]["ranges"][0][0]["subnet"],
            "10.244.1.0/24"
        );
        assert_eq!(c["plugins"][0]["isGateway"], true);
        assert_eq!(c["plugins"][2]["capabilities"]["portMappings"], true);
        assert_eq!(c["cniVersion"], "1.0.0");
    }

    #[test]
    fn bridge_names_are_per_node_and_fit_an_interface_name() {
        let cases = [
            ("n1", "rk-n1"),
            ("n2", "rk-n2"),
            ("node.example", "rk-node-example"),
            ("a-very-long-node-name", "rk-a-very-long-"),
        ];
        for (node, want) in cases {
            assert_eq!(bridge_name(node), want);
            assert!(bridge_name(node).len() <= 15);
        }
    }

    #[test]
    fn writing_the_same_configuration_twice_changes_nothing() {
        let dir = std::env::temp_dir().join(format!("rkube-cni-test-{}", std::process::id()));
        assert!(write(&dir, "rkube", "rk-n1", "10.244.1.0/24").unwrap());
        assert!(!write(&dir, "rkube", "rk-n1", "10.244.1.0/24").unwrap());
        assert!(write(&dir, "rkube", "rk-n1", "10.244.2.0/24").unwrap());
        let text = std::fs::read_to_string(dir.join(CONFLIST)).unwrap();
        assert!(text.contains("10.244.2.0/24"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
