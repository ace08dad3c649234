//! Kubernetes `Status` errors (`metav1.Status`): the one error type every API failure is
//! reported as, with the code, reason, message and details that kubectl and client
//! libraries read. Constructors reproduce Kubernetes' messages word for word
//! (`pods "nginx" not found`, `Operation cannot be fulfilled on ...`), because clients
//! match on reasons and users read the messages. This module builds values; it never
//! decides which error a request deserves.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::field::{aggregate_message, FieldError};

/// Results whose error is a [`Status`].
pub type Result<T, E = Status> = std::result::Result<T, E>;

/// The message of a Conflict on an update whose resourceVersion is stale.
pub const OPTIMISTIC_LOCK_ERROR_MSG: &str =
    "the object has been modified; please apply your changes to the latest version and try again";

/// `metav1.StatusReason`: the machine-readable reason of a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// No reason given (`""`).
    Unknown,
    Unauthorized,
    Forbidden,
    NotFound,
    AlreadyExists,
    Conflict,
    Gone,
    Invalid,
    ServerTimeout,
    StoreReadError,
    Timeout,
    TooManyRequests,
    BadRequest,
    MethodNotAllowed,
    NotAcceptable,
    RequestEntityTooLarge,
    UnsupportedMediaType,
    InternalError,
    Expired,
    ServiceUnavailable,
}

impl Reason {
    const ALL: [Reason; 20] = [
        Reason::Unknown,
        Reason::Unauthorized,
        Reason::Forbidden,
        Reason::NotFound,
        Reason::AlreadyExists,
        Reason::Conflict,
        Reason::Gone,
        Reason::Invalid,
        Reason::ServerTimeout,
        Reason::StoreReadError,
        Reason::Timeout,
        Reason::TooManyRequests,
        Reason::BadRequest,
        Reason::MethodNotAllowed,
        Reason::NotAcceptable,
        Reason::RequestEntityTooLarge,
        Reason::UnsupportedMediaType,
        Reason::InternalError,
        Reason::Expired,
        Reason::ServiceUnavailable,
    ];

    /// The reason as it appears in JSON (`"NotFound"`); `""` for [`Reason::Unknown`].
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Unknown => "",
            Reason::Unauthorized => "Unauthorized",
            Reason::Forbidden => "Forbidden",
            Reason::NotFound => "NotFound",
            Reason::AlreadyExists => "AlreadyExists",
            Reason::Conflict => "Conflict",
            Reason::Gone => "Gone",
            Reason::Invalid => "Invalid",
            Reason::ServerTimeout => "ServerTimeout",
            Reason::StoreReadError => "StorageReadError",
            Reason::Timeout => "Timeout",
            Reason::TooManyRequests => "TooManyRequests",
            Reason::BadRequest => "BadRequest",
            Reason::MethodNotAllowed => "MethodNotAllowed",
            Reason::NotAcceptable => "NotAcceptable",
            Reason::RequestEntityTooLarge => "RequestEntityTooLarge",
            Reason::UnsupportedMediaType => "UnsupportedMediaType",
            Reason::InternalError => "InternalError",
            Reason::Expired => "Expired",
            Reason::ServiceUnavailable => "ServiceUnavailable",
        }
    }

    /// The reason named by `s`; unrecognized names are [`Reason::Unknown`].
    pub fn parse(s: &str) -> Reason {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .unwrap_or(Reason::Unknown)
    }

    /// The HTTP status code Kubernetes pairs with this reason.
    pub fn code(self) -> u16 {
        match self {
            Reason::Unknown
            | Reason::InternalError
            | Reason::ServerTimeout
            | Reason::StoreReadError => 500,
            Reason::Unauthorized => 401,
            Reason::Forbidden => 403,
            Reason::NotFound => 404,
            Reason::AlreadyExists | Reason::Conflict => 409,
            Reason::Gone | Reason::Expired => 410,
            Reason::Invalid => 422,
            Reason::Timeout => 504,
            Reason::TooManyRequests => 429,
            Reason::BadRequest => 400,
            Reason::MethodNotAllowed => 405,
            Reason::NotAcceptable => 406,
            Reason::RequestEntityTooLarge => 413,
            Reason::UnsupportedMediaType => 415,
            Reason::ServiceUnavailable => 503,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `metav1.StatusCause`: one reason a request failed, usually one invalid field.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusCause {
    /// The cause type, e.g. `FieldValueRequired`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The field path, e.g. `spec.containers[0].image`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub field: String,
}

/// `metav1.StatusDetails`: which object failed and why. `kind` is the resource (`pods`)
/// for most errors and the kind (`Pod`) for Invalid, as in Kubernetes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusDetails {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<StatusCause>,
    #[serde(
        rename = "retryAfterSeconds",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub retry_after_seconds: Option<i32>,
}

impl StatusDetails {
    fn object(group: &str, kind: &str, name: &str) -> Self {
        StatusDetails {
            name: name.to_string(),
            group: group.to_string(),
            kind: kind.to_string(),
            ..Default::default()
        }
    }
}

/// A failed API request, as `metav1.Status` with `status: Failure`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Status {
    /// The HTTP status code.
    pub code: u16,
    pub reason: Reason,
    pub message: String,
    pub details: Option<StatusDetails>,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// `resource` or `resource.group`, as Kubernetes' `GroupResource.String()`.
pub fn qualified_resource(group: &str, resource: &str) -> String {
    if group.is_empty() {
        resource.to_string()
    } else {
        format!("{resource}.{group}")
    }
}

/// `Kind` or `Kind.group`, as Kubernetes' `GroupKind.String()`.
pub fn qualified_kind(group: &str, kind: &str) -> String {
    if group.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}.{group}")
    }
}

#[derive(Serialize)]
struct Wire<'a> {
    kind: &'static str,
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    metadata: Value,
    status: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    message: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<&'a StatusDetails>,
    code: u16,
}

impl Status {
    /// A failure with `reason`'s usual code and no details.
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Status {
            code: reason.code(),
            reason,
            message: message.into(),
            details: None,
        }
    }

    fn with_details(mut self, details: StatusDetails) -> Self {
        self.details = Some(details);
        self
    }

    /// 404 `<resource> "<name>" not found`.
    pub fn not_found(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!(
            "{} {} not found",
            qualified_resource(group, resource),
            quote(name)
        );
        Self::new(Reason::NotFound, msg).with_details(StatusDetails::object(group, resource, name))
    }

    /// 404 for a path that names no resource at all (`the server could not find the
    /// requested resource`).
    pub fn not_found_path() -> Self {
        Self::new(
            Reason::NotFound,
            "the server could not find the requested resource",
        )
        .with_details(StatusDetails::default())
    }

    /// 409 `<resource> "<name>" already exists`.
    pub fn already_exists(group: &str, resource: &str, name: &str) -> Self {
        let msg = format!(
            "{} {} already exists",
            qualified_resource(group, resource),
            quote(name)
        );
        Self::new(Reason::AlreadyExists, msg)
            .with_details(StatusDetails::object(group, resource, name))
    }

    /// 409 AlreadyExists for a generated name that collided; clients retry after the hint.
    pub fn generate_name_conflict(
        group: &str,
        resource: &str,
        name: &str,
        retry_after_seconds: i32,
    ) -> Self {
        let msg = format!(
            "{} {} already exists, the server was not able to generate a unique name for the object",
            qualified_resource(group, resource),
            quote(name)
        );
        let mut details = StatusDetails::object(group, resource, name);
        details.retry_after_seconds = Some(retry_after_seconds);
        Self::new(Reason::AlreadyExists, msg).with_details(details)
    }

    /// 409 `Operation cannot be fulfilled on <resource> "<name>": <why>`.
    pub fn conflict(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} {}: {why}",
            qualified_resource(group, resource),
            quote(name)
        );
        Self::new(Reason::Conflict, msg).with_details(StatusDetails::object(group, resource, name))
    }

    /// 409 Conflict for an update or delete whose resourceVersion precondition is stale.
    pub fn optimistic_lock(group: &str, resource: &str, name: &str) -> Self {
        Self::conflict(group, resource, name, OPTIMISTIC_LOCK_ERROR_MSG)
    }

    /// 422 `<Kind> "<name>" is invalid: <errors>` with one cause per field error.
    pub fn invalid(group: &str, kind: &str, name: &str, errs: &[FieldError]) -> Self {
        let agg = aggregate_message(errs);
        let qk = qualified_kind(group, kind);
        let msg = if agg.is_empty() {
            format!("{qk} {} is invalid", quote(name))
        } else {
            format!("{qk} {} is invalid: {agg}", quote(name))
        };
        let mut details = StatusDetails::object(group, kind, name);
        details.causes = errs
            .iter()
            .map(|e| StatusCause {
                reason: e.error_type.reason().to_string(),
                message: e.body(),
                field: e.field.clone(),
            })
            .collect();
        Self::new(Reason::Invalid, msg).with_details(details)
    }

    /// 400 with the message as given.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(Reason::BadRequest, message)
    }

    /// 405 `<verb> is not supported on resources of kind "<resource>"`.
    pub fn method_not_supported(group: &str, resource: &str, verb: &str) -> Self {
        let msg = format!(
            "{verb} is not supported on resources of kind {}",
            quote(&qualified_resource(group, resource))
        );
        Self::new(Reason::MethodNotAllowed, msg)
            .with_details(StatusDetails::object(group, resource, ""))
    }

    /// 413 `Request entity too large: <why>`.
    pub fn request_entity_too_large(why: &str) -> Self {
        Self::new(
            Reason::RequestEntityTooLarge,
            format!("Request entity too large: {why}"),
        )
    }

    /// 403 `<resource> "<name>" is forbidden: <why>` (without the name part when `name`
    /// is empty, and `forbidden: <why>` when the resource is empty too).
    pub fn forbidden(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let msg = if group.is_empty() && resource.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!(
                "{} is forbidden: {why}",
                qualified_resource(group, resource)
            )
        } else {
            format!(
                "{} {} is forbidden: {why}",
                qualified_resource(group, resource),
                quote(name)
            )
        };
        Self::new(Reason::Forbidden, msg).with_details(StatusDetails::object(group, resource, name))
    }

    /// 403 for a create in a namespace that is being deleted.
    pub fn namespace_terminating(group: &str, resource: &str, name: &str, namespace: &str) -> Self {
        let why = format!(
            "unable to create new content in namespace {namespace} because it is being terminated"
        );
        let mut s = Self::forbidden(group, resource, name, &why);
        if let Some(d) = s.details.as_mut() {
            d.causes.push(StatusCause {
                reason: "NamespaceTerminating".to_string(),
                message: format!("namespace {namespace} is being terminated"),
                field: "metadata.namespace".to_string(),
            });
        }
        s
    }

    /// 401; the message defaults to Kubernetes' `Unauthorized`.
    pub fn unauthorized(message: &str) -> Self {
        let message = if message.is_empty() {
            "Unauthorized"
        } else {
            message
        };
        Self::new(Reason::Unauthorized, message)
    }

    /// 415 `the body of the request was in an unknown format - accepted media types
    /// include: ...`, for a body (or a patch) whose content type the server does not read.
    pub fn unsupported_media_type(supported: &[&str]) -> Self {
        Self::new(
            Reason::UnsupportedMediaType,
            format!(
                "the body of the request was in an unknown format - accepted media types include: {}",
                supported.join(", ")
            ),
        )
    }

    /// 406 for an `Accept` header the server cannot satisfy.
    pub fn not_acceptable(supported: &[&str]) -> Self {
        Self::new(
            Reason::NotAcceptable,
            format!(
                "only the following media types are accepted: {}",
                supported.join(", ")
            ),
        )
    }

    /// 500 `Internal error occurred: <err>`, the error also as the single cause.
    pub fn internal_error(err: &str) -> Self {
        let details = StatusDetails {
            causes: vec![StatusCause {
                message: err.to_string(),
                ..Default::default()
            }],
            ..Default::default()
        };
        Self::new(
            Reason::InternalError,
            format!("Internal error occurred: {err}"),
        )
        .with_details(details)
    }

    /// 504 `Timeout: <why>`, with a retry hint when non-zero.
    pub fn timeout(why: &str, retry_after_seconds: i32) -> Self {
        let s = Self::new(Reason::Timeout, format!("Timeout: {why}"));
        if retry_after_seconds > 0 {
            s.with_details(StatusDetails {
                retry_after_seconds: Some(retry_after_seconds),
                ..Default::default()
            })
        } else {
            s
        }
    }

    /// 500 ServerTimeout: `The <op> operation against <resource> could not be completed at
    /// this time, please try again.`
    pub fn server_timeout(
        group: &str,
        resource: &str,
        operation: &str,
        retry_after_seconds: i32,
    ) -> Self {
        let msg = format!(
            "The {operation} operation against {} could not be completed at this time, please try again.",
            qualified_resource(group, resource)
        );
        let mut details = StatusDetails::object(group, resource, operation);
        details.retry_after_seconds = Some(retry_after_seconds);
        Self::new(Reason::ServerTimeout, msg).with_details(details)
    }

    /// 503 with the message as given.
    pub fn service_unavailable(message: impl Into<String>) -> Self {
        Self::new(Reason::ServiceUnavailable, message)
    }

    /// 429 `Too many requests: <why>`, with a retry hint.
    pub fn too_many_requests(why: &str, retry_after_seconds: i32) -> Self {
        let details = StatusDetails {
            retry_after_seconds: Some(retry_after_seconds),
            ..Default::default()
        };
        Self::new(Reason::TooManyRequests, format!("Too many requests: {why}"))
            .with_details(details)
    }

    /// 410 Gone with the message as given.
    pub fn gone(message: impl Into<String>) -> Self {
        Self::new(Reason::Gone, message)
    }

    /// 410 Expired with the message as given (what watches and continue tokens report).
    pub fn expired(message: impl Into<String>) -> Self {
        Self::new(Reason::Expired, message)
    }

    /// 410 Expired `too old resource version: <requested> (<oldest available>)`, as a watch
    /// from a compacted revision reports it.
    pub fn too_old_resource_version(requested: u64, oldest: u64) -> Self {
        Self::expired(format!("too old resource version: {requested} ({oldest})"))
    }

    /// 410 Expired for a list `continue` token past the history window.
    pub fn continue_expired() -> Self {
        Self::expired(
            "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        )
    }

    /// `metav1.Status` as a JSON value.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.wire()).unwrap_or(Value::Null)
    }

    /// `metav1.Status` as JSON bytes, fields in Kubernetes' order (`kind`, `apiVersion`,
    /// `metadata`, `status`, `message`, `reason`, `details`, `code`).
    pub fn to_json_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(&self.wire()).unwrap_or_default()
    }

    fn wire(&self) -> Wire<'_> {
        Wire {
            kind: "Status",
            api_version: "v1",
            metadata: json!({}),
            status: "Failure",
            message: &self.message,
            reason: self.reason.as_str(),
            details: self.details.as_ref(),
            code: self.code,
        }
    }

    /// A failure Status read back from its JSON (what a client receives). `None` when
    /// `v` is not a `Status` or reports success.
    pub fn from_json(v: &Value) -> Option<Status> {
        if v.get("kind").and_then(Value::as_str) != Some("Status") {
            return None;
        }
        if v.get("status").and_then(Value::as_str) == Some("Success") {
            return None;
        }
        let reason = Reason::parse(v.get("reason").and_then(Value::as_str).unwrap_or(""));
        let code = v
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .unwrap_or(reason.code());
        Some(Status {
            code,
            reason,
            message: v
                .get("message")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string(),
            details: v
                .get("details")
                .and_then(|d| serde_json::from_value(d.clone()).ok()),
        })
    }

    /// The field causes, empty when there are none.
    pub fn causes(&self) -> &[StatusCause] {
        self.details.as_ref().map_or(&[], |d| d.causes.as_slice())
    }
}

/// A `Status` with `status: Success` naming the object an operation acted on (what a
/// delete answers when it has no object to return).
pub fn success(group: &str, resource: &str, name: &str, uid: &str) -> Value {
    let details = StatusDetails {
        uid: uid.to_string(),
        ..StatusDetails::object(group, resource, name)
    };
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": details,
    })
}

fn quote(s: &str) -> String {
    crate::field::go_quote(s)
}

#[cfg(test)]
mod tests;
