//! Go's rendering of the values Kubernetes puts into its messages: `strconv.Quote` for
//! strings, and `%#v` for the few composite values validation reports
//! (`map[string]string{"app":"x"}`, `[]string{"a", "b"}`, `v1.LabelSelector{...}`), so
//! that messages read exactly as Kubernetes writes them. Formatting only.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use super::error::BadValue;

/// `map[string]string{"a":"b", "c":"d"}` (keys sorted, as Go prints maps), or
/// `map[string]string(nil)` for none.
pub fn map(m: Option<&BTreeMap<String, String>>) -> String {
    match m {
        None => "map[string]string(nil)".to_string(),
        Some(m) => {
            let items: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{}:{}", go_quote(k), go_quote(v)))
                .collect();
            format!("map[string]string{{{}}}", items.join(", "))
        }
    }
}

/// `[]string{"a", "b"}`, or `[]string(nil)` for none.
pub fn strings(v: Option<&[String]>) -> String {
    match v {
        None => "[]string(nil)".to_string(),
        Some(v) => {
            let items: Vec<String> = v.iter().map(|s| go_quote(s)).collect();
            format!("[]string{{{}}}", items.join(", "))
        }
    }
}

/// `v1.LabelSelector{MatchLabels:map[string]string{...}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}`.
pub fn label_selector(s: &LabelSelector) -> String {
    let exprs = match &s.match_expressions {
        None => "[]v1.LabelSelectorRequirement(nil)".to_string(),
        Some(v) => {
            let items: Vec<String> = v
                .iter()
                .map(|r| {
                    format!(
                        "v1.LabelSelectorRequirement{{Key:{}, Operator:{}, Values:{}}}",
                        go_quote(&r.key),
                        go_quote(&r.operator),
                        strings(r.values.as_deref())
                    )
                })
                .collect();
            format!("[]v1.LabelSelectorRequirement{{{}}}", items.join(", "))
        }
    };
    format!(
        "v1.LabelSelector{{MatchLabels:{}, MatchExpressions:{}}}",
        map(s.match_labels.as_ref()),
        exprs
    )
}

/// `intstr.IntOrString{Type:1, IntVal:0, StrVal:"25%"}`.
pub fn int_or_string(v: &IntOrString) -> String {
    match v {
        IntOrString::Int(i) => format!("intstr.IntOrString{{Type:0, IntVal:{i}, StrVal:\"\"}}"),
        IntOrString::String(s) => format!(
            "intstr.IntOrString{{Type:1, IntVal:0, StrVal:{}}}",
            go_quote(s)
        ),
    }
}

/// A raw bad value rendered by one of the functions above.
pub fn raw(s: String) -> BadValue {
    BadValue::Raw(s)
}

/// A timestamp as Go's `time.Time.String()` prints one in UTC.
pub fn time(t: &k8s_openapi::jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%d %H:%M:%S +0000 UTC").to_string()
}

/// Go's `strconv.Quote`: double quotes, with `"` and `\` escaped, the usual C escapes, and
/// other non-printable characters as `\x`, `\u` or `\U` escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32))
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32))
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
