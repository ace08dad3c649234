//! A stand-in for `rkube-apiserver`, for rkube-ops' supervisor tests (`tests/supervisor.rs`
//! copies it into a bin dir as `rkube-apiserver`). It accepts exactly the apiserver's CLI
//! contract (an unknown flag is an error, so the tests also check what `up` passes) and
//! serves `Maintenance/Status` as a settled cluster would: the lowest initial member leads.
//!
//! With `--tls-cert-file` and `--tls-private-key-file` it serves TLS, as the real one does
//! when `rkube up` starts it (client certificates are accepted but not required).
//!
//! Its behaviour comes from the file `fake-mode` in its working directory (the cluster
//! directory): `ok` (default), `exit` (fail at start), `no-leader` (never elect),
//! `ignore-term` (ignore SIGTERM, so only SIGKILL stops it).
//!
//! It also serves `rkube.api.v1.Resources` Get and List (what `rkube status` reads: Leases
//! and Nodes) from the files `fake-objects/<resource>/<namespace>/<name>.json` in that
//! directory (namespace `_` for cluster-scoped objects), which tests and the stand-in
//! components write; a missing file is a Kubernetes NotFound.

use std::net::SocketAddr;

use rkube_proto::api::resources_server::{Resources, ResourcesServer};
use rkube_proto::api::{self as pb, ResourceRef};
use rkube_proto::store::maintenance_server::{Maintenance, MaintenanceServer};
use rkube_proto::store::*;
use tonic::{Request, Response, Status};

/// The objects of a resource (in one namespace, or in all when `namespace` is empty).
fn object_dir(r: &ResourceRef) -> std::path::PathBuf {
    let dir = std::path::Path::new("fake-objects").join(&r.resource);
    match r.namespace.as_str() {
        "" => dir,
        ns => dir.join(ns),
    }
}

fn not_found(r: &ResourceRef) -> Status {
    let status = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound",
        "code": 404, "message": format!("{} {:?} not found", r.resource, r.name),
    });
    Status::with_details(
        tonic::Code::NotFound,
        "not found",
        serde_json::to_vec(&status).unwrap().into(),
    )
}

/// Serves objects from files; see the module docs.
struct Objects;

type Reply<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl Resources for Objects {
    async fn get(&self, req: Request<pb::GetRequest>) -> Reply<pb::ObjectResponse> {
        let r = req.into_inner().r#ref.unwrap_or_default();
        let dir = match r.namespace.as_str() {
            "" => object_dir(&r).join("_"),
            _ => object_dir(&r),
        };
        match std::fs::read(dir.join(format!("{}.json", r.name))) {
            Ok(object) => Ok(Response::new(pb::ObjectResponse {
                object: object.into(),
                warnings: vec![],
            })),
            Err(_) => Err(not_found(&r)),
        }
    }

    async fn list(&self, req: Request<pb::ListRequest>) -> Reply<pb::ListResponse> {
        let r = req.into_inner().r#ref.unwrap_or_default();
        let mut items = Vec::new();
        let mut dirs = vec![object_dir(&r)];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|e| e == "json") {
                    if let Ok(object) = std::fs::read(&path) {
                        items.push(object.into());
                    }
                }
            }
        }
        Ok(Response::new(pb::ListResponse {
            items,
            resource_version: "7".into(),
            r#continue: String::new(),
        }))
    }

    type WatchStream =
        std::pin::Pin<Box<dyn futures::Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

    async fn watch(&self, _: Request<pb::WatchRequest>) -> Reply<Self::WatchStream> {
        Err(Status::unimplemented("fake"))
    }
    async fn create(&self, _: Request<pb::CreateRequest>) -> Reply<pb::ObjectResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn update(&self, _: Request<pb::UpdateRequest>) -> Reply<pb::ObjectResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn update_status(&self, _: Request<pb::UpdateRequest>) -> Reply<pb::ObjectResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn patch(&self, _: Request<pb::PatchRequest>) -> Reply<pb::ObjectResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn delete(&self, _: Request<pb::DeleteRequest>) -> Reply<pb::ObjectResponse> {
        Err(Status::unimplemented("fake"))
    }
    async fn bind(&self, _: Request<pb::BindRequest>) -> Reply<pb::ObjectResponse> {
        Err(Status::unimplemented("fake"))
    }
}

#[derive(Debug, Clone)]
struct Fake {
    id: u64,
    name: String,
    leader: u64,
    members: Vec<Member>,
}

#[tonic::async_trait]
impl Maintenance for Fake {
    async fn status(&self, _: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let role = if self.leader == 0 {
            "candidate"
        } else if self.leader == self.id {
            "leader"
        } else {
            "follower"
        };
        Ok(Response::new(StatusResponse {
            id: self.id,
            name: self.name.clone(),
            role: role.to_string(),
            term: 2,
            leader: self.leader,
            commit_index: 7,
            applied_index: 7,
            last_log_index: 7,
            members: self.members.clone(),
            ..Default::default()
        }))
    }
    async fn hash(&self, _: Request<HashRequest>) -> Result<Response<HashResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn snapshot(
        &self,
        _: Request<SnapshotRequest>,
    ) -> Result<Response<SnapshotResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn member_list(
        &self,
        _: Request<MemberListRequest>,
    ) -> Result<Response<MemberListResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn member_add(
        &self,
        _: Request<MemberAddRequest>,
    ) -> Result<Response<MemberAddResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn member_promote(
        &self,
        _: Request<MemberPromoteRequest>,
    ) -> Result<Response<MemberPromoteResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
    async fn member_remove(
        &self,
        _: Request<MemberRemoveRequest>,
    ) -> Result<Response<MemberRemoveResponse>, Status> {
        Err(Status::unimplemented("fake"))
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("fake-apiserver: {msg}");
    std::process::exit(2)
}

fn parse_member(text: &str) -> Member {
    let mut member = Member::default();
    for part in text.split(',') {
        match part.split_once('=') {
            Some(("id", v)) => member.id = v.parse().unwrap_or_else(|_| fail("bad member id")),
            Some(("name", v)) => member.name = v.to_string(),
            Some(("peer", v)) => member.peer_address = v.to_string(),
            Some(("api", v)) => member.api_address = v.to_string(),
            _ => fail(&format!("bad --initial-member {text:?}")),
        }
    }
    member
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut args = std::env::args().skip(1);
    let (mut name, mut id, mut data_dir, mut api, mut peer) = (None, None, None, None, None);
    let mut members = Vec::new();
    let (mut tls_cert, mut tls_key) = (None, None);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(&format!("{flag} needs a value")));
        match flag.as_str() {
            "--name" => name = Some(value),
            "--id" => id = Some(value.parse::<u64>().unwrap_or_else(|_| fail("bad --id"))),
            "--data-dir" => data_dir = Some(value),
            "--api-listen" => {
                api = Some(
                    value
                        .parse::<SocketAddr>()
                        .unwrap_or_else(|_| fail("bad --api-listen")),
                )
            }
            "--peer-listen" => {
                peer = Some(
                    value
                        .parse::<SocketAddr>()
                        .unwrap_or_else(|_| fail("bad --peer-listen")),
                )
            }
            "--initial-member" => members.push(parse_member(&value)),
            "--log-format" if value == "text" || value == "json" => {}
            "--otlp-endpoint" => {}
            "--tls-cert-file" => tls_cert = Some(value),
            "--tls-private-key-file" => tls_key = Some(value),
            "--client-ca-file" | "--token-auth-file" => {
                if !std::path::Path::new(&value).is_file() {
                    fail(&format!("{flag} {value}: no such file"));
                }
            }
            _ => fail(&format!("unknown flag {flag} {value}")),
        }
    }
    let (Some(name), Some(id), Some(data_dir), Some(api), Some(peer)) =
        (name, id, data_dir, api, peer)
    else {
        fail("missing one of --name --id --data-dir --api-listen --peer-listen")
    };
    if !std::path::Path::new(&data_dir).is_dir() {
        fail(&format!("data dir {data_dir} does not exist"));
    }
    if !members.iter().any(|m| m.id == id && m.name == name) {
        fail("not among the initial members");
    }
    let mode = std::fs::read_to_string("fake-mode").unwrap_or_default();
    let leader = match mode.trim() {
        "exit" => {
            eprintln!("fake-apiserver: refusing to start (mode exit)");
            std::process::exit(3)
        }
        "no-leader" => 0,
        _ => members.iter().map(|m| m.id).min().unwrap_or(0),
    };
    if mode.trim() == "ignore-term" {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::spawn(async move {
            while term.recv().await.is_some() {
                println!("fake-apiserver: ignoring SIGTERM");
            }
        });
    }
    let _peer = std::net::TcpListener::bind(peer).unwrap_or_else(|e| fail(&e.to_string()));
    println!("fake-apiserver {name} (id {id}) serving on {api}, leader {leader}");
    let fake = Fake {
        id,
        name,
        leader,
        members,
    };
    let server = tonic::transport::Server::builder()
        .add_service(MaintenanceServer::new(fake))
        .add_service(ResourcesServer::new(Objects));
    match (tls_cert, tls_key) {
        (Some(cert), Some(key)) => {
            let listener = tokio::net::TcpListener::bind(api)
                .await
                .unwrap_or_else(|e| fail(&e.to_string()));
            server
                .serve_with_incoming(tls_incoming(listener, &cert, &key))
                .await
        }
        (None, None) => server.serve(api).await,
        _ => fail("--tls-cert-file and --tls-private-key-file go together"),
    }
    .unwrap_or_else(|e| fail(&e.to_string()));
}

/// Accepted connections after their TLS handshake, as tonic's incoming stream.
fn tls_incoming(
    listener: tokio::net::TcpListener,
    cert: &str,
    key: &str,
) -> impl futures::Stream<Item = std::io::Result<TlsConn>> {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let chain = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .unwrap_or_else(|e| fail(&format!("{cert}: {e}")));
    let key = PrivateKeyDer::from_pem_file(key).unwrap_or_else(|e| fail(&format!("{key}: {e}")));
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap_or_else(|e| fail(&e.to_string()));
    config.alpn_protocols = vec![b"h2".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(tcp).await {
                    let _ = tx.send(Ok(TlsConn(tls))).await;
                }
            });
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) })
}

/// A server-side TLS stream tonic can serve on.
struct TlsConn(tokio_rustls::server::TlsStream<tokio::net::TcpStream>);

impl tonic::transport::server::Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) {}
}

impl tokio::io::AsyncRead for TlsConn {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for TlsConn {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
