//! Authorization: may this user do this. [`Attributes`] describe a request the
//! way Kubernetes' authorizers see it (verb, API group, resource, namespace,
//! name, or a non-resource path); [`Authorizer`] decides. Only [`AlwaysAllow`]
//! exists until RBAC lands.

use super::authn::UserInfo;

/// What a request does, as Kubernetes' `authorizer.Attributes`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attributes {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection` for resources; the lowercase HTTP method otherwise.
    pub verb: String,
    /// Whether this is a resource request (`/api/v1/...`, `/apis/<g>/<v>/...`
    /// below the version); discovery and everything else are non-resource.
    pub resource_request: bool,
    pub api_group: String,
    pub api_version: String,
    pub namespace: String,
    pub resource: String,
    pub subresource: String,
    pub name: String,
    /// The request path (what non-resource rules match).
    pub path: String,
}

impl Attributes {
    /// The attributes of an HTTP request, from its method, path and query
    /// (Kubernetes' RequestInfo rules, for the paths rkube serves). Pure.
    pub fn from_http(method: &http::Method, path: &str, query: Option<&str>) -> Self {
        let method_verb = method.as_str().to_ascii_lowercase();
        let non_resource = || Attributes {
            verb: method_verb.clone(),
            path: path.to_string(),
            ..Default::default()
        };
        let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segs.as_slice() {
            ["api", version, rest @ ..] if !rest.is_empty() => ("", *version, rest),
            ["apis", group, version, rest @ ..] if !rest.is_empty() => (*group, *version, rest),
            _ => return non_resource(),
        };
        let mut rest: Vec<&str> = rest.to_vec();
        // The deprecated `/watch/` path prefix.
        let watch_path = rest.first() == Some(&"watch");
        if watch_path {
            rest.remove(0);
        }
        let mut a = Attributes {
            resource_request: true,
            api_group: group.to_string(),
            api_version: version.to_string(),
            path: path.to_string(),
            ..Default::default()
        };
        // `namespaces/<ns>/<resource>/...` names a namespaced resource; `namespaces`
        // and `namespaces/<ns>[/status|finalize]` are the namespace resource itself.
        if rest.len() >= 3 && rest[0] == "namespaces" {
            a.namespace = rest[1].to_string();
            rest.drain(..2);
        } else if rest.len() >= 2 && rest[0] == "namespaces" {
            a.namespace = rest[1].to_string();
        }
        a.resource = rest.first().copied().unwrap_or_default().to_string();
        a.name = rest.get(1).copied().unwrap_or_default().to_string();
        a.subresource = rest.get(2).copied().unwrap_or_default().to_string();
        let watch_param = query.is_some_and(|q| {
            q.split('&')
                .any(|kv| matches!(kv, "watch=true" | "watch=1" | "watch=True"))
        });
        let named = !a.name.is_empty();
        a.verb = match *method {
            http::Method::GET | http::Method::HEAD if watch_path || watch_param => "watch",
            http::Method::GET | http::Method::HEAD if named => "get",
            http::Method::GET | http::Method::HEAD => "list",
            http::Method::POST => "create",
            http::Method::PUT => "update",
            http::Method::PATCH => "patch",
            http::Method::DELETE if named => "delete",
            http::Method::DELETE => "deletecollection",
            _ => method_verb.as_str(),
        }
        .to_string();
        a
    }

    /// The attributes of a call on one of our gRPC services: a non-resource
    /// request whose path is the method (`/rkube.store.v1.KV/Range`), verb `post`.
    pub fn grpc(path: &str) -> Self {
        Attributes {
            verb: "post".to_string(),
            path: path.to_string(),
            ..Default::default()
        }
    }
}

/// An authorizer's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused, with a reason shown to the caller.
    Deny(String),
    /// Neither: the next authorizer decides (a request nobody allows is refused).
    NoOpinion,
}

/// Decides whether `user` may do what `attrs` describe.
pub trait Authorizer: Send + Sync {
    fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Decision;
}

/// Allows everything (Kubernetes' `AlwaysAllow` mode); the default until RBAC.
#[derive(Debug, Clone, Copy, Default)]
pub struct AlwaysAllow;

impl Authorizer for AlwaysAllow {
    fn authorize(&self, _: &UserInfo, _: &Attributes) -> Decision {
        Decision::Allow
    }
}

/// Kubernetes' explanation of a refusal: `User "bob" cannot list resource
/// "pods" in API group "" in the namespace "default"`. Pure.
pub fn forbidden_reason(user: &UserInfo, attrs: &Attributes) -> String {
    if !attrs.resource_request {
        return format!(
            "User {:?} cannot {} path {:?}",
            user.username, attrs.verb, attrs.path
        );
    }
    let resource = if attrs.subresource.is_empty() {
        attrs.resource.clone()
    } else {
        format!("{}/{}", attrs.resource, attrs.subresource)
    };
    let mut why = format!(
        "User {:?} cannot {} resource {:?} in API group {:?}",
        user.username, attrs.verb, resource, attrs.api_group
    );
    if attrs.namespace.is_empty() {
        why.push_str(" at the cluster scope");
    } else {
        why.push_str(&format!(" in the namespace {:?}", attrs.namespace));
    }
    why
}
