//! The request pipeline's first two steps: authentication (who is asking) and
//! authorization (may they). [`Pipeline`] knows nothing about HTTP or gRPC: a
//! front door turns its request into [`Credentials`] and [`Attributes`], calls
//! [`Pipeline::admit`], and renders a [`Refusal`] its own way (a `Status` with
//! 401/403 for REST, `UNAUTHENTICATED`/`PERMISSION_DENIED` for gRPC).
//! [`layer`] does this for everything on the API port, so REST, the store's
//! gRPC API and any later gRPC service pass through the same code.
//!
//! Open without credentials, as Kubernetes' default RBAC leaves them to
//! `system:unauthenticated`: [`PUBLIC_PATHS`] (`/healthz`, `/livez`,
//! `/readyz`, `/version`), so load balancers and probes need no identity.
//! `/metrics` and everything else need an identity.

pub mod authn;
pub mod authz;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rkube_api::status::Status;
use serde_json::json;

pub use authn::{Authenticator, AuthnError, Credentials, TokenFile, UserInfo};
pub use authz::{AlwaysAllow, Attributes, Authorizer, Decision};

use crate::tls::ConnInfo;

/// Paths served to anyone, authenticated or not.
pub const PUBLIC_PATHS: &[&str] = &["/healthz", "/livez", "/readyz", "/version", "/version/"];

/// Authentication, then authorization, for one request from either front door.
pub struct Pipeline {
    authenticator: Box<dyn Authenticator>,
    /// Whether a request without any credential proceeds as `system:anonymous`.
    anonymous: bool,
    authorizer: Box<dyn Authorizer>,
}

/// Why a request may not proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// No acceptable credential (401). The detail is for logs only.
    Unauthenticated(String),
    /// Authenticated but not allowed (403), with Kubernetes' explanation.
    Forbidden { attrs: Attributes, reason: String },
}

impl Pipeline {
    pub fn new(
        authenticator: Box<dyn Authenticator>,
        anonymous: bool,
        authorizer: Box<dyn Authorizer>,
    ) -> Self {
        Pipeline {
            authenticator,
            anonymous,
            authorizer,
        }
    }

    /// Who the request is from: an authenticator's answer, else the anonymous
    /// user when allowed, else a refusal. Presented but bad credentials are
    /// refused even when anonymous requests are allowed.
    pub fn authenticate(&self, creds: &Credentials) -> Result<UserInfo, Refusal> {
        match self.authenticator.authenticate(creds) {
            Ok(Some(user)) => Ok(user),
            Ok(None) if self.anonymous => Ok(UserInfo::anonymous()),
            Ok(None) => Err(Refusal::Unauthenticated(
                "no credentials (client certificate or bearer token)".to_string(),
            )),
            Err(e) => Err(Refusal::Unauthenticated(e.to_string())),
        }
    }

    /// Whether `user` may do what `attrs` describe; only an explicit allow lets it through.
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<(), Refusal> {
        match self.authorizer.authorize(user, attrs) {
            Decision::Allow => Ok(()),
            Decision::Deny(why) => Err(Refusal::Forbidden {
                attrs: attrs.clone(),
                reason: join_reason(authz::forbidden_reason(user, attrs), &why),
            }),
            Decision::NoOpinion => Err(Refusal::Forbidden {
                attrs: attrs.clone(),
                reason: authz::forbidden_reason(user, attrs),
            }),
        }
    }

    /// Both steps: the user the request runs as, or why it may not run.
    pub fn admit(&self, creds: &Credentials, attrs: &Attributes) -> Result<UserInfo, Refusal> {
        let user = self.authenticate(creds)?;
        self.authorize(&user, attrs)?;
        Ok(user)
    }
}

fn join_reason(base: String, why: &str) -> String {
    if why.is_empty() {
        base
    } else {
        format!("{base}: {why}")
    }
}

impl Refusal {
    /// Kubernetes' `Status` for this refusal (401 `Unauthorized`, or 403 `Forbidden`
    /// naming the resource). Pure.
    pub fn status(&self) -> Status {
        match self {
            Refusal::Unauthenticated(_) => Status::unauthorized(""),
            Refusal::Forbidden { attrs, reason } if attrs.resource_request => {
                Status::forbidden(&attrs.api_group, &attrs.resource, &attrs.name, reason)
            }
            Refusal::Forbidden { reason, .. } => Status::forbidden("", "", "", reason),
        }
    }

    /// The gRPC status for this refusal.
    pub fn grpc_status(&self) -> tonic::Status {
        match self {
            Refusal::Unauthenticated(_) => tonic::Status::unauthenticated("Unauthorized"),
            Refusal::Forbidden { reason, .. } => tonic::Status::permission_denied(reason.clone()),
        }
    }
}

fn is_grpc(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/grpc"))
}

/// The axum middleware: lets [`PUBLIC_PATHS`] through, otherwise admits the
/// request through `pipeline` and attaches its [`UserInfo`] as an extension.
pub async fn layer(
    State(pipeline): State<Arc<Pipeline>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    if PUBLIC_PATHS.contains(&path) {
        return next.run(req).await;
    }
    let grpc = is_grpc(&req);
    let peer = req
        .extensions()
        .get::<ConnInfo>()
        .and_then(|c| c.peer.clone());
    let creds = Credentials::from_headers(req.headers(), peer);
    let attrs = if grpc {
        Attributes::grpc(path)
    } else {
        Attributes::from_http(req.method(), path, req.uri().query())
    };
    match pipeline.admit(&creds, &attrs) {
        Ok(user) => {
            req.extensions_mut().insert(user);
            next.run(req).await
        }
        Err(refusal) => {
            match &refusal {
                Refusal::Unauthenticated(why) => {
                    tracing::debug!(path = %attrs.path, reason = %why, "request refused: unauthenticated")
                }
                Refusal::Forbidden { reason, .. } => {
                    tracing::debug!(path = %attrs.path, %reason, "request refused: forbidden")
                }
            }
            if grpc {
                refusal.grpc_status().into_http()
            } else {
                status_response(&refusal.status())
            }
        }
    }
}

fn status_response(s: &Status) -> Response {
    let mut r = (
        StatusCode::from_u16(s.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        s.to_json_bytes(),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// `POST /apis/authentication.k8s.io/v1/selfsubjectreviews` (`kubectl auth
/// whoami`): the caller's user as the pipeline authenticated it.
pub fn whoami_router() -> axum::Router {
    axum::Router::new().route(
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        axum::routing::post(whoami),
    )
}

async fn whoami(user: Option<axum::Extension<UserInfo>>) -> Response {
    let Some(axum::Extension(user)) = user else {
        return status_response(&Status::unauthorized(""));
    };
    let mut info = json!({"username": user.username, "groups": user.groups});
    if !user.uid.is_empty() {
        info["uid"] = json!(user.uid);
    }
    let review = json!({
        "kind": "SelfSubjectReview",
        "apiVersion": "authentication.k8s.io/v1",
        "metadata": {"creationTimestamp": null},
        "status": {"userInfo": info},
    });
    let mut r = (
        StatusCode::CREATED,
        serde_json::to_vec(&review).expect("JSON values encode"),
    )
        .into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

#[cfg(test)]
mod tests;
