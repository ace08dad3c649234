use std::net::{IpAddr, Ipv4Addr};

use x509_parser::extensions::GeneralName;

use super::*;

fn der(pem: &str) -> Vec<u8> {
    use rustls::pki_types::pem::PemObject as _;
    rustls::pki_types::CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

fn sans(cert_pem: &str) -> (Vec<String>, Vec<IpAddr>) {
    let der = der(cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let mut dns = Vec::new();
    let mut ips = Vec::new();
    for name in &cert
        .subject_alternative_name()
        .unwrap()
        .unwrap()
        .value
        .general_names
    {
        match name {
            GeneralName::DNSName(d) => dns.push(d.to_string()),
            GeneralName::IPAddress(b) if b.len() == 4 => {
                ips.push(IpAddr::from(<[u8; 4]>::try_from(*b).unwrap()))
            }
            GeneralName::IPAddress(b) => ips.push(IpAddr::from(<[u8; 16]>::try_from(*b).unwrap())),
            other => panic!("unexpected SAN {other:?}"),
        }
    }
    (dns, ips)
}

#[test]
fn a_serving_certificate_names_localhost_loopback_and_the_given_addresses() {
    let ca = new_ca().unwrap();
    let lb = IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3));
    let pair = issue_serving(&ca.key_pem, &[IpAddr::V4(Ipv4Addr::LOCALHOST), lb]).unwrap();
    let (dns, ips) = sans(&pair.cert_pem);
    assert_eq!(dns, vec!["localhost"]);
    assert_eq!(
        ips,
        vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
            lb
        ],
        "127.0.0.1 is listed once"
    );
    let der = der(&pair.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .server_auth
    );
    assert_eq!(cert.issuer().to_string(), "CN=rkube-ca");
}

#[test]
fn a_client_certificate_carries_the_user_as_cn_and_the_group_as_o() {
    let ca = new_ca().unwrap();
    let pair = issue_client(&ca.key_pem, "rkube-admin", Some("system:masters")).unwrap();
    let der = der(&pair.cert_pem);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let cn: Vec<_> = cert
        .subject()
        .iter_common_name()
        .map(|a| a.as_str().unwrap())
        .collect();
    let orgs: Vec<_> = cert
        .subject()
        .iter_organization()
        .map(|a| a.as_str().unwrap())
        .collect();
    assert_eq!(cn, ["rkube-admin"]);
    assert_eq!(orgs, ["system:masters"]);
    assert!(
        cert.extended_key_usage()
            .unwrap()
            .unwrap()
            .value
            .client_auth
    );
}

#[test]
fn ensure_creates_everything_once_and_then_reuses_it() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ClusterPki::new(tmp.path().join("pki"));
    let servers = [ServingCert {
        name: "a1".into(),
        ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    }];
    let written = pki.ensure(&servers).unwrap();
    assert_eq!(
        written,
        ["ca.crt", "apiserver-a1.crt", "admin.crt", "tokens.csv"]
    );
    assert!(pki.exists());
    use std::os::unix::fs::PermissionsExt as _;
    for secret in [
        pki.ca_key(),
        pki.admin_key(),
        pki.serving_key("a1"),
        pki.token_file(),
    ] {
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", secret.display());
    }
    let admin_before = std::fs::read_to_string(pki.admin_cert()).unwrap();
    let tokens = std::fs::read_to_string(pki.token_file()).unwrap();
    for user in TOKEN_USERS {
        assert_eq!(token_for(&tokens, user).unwrap().len(), 48, "{user}");
    }

    // Again: nothing new. A lost serving certificate is issued again by the same CA.
    assert!(pki.ensure(&servers).unwrap().is_empty());
    std::fs::remove_file(pki.serving_cert("a1")).unwrap();
    assert_eq!(pki.ensure(&servers).unwrap(), ["apiserver-a1.crt"]);
    assert_eq!(
        std::fs::read_to_string(pki.admin_cert()).unwrap(),
        admin_before
    );
    let reissued = std::fs::read_to_string(pki.serving_cert("a1")).unwrap();
    let der = der(&reissued);
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    assert_eq!(cert.issuer().to_string(), "CN=rkube-ca");

    // A lost CA invalidates everything it signed.
    std::fs::remove_file(pki.ca_key()).unwrap();
    assert_eq!(
        pki.ensure(&servers).unwrap(),
        ["ca.crt", "apiserver-a1.crt", "admin.crt"]
    );
    assert_ne!(
        std::fs::read_to_string(pki.admin_cert()).unwrap(),
        admin_before
    );
}

/// CN and O values of a certificate file, and whether it is for client authentication.
fn subject(path: &Path) -> (Vec<String>, Vec<String>, bool) {
    let der = der(&std::fs::read_to_string(path).unwrap());
    let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
    let values =
        |it: &x509_parser::x509::AttributeTypeAndValue<'_>| it.as_str().unwrap().to_string();
    let cn = cert.subject().iter_common_name().map(values).collect();
    let o = cert.subject().iter_organization().map(values).collect();
    let client = cert
        .extended_key_usage()
        .unwrap()
        .unwrap()
        .value
        .client_auth;
    assert_eq!(cert.issuer().to_string(), "CN=rkube-ca");
    (cn, o, client)
}

#[test]
fn each_component_gets_a_client_certificate_with_its_kubernetes_identity() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ClusterPki::new(tmp.path().join("pki"));
    let clients = [
        ClientIdentity::controller_manager("controller-manager"),
        ClientIdentity::scheduler("scheduler"),
        ClientIdentity::node("kubelet-n1", "n1"),
        ClientIdentity::node("kubelet-n2", "n2"),
    ];
    let written = pki.ensure_with_clients(&[], &clients).unwrap();
    assert_eq!(
        written,
        [
            "ca.crt",
            "admin.crt",
            "controller-manager.crt",
            "scheduler.crt",
            "kubelet-n1.crt",
            "kubelet-n2.crt",
            "tokens.csv"
        ]
    );
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    assert_eq!(
        subject(&pki.client_cert("controller-manager")),
        (s(&["system:kube-controller-manager"]), vec![], true)
    );
    assert_eq!(
        subject(&pki.client_cert("scheduler")),
        (s(&["system:kube-scheduler"]), vec![], true)
    );
    assert_eq!(
        subject(&pki.client_cert("kubelet-n2")),
        (s(&["system:node:n2"]), s(&["system:nodes"]), true)
    );
    use std::os::unix::fs::PermissionsExt as _;
    for c in &clients {
        let mode = std::fs::metadata(pki.client_key(&c.file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{}", c.file);
    }

    // Present ones are reused; a missing one is issued again, by the same CA.
    let scheduler = std::fs::read(pki.client_cert("scheduler")).unwrap();
    std::fs::remove_file(pki.client_key("kubelet-n1")).unwrap();
    assert_eq!(
        pki.ensure_with_clients(&[], &clients).unwrap(),
        ["kubelet-n1.crt"]
    );
    assert_eq!(
        std::fs::read(pki.client_cert("scheduler")).unwrap(),
        scheduler
    );
    assert_eq!(
        subject(&pki.client_cert("kubelet-n1")).0,
        s(&["system:node:n1"])
    );
}
