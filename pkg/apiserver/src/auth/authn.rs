//! Authentication: who is asking. Each [`Authenticator`] looks for one kind of
//! credential (a verified client certificate, a bearer token); [`Union`] asks
//! them in order. None of them ever decides what the caller may do.

use std::collections::HashMap;
use std::path::Path;

use crate::tls::PeerIdentity;

/// The group every authenticated user belongs to (Kubernetes' name).
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// The anonymous user and its group, used only when anonymous requests are enabled.
pub const ANONYMOUS_USER: &str = "system:anonymous";
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";

/// Who made a request, as Kubernetes' `user.Info` has it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct UserInfo {
    pub username: String,
    /// Empty when the credential does not carry one (client certificates).
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The anonymous user (`system:anonymous`, group `system:unauthenticated`).
    pub fn anonymous() -> Self {
        UserInfo {
            username: ANONYMOUS_USER.to_string(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_string()],
        }
    }

    /// Adds `system:authenticated` unless present (Kubernetes adds it to every
    /// authenticated user, whatever the authenticator).
    fn authenticated(mut self) -> Self {
        if !self.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
            self.groups.push(AUTHENTICATED_GROUP.to_string());
        }
        self
    }
}

/// What a request presents, independent of the front door that received it:
/// REST and gRPC both fill this from the connection and the `Authorization`
/// header (gRPC metadata is HTTP/2 headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// The identity of a client certificate the TLS layer verified against the client CA.
    pub peer: Option<PeerIdentity>,
    /// The token of an `Authorization: Bearer <token>` header.
    pub bearer: Option<String>,
}

impl Credentials {
    /// Reads the bearer token from `headers`; `peer` comes from the connection.
    pub fn from_headers(headers: &http::HeaderMap, peer: Option<PeerIdentity>) -> Self {
        let bearer = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token)
            .map(str::to_string);
        Credentials { peer, bearer }
    }
}

/// The token of an `Authorization` header value `Bearer <token>` (scheme case-insensitive);
/// `None` for other schemes and empty tokens. Pure.
pub fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Why presented credentials were refused. The message goes to logs, not to
/// the client (which gets Kubernetes' plain "Unauthorized").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    #[error("invalid bearer token")]
    InvalidToken,
    #[error("{0}")]
    Other(String),
}

/// One way of recognising a caller.
///
/// `Ok(None)` means "no credential of my kind here" (the next authenticator
/// gets its turn); `Err` means "a credential of my kind, and it is bad".
/// Synchronous: every authenticator so far answers from memory.
pub trait Authenticator: Send + Sync {
    fn authenticate(&self, creds: &Credentials) -> Result<Option<UserInfo>, AuthnError>;
}

/// x509 client certificates: the TLS layer has verified the chain against the
/// client CA; the certificate's CN is the user and its O values the groups.
#[derive(Debug, Clone, Copy, Default)]
pub struct X509;

impl Authenticator for X509 {
    fn authenticate(&self, creds: &Credentials) -> Result<Option<UserInfo>, AuthnError> {
        Ok(creds.peer.as_ref().map(|p| UserInfo {
            username: p.user.clone(),
            uid: String::new(),
            groups: p.groups.clone(),
        }))
    }
}

/// Static bearer tokens from a file in Kubernetes' `--token-auth-file` format.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    tokens: HashMap<String, UserInfo>,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("reading token file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("token file {path}, line {line}: {reason}")]
    Parse {
        path: String,
        line: usize,
        reason: String,
    },
}

impl TokenFile {
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: p.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, reason)| TokenFileError::Parse {
            path: p,
            line,
            reason,
        })
    }

    /// Parses CSV lines `token,user,uid[,"group1,group2,..."]` (further columns are
    /// ignored, as Kubernetes does). Blank lines and lines with an empty token are
    /// skipped; fewer than three columns or a broken quote is an error `(line, reason)`.
    /// A token given twice keeps its last line. Pure.
    pub fn parse(text: &str) -> Result<Self, (usize, String)> {
        let mut tokens = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line_no = i + 1;
            if line.trim().is_empty() {
                continue;
            }
            let fields = split_csv_line(line).map_err(|e| (line_no, e))?;
            if fields.len() < 3 {
                return Err((
                    line_no,
                    format!(
                        "expected at least 3 columns (token, user name, user uid), found {}",
                        fields.len()
                    ),
                ));
            }
            if fields[0].is_empty() {
                tracing::warn!(line = line_no, "token file: empty token skipped");
                continue;
            }
            let groups = fields
                .get(3)
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                username: fields[1].clone(),
                uid: fields[2].clone(),
                groups,
            };
            if tokens.insert(fields[0].clone(), user).is_some() {
                tracing::warn!(
                    line = line_no,
                    "token file: duplicate token; the later line wins"
                );
            }
        }
        Ok(TokenFile { tokens })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }
}

impl Authenticator for TokenFile {
    fn authenticate(&self, creds: &Credentials) -> Result<Option<UserInfo>, AuthnError> {
        match &creds.bearer {
            None => Ok(None),
            Some(token) => self
                .tokens
                .get(token)
                .cloned()
                .map(Some)
                .ok_or(AuthnError::InvalidToken),
        }
    }
}

/// One CSV record: fields separated by commas, a field in double quotes may hold
/// commas and `""` for a quote; spaces before a field are dropped. Pure.
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("unterminated quoted field".to_string()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => return Err(format!("unexpected {c:?} after a quoted field")),
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field);
                        return Ok(fields);
                    }
                    Some(',') => break,
                    Some('"') => return Err("a quote inside an unquoted field".to_string()),
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
        }
    }
}

/// Asks each authenticator in order; the first that recognises the caller
/// wins. When none does, a refusal by any of them is the answer (a bad token
/// stays bad even if anonymous requests are allowed), else `Ok(None)`.
pub struct Union {
    members: Vec<Box<dyn Authenticator>>,
}

impl Union {
    pub fn new(members: Vec<Box<dyn Authenticator>>) -> Self {
        Union { members }
    }
}

impl Authenticator for Union {
    fn authenticate(&self, creds: &Credentials) -> Result<Option<UserInfo>, AuthnError> {
        let mut refusal = None;
        for a in &self.members {
            match a.authenticate(creds) {
                Ok(Some(user)) => return Ok(Some(user.authenticated())),
                Ok(None) => {}
                Err(e) => refusal = refusal.or(Some(e)),
            }
        }
        refusal.map_or(Ok(None), Err)
    }
}
