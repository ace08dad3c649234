//! A stand-in for `rkube-apiserver`, for rkube-ops' supervisor tests (`tests/supervisor.rs`
//! copies it into a bin dir as `rkube-apiserver`). It accepts exactly the apiserver's CLI
//! contract (an unknown flag is an error, so the tests also check what `up` passes) and
//! serves `Maintenance/Status` as a settled cluster would: the lowest initial member leads.
//!
//! Its behaviour comes from the file `fake-mode` in its working directory (the cluster
//! directory): `ok` (default), `exit` (fail at start), `no-leader` (never elect),
//! `ignore-term` (ignore SIGTERM, so only SIGKILL stops it).

use std::net::SocketAddr;

use rkube_proto::store::maintenance_server::{Maintenance, MaintenanceServer};
use rkube_proto::store::*;
use tonic::{Request, Response, Status};

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
    tonic::transport::Server::builder()
        .add_service(MaintenanceServer::new(fake))
        .serve(api)
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
}
