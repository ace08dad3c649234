//! Field errors as Kubernetes' `field.Error` renders them (`spec.replicas: Invalid value:
//! -1: must be greater than or equal to 0`) and their aggregation into one message. The
//! texts here are Kubernetes' own; clients and tests match on them. An error only
//! describes a failure; deciding that a value is wrong is the validators' job.

use std::collections::HashSet;
use std::fmt;

use super::gofmt::go_quote;
use super::path::FieldPath;

/// The kind of a field error; its [`reason`](ErrorType::reason) is what a `StatusCause`
/// carries, its [`label`](ErrorType::label) what the message says.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorType {
    NotFound,
    Required,
    Duplicate,
    Invalid,
    NotSupported,
    Forbidden,
    TooLong,
    TooMany,
    Internal,
    TypeInvalid,
}

impl ErrorType {
    /// The `StatusCause.reason` for this type, e.g. `FieldValueRequired`.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorType::NotFound => "FieldValueNotFound",
            ErrorType::Required => "FieldValueRequired",
            ErrorType::Duplicate => "FieldValueDuplicate",
            ErrorType::Invalid => "FieldValueInvalid",
            ErrorType::NotSupported => "FieldValueNotSupported",
            ErrorType::Forbidden => "FieldValueForbidden",
            ErrorType::TooLong => "FieldValueTooLong",
            ErrorType::TooMany => "FieldValueTooMany",
            ErrorType::Internal => "InternalError",
            ErrorType::TypeInvalid => "FieldValueTypeInvalid",
        }
    }

    /// The human label, e.g. `Required value`.
    pub fn label(self) -> &'static str {
        match self {
            ErrorType::NotFound => "Not found",
            ErrorType::Required => "Required value",
            ErrorType::Duplicate => "Duplicate value",
            ErrorType::Invalid => "Invalid value",
            ErrorType::NotSupported => "Unsupported value",
            ErrorType::Forbidden => "Forbidden",
            ErrorType::TooLong => "Too long",
            ErrorType::TooMany => "Too many",
            ErrorType::Internal => "Internal error",
            ErrorType::TypeInvalid => "Invalid value",
        }
    }
}

/// The offending value of a field error, printed as Go's `fmt` prints it in Kubernetes:
/// strings quoted (`%q`), numbers and booleans bare, composite values pre-rendered in Go
/// syntax (`map[string]string{"app":"x"}`), or omitted.
#[derive(Clone, Debug, PartialEq)]
pub enum BadValue {
    Omitted,
    Null,
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Already rendered, printed as is (Go's `%#v` of a struct, map or slice).
    Raw(String),
}

impl From<&str> for BadValue {
    fn from(s: &str) -> Self {
        BadValue::Str(s.to_string())
    }
}
impl From<String> for BadValue {
    fn from(s: String) -> Self {
        BadValue::Str(s)
    }
}
impl From<&String> for BadValue {
    fn from(s: &String) -> Self {
        BadValue::Str(s.clone())
    }
}
impl From<i64> for BadValue {
    fn from(v: i64) -> Self {
        BadValue::Int(v)
    }
}
impl From<i32> for BadValue {
    fn from(v: i32) -> Self {
        BadValue::Int(v.into())
    }
}
impl From<bool> for BadValue {
    fn from(v: bool) -> Self {
        BadValue::Bool(v)
    }
}
impl<T: Into<BadValue>> From<Option<T>> for BadValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(BadValue::Null, Into::into)
    }
}

impl fmt::Display for BadValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BadValue::Omitted => Ok(()),
            BadValue::Null => write!(f, "\"null\""),
            BadValue::Str(s) => write!(f, "{}", go_quote(s)),
            BadValue::Int(v) => write!(f, "{v}"),
            BadValue::Float(v) => write!(f, "{v}"),
            BadValue::Bool(v) => write!(f, "{v}"),
            BadValue::Raw(s) => write!(f, "{s}"),
        }
    }
}

/// One validation failure at one field.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldError {
    pub error_type: ErrorType,
    /// The field path as printed (`spec.containers[0].name`).
    pub field: String,
    pub bad_value: BadValue,
    pub detail: String,
}

/// A list of field errors, in the order they were found.
pub type ErrorList = Vec<FieldError>;

impl FieldError {
    fn new(error_type: ErrorType, path: &FieldPath, bad_value: BadValue, detail: String) -> Self {
        FieldError {
            error_type,
            field: path.to_string(),
            bad_value,
            detail,
        }
    }

    /// A required field is missing: `Required value`.
    pub fn required(path: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorType::Required,
            path,
            BadValue::Str(String::new()),
            detail.into(),
        )
    }

    /// A field has a bad value: `Invalid value: "x": <detail>`.
    pub fn invalid(
        path: &FieldPath,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::Invalid, path, value.into(), detail.into())
    }

    /// A value outside an enumeration: `Unsupported value: "x": supported values: "a", "b"`.
    pub fn not_supported(path: &FieldPath, value: impl Into<BadValue>, valid: &[&str]) -> Self {
        let detail = if valid.is_empty() {
            String::new()
        } else {
            let quoted: Vec<String> = valid.iter().map(|v| go_quote(v)).collect();
            format!("supported values: {}", quoted.join(", "))
        };
        Self::new(ErrorType::NotSupported, path, value.into(), detail)
    }

    /// A value that must be unique is repeated: `Duplicate value: "x"`.
    pub fn duplicate(path: &FieldPath, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::Duplicate, path, value.into(), String::new())
    }

    /// A field may not be set (here, now, or to this): `Forbidden: <detail>`.
    pub fn forbidden(path: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(
            ErrorType::Forbidden,
            path,
            BadValue::Str(String::new()),
            detail.into(),
        )
    }

    /// A value is too long: `Too long: may not be more than 63 bytes`.
    pub fn too_long(path: &FieldPath, max_len: i64) -> Self {
        let detail = if max_len >= 0 {
            let unit = if max_len == 1 { "byte" } else { "bytes" };
            format!("may not be more than {max_len} {unit}")
        } else {
            "value is too long".to_string()
        };
        Self::new(ErrorType::TooLong, path, BadValue::Omitted, detail)
    }

    /// A list has too many items: `Too many: 5: must have at most 3 items`.
    pub fn too_many(path: &FieldPath, actual: Option<i64>, max: i64) -> Self {
        let detail = if max >= 0 {
            let unit = if max == 1 { "item" } else { "items" };
            format!("must have at most {max} {unit}")
        } else {
            "has too many items".to_string()
        };
        let value = actual.map_or(BadValue::Omitted, BadValue::Int);
        Self::new(ErrorType::TooMany, path, value, detail)
    }

    /// A referenced value does not exist: `Not found: "x"`.
    pub fn not_found(path: &FieldPath, value: impl Into<BadValue>) -> Self {
        Self::new(ErrorType::NotFound, path, value.into(), String::new())
    }

    /// A value has the wrong type: `Invalid value: "x": <detail>`.
    pub fn type_invalid(
        path: &FieldPath,
        value: impl Into<BadValue>,
        detail: impl Into<String>,
    ) -> Self {
        Self::new(ErrorType::TypeInvalid, path, value.into(), detail.into())
    }

    /// Validation itself failed: `Internal error: <detail>`.
    pub fn internal(path: &FieldPath, detail: impl Into<String>) -> Self {
        Self::new(ErrorType::Internal, path, BadValue::Omitted, detail.into())
    }

    /// The message without the field path (Kubernetes' `ErrorBody`), which is what a
    /// `StatusCause.message` carries.
    pub fn body(&self) -> String {
        let mut s = match self.error_type {
            ErrorType::Required
            | ErrorType::Forbidden
            | ErrorType::TooLong
            | ErrorType::Internal => self.error_type.label().to_string(),
            _ if self.bad_value == BadValue::Omitted => self.error_type.label().to_string(),
            _ => format!("{}: {}", self.error_type.label(), self.bad_value),
        };
        if !self.detail.is_empty() {
            s.push_str(": ");
            s.push_str(&self.detail);
        }
        s
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.body())
    }
}

/// The errors joined as Kubernetes' aggregate error prints them: duplicates dropped, one
/// message bare, several as `[a, b]`, none as the empty string.
pub fn aggregate_message(errs: &[FieldError]) -> String {
    aggregate_strings(errs.iter().map(ToString::to_string))
}

/// [`aggregate_message`] for messages already rendered (selector requirement errors).
pub fn aggregate_strings(msgs: impl Iterator<Item = String>) -> String {
    let mut seen = HashSet::new();
    let mut unique = Vec::new();
    for m in msgs {
        if seen.insert(m.clone()) {
            unique.push(m);
        }
    }
    match unique.len() {
        0 => String::new(),
        1 => unique.remove(0),
        _ => format!("[{}]", unique.join(", ")),
    }
}
