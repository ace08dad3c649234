//! The local cluster's certificates and tokens, under `DIR/pki/`:
//!
//! ```text
//! ca.crt, ca.key                 the cluster CA (10 years); signs everything below and is
//!                                the apiservers' --client-ca-file
//! apiserver-<name>.crt/.key      each replica's serving certificate (1 year): SANs localhost,
//!                                127.0.0.1, ::1, the replica's and the load balancer's address
//! admin.crt, admin.key           the operator's client certificate: CN=rkube-admin,
//!                                O=system:masters (in DIR/kubeconfig; `rkube status` uses it)
//! <component>.crt/.key           each component's client certificate, with the identity
//!                                Kubernetes gives it: controller-manager.crt is
//!                                CN=system:kube-controller-manager, scheduler.crt
//!                                CN=system:kube-scheduler, kubelet-<node>.crt
//!                                CN=system:node:<node>, O=system:nodes
//! tokens.csv                     bearer tokens for the components to come (controller-manager,
//!                                scheduler), in --token-auth-file format
//! ```
//!
//! [`ClusterPki::ensure`] creates what is missing and reuses what exists, so `up` on an
//! existing directory keeps the kubeconfig valid; a missing CA means every certificate is
//! issued again (the old ones would be signed by a key that is gone). Private keys and
//! tokens are written with mode 0600. Certificates are ECDSA P-256 (rcgen's default).
//! This module writes files only; it starts nothing and opens no socket.

use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::{Error, Result};

/// The admin client certificate's user and group.
pub const ADMIN_USER: &str = "rkube-admin";
pub const ADMIN_GROUP: &str = "system:masters";
/// The users `tokens.csv` holds a token for.
pub const TOKEN_USERS: &[&str] = &["system:kube-controller-manager", "system:kube-scheduler"];

const CA_COMMON_NAME: &str = "rkube-ca";
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
const LEAF_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);
/// Certificates start an hour in the past, so a peer with a slightly late clock accepts them.
const BACKDATE: Duration = Duration::from_secs(3600);

/// What one apiserver's serving certificate must be valid for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServingCert {
    /// The replica's name (`a1`): the file is `apiserver-<name>.crt`.
    pub name: String,
    /// Addresses clients dial: the replica's own and the load balancer's.
    pub ips: Vec<IpAddr>,
}

/// Who a component's client certificate says it is (Kubernetes' x509 user convention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientIdentity {
    /// The files are `<file>.crt` and `<file>.key`.
    pub file: String,
    /// CN: the user.
    pub user: String,
    /// O: the group, if any.
    pub group: Option<String>,
}

/// The user of the controller-manager's certificate.
pub const CONTROLLER_MANAGER_USER: &str = "system:kube-controller-manager";
/// The user of the scheduler's certificate.
pub const SCHEDULER_USER: &str = "system:kube-scheduler";
/// The group of every kubelet's certificate.
pub const NODES_GROUP: &str = "system:nodes";

impl ClientIdentity {
    /// `system:kube-controller-manager`, in `<file>.crt`.
    pub fn controller_manager(file: &str) -> Self {
        Self::new(file, CONTROLLER_MANAGER_USER, None)
    }

    /// `system:kube-scheduler`, in `<file>.crt`.
    pub fn scheduler(file: &str) -> Self {
        Self::new(file, SCHEDULER_USER, None)
    }

    /// The kubelet of `node`: `system:node:<node>` in the group `system:nodes` (what
    /// Kubernetes' Node authorizer expects), in `<file>.crt`.
    pub fn node(file: &str, node: &str) -> Self {
        Self::new(file, &format!("system:node:{node}"), Some(NODES_GROUP))
    }

    fn new(file: &str, user: &str, group: Option<&str>) -> Self {
        ClientIdentity {
            file: file.to_string(),
            user: user.to_string(),
            group: group.map(str::to_string),
        }
    }
}

/// A certificate and its private key, PEM.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

/// The files of `DIR/pki`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterPki {
    dir: PathBuf,
}

impl ClusterPki {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ClusterPki { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }

    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }

    pub fn serving_cert(&self, name: &str) -> PathBuf {
        self.dir.join(format!("apiserver-{name}.crt"))
    }

    pub fn serving_key(&self, name: &str) -> PathBuf {
        self.dir.join(format!("apiserver-{name}.key"))
    }

    pub fn admin_cert(&self) -> PathBuf {
        self.dir.join("admin.crt")
    }

    pub fn admin_key(&self) -> PathBuf {
        self.dir.join("admin.key")
    }

    pub fn token_file(&self) -> PathBuf {
        self.dir.join("tokens.csv")
    }

    /// A component's client certificate (see [`ClientIdentity::file`]).
    pub fn client_cert(&self, file: &str) -> PathBuf {
        self.dir.join(format!("{file}.crt"))
    }

    pub fn client_key(&self, file: &str) -> PathBuf {
        self.dir.join(format!("{file}.key"))
    }

    /// Whether the CA and the admin credentials exist (what clients of the cluster need).
    pub fn exists(&self) -> bool {
        [self.ca_cert(), self.admin_cert(), self.admin_key()]
            .iter()
            .all(|p| p.is_file())
    }

    /// Creates whatever is missing of the CA, the serving certificates, the admin's
    /// credentials and the token file; returns the names of the files it wrote.
    pub fn ensure(&self, servers: &[ServingCert]) -> Result<Vec<String>> {
        self.ensure_with_clients(servers, &[])
    }

    /// [`ensure`](Self::ensure), and a client certificate per component identity.
    pub fn ensure_with_clients(
        &self,
        servers: &[ServingCert],
        clients: &[ClientIdentity],
    ) -> Result<Vec<String>> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| Error::io("create directory", &self.dir, e))?;
        let mut written = Vec::new();
        let fresh_ca = !(self.ca_cert().is_file() && self.ca_key().is_file());
        let ca_key_pem = if fresh_ca {
            let ca = new_ca()?;
            write_file(&self.ca_key(), &ca.key_pem, true)?;
            write_file(&self.ca_cert(), &ca.cert_pem, false)?;
            written.push("ca.crt".to_string());
            ca.key_pem
        } else {
            read_file(&self.ca_key())?
        };
        let mut leaf = |cert: PathBuf, key: PathBuf, make: &dyn Fn() -> Result<CertPair>| {
            if fresh_ca || !cert.is_file() || !key.is_file() {
                let pair = make()?;
                write_file(&key, &pair.key_pem, true)?;
                write_file(&cert, &pair.cert_pem, false)?;
                written.push(file_name(&cert));
            }
            Ok::<_, Error>(())
        };
        for s in servers {
            leaf(
                self.serving_cert(&s.name),
                self.serving_key(&s.name),
                &|| issue_serving(&ca_key_pem, &s.ips),
            )?;
        }
        leaf(self.admin_cert(), self.admin_key(), &|| {
            issue_client(&ca_key_pem, ADMIN_USER, Some(ADMIN_GROUP))
        })?;
        for c in clients {
            leaf(self.client_cert(&c.file), self.client_key(&c.file), &|| {
                issue_client(&ca_key_pem, &c.user, c.group.as_deref())
            })?;
        }
        if !self.token_file().is_file() {
            write_file(&self.token_file(), &new_token_file(), true)?;
            written.push("tokens.csv".to_string());
        }
        Ok(written)
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn pki_error(action: &'static str, source: rcgen::Error) -> Error {
    Error::Certificate { action, source }
}

fn validity(params: &mut CertificateParams, lifetime: Duration) {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let now = rcgen::date_time_ymd(1970, 1, 1) + since_epoch;
    params.not_before = now - BACKDATE;
    params.not_after = now + lifetime;
}

/// The CA's parameters. Rebuilt the same way to sign with an existing CA key: the issuer
/// name and key identifier of a leaf come from these and the key, not from `ca.crt`.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, CA_COMMON_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// A new self-signed cluster CA.
pub fn new_ca() -> Result<CertPair> {
    let key = KeyPair::generate().map_err(|e| pki_error("generate CA key", e))?;
    let mut params = ca_params();
    validity(&mut params, CA_VALIDITY);
    let cert = params
        .self_signed(&key)
        .map_err(|e| pki_error("sign CA certificate", e))?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

fn issue(ca_key_pem: &str, mut params: CertificateParams) -> Result<CertPair> {
    let ca_key = KeyPair::from_pem(ca_key_pem).map_err(|e| pki_error("read CA key", e))?;
    let issuer = Issuer::new(ca_params(), ca_key);
    let key = KeyPair::generate().map_err(|e| pki_error("generate key", e))?;
    validity(&mut params, LEAF_VALIDITY);
    params.use_authority_key_identifier_extension = true;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| pki_error("sign certificate", e))?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// An apiserver serving certificate signed by the CA, valid for `localhost`, `127.0.0.1`,
/// `::1` and `ips`.
pub fn issue_serving(ca_key_pem: &str, ips: &[IpAddr]) -> Result<CertPair> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::CommonName, "rkube-apiserver");
    let mut all_ips: Vec<IpAddr> = vec![
        IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
        IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
    ];
    for ip in ips {
        if !all_ips.contains(ip) {
            all_ips.push(*ip);
        }
    }
    params.subject_alt_names = vec![SanType::DnsName(
        "localhost"
            .try_into()
            .map_err(|e| pki_error("use localhost as a DNS name", e))?,
    )];
    params
        .subject_alt_names
        .extend(all_ips.into_iter().map(SanType::IpAddress));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    issue(ca_key_pem, params)
}

/// A client certificate signed by the CA: CN = `user`, O = `group` (Kubernetes' x509 user
/// convention). One group only: rcgen's names hold one value per attribute type, so
/// identities with several groups use tokens.
pub fn issue_client(ca_key_pem: &str, user: &str, group: Option<&str>) -> Result<CertPair> {
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, user);
    if let Some(g) = group {
        params.distinguished_name.push(DnType::OrganizationName, g);
    }
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    issue(ca_key_pem, params)
}

/// `tokens.csv` with a fresh random token per [`TOKEN_USERS`] entry.
pub fn new_token_file() -> String {
    use rand::RngCore as _;
    let mut out = String::new();
    for user in TOKEN_USERS {
        let mut bytes = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        out.push_str(&format!("{},{user},{user},\n", hex::encode(bytes)));
    }
    out
}

/// The token of `user` in a token file's text. Pure.
pub fn token_for(token_file: &str, user: &str) -> Option<String> {
    token_file.lines().find_map(|line| {
        let mut cols = line.split(',');
        let token = cols.next()?;
        (cols.next()? == user).then(|| token.to_string())
    })
}

fn read_file(path: &Path) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| Error::io("read", path, e))
}

/// Writes atomically (temporary file, fsync, rename); `secret` files get mode 0600.
fn write_file(path: &Path, text: &str, secret: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(if secret { 0o600 } else { 0o644 })
        .open(&tmp)
        .map_err(|e| Error::io("create", &tmp, e))?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write", &tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| Error::io("rename into place", path, e))
}

#[cfg(test)]
mod tests;
