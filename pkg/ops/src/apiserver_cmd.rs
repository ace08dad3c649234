//! The one place that spells `rkube-apiserver`'s command line. `rkube up`, the benchmark
//! and the e2e harness describe a replica as an [`ApiserverArgs`] and call
//! [`ApiserverArgs::to_args`], so a flag is renamed or added in one place. Pure.

use std::ffi::OsString;
use std::path::PathBuf;

/// The files that turn on TLS on the API port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Client certificates signed by this CA authenticate (CN = user, O = groups).
    pub client_ca: Option<PathBuf>,
}

/// One replica's command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiserverArgs {
    pub name: String,
    pub id: u64,
    pub data_dir: PathBuf,
    pub api_listen: String,
    pub peer_listen: String,
    /// `--initial-member` values (see [`initial_member`]), the same list on every replica.
    pub initial_members: Vec<String>,
    /// `--peer-override ID=ADDR`: dial peer ID at ADDR (through a proxy).
    pub peer_overrides: Vec<(u64, String)>,
    pub snapshot_every: Option<u64>,
    pub history_revisions: Option<usize>,
    /// `--create-system-namespaces` when set; the apiserver's default (true) otherwise.
    pub create_system_namespaces: Option<bool>,
    /// TLS on the API port; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    pub token_auth_file: Option<PathBuf>,
    /// `--anonymous-auth=true`: requests without credentials proceed as `system:anonymous`.
    /// Only for replicas nobody else can reach (store tests, benchmarks on loopback).
    pub anonymous_auth: bool,
    pub log_format: Option<String>,
    pub otlp_endpoint: Option<String>,
    /// Appended last, verbatim.
    pub extra: Vec<OsString>,
}

/// The value of one `--initial-member` flag.
pub fn initial_member(id: u64, name: &str, peer: &str, api: &str) -> String {
    format!("id={id},name={name},peer={peer},api={api}")
}

impl ApiserverArgs {
    /// A replica with the apiserver's defaults for everything but its identity and addresses.
    pub fn new(
        name: impl Into<String>,
        id: u64,
        data_dir: impl Into<PathBuf>,
        api_listen: impl Into<String>,
        peer_listen: impl Into<String>,
    ) -> Self {
        ApiserverArgs {
            name: name.into(),
            id,
            data_dir: data_dir.into(),
            api_listen: api_listen.into(),
            peer_listen: peer_listen.into(),
            initial_members: Vec::new(),
            peer_overrides: Vec::new(),
            snapshot_every: None,
            history_revisions: None,
            create_system_namespaces: None,
            tls: None,
            token_auth_file: None,
            anonymous_auth: false,
            log_format: None,
            otlp_endpoint: None,
            extra: Vec::new(),
        }
    }

    /// The arguments, in a fixed order (identity, addresses, members, tuning, security,
    /// telemetry, extra).
    pub fn to_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        let mut flag = |name: &str, value: OsString| {
            args.push(name.into());
            args.push(value);
        };
        flag("--name", self.name.clone().into());
        flag("--id", self.id.to_string().into());
        flag("--data-dir", self.data_dir.clone().into());
        flag("--api-listen", self.api_listen.clone().into());
        flag("--peer-listen", self.peer_listen.clone().into());
        for m in &self.initial_members {
            flag("--initial-member", m.into());
        }
        for (id, addr) in &self.peer_overrides {
            flag("--peer-override", format!("{id}={addr}").into());
        }
        if let Some(n) = self.snapshot_every {
            flag("--snapshot-every", n.to_string().into());
        }
        if let Some(n) = self.history_revisions {
            flag("--history-revisions", n.to_string().into());
        }
        if let Some(tls) = &self.tls {
            flag("--tls-cert-file", tls.cert.clone().into());
            flag("--tls-private-key-file", tls.key.clone().into());
            if let Some(ca) = &tls.client_ca {
                flag("--client-ca-file", ca.clone().into());
            }
        }
        if let Some(path) = &self.token_auth_file {
            flag("--token-auth-file", path.clone().into());
        }
        if let Some(format) = &self.log_format {
            flag("--log-format", format.into());
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            flag("--otlp-endpoint", endpoint.into());
        }
        if let Some(create) = self.create_system_namespaces {
            args.push(format!("--create-system-namespaces={create}").into());
        }
        if self.anonymous_auth {
            args.push("--anonymous-auth=true".into());
        }
        args.extend(self.extra.iter().cloned());
        args
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(args: &[OsString]) -> Vec<&str> {
        args.iter().map(|a| a.to_str().unwrap()).collect()
    }

    #[test]
    fn a_minimal_replica_passes_identity_addresses_and_members_only() {
        let mut a = ApiserverArgs::new("a1", 1, "/d/a1", "127.0.0.1:6443", "127.0.0.1:2380");
        a.initial_members
            .push(initial_member(1, "a1", "127.0.0.1:2380", "127.0.0.1:6443"));
        assert_eq!(
            strings(&a.to_args()),
            [
                "--name",
                "a1",
                "--id",
                "1",
                "--data-dir",
                "/d/a1",
                "--api-listen",
                "127.0.0.1:6443",
                "--peer-listen",
                "127.0.0.1:2380",
                "--initial-member",
                "id=1,name=a1,peer=127.0.0.1:2380,api=127.0.0.1:6443",
            ]
        );
    }

    #[test]
    fn tls_tokens_and_tuning_become_their_flags() {
        let mut a = ApiserverArgs::new("a2", 2, "/d/a2", "127.0.0.1:1", "127.0.0.1:2");
        a.peer_overrides.push((1, "127.0.0.1:9".into()));
        a.snapshot_every = Some(100);
        a.history_revisions = Some(50);
        a.create_system_namespaces = Some(false);
        a.tls = Some(TlsFiles {
            cert: "/p/s.crt".into(),
            key: "/p/s.key".into(),
            client_ca: Some("/p/ca.crt".into()),
        });
        a.token_auth_file = Some("/p/tokens.csv".into());
        a.anonymous_auth = true;
        a.extra.push("--heartbeat-ms=50".into());
        let args = a.to_args();
        let args = strings(&args);
        assert_eq!(
            &args[10..],
            [
                "--peer-override",
                "1=127.0.0.1:9",
                "--snapshot-every",
                "100",
                "--history-revisions",
                "50",
                "--tls-cert-file",
                "/p/s.crt",
                "--tls-private-key-file",
                "/p/s.key",
                "--client-ca-file",
                "/p/ca.crt",
                "--token-auth-file",
                "/p/tokens.csv",
                "--create-system-namespaces=false",
                "--anonymous-auth=true",
                "--heartbeat-ms=50",
            ]
        );
    }
}
