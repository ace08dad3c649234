use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::*;
use crate::pki::{ClusterPki, ServingCert};

fn server_config(pki: &ClusterPki) -> Arc<rustls::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(pki.ca_cert()).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .unwrap();
    let chain = CertificateDer::pem_file_iter(pki.serving_cert("a1"))
        .unwrap()
        .collect::<std::result::Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.serving_key("a1")).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    Arc::new(config)
}

/// A one-request HTTPS server: answers `GET` with 200 and reports the client certificate's
/// subject (or "none").
async fn serve_once(pki: &ClusterPki) -> (SocketAddr, tokio::task::JoinHandle<Option<String>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(server_config(pki));
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(tcp).await.ok()?;
        let subject = tls.get_ref().1.peer_certificates().map(|c| {
            let (_, cert) = x509_parser::parse_x509_certificate(&c[0]).unwrap();
            cert.subject().to_string()
        });
        let mut buf = [0u8; 1024];
        let _ = tls.read(&mut buf).await;
        tls.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await
            .unwrap();
        let _ = tls.shutdown().await;
        Some(subject.unwrap_or_else(|| "none".into()))
    });
    (addr, task)
}

fn new_pki() -> (tempfile::TempDir, ClusterPki) {
    let tmp = tempfile::tempdir().unwrap();
    let pki = ClusterPki::new(tmp.path().join("pki"));
    pki.ensure(&[ServingCert {
        name: "a1".into(),
        ips: vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
    }])
    .unwrap();
    (tmp, pki)
}

#[tokio::test]
async fn a_client_trusting_the_cluster_ca_reaches_an_apiserver_and_presents_the_admin_cert() {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let (_tmp, pki) = new_pki();
        let (addr, server) = serve_once(&pki).await;
        let config = client_config(
            &pki.ca_cert(),
            Some((&pki.admin_cert(), &pki.admin_key())),
            &[b"http/1.1"],
        )
        .unwrap();
        let mut stream = connect(addr, config).await.expect("handshake");
        let code = http_get_status(&mut stream, "x", "/readyz").await.unwrap();
        assert_eq!(code, 200);
        assert_eq!(
            server.await.unwrap().as_deref(),
            Some("CN=rkube-admin, O=system:masters")
        );
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_client_refuses_a_server_signed_by_another_ca() {
    tokio::time::timeout(std::time::Duration::from_secs(20), async {
        let (_tmp, pki) = new_pki();
        let (_tmp2, other) = new_pki();
        let (addr, _server) = serve_once(&pki).await;
        let config = client_config(&other.ca_cert(), None, &[]).unwrap();
        let err = connect(addr, config).await.unwrap_err();
        assert!(err.to_string().contains("certificate"), "{err}");
    })
    .await
    .unwrap();
}

#[test]
fn status_lines_parse_to_their_code() {
    assert_eq!(parse_status_line(b"HTTP/1.1 200 OK\r\nx: y"), Some(200));
    assert_eq!(
        parse_status_line(b"HTTP/1.0 503 Service Unavailable\r\n"),
        Some(503)
    );
    assert_eq!(parse_status_line(b"SSH-2.0-OpenSSH\r\n"), None);
    assert_eq!(parse_status_line(b""), None);
}
