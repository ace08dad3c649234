//! The Swagger 2.0 document in protobuf, as client-go asks for it
//! (`Accept: application/com.github.proto-openapi.spec.v2@v1.0+protobuf`):
//! the `openapi.v2.Document` message of gnostic's OpenAPIv2 schema. kubectl
//! refuses `apply` and strict validation without it.
//!
//! The encoder walks the JSON document and writes each member as the field
//! gnostic defines for it (field numbers are that schema's); maps become
//! repeated `Named*` pairs in key order, and values of free-form fields
//! (vendor extensions, defaults, enums) are `Any` messages carrying their
//! YAML text (JSON is YAML), which is what gnostic's readers parse. Members
//! the schema has no field for are reported back instead of being written,
//! so the tests can insist there are none.

use serde_json::{Map, Value};

/// Encodes a Swagger 2.0 document; the second value lists the JSON paths of
/// members that have no place in gnostic's messages (and were left out).
pub(crate) fn encode(doc: &Value) -> (Vec<u8>, Vec<String>) {
    let mut e = Encoder::default();
    let bytes = e.document(doc);
    (bytes, e.dropped)
}

const VARINT: u32 = 0;
const FIXED64: u32 = 1;
const LEN: u32 = 2;

fn varint(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

fn key(buf: &mut Vec<u8>, field: u32, wire: u32) {
    varint(buf, u64::from((field << 3) | wire));
}

fn bytes_field(buf: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(buf, field, LEN);
    varint(buf, bytes.len() as u64);
    buf.extend_from_slice(bytes);
}

#[derive(Default)]
struct Encoder {
    dropped: Vec<String>,
}

/// One message being written.
struct Msg<'a> {
    buf: Vec<u8>,
    enc: &'a mut Encoder,
    path: String,
}

impl Msg<'_> {
    fn drop_member(&mut self, name: &str) {
        self.enc.dropped.push(format!("{}/{name}", self.path));
    }

    fn string(&mut self, field: u32, name: &str, v: &Value) {
        match v.as_str() {
            Some(s) => bytes_field(&mut self.buf, field, s.as_bytes()),
            None => self.drop_member(name),
        }
    }

    fn strings(&mut self, field: u32, name: &str, v: &Value) {
        match v.as_array() {
            Some(items) if items.iter().all(Value::is_string) => {
                for s in items.iter().filter_map(Value::as_str) {
                    bytes_field(&mut self.buf, field, s.as_bytes());
                }
            }
            _ => self.drop_member(name),
        }
    }

    fn boolean(&mut self, field: u32, name: &str, v: &Value) {
        match v.as_bool() {
            Some(true) => {
                key(&mut self.buf, field, VARINT);
                varint(&mut self.buf, 1);
            }
            Some(false) => {}
            None => self.drop_member(name),
        }
    }

    fn int64(&mut self, field: u32, name: &str, v: &Value) {
        match v.as_i64() {
            Some(n) => {
                key(&mut self.buf, field, VARINT);
                varint(&mut self.buf, n as u64);
            }
            None => self.drop_member(name),
        }
    }

    fn double(&mut self, field: u32, name: &str, v: &Value) {
        match v.as_f64() {
            Some(n) => {
                key(&mut self.buf, field, FIXED64);
                self.buf.extend_from_slice(&n.to_le_bytes());
            }
            None => self.drop_member(name),
        }
    }

    /// A nested message, written by `f` (always present, even when empty).
    fn message(&mut self, field: u32, name: &str, f: impl FnOnce(&mut Msg<'_>)) {
        let path = format!("{}/{name}", self.path);
        let mut inner = Msg {
            buf: Vec::new(),
            enc: &mut *self.enc,
            path,
        };
        f(&mut inner);
        let bytes = inner.buf;
        bytes_field(&mut self.buf, field, &bytes);
    }

    /// `Any { yaml }` holding `v`'s text.
    fn any(&mut self, field: u32, name: &str, v: &Value) {
        let text = v.to_string();
        self.message(field, name, |m| bytes_field(&mut m.buf, 2, text.as_bytes()));
    }

    /// A vendor extension: `NamedAny { name, value: Any }`.
    fn extension(&mut self, field: u32, name: &str, v: &Value) {
        self.message(field, name, |m| {
            bytes_field(&mut m.buf, 1, name.as_bytes());
            m.any(2, "value", v);
        });
    }

    /// Each member of an object as a `Named<T> { name = 1, value = 2 }` in `field`.
    fn named(
        &mut self,
        field: u32,
        name: &str,
        v: &Value,
        mut value: impl FnMut(&mut Msg<'_>, &Value),
    ) {
        let Some(map) = v.as_object() else {
            return self.drop_member(name);
        };
        for (k, item) in map {
            self.message(field, &format!("{name}/{k}"), |m| {
                bytes_field(&mut m.buf, 1, k.as_bytes());
                m.message(2, "value", |m| value(m, item));
            });
        }
    }

    fn object<'v>(&mut self, v: &'v Value) -> Option<&'v Map<String, Value>> {
        match v.as_object() {
            Some(m) => Some(m),
            None => {
                self.enc
                    .dropped
                    .push(format!("{} (not an object)", self.path));
                None
            }
        }
    }
}

impl Encoder {
    fn document(&mut self, doc: &Value) -> Vec<u8> {
        let mut m = Msg {
            buf: Vec::new(),
            enc: self,
            path: String::new(),
        };
        let Some(fields) = m.object(doc) else {
            return m.buf;
        };
        for (k, v) in fields {
            match k.as_str() {
                "swagger" => m.string(1, k, v),
                "info" => m.message(2, k, |m| info(m, v)),
                "host" => m.string(3, k, v),
                "basePath" => m.string(4, k, v),
                "schemes" => m.strings(5, k, v),
                "consumes" => m.strings(6, k, v),
                "produces" => m.strings(7, k, v),
                "paths" => m.message(8, k, |m| paths(m, v)),
                // Definitions { repeated NamedSchema additional_properties = 1 }
                "definitions" => m.message(9, k, |m| m.named(1, "", v, schema)),
                "security" => match v.as_array() {
                    Some(items) => {
                        for item in items {
                            m.message(12, k, |m| security_requirement(m, item));
                        }
                    }
                    None => m.drop_member(k),
                },
                "securityDefinitions" => m.message(13, k, |m| {
                    // SecurityDefinitions { repeated NamedSecurityDefinitionsItem = 1 },
                    // only API keys (SecurityDefinitionsItem.api_key_security = 2).
                    m.named(1, "", v, |m, item| {
                        m.message(2, "apiKey", |m| api_key(m, item));
                    })
                }),
                x if x.starts_with("x-") => m.extension(16, k, v),
                _ => m.drop_member(k),
            }
        }
        m.buf
    }
}

fn info(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, v) in fields {
        match k.as_str() {
            "title" => m.string(1, k, v),
            "version" => m.string(2, k, v),
            "description" => m.string(3, k, v),
            x if x.starts_with("x-") => m.extension(7, k, v),
            _ => m.drop_member(k),
        }
    }
}

fn api_key(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, v) in fields {
        match k.as_str() {
            "type" => m.string(1, k, v),
            "name" => m.string(2, k, v),
            "in" => m.string(3, k, v),
            "description" => m.string(4, k, v),
            x if x.starts_with("x-") => m.extension(5, k, v),
            _ => m.drop_member(k),
        }
    }
}

/// `SecurityRequirement { repeated NamedStringArray additional_properties = 1 }`.
fn security_requirement(m: &mut Msg<'_>, v: &Value) {
    m.named(1, "", v, |m, scopes| m.strings(1, "value", scopes));
}

/// `Paths { repeated NamedAny vendor_extension = 1; repeated NamedPathItem path = 2 }`.
fn paths(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, item) in fields {
        if k.starts_with("x-") {
            m.extension(1, k, item);
            continue;
        }
        m.message(2, k, |m| {
            bytes_field(&mut m.buf, 1, k.as_bytes());
            m.message(2, "value", |m| path_item(m, item));
        });
    }
}

fn path_item(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, v) in fields {
        match k.as_str() {
            "$ref" => m.string(1, k, v),
            "get" => m.message(2, k, |m| operation(m, v)),
            "put" => m.message(3, k, |m| operation(m, v)),
            "post" => m.message(4, k, |m| operation(m, v)),
            "delete" => m.message(5, k, |m| operation(m, v)),
            "options" => m.message(6, k, |m| operation(m, v)),
            "head" => m.message(7, k, |m| operation(m, v)),
            "patch" => m.message(8, k, |m| operation(m, v)),
            "parameters" => parameters(m, 9, v),
            x if x.starts_with("x-") => m.extension(10, k, v),
            _ => m.drop_member(k),
        }
    }
}

fn operation(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, v) in fields {
        match k.as_str() {
            "tags" => m.strings(1, k, v),
            "summary" => m.string(2, k, v),
            "description" => m.string(3, k, v),
            "operationId" => m.string(5, k, v),
            "produces" => m.strings(6, k, v),
            "consumes" => m.strings(7, k, v),
            "parameters" => parameters(m, 8, v),
            "responses" => m.message(9, k, |m| responses(m, v)),
            "schemes" => m.strings(10, k, v),
            "deprecated" => m.boolean(11, k, v),
            x if x.starts_with("x-") => m.extension(13, k, v),
            _ => m.drop_member(k),
        }
    }
}

/// Repeated `ParametersItem { oneof { Parameter parameter = 1; JsonReference json_reference = 2 } }`.
fn parameters(m: &mut Msg<'_>, field: u32, v: &Value) {
    let Some(items) = v.as_array() else {
        return m.drop_member("parameters");
    };
    for (i, p) in items.iter().enumerate() {
        m.message(field, &format!("parameters/{i}"), |m| {
            if let Some(r) = p.get("$ref") {
                m.message(2, "$ref", |m| m.string(1, "$ref", r));
                return;
            }
            // Parameter { oneof { BodyParameter body_parameter = 1; NonBodyParameter non_body_parameter = 2 } }
            m.message(1, "parameter", |m| {
                match p.get("in").and_then(Value::as_str) {
                    Some("body") => m.message(1, "body", |m| body_parameter(m, p)),
                    // NonBodyParameter { header = 1; form_data = 2; query = 3; path = 4 }
                    Some("query") => m.message(2, "query", |m| {
                        m.message(3, "query", |m| non_body_parameter(m, p, true))
                    }),
                    Some("path") => m.message(2, "path", |m| {
                        m.message(4, "path", |m| non_body_parameter(m, p, false))
                    }),
                    Some("header") => m.message(2, "header", |m| {
                        m.message(1, "header", |m| non_body_parameter(m, p, false))
                    }),
                    _ => m.drop_member("in"),
                }
            });
        });
    }
}

fn body_parameter(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, v) in fields {
        match k.as_str() {
            "description" => m.string(1, k, v),
            "name" => m.string(2, k, v),
            "in" => m.string(3, k, v),
            "required" => m.boolean(4, k, v),
            "schema" => m.message(5, k, |m| schema(m, v)),
            x if x.starts_with("x-") => m.extension(6, k, v),
            _ => m.drop_member(k),
        }
    }
}

/// QueryParameterSubSchema, or (`query` false) the path and header forms,
/// which lack `allowEmptyValue` and so number their later fields one lower.
fn non_body_parameter(m: &mut Msg<'_>, v: &Value, query: bool) {
    let Some(fields) = m.object(v) else { return };
    let shift = u32::from(query);
    for (k, v) in fields {
        match k.as_str() {
            "required" => m.boolean(1, k, v),
            "in" => m.string(2, k, v),
            "description" => m.string(3, k, v),
            "name" => m.string(4, k, v),
            "allowEmptyValue" if query => m.boolean(5, k, v),
            "type" => m.string(5 + shift, k, v),
            "format" => m.string(6 + shift, k, v),
            "collectionFormat" => m.string(8 + shift, k, v),
            "default" => m.any(9 + shift, k, v),
            "pattern" => m.string(16 + shift, k, v),
            "uniqueItems" => m.boolean(19 + shift, k, v),
            "enum" => match v.as_array() {
                Some(items) => items.iter().for_each(|e| m.any(20 + shift, k, e)),
                None => m.drop_member(k),
            },
            x if x.starts_with("x-") => m.extension(22 + shift, k, v),
            _ => m.drop_member(k),
        }
    }
}

/// `Responses { repeated NamedResponseValue response_code = 1 }`, each value
/// `ResponseValue { Response response = 1 }`.
fn responses(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (code, r) in fields {
        if code.starts_with("x-") {
            m.extension(2, code, r);
            continue;
        }
        m.message(1, code, |m| {
            bytes_field(&mut m.buf, 1, code.as_bytes());
            m.message(2, "value", |m| m.message(1, "response", |m| response(m, r)));
        });
    }
}

fn response(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, v) in fields {
        match k.as_str() {
            "description" => m.string(1, k, v),
            // SchemaItem { Schema schema = 1 }
            "schema" => m.message(2, k, |m| m.message(1, "schema", |m| schema(m, v))),
            x if x.starts_with("x-") => m.extension(5, k, v),
            _ => m.drop_member(k),
        }
    }
}

fn schema(m: &mut Msg<'_>, v: &Value) {
    let Some(fields) = m.object(v) else { return };
    for (k, v) in fields {
        match k.as_str() {
            "$ref" => m.string(1, k, v),
            "format" => m.string(2, k, v),
            "title" => m.string(3, k, v),
            "description" => m.string(4, k, v),
            "default" => m.any(5, k, v),
            "multipleOf" => m.double(6, k, v),
            "maximum" => m.double(7, k, v),
            "exclusiveMaximum" => m.boolean(8, k, v),
            "minimum" => m.double(9, k, v),
            "exclusiveMinimum" => m.boolean(10, k, v),
            "maxLength" => m.int64(11, k, v),
            "minLength" => m.int64(12, k, v),
            "pattern" => m.string(13, k, v),
            "maxItems" => m.int64(14, k, v),
            "minItems" => m.int64(15, k, v),
            "uniqueItems" => m.boolean(16, k, v),
            "maxProperties" => m.int64(17, k, v),
            "minProperties" => m.int64(18, k, v),
            "required" => m.strings(19, k, v),
            "enum" => match v.as_array() {
                Some(items) => items.iter().for_each(|e| m.any(20, k, e)),
                None => m.drop_member(k),
            },
            // AdditionalPropertiesItem { oneof { Schema schema = 1; bool boolean = 2 } }
            "additionalProperties" => m.message(21, k, |m| match v {
                Value::Bool(b) => m.boolean(2, "boolean", &Value::Bool(*b)),
                _ => m.message(1, "schema", |m| schema(m, v)),
            }),
            // TypeItem { repeated string value = 1 }
            "type" => m.message(22, k, |m| match v {
                Value::String(_) => m.string(1, "value", v),
                _ => m.strings(1, "value", v),
            }),
            // ItemsItem { repeated Schema schema = 1 }
            "items" => m.message(23, k, |m| match v {
                Value::Array(items) => {
                    for item in items {
                        m.message(1, "schema", |m| schema(m, item));
                    }
                }
                _ => m.message(1, "schema", |m| schema(m, v)),
            }),
            "allOf" => match v.as_array() {
                Some(items) => {
                    for item in items {
                        m.message(24, k, |m| schema(m, item));
                    }
                }
                None => m.drop_member(k),
            },
            // Properties { repeated NamedSchema additional_properties = 1 }
            "properties" => m.message(25, k, |m| m.named(1, "", v, schema)),
            "discriminator" => m.string(26, k, v),
            "readOnly" => m.boolean(27, k, v),
            "example" => m.any(30, k, v),
            x if x.starts_with("x-") => m.extension(31, k, v),
            _ => m.drop_member(k),
        }
    }
}
