//! A stand-in for the components that do not exist yet (`rkube-controller-manager`,
//! `rkube-scheduler`, `rkube-kubelet`), for rkube-ops' supervisor tests
//! (`tests/supervisor.rs` links it into a bin dir under those names). It accepts exactly
//! the command line every component shares (an unknown flag is an error, so the tests
//! check what `up` passes), checks that its client certificate carries the identity
//! Kubernetes gives the component its file name names, and serves `/healthz` and
//! `/readyz` on `--listen`.
//!
//! Like the real ones would, through the fake apiserver's object files (see
//! `fake-apiserver.rs`): with `--leader-elect=true` it takes its Lease
//! (`kube-system/kube-<component>`, holder `<component>_<pid>`), and a kubelet registers
//! its Node, Ready.
//!
//! Its behaviour comes from the file `fake-component-mode` in its working directory (the
//! cluster directory): `ok` (default), `exit` (fail at start), `not-ready` (`/readyz`
//! answers 503).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn fail(msg: &str) -> ! {
    eprintln!("fake-component: {msg}");
    std::process::exit(2)
}

#[derive(Default)]
struct Flags {
    apiservers: Vec<SocketAddr>,
    ca: Option<PathBuf>,
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    listen: Option<SocketAddr>,
    leader_elect: bool,
    node: Option<String>,
    name: Option<String>,
}

fn parse() -> Flags {
    let mut flags = Flags::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if let Some(value) = arg.strip_prefix("--leader-elect=") {
            flags.leader_elect = value
                .parse()
                .unwrap_or_else(|_| fail(&format!("bad {arg}")));
            continue;
        }
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{arg} needs a value")));
        let file = |value: &str| {
            let path = PathBuf::from(value);
            if !path.is_file() {
                fail(&format!("{arg} {value}: no such file"));
            }
            Some(path)
        };
        match arg.as_str() {
            "--apiserver" => flags.apiservers.push(
                value
                    .parse()
                    .unwrap_or_else(|_| fail(&format!("bad --apiserver {value}"))),
            ),
            "--certificate-authority" => flags.ca = file(&value),
            "--client-certificate" => flags.cert = file(&value),
            "--client-key" => flags.key = file(&value),
            "--listen" => {
                flags.listen = Some(value.parse().unwrap_or_else(|_| fail("bad --listen")))
            }
            "--log-format" if value == "text" || value == "json" => {}
            "--otlp-endpoint" => {}
            "--node-name" => flags.node = Some(value),
            "--name" => flags.name = Some(value),
            // A kubelet's own flags (its node's runtime): accepted, unused.
            "--container-runtime-endpoint"
            | "--root-dir"
            | "--cgroup-root"
            | "--cni-conf-dir"
            | "--cni-bridge" => {}
            _ => fail(&format!("unknown flag {arg} {value}")),
        }
    }
    flags
}

/// The component this binary stands in for, from its file name (`rkube-scheduler` →
/// `scheduler`).
fn component() -> String {
    let argv0 = std::env::args().next().unwrap_or_default();
    let name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    name.strip_prefix("rkube-")
        .unwrap_or_else(|| fail(&format!("run me as rkube-<component>, not {name}")))
        .to_string()
}

/// CN and O values of the PEM certificate at `path`.
fn subject(path: &Path) -> (Vec<String>, Vec<String>) {
    use rustls::pki_types::pem::PemObject as _;
    let der = rustls::pki_types::CertificateDer::from_pem_file(path)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .unwrap_or_else(|e| fail(&format!("{}: {e}", path.display())));
    let values = |it: &x509_parser::x509::AttributeTypeAndValue<'_>| {
        it.as_str().unwrap_or_default().to_string()
    };
    let cn = cert.subject().iter_common_name().map(values).collect();
    let o = cert.subject().iter_organization().map(values).collect();
    (cn, o)
}

/// Writes an object where the fake apiserver serves it from.
fn publish(resource: &str, namespace: &str, name: &str, object: serde_json::Value) {
    let dir = Path::new("fake-objects").join(resource).join(namespace);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| fail(&e.to_string()));
    // Two stand-ins may publish the same object at once: each writes its own temporary file.
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&tmp, object.to_string()).unwrap_or_else(|e| fail(&e.to_string()));
    std::fs::rename(&tmp, dir.join(format!("{name}.json")))
        .unwrap_or_else(|e| fail(&e.to_string()));
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let component = component();
    let flags = parse();
    let (Some(_), Some(cert), Some(_), Some(listen)) =
        (&flags.ca, &flags.cert, &flags.key, flags.listen)
    else {
        fail("missing one of --certificate-authority --client-certificate --client-key --listen")
    };
    if flags.apiservers.is_empty() {
        fail("no --apiserver");
    }
    let expected = match (component.as_str(), &flags.node) {
        ("controller-manager", None) => ("system:kube-controller-manager".to_string(), vec![]),
        ("scheduler", None) => ("system:kube-scheduler".to_string(), vec![]),
        ("kubelet", Some(node)) => (
            format!("system:node:{node}"),
            vec!["system:nodes".to_string()],
        ),
        (other, node) => fail(&format!("no identity for {other} with node {node:?}")),
    };
    let (cn, o) = subject(cert);
    if (cn.as_slice(), &o) != (std::slice::from_ref(&expected.0), &expected.1) {
        fail(&format!(
            "certificate says CN={cn:?} O={o:?}, expected {expected:?}"
        ));
    }
    let mode = std::fs::read_to_string("fake-component-mode").unwrap_or_default();
    if mode.trim() == "exit" {
        eprintln!("fake-component: refusing to start (mode exit)");
        std::process::exit(3);
    }
    let ready = mode.trim() != "not-ready";
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .unwrap_or_else(|e| fail(&format!("listen on {listen}: {e}")));
    // The first candidate takes the Lease; later ones stand by, as in a real election.
    let lease_file =
        Path::new("fake-objects/leases/kube-system").join(format!("kube-{component}.json"));
    if flags.leader_elect && !lease_file.exists() {
        let instance = flags.name.clone().unwrap_or_else(|| component.clone());
        publish(
            "leases",
            "kube-system",
            &format!("kube-{component}"),
            serde_json::json!({
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": format!("kube-{component}"), "namespace": "kube-system"},
                "spec": {"holderIdentity": format!("{instance}_{}", std::process::id())},
            }),
        );
    }
    if let Some(node) = &flags.node {
        publish(
            "nodes",
            "_",
            node,
            serde_json::json!({
                "apiVersion": "v1", "kind": "Node", "metadata": {"name": node},
                "status": {"conditions": [{"type": "Ready", "status": "True"}]},
            }),
        );
    }
    println!("fake {component} serving /readyz on {listen} (ready: {ready})");
    loop {
        let Ok((mut conn, _)) = listener.accept().await else {
            continue;
        };
        tokio::spawn(async move {
            let mut buf = [0u8; 1024];
            let n = conn.read(&mut buf).await.unwrap_or(0);
            let request = String::from_utf8_lossy(&buf[..n]);
            let healthy = request.starts_with("GET /healthz") || ready;
            let head = if healthy {
                "200 OK"
            } else {
                "503 Service Unavailable"
            };
            let _ = conn
                .write_all(
                    format!("HTTP/1.1 {head}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        });
    }
}
