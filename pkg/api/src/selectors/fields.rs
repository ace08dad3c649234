//! Field selectors: Kubernetes' `fields.ParseSelector` (terms `f=v`, `f==v`, `f!=v` joined
//! by commas, with `\,` `\=` `\\` escapes), printing, and matching against a set of field
//! values. Which fields a resource can be selected by, and an object's values for them,
//! are per kind: each kind's entry in `crate::kinds` declares them, and
//! `FieldSelector::for_resource` (beside the resource table) checks a selector against them.

use std::collections::BTreeMap;
use std::fmt;

use super::SelectorError;

/// One term: `field=value` or `field!=value`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldTerm {
    pub field: String,
    pub value: String,
    pub negated: bool,
}

/// A field selector: the conjunction of its terms; empty matches everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSelector {
    terms: Vec<FieldTerm>,
}

impl FieldSelector {
    /// The selector that matches everything.
    pub fn everything() -> Self {
        Self::default()
    }

    /// Parses `metadata.name=x,spec.nodeName!=y`. Terms are kept sorted, as Kubernetes
    /// sorts them.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let mut parts = split_terms(s);
        parts.sort();
        let mut terms = Vec::new();
        for part in parts {
            if part.is_empty() {
                continue;
            }
            let Some((lhs, op, rhs)) = split_term(&part) else {
                return Err(SelectorError::new(format!(
                    "invalid selector: '{s}'; can't understand '{part}'"
                )));
            };
            let value = unescape_value(rhs)?;
            terms.push(FieldTerm {
                field: lhs.to_string(),
                value,
                negated: op == "!=",
            });
        }
        Ok(FieldSelector { terms })
    }

    /// A selector of one `field=value` term.
    pub fn one_term_equal(field: &str, value: &str) -> Self {
        FieldSelector {
            terms: vec![FieldTerm {
                field: field.to_string(),
                value: value.to_string(),
                negated: false,
            }],
        }
    }

    pub fn terms(&self) -> &[FieldTerm] {
        &self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// The value `field` must equal, if one term requires exactly that (lets a caller turn
    /// `metadata.name=x` into a get, or `spec.nodeName=n` into an index lookup).
    pub fn requires_exact_match(&self, field: &str) -> Option<&str> {
        self.terms
            .iter()
            .find(|t| t.field == field && !t.negated)
            .map(|t| t.value.as_str())
    }

    /// Each term's field renamed to the field `stored` names for it, or Kubernetes' `field
    /// label not supported: <field>` for a field it names none for (how a resource checks
    /// a selector against its kind's field labels).
    pub fn rename_fields(
        &self,
        stored: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SelectorError> {
        let mut terms = Vec::with_capacity(self.terms.len());
        for t in &self.terms {
            let field = stored(&t.field).ok_or_else(|| {
                SelectorError::new(format!("field label not supported: {}", t.field))
            })?;
            terms.push(FieldTerm {
                field,
                value: t.value.clone(),
                negated: t.negated,
            });
        }
        Ok(FieldSelector { terms })
    }

    /// Whether a set of field values (an object's, as its kind computes them) satisfies
    /// every term; an absent field has the value `""`.
    pub fn matches(&self, fields: &BTreeMap<String, String>) -> bool {
        self.terms.iter().all(|t| {
            let have = fields.get(&t.field).map_or("", String::as_str);
            (have == t.value) != t.negated
        })
    }
}

impl fmt::Display for FieldSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .terms
            .iter()
            .map(|t| {
                format!(
                    "{}{}{}",
                    t.field,
                    if t.negated { "!=" } else { "=" },
                    escape_value(&t.value)
                )
            })
            .collect();
        f.write_str(&parts.join(","))
    }
}

fn escape_value(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace(',', "\\,")
        .replace('=', "\\=")
}

fn split_terms(s: &str) -> Vec<String> {
    if s.is_empty() {
        return Vec::new();
    }
    let mut terms = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            terms.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    terms.push(cur);
    terms
}

fn split_term(term: &str) -> Option<(&str, &'static str, &str)> {
    for (i, _) in term.char_indices() {
        let rest = &term[i..];
        for op in ["!=", "==", "="] {
            if let Some(rhs) = rest.strip_prefix(op) {
                return Some((&term[..i], op, rhs));
            }
        }
    }
    None
}

fn unescape_value(s: &str) -> Result<String, SelectorError> {
    if !s.contains(['\\', ',', '=']) {
        return Ok(s.to_string());
    }
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(n @ ('\\' | ',' | '=')) => out.push(n),
                Some(n) => {
                    return Err(SelectorError::new(format!(
                        "invalid field selector: invalid escape sequence: \\{n}"
                    )))
                }
                None => {
                    return Err(SelectorError::new(
                        "invalid field selector: invalid escape sequence: \\",
                    ))
                }
            },
            // Go prints the rune with %v: its code point.
            ',' | '=' => {
                return Err(SelectorError::new(format!(
                    "invalid field selector: unescaped character in value: {}",
                    c as u32
                )))
            }
            c => out.push(c),
        }
    }
    Ok(out)
}
