//! Just enough of a kubeconfig for a component: the current context's server, CA and
//! credentials (inline `*-data` or files relative to the kubeconfig), as kubectl reads them.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use yaml_rust2::{Yaml, YamlLoader};

use crate::args::ConfigError;

#[derive(Debug, Default)]
pub(crate) struct Kubeconfig {
    path: PathBuf,
    server: String,
    pub ca: Option<Vec<u8>>,
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    pub token: Option<String>,
}

impl Kubeconfig {
    pub fn load(path: &Path) -> Result<Kubeconfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            what: "kubeconfig",
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    fn parse(path: &Path, text: &str) -> Result<Kubeconfig, ConfigError> {
        let err = |detail: String| ConfigError::Kubeconfig {
            path: path.to_path_buf(),
            detail,
        };
        let docs = YamlLoader::load_from_str(text).map_err(|e| err(e.to_string()))?;
        let doc = docs.first().ok_or_else(|| err("empty document".into()))?;
        let current = doc["current-context"].as_str().unwrap_or("");
        let named = |list: &str, name: &str, field: &str| -> Option<Yaml> {
            doc[list].as_vec()?.iter().find_map(|item| {
                let matches = name.is_empty() || item["name"].as_str() == Some(name);
                matches.then(|| item[field].clone())
            })
        };
        let context = named("contexts", current, "context")
            .ok_or_else(|| err(format!("no context {current:?}")))?;
        let cluster_name = context["cluster"].as_str().unwrap_or("");
        let user_name = context["user"].as_str().unwrap_or("");
        let cluster = named("clusters", cluster_name, "cluster")
            .ok_or_else(|| err(format!("no cluster {cluster_name:?}")))?;
        let user = named("users", user_name, "user").unwrap_or(Yaml::Null);
        let dir = path.parent().unwrap_or(Path::new("."));
        let blob = |node: &Yaml, data: &str, file: &str| -> Result<Option<Vec<u8>>, ConfigError> {
            if let Some(b64) = node[data].as_str() {
                return base64::engine::general_purpose::STANDARD
                    .decode(b64.trim())
                    .map(Some)
                    .map_err(|e| err(format!("{data}: {e}")));
            }
            match node[file].as_str() {
                Some(f) => {
                    let p = dir.join(f);
                    std::fs::read(&p)
                        .map(Some)
                        .map_err(|source| ConfigError::Read {
                            what: "kubeconfig file",
                            path: p,
                            source,
                        })
                }
                None => Ok(None),
            }
        };
        let server = cluster["server"]
            .as_str()
            .ok_or_else(|| err(format!("cluster {cluster_name:?} has no server")))?
            .to_string();
        let ca = blob(
            &cluster,
            "certificate-authority-data",
            "certificate-authority",
        )?;
        let cert = blob(&user, "client-certificate-data", "client-certificate")?;
        let key = blob(&user, "client-key-data", "client-key")?;
        let identity = match (cert, key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(err(
                    "a client certificate needs its key and the other way round".into(),
                ))
            }
        };
        let token = match user["token"].as_str() {
            Some(t) => Some(t.to_string()),
            None => blob(&user, "", "tokenFile")?
                .map(|b| String::from_utf8_lossy(&b).trim().to_string()),
        };
        Ok(Kubeconfig {
            path: path.to_path_buf(),
            server,
            ca,
            identity,
            token,
        })
    }

    /// The server as `host:port` and whether it speaks TLS.
    pub fn endpoint(&self) -> Result<(String, bool), ConfigError> {
        let (tls, rest) = match self.server.split_once("://") {
            Some(("https", rest)) => (true, rest),
            Some(("http", rest)) => (false, rest),
            Some((scheme, _)) => {
                return Err(ConfigError::Kubeconfig {
                    path: self.path.clone(),
                    detail: format!("unsupported server scheme {scheme:?}"),
                })
            }
            None => (true, self.server.as_str()),
        };
        let hostport = rest.split('/').next().unwrap_or(rest);
        let hostport = if hostport
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            hostport.to_string()
        } else {
            format!("{hostport}:{}", if tls { 443 } else { 80 })
        };
        Ok((hostport, tls))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBECONFIG: &str = r#"
apiVersion: v1
kind: Config
current-context: rkube
clusters:
- name: other
  cluster: {server: "https://10.0.0.1:6443"}
- name: rkube
  cluster:
    server: https://127.0.0.1:7443
    certificate-authority-data: Q0EtUEVN
contexts:
- name: rkube
  context: {cluster: rkube, user: admin}
users:
- name: admin
  user:
    client-certificate-data: Q0VSVA==
    client-key-data: S0VZ
"#;

    #[test]
    fn the_current_contexts_server_and_credentials_are_read() {
        let kc = Kubeconfig::parse(Path::new("/x/kubeconfig"), KUBECONFIG).unwrap();
        assert_eq!(kc.endpoint().unwrap(), ("127.0.0.1:7443".to_string(), true));
        assert_eq!(kc.ca.as_deref(), Some(b"CA-PEM".as_slice()));
        assert_eq!(kc.identity, Some((b"CERT".to_vec(), b"KEY".to_vec())));
        assert_eq!(kc.token, None);
    }

    #[test]
    fn files_are_relative_to_the_kubeconfig_and_ports_default_by_scheme() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.crt"), "FROM-FILE").unwrap();
        let text = r#"
current-context: c
clusters: [{name: k, cluster: {server: "http://api.local", certificate-authority: ca.crt}}]
contexts: [{name: c, context: {cluster: k, user: u}}]
users: [{name: u, user: {token: abc}}]
"#;
        let kc = Kubeconfig::parse(&dir.path().join("config"), text).unwrap();
        assert_eq!(kc.endpoint().unwrap(), ("api.local:80".to_string(), false));
        assert_eq!(kc.ca.as_deref(), Some(b"FROM-FILE".as_slice()));
        assert_eq!(kc.token.as_deref(), Some("abc"));
    }

    #[test]
    fn a_missing_context_or_half_an_identity_is_a_clear_error() {
        let bad = KUBECONFIG.replace("current-context: rkube", "current-context: nope");
        let e = Kubeconfig::parse(Path::new("k"), &bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("no context \"nope\""), "{e}");
        let half = KUBECONFIG.replace("    client-key-data: S0VZ\n", "");
        let e = Kubeconfig::parse(Path::new("k"), &half)
            .unwrap_err()
            .to_string();
        assert!(e.contains("needs its key"), "{e}");
    }
}
