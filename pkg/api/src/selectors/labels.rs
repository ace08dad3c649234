//! Label selectors: Kubernetes' lexer and parser for the string form (equality- and
//! set-based requirements, `!key`, `gt`/`lt`), conversion from `metav1.LabelSelector`, and
//! matching. Requirements are kept sorted by key, as Kubernetes keeps them, so a selector
//! prints the same way Kubernetes prints it.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;
use serde_json::Value;

use super::SelectorError;
use crate::field::{aggregate_strings, gofmt, FieldError, FieldPath};
use crate::names::{is_qualified_name, is_valid_label_value};

/// A requirement's operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One requirement: a key, an operator, and (for most operators) values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    /// A validated requirement (Kubernetes' `NewRequirement`); `path` prefixes the field
    /// paths in error messages (Kubernetes passes none from the parser).
    pub fn new(key: &str, operator: Operator, values: Vec<String>) -> Result<Self, SelectorError> {
        let mut errs: Vec<String> = Vec::new();
        let key_path = FieldPath::new("key");
        let msgs = is_qualified_name(key);
        if !msgs.is_empty() {
            errs.push(FieldError::invalid(&key_path, key, msgs.join("; ")).to_string());
        }
        let values_path = FieldPath::new("values");
        let raw_values = gofmt::strings(Some(&values));
        match operator {
            Operator::In | Operator::NotIn => {
                if values.is_empty() {
                    errs.push(
                        FieldError::invalid(
                            &values_path,
                            gofmt::raw(raw_values.clone()),
                            "for 'in', 'notin' operators, values set can't be empty",
                        )
                        .to_string(),
                    );
                }
            }
            Operator::Equals | Operator::DoubleEquals | Operator::NotEquals => {
                if values.len() != 1 {
                    errs.push(
                        FieldError::invalid(
                            &values_path,
                            gofmt::raw(raw_values.clone()),
                            "exact-match compatibility requires one single value",
                        )
                        .to_string(),
                    );
                }
            }
            Operator::Exists | Operator::DoesNotExist => {
                if !values.is_empty() {
                    errs.push(
                        FieldError::invalid(
                            &values_path,
                            gofmt::raw(raw_values.clone()),
                            "values set must be empty for exists and does not exist",
                        )
                        .to_string(),
                    );
                }
            }
            Operator::GreaterThan | Operator::LessThan => {
                if values.len() != 1 {
                    errs.push(
                        FieldError::invalid(
                            &values_path,
                            gofmt::raw(raw_values.clone()),
                            "for 'Gt', 'Lt' operators, exactly one value is required",
                        )
                        .to_string(),
                    );
                }
                for (i, v) in values.iter().enumerate() {
                    if v.parse::<i64>().is_err() {
                        errs.push(
                            FieldError::invalid(
                                &values_path.index(i),
                                v,
                                "for 'Gt', 'Lt' operators, the value must be an integer",
                            )
                            .to_string(),
                        );
                    }
                }
            }
        }
        for (i, v) in values.iter().enumerate() {
            let msgs = is_valid_label_value(v);
            if !msgs.is_empty() {
                errs.push(
                    FieldError::invalid(&values_path.index(i).key(key), v, msgs.join("; "))
                        .to_string(),
                );
            }
        }
        if !errs.is_empty() {
            return Err(SelectorError::new(aggregate_strings(errs.into_iter())));
        }
        Ok(Requirement {
            key: key.to_string(),
            operator,
            values,
        })
    }

    pub fn key(&self) -> &str {
        &self.key
    }

    pub fn operator(&self) -> Operator {
        self.operator
    }

    pub fn values(&self) -> &[String] {
        &self.values
    }

    /// Whether `labels` satisfy this requirement (a missing key satisfies `!=` and `notin`).
    pub fn matches(&self, labels: &dyn Fn(&str) -> Option<String>) -> bool {
        let got = labels(&self.key);
        match self.operator {
            Operator::In | Operator::Equals | Operator::DoubleEquals => {
                got.is_some_and(|v| self.values.contains(&v))
            }
            Operator::NotIn | Operator::NotEquals => got.is_none_or(|v| !self.values.contains(&v)),
            Operator::Exists => got.is_some(),
            Operator::DoesNotExist => got.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let Some(Ok(have)) = got.map(|v| v.parse::<i64>()) else {
                    return false;
                };
                let [want] = self.values.as_slice() else {
                    return false;
                };
                let Ok(want) = want.parse::<i64>() else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > want
                } else {
                    have < want
                }
            }
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.operator == Operator::DoesNotExist {
            f.write_str("!")?;
        }
        f.write_str(&self.key)?;
        let op = match self.operator {
            Operator::Equals => "=",
            Operator::DoubleEquals => "==",
            Operator::NotEquals => "!=",
            Operator::In => " in ",
            Operator::NotIn => " notin ",
            Operator::GreaterThan => ">",
            Operator::LessThan => "<",
            Operator::Exists | Operator::DoesNotExist => return Ok(()),
        };
        f.write_str(op)?;
        let set = matches!(self.operator, Operator::In | Operator::NotIn);
        if set {
            f.write_str("(")?;
        }
        let mut values = self.values.clone();
        values.sort();
        f.write_str(&values.join(","))?;
        if set {
            f.write_str(")")?;
        }
        Ok(())
    }
}

/// A label selector: the conjunction of its requirements. The empty selector matches
/// everything; [`LabelSelector::nothing`] (what a missing `metav1.LabelSelector` converts
/// to) matches nothing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSelector {
    requirements: Vec<Requirement>,
    nothing: bool,
}

impl LabelSelector {
    /// The selector that matches every object.
    pub fn everything() -> Self {
        Self::default()
    }

    /// The selector that matches no object.
    pub fn nothing() -> Self {
        LabelSelector {
            requirements: Vec::new(),
            nothing: true,
        }
    }

    /// A selector of the given requirements.
    pub fn from_requirements(mut requirements: Vec<Requirement>) -> Self {
        requirements.sort_by(|a, b| a.key.cmp(&b.key));
        LabelSelector {
            requirements,
            nothing: false,
        }
    }

    /// Parses the string form (`a=b,c!=d,e in (x,y),f notin (z),g,!h`, also `==`, `gt`,
    /// `lt`), as Kubernetes' `labels.Parse`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let tokens = lex(s);
        let mut p = Parser { tokens, pos: 0 };
        let requirements = p.parse()?;
        Ok(Self::from_requirements(requirements))
    }

    /// Converts a `metav1.LabelSelector` as Kubernetes' `LabelSelectorAsSelector`: `None`
    /// selects nothing, an empty one everything.
    pub fn from_metav1(ls: Option<&metav1::LabelSelector>) -> Result<Self, SelectorError> {
        let Some(ls) = ls else {
            return Ok(Self::nothing());
        };
        let labels = ls.match_labels.as_ref();
        let exprs = ls.match_expressions.as_deref().unwrap_or(&[]);
        if labels.is_none_or(BTreeMap::is_empty) && exprs.is_empty() {
            return Ok(Self::everything());
        }
        let mut reqs = Vec::new();
        for (k, v) in labels.into_iter().flatten() {
            reqs.push(Requirement::new(k, Operator::Equals, vec![v.clone()])?);
        }
        for e in exprs {
            let op = match e.operator.as_str() {
                "In" => Operator::In,
                "NotIn" => Operator::NotIn,
                "Exists" => Operator::Exists,
                "DoesNotExist" => Operator::DoesNotExist,
                other => {
                    return Err(SelectorError::new(format!(
                        "{} is not a valid label selector operator",
                        gofmt::go_quote(other)
                    )))
                }
            };
            reqs.push(Requirement::new(
                &e.key,
                op,
                e.values.clone().unwrap_or_default(),
            )?);
        }
        Ok(Self::from_requirements(reqs))
    }

    /// Converts a `metav1.LabelSelector` given as JSON (`null` or absent selects nothing).
    pub fn from_metav1_json(v: Option<&Value>) -> Result<Self, SelectorError> {
        match v {
            None | Some(Value::Null) => Ok(Self::nothing()),
            Some(v) => {
                let ls: metav1::LabelSelector = serde_json::from_value(v.clone())
                    .map_err(|e| SelectorError::new(format!("invalid label selector: {e}")))?;
                Self::from_metav1(Some(&ls))
            }
        }
    }

    /// A selector requiring every given label (`matchLabels` alone, `spec.selector` of a
    /// Service).
    pub fn from_map(m: &BTreeMap<String, String>) -> Self {
        let reqs = m
            .iter()
            .map(|(k, v)| Requirement {
                key: k.clone(),
                operator: Operator::Equals,
                values: vec![v.clone()],
            })
            .collect();
        Self::from_requirements(reqs)
    }

    pub fn requirements(&self) -> &[Requirement] {
        &self.requirements
    }

    /// True for the selector that matches everything.
    pub fn is_empty(&self) -> bool {
        !self.nothing && self.requirements.is_empty()
    }

    /// True for the selector that matches nothing.
    pub fn is_nothing(&self) -> bool {
        self.nothing
    }

    /// Whether the labels satisfy every requirement.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.matches_with(&|k| labels.get(k).cloned())
    }

    /// Whether a JSON labels map (`metadata.labels`, possibly absent) satisfies every
    /// requirement.
    pub fn matches_json(&self, labels: Option<&Value>) -> bool {
        self.matches_with(&|k| {
            labels
                .and_then(|l| l.get(k))
                .and_then(Value::as_str)
                .map(str::to_string)
        })
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub fn matches_object(&self, obj: &Value) -> bool {
        self.matches_json(obj.pointer("/metadata/labels"))
    }

    fn matches_with(&self, get: &dyn Fn(&str) -> Option<String>) -> bool {
        !self.nothing && self.requirements.iter().all(|r| r.matches(get))
    }
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.requirements.iter().map(ToString::to_string).collect();
        f.write_str(&parts.join(","))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Error,
    EndOfString,
    ClosedPar,
    Comma,
    DoesNotExist,
    DoubleEquals,
    Equals,
    GreaterThan,
    Identifier,
    In,
    LessThan,
    NotEquals,
    NotIn,
    OpenPar,
}

fn keyword(s: &str) -> Option<Tok> {
    Some(match s {
        ")" => Tok::ClosedPar,
        "," => Tok::Comma,
        "!" => Tok::DoesNotExist,
        "==" => Tok::DoubleEquals,
        "=" => Tok::Equals,
        ">" => Tok::GreaterThan,
        "in" => Tok::In,
        "<" => Tok::LessThan,
        "!=" => Tok::NotEquals,
        "notin" => Tok::NotIn,
        "(" => Tok::OpenPar,
        _ => return None,
    })
}

fn is_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_special(c: char) -> bool {
    matches!(c, '=' | '!' | '(' | ')' | ',' | '>' | '<')
}

fn lex(s: &str) -> Vec<(Tok, String)> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        while i < chars.len() && is_whitespace(chars[i]) {
            i += 1;
        }
        if i >= chars.len() || chars[i] == '\0' {
            out.push((Tok::EndOfString, String::new()));
            return out;
        }
        if is_special(chars[i]) {
            let mut buf = String::new();
            let mut last: Option<(Tok, String)> = None;
            while i < chars.len() && is_special(chars[i]) {
                buf.push(chars[i]);
                if let Some(t) = keyword(&buf) {
                    last = Some((t, buf.clone()));
                    i += 1;
                } else if last.is_some() {
                    break;
                } else {
                    i += 1;
                }
            }
            match last {
                Some(t) => out.push(t),
                None => {
                    out.push((Tok::Error, format!("error expected: keyword found '{buf}'")));
                    return out;
                }
            }
        } else {
            let start = i;
            while i < chars.len()
                && !is_whitespace(chars[i])
                && !is_special(chars[i])
                && chars[i] != '\0'
            {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            match keyword(&word) {
                Some(t) => out.push((t, word)),
                None => out.push((Tok::Identifier, word)),
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    KeyAndOperator,
    Values,
}

struct Parser {
    tokens: Vec<(Tok, String)>,
    pos: usize,
}

const BINARY_OPERATORS: &str = "in, notin, =, ==, !=, gt, lt";

impl Parser {
    fn lookahead(&self, ctx: Ctx) -> (Tok, String) {
        let (mut t, lit) = self.tokens[self.pos.min(self.tokens.len() - 1)].clone();
        if ctx == Ctx::Values && matches!(t, Tok::In | Tok::NotIn) {
            t = Tok::Identifier;
        }
        (t, lit)
    }

    fn consume(&mut self, ctx: Ctx) -> (Tok, String) {
        let r = self.lookahead(ctx);
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        r
    }

    fn parse(&mut self) -> Result<Vec<Requirement>, SelectorError> {
        let mut reqs = Vec::new();
        loop {
            let (tok, lit) = self.lookahead(Ctx::Values);
            match tok {
                Tok::Identifier | Tok::DoesNotExist => {
                    let r = self.parse_requirement().map_err(|e| {
                        SelectorError::new(format!("unable to parse requirement: {}", e.message))
                    })?;
                    reqs.push(r);
                    let (t, l) = self.consume(Ctx::Values);
                    match t {
                        Tok::EndOfString => return Ok(reqs),
                        Tok::Comma => {
                            let (t2, l2) = self.lookahead(Ctx::Values);
                            if t2 != Tok::Identifier && t2 != Tok::DoesNotExist {
                                return Err(SelectorError::new(format!(
                                    "found '{l2}', expected: identifier after ','"
                                )));
                            }
                        }
                        _ => {
                            return Err(SelectorError::new(format!(
                                "found '{l}', expected: ',' or 'end of string'"
                            )))
                        }
                    }
                }
                Tok::EndOfString => return Ok(reqs),
                _ => {
                    return Err(SelectorError::new(format!(
                        "found '{lit}', expected: !, identifier, or 'end of string'"
                    )))
                }
            }
        }
    }

    fn parse_requirement(&mut self) -> Result<Requirement, SelectorError> {
        let (key, op) = self.parse_key_and_infer_operator()?;
        if let Some(op) = op {
            if matches!(op, Operator::Exists | Operator::DoesNotExist) {
                return Requirement::new(&key, op, Vec::new());
            }
        }
        let op = self.parse_operator()?;
        let values = match op {
            Operator::In | Operator::NotIn => self.parse_values()?,
            _ => self.parse_exact_value()?,
        };
        Requirement::new(&key, op, values.into_iter().collect())
    }

    fn parse_key_and_infer_operator(
        &mut self,
    ) -> Result<(String, Option<Operator>), SelectorError> {
        let mut op = None;
        let (mut tok, mut lit) = self.consume(Ctx::Values);
        if tok == Tok::DoesNotExist {
            op = Some(Operator::DoesNotExist);
            (tok, lit) = self.consume(Ctx::Values);
        }
        if tok != Tok::Identifier {
            return Err(SelectorError::new(format!(
                "found '{lit}', expected: identifier"
            )));
        }
        let msgs = is_qualified_name(&lit);
        if !msgs.is_empty() {
            return Err(SelectorError::new(format!(
                "<nil>: Invalid value: {}: {}",
                gofmt::go_quote(&lit),
                msgs.join("; ")
            )));
        }
        let (t, _) = self.lookahead(Ctx::Values);
        if matches!(t, Tok::EndOfString | Tok::Comma) && op.is_none() {
            op = Some(Operator::Exists);
        }
        Ok((lit, op))
    }

    fn parse_operator(&mut self) -> Result<Operator, SelectorError> {
        let (tok, lit) = self.consume(Ctx::KeyAndOperator);
        Ok(match tok {
            Tok::In => Operator::In,
            Tok::Equals => Operator::Equals,
            Tok::DoubleEquals => Operator::DoubleEquals,
            Tok::GreaterThan => Operator::GreaterThan,
            Tok::LessThan => Operator::LessThan,
            Tok::NotIn => Operator::NotIn,
            Tok::NotEquals => Operator::NotEquals,
            _ => {
                return Err(SelectorError::new(format!(
                    "found '{lit}', expected: {BINARY_OPERATORS}"
                )))
            }
        })
    }

    fn parse_values(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let (tok, lit) = self.consume(Ctx::Values);
        if tok != Tok::OpenPar {
            return Err(SelectorError::new(format!("found '{lit}' expected: '('")));
        }
        let (tok, lit) = self.lookahead(Ctx::Values);
        match tok {
            Tok::Identifier | Tok::Comma => {
                let s = self.parse_identifiers_list()?;
                let (tok, _) = self.consume(Ctx::Values);
                if tok != Tok::ClosedPar {
                    return Err(SelectorError::new(format!("found '{lit}', expected: ')'")));
                }
                Ok(s)
            }
            Tok::ClosedPar => {
                self.consume(Ctx::Values);
                Ok(BTreeSet::from([String::new()]))
            }
            _ => Err(SelectorError::new(format!(
                "found '{lit}', expected: ',', ')' or identifier"
            ))),
        }
    }

    fn parse_identifiers_list(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let mut s = BTreeSet::new();
        loop {
            let (tok, lit) = self.consume(Ctx::Values);
            match tok {
                Tok::Identifier => {
                    s.insert(lit);
                    let (t2, l2) = self.lookahead(Ctx::Values);
                    match t2 {
                        Tok::Comma => continue,
                        Tok::ClosedPar => return Ok(s),
                        _ => {
                            return Err(SelectorError::new(format!(
                                "found '{l2}', expected: ',' or ')'"
                            )))
                        }
                    }
                }
                Tok::Comma => {
                    if s.is_empty() {
                        s.insert(String::new());
                    }
                    let (t2, _) = self.lookahead(Ctx::Values);
                    if t2 == Tok::ClosedPar {
                        s.insert(String::new());
                        return Ok(s);
                    }
                    if t2 == Tok::Comma {
                        self.consume(Ctx::Values);
                        s.insert(String::new());
                    }
                }
                _ => {
                    return Err(SelectorError::new(format!(
                        "found '{lit}', expected: ',', or identifier"
                    )))
                }
            }
        }
    }

    fn parse_exact_value(&mut self) -> Result<BTreeSet<String>, SelectorError> {
        let (tok, _) = self.lookahead(Ctx::Values);
        if matches!(tok, Tok::EndOfString | Tok::Comma) {
            return Ok(BTreeSet::from([String::new()]));
        }
        let (tok, lit) = self.consume(Ctx::Values);
        if tok == Tok::Identifier {
            return Ok(BTreeSet::from([lit]));
        }
        Err(SelectorError::new(format!(
            "found '{lit}', expected: identifier"
        )))
    }
}
