//! The flags every component shares, and how they become a client configuration.
//!
//! Where the apiservers are and who the component is come from flags, from a kubeconfig
//! (`--kubeconfig`: server, CA, client certificate and key or token of its current
//! context), or both (flags win). Several `--apiserver` addresses give the client every
//! replica to fail over between; a kubeconfig names one (a load balancer).
//! Never: read anything but the files the flags name.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args};
use rkube_telemetry::TelemetryArgs;

use crate::kubeconfig::Kubeconfig;

/// A bad flag or file: the component exits with code 64 and this message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("no apiserver given: use --apiserver HOST:PORT (repeatable) or --kubeconfig")]
    NoApiserver,
    #[error("cannot read {what} {path}")]
    Read {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("kubeconfig {path}: {detail}")]
    Kubeconfig { path: PathBuf, detail: String },
    #[error("{what}: {detail}")]
    Tls { what: String, detail: String },
    #[error("--client-certificate and --client-key go together")]
    HalfIdentity,
    #[error("{0}")]
    Invalid(String),
}

/// Flags every rkube component takes (flatten into the component's own parser).
#[derive(Debug, Clone, Args)]
pub struct ComponentArgs {
    /// An apiserver's API address, HOST:PORT (repeat, or separate with commas, for every
    /// replica; the client fails over between them)
    #[arg(
        long = "apiserver",
        value_name = "HOST:PORT",
        env = "RKUBE_APISERVERS",
        value_delimiter = ','
    )]
    pub apiservers: Vec<String>,
    /// A kubeconfig to take the server, CA and credentials from (flags override it)
    #[arg(long, value_name = "PATH", env = "KUBECONFIG")]
    pub kubeconfig: Option<PathBuf>,
    /// The cluster CA's certificate (PEM): talk TLS and trust only this CA
    #[arg(long, value_name = "PATH")]
    pub certificate_authority: Option<PathBuf>,
    /// This component's client certificate (PEM), its identity
    #[arg(long, value_name = "PATH")]
    pub client_certificate: Option<PathBuf>,
    /// The key of --client-certificate (PEM)
    #[arg(long, value_name = "PATH")]
    pub client_key: Option<PathBuf>,
    /// A file holding a bearer token (instead of a client certificate)
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,
    /// Address of the plain-HTTP /healthz, /livez, /readyz and /metrics server
    /// (default: the component's own port on 127.0.0.1)
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<SocketAddr>,
    /// This instance's name: in logs, events and its leader election identity
    /// (default: the component's name)
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long a shutdown may take before the process exits anyway
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace_period: Duration,
    #[command(flatten)]
    pub telemetry: TelemetryArgs,
}

/// Leader election flags (Kubernetes' names and defaults), for components that run
/// active/standby.
#[derive(Debug, Clone, Args)]
pub struct LeaderElectionArgs {
    /// Run only while holding the component's Lease, so a standby can wait beside it
    #[arg(long, default_value_t = true, action = ArgAction::Set, value_name = "BOOL")]
    pub leader_elect: bool,
    /// How long a standby waits after the leader's last renewal before taking over
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    pub leader_elect_lease_duration: Duration,
    /// The leader stops leading if it could not renew for this long
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub leader_elect_renew_deadline: Duration,
    /// How often candidates try and the leader renews
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = parse_duration)]
    pub leader_elect_retry_period: Duration,
    /// Namespace of the Lease
    #[arg(long, value_name = "NAMESPACE", default_value = "kube-system")]
    pub leader_elect_resource_namespace: String,
    /// Name of the Lease (default: the component's, e.g. kube-scheduler)
    #[arg(long, value_name = "NAME")]
    pub leader_elect_resource_name: Option<String>,
}

/// Parses a Go-style duration as Kubernetes flags take them: `500ms`, `15s`, `2m`, `1h`,
/// `1m30s`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let bad = || format!("invalid duration {text:?}: expected e.g. 500ms, 15s, 2m, 1h30m");
    if text.is_empty() {
        return Err(bad());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let (number, tail) = rest.split_at(digits);
        let value: f64 = number.parse().map_err(|_| bad())?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            other => {
                return Err(format!(
                    "invalid duration {text:?}: unknown unit {other:?} (use ms, s, m or h)"
                ))
            }
        };
        total += Duration::try_from_secs_f64(value * scale).map_err(|_| bad())?;
        rest = tail;
    }
    Ok(total)
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|source| ConfigError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

impl ComponentArgs {
    /// The client configuration these flags (and the kubeconfig) describe.
    pub fn client_config(&self) -> Result<rkube_client::Config, ConfigError> {
        let kc = match &self.kubeconfig {
            Some(path) => Some(Kubeconfig::load(path)?),
            None => None,
        };
        let mut endpoints = self.apiservers.clone();
        let mut tls_from_server = false;
        if endpoints.is_empty() {
            if let Some(kc) = &kc {
                let (endpoint, tls) = kc.endpoint()?;
                endpoints.push(endpoint);
                tls_from_server = tls;
            }
        }
        if endpoints.is_empty() {
            return Err(ConfigError::NoApiserver);
        }
        let ca = match &self.certificate_authority {
            Some(p) => Some(read("CA certificate", p)?),
            None => kc.as_ref().and_then(|k| k.ca.clone()),
        };
        let identity = match (&self.client_certificate, &self.client_key) {
            (Some(c), Some(k)) => Some((read("client certificate", c)?, read("client key", k)?)),
            (None, None) => kc.as_ref().and_then(|k| k.identity.clone()),
            _ => return Err(ConfigError::HalfIdentity),
        };
        let token = match &self.token_file {
            Some(p) => Some(
                String::from_utf8_lossy(&read("token file", p)?)
                    .trim()
                    .to_string(),
            ),
            None => kc.as_ref().and_then(|k| k.token.clone()),
        };
        let mut config = rkube_client::Config::new(endpoints);
        config.bearer_token = token;
        if ca.is_some() || identity.is_some() || tls_from_server {
            let ca = ca.ok_or_else(|| ConfigError::Tls {
                what: "TLS".into(),
                detail:
                    "a CA certificate is needed to verify the apiserver (--certificate-authority)"
                        .into(),
            })?;
            config.tls = Some(crate::tls::client_config(
                &ca,
                identity.as_ref().map(|(c, k)| (c.as_slice(), k.as_slice())),
            )?);
        }
        Ok(config)
    }
}

impl LeaderElectionArgs {
    /// The election these flags describe for a candidate named `identity`, on the Lease
    /// named `default_name` unless `--leader-elect-resource-name` says otherwise.
    pub fn lease_config(&self, default_name: &str, identity: &str) -> rkube_runtime::LeaseConfig {
        rkube_runtime::LeaseConfig {
            namespace: self.leader_elect_resource_namespace.clone(),
            name: self
                .leader_elect_resource_name
                .clone()
                .unwrap_or_else(|| default_name.to_string()),
            identity: identity.to_string(),
            lease_duration: self.leader_elect_lease_duration,
            renew_deadline: self.leader_elect_renew_deadline,
            retry_period: self.leader_elect_retry_period,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_as_kubernetes_flags_take_them() {
        let cases = [
            ("15s", Some(15_000)),
            ("500ms", Some(500)),
            ("2m", Some(120_000)),
            ("1h30m", Some(5_400_000)),
            ("1m30s", Some(90_000)),
            ("1.5s", Some(1_500)),
            ("10", Some(10_000)),
            ("", None),
            ("5 s", None),
            ("3d", None),
            ("s", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                parse_duration(text).ok().map(|d| d.as_millis() as u64),
                want,
                "{text:?}"
            );
        }
    }
}
