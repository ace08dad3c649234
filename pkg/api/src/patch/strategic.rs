//! Server-side application of Kubernetes strategic merge patches, the patch
//! type that `kubectl apply`, `kubectl edit` and `kubectl patch` (its default)
//! send for built-in kinds.
//!
//! Semantics, as Kubernetes' apimachinery applies them:
//!
//! - Objects merge recursively; a `null` value deletes the field.
//! - Lists follow the field's [`ListStrategy`]: replaced, merged as a set of
//!   scalars, or merged element by element on a merge key.
//! - Directives steer the merge and never reach the result:
//!   `$patch: replace|delete` on an object or as a list element,
//!   `$retainKeys`, `$setElementOrder/<field>` and
//!   `$deleteFromPrimitiveList/<field>`.
//! - Merged lists are ordered like Kubernetes orders them: the elements the
//!   patch names keep the patch's order, the others keep the live order and
//!   are interleaved by their live positions; an element the live list lacks
//!   goes before the live-only elements that follow it. `kubectl apply` and
//!   `kubectl edit` send `$setElementOrder/<field>`, which fixes the order
//!   outright.
//!
//! Where Kubernetes copies a patch value verbatim into a field the object
//! lacks, this module merges it into an empty value instead, so directives
//! and nulls inside new subtrees are resolved rather than stored (Kubernetes
//! drops them later, when it decodes into Go structs). For the same reason
//! `$patch: delete` on an object removes the field, where Kubernetes leaves an
//! empty object that Go's `omitempty` then drops.
//!
//! This module never computes patches (kubectl does that client side) and
//! never looks at what the fields mean.

use serde_json::{Map, Value};

use super::error::{go_format, json_type_name, PatchError, Result, GO_LIST, GO_MAP};
use super::schema::{ListStrategy, Schema};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";

/// Applies the strategic merge patch `patch` to `doc`, a Kubernetes object of
/// the type `schema` describes (see
/// [`schema_for_kind`](super::schema_for_kind)).
///
/// A `null` patch changes nothing (Kubernetes decodes it as an empty map);
/// any other non-object patch is a bad request.
pub fn apply_strategic_merge_patch(doc: &Value, patch: &Value, schema: &Schema) -> Result<Value> {
    let patch = match patch {
        Value::Object(patch) => patch,
        Value::Null => return Ok(doc.clone()),
        other => {
            return Err(PatchError::NotAnObject {
                found: json_type_name(other),
            })
        }
    };
    let original = match doc {
        Value::Object(doc) => doc.clone(),
        Value::Null => Map::new(),
        _ => return Err(PatchError::DocumentNotAnObject),
    };
    let merged = merge_map(original, patch, schema)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

fn is_directive(key: &str) -> bool {
    key == PATCH
        || key == RETAIN_KEYS
        || key.starts_with(SET_ELEMENT_ORDER)
        || key.starts_with(DELETE_FROM_PRIMITIVE_LIST)
}

/// Merges `patch` into `original`; `None` means `$patch: delete` removed it.
fn merge_map(
    mut original: Map<String, Value>,
    patch: &Map<String, Value>,
    schema: &Schema,
) -> Result<Option<Map<String, Value>>> {
    if let Some(directive) = patch.get(PATCH) {
        return match directive.as_str() {
            Some("replace") => {
                let mut rest = patch.clone();
                rest.remove(PATCH);
                Ok(Some(
                    merge_map(Map::new(), &rest, schema)?.unwrap_or_default(),
                ))
            }
            Some("delete") => Ok(None),
            _ => Err(PatchError::UnknownPatchDirective {
                directive: go_format(directive),
                element: go_format(&Value::Object(patch.clone())),
            }),
        };
    }

    if let Some(keys) = patch.get(RETAIN_KEYS) {
        retain_keys(&mut original, patch, keys)?;
    }

    // Lists named by $setElementOrder are merged and ordered here, once.
    let mut ordered: Vec<&str> = Vec::new();
    for (key, order) in patch {
        let Some(field) = key.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let Value::Array(order) = order else {
            return Err(PatchError::InvalidSetElementOrder);
        };
        if let Some(list) = merge_ordered_list(&original, patch, field, order, schema)? {
            original.insert(field.to_owned(), Value::Array(list));
        }
        ordered.push(field);
    }

    for (key, value) in patch {
        if is_directive(key) || ordered.contains(&key.as_str()) {
            continue;
        }
        let merged = match value {
            Value::Null => None,
            value => merge_value(original.remove(key), value, schema, key)?,
        };
        match merged {
            Some(merged) => original.insert(key.clone(), merged),
            None => original.remove(key),
        };
    }

    // After the merges, so a value the patch both adds and deletes is gone.
    for (key, values) in patch {
        if let Some(field) = key.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) {
            let Value::Array(values) = values else {
                return Err(PatchError::InvalidPrimitiveListDeletion);
            };
            if let Some(Value::Array(list)) = original.get_mut(field) {
                list.retain(|v| !values.contains(v));
            }
        }
    }

    Ok(Some(original))
}

/// `$retainKeys`: drops every key of `original` the list does not name. Every
/// key the patch sets must be named.
fn retain_keys(
    original: &mut Map<String, Value>,
    patch: &Map<String, Value>,
    keys: &Value,
) -> Result<()> {
    let Value::Array(keys) = keys else {
        return Err(PatchError::InvalidRetainKeys);
    };
    let listed = |key: &str| keys.iter().any(|k| k.as_str() == Some(key));
    let unlisted = patch
        .iter()
        .any(|(key, value)| !value.is_null() && !is_directive(key) && !listed(key));
    if unlisted {
        return Err(PatchError::InvalidRetainKeys);
    }
    original.retain(|key, _| listed(key));
    Ok(())
}

/// Merges `patch` into the field's live value; `None` removes the field.
fn merge_value(
    original: Option<Value>,
    patch: &Value,
    parent: &Schema,
    key: &str,
) -> Result<Option<Value>> {
    let schema = parent.child(key);
    Ok(match (original, patch) {
        (Some(Value::Object(original)), Value::Object(patch)) => {
            merge_map(original, patch, schema)?.map(Value::Object)
        }
        (Some(Value::Array(original)), Value::Array(patch)) => Some(Value::Array(merge_list(
            original,
            patch,
            parent.list_strategy(key),
            schema,
        )?)),
        // A new field, or one whose type changes: the patch's value, with its
        // directives resolved against nothing.
        (_, Value::Object(patch)) => merge_map(Map::new(), patch, schema)?.map(Value::Object),
        (_, Value::Array(patch)) => Some(Value::Array(merge_list(
            Vec::new(),
            patch,
            parent.list_strategy(key),
            schema,
        )?)),
        (_, scalar) => Some(scalar.clone()),
    })
}

fn merge_list(
    original: Vec<Value>,
    patch: &[Value],
    strategy: ListStrategy,
    element: &Schema,
) -> Result<Vec<Value>> {
    let key = match strategy {
        ListStrategy::Replace => return Ok(patch.iter().map(without_nulls).collect()),
        ListStrategy::MergeSet => None,
        ListStrategy::MergeByKey(key) => Some(key),
    };
    if original.is_empty() && patch.is_empty() {
        return Ok(original);
    }
    if !elements_are_objects(&original, patch)? {
        return Ok(merge_scalars(original, patch));
    }
    match key {
        Some(key) => merge_by_key(original, patch, key, element),
        None => Err(PatchError::NoMergeKeyDeclared),
    }
}

/// Whether the elements of both lists are objects; they must all be of one
/// JSON type, and not lists.
fn elements_are_objects(original: &[Value], patch: &[Value]) -> Result<bool> {
    let mut first: Option<&'static str> = None;
    for value in original.iter().chain(patch) {
        let kind = json_type_name(value);
        if kind == "array" {
            return Err(PatchError::ListOfLists);
        }
        match first {
            None => first = Some(kind),
            Some(first) if first != kind => {
                return Err(PatchError::MixedListElements {
                    lists: go_format(&Value::Array(vec![
                        Value::Array(original.to_vec()),
                        Value::Array(patch.to_vec()),
                    ])),
                })
            }
            Some(_) => {}
        }
    }
    Ok(first == Some("object"))
}

/// A set union of scalars, ordered like Kubernetes orders merged lists.
fn merge_scalars(original: Vec<Value>, patch: &[Value]) -> Vec<Value> {
    let mut merged: Vec<Value> = Vec::with_capacity(original.len() + patch.len());
    for value in original.iter().chain(patch) {
        if !merged.contains(value) {
            merged.push(value.clone());
        }
    }
    order_like_kubernetes(merged, patch, &original, Identity::Value)
}

fn merge_by_key(
    original: Vec<Value>,
    patch: &[Value],
    key: &str,
    element: &Schema,
) -> Result<Vec<Value>> {
    let mut live = original;
    let mut replace = false;
    let mut items: Vec<&Map<String, Value>> = Vec::with_capacity(patch.len());
    for value in patch {
        let Value::Object(item) = value else {
            return Err(PatchError::wrong_type(GO_MAP, value));
        };
        let Some(directive) = item.get(PATCH) else {
            items.push(item);
            continue;
        };
        match directive.as_str() {
            Some("delete") => {
                let target = item
                    .get(key)
                    .ok_or_else(|| PatchError::missing_merge_key(value, key))?;
                live.retain(|element| element.get(key) != Some(target));
            }
            Some("replace") => replace = true,
            Some("merge") => return Err(PatchError::MergeDirectiveInList),
            _ => {
                return Err(PatchError::UnknownPatchDirective {
                    directive: go_format(directive),
                    element: go_format(value),
                })
            }
        }
    }

    if replace {
        // The list becomes the patch's other elements, in the patch's order.
        let mut replaced = Vec::with_capacity(items.len());
        for item in items {
            if !item.contains_key(key) {
                return Err(PatchError::missing_merge_key(
                    &Value::Object(item.clone()),
                    key,
                ));
            }
            replaced.push(Value::Object(
                merge_map(Map::new(), item, element)?.unwrap_or_default(),
            ));
        }
        return Ok(replaced);
    }

    let mut merged = live.clone();
    for item in &items {
        let Some(id) = item.get(key) else {
            return Err(PatchError::missing_merge_key(
                &Value::Object((*item).clone()),
                key,
            ));
        };
        match merged.iter().position(|m| m.get(key) == Some(id)) {
            Some(i) => {
                let current = match std::mem::take(&mut merged[i]) {
                    Value::Object(current) => current,
                    _ => Map::new(),
                };
                merged[i] = Value::Object(merge_map(current, item, element)?.unwrap_or_default());
            }
            None => merged.push(Value::Object(
                merge_map(Map::new(), item, element)?.unwrap_or_default(),
            )),
        }
    }
    let wanted: Vec<Value> = items
        .into_iter()
        .map(|m| Value::Object(m.clone()))
        .collect();
    Ok(order_like_kubernetes(
        merged,
        &wanted,
        &live,
        Identity::Key(key),
    ))
}

/// Merges the list at `field` and puts it in the order `$setElementOrder`
/// gives; `None` when neither the object nor the patch has the list.
fn merge_ordered_list(
    original: &Map<String, Value>,
    patch: &Map<String, Value>,
    field: &str,
    order: &[Value],
    schema: &Schema,
) -> Result<Option<Vec<Value>>> {
    let live = match original.get(field) {
        None => None,
        Some(Value::Array(list)) => Some(list),
        Some(other) => return Err(PatchError::wrong_type(GO_LIST, other)),
    };
    let patched = match patch.get(field) {
        None => None,
        Some(Value::Array(list)) => Some(list),
        Some(other) => return Err(PatchError::wrong_type(GO_LIST, other)),
    };
    let strategy = schema.list_strategy(field);
    let identity = match strategy {
        ListStrategy::MergeByKey(key) => Identity::Key(key),
        _ => Identity::Value,
    };
    if let Some(patched) = patched {
        check_order(patched, order, identity)?;
    }
    let merged = match (live, patched) {
        (None, None) => return Ok(None),
        (Some(live), None) => live.clone(),
        (live, Some(patched)) => merge_list(
            live.cloned().unwrap_or_default(),
            patched,
            strategy,
            schema.child(field),
        )?,
    };
    if strategy == ListStrategy::Replace {
        return Ok(Some(merged));
    }
    if let Identity::Key(key) = identity {
        if let Some(bad) = order.iter().find(|o| o.get(key).is_none()) {
            return Err(PatchError::missing_merge_key(bad, key));
        }
    }
    let live = live.map_or(&[][..], Vec::as_slice);
    Ok(Some(order_like_kubernetes(merged, order, live, identity)))
}

/// The patch's list must name its elements (other than deletions) in the
/// order `$setElementOrder` does, and name none that it lacks.
fn check_order(patched: &[Value], order: &[Value], identity: Identity) -> Result<()> {
    if patched.is_empty() || order.is_empty() {
        return Ok(());
    }
    let mut wanted = patched
        .iter()
        .filter(|item| item.get(PATCH).is_none())
        .peekable();
    let mut order_items = order.iter();
    while let Some(item) = wanted.peek() {
        let Some(next) = order_items.next() else {
            return Err(PatchError::SetElementOrderMismatch {
                patch: go_format(&Value::Array(patched.to_vec())),
                order: go_format(&Value::Array(order.to_vec())),
            });
        };
        if let Identity::Key(key) = identity {
            for value in [*item, next] {
                if value.get(key).is_none() {
                    return Err(PatchError::missing_merge_key(value, key));
                }
            }
        }
        if identity.of(item) == identity.of(next) {
            wanted.next();
        }
    }
    Ok(())
}

/// What identifies a list element: its merge key's value, or for scalars the
/// value itself.
#[derive(Clone, Copy)]
enum Identity<'k> {
    Value,
    Key(&'k str),
}

impl Identity<'_> {
    fn of<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        match self {
            Identity::Value => Some(value),
            Identity::Key(key) => value.get(*key),
        }
    }

    fn position(&self, list: &[Value], value: &Value) -> Option<usize> {
        let id = self.of(value)?;
        list.iter().position(|item| self.of(item) == Some(id))
    }
}

/// Kubernetes' order for a merged list. The elements `wanted` names (the
/// patch's list, or `$setElementOrder`) come in `wanted`'s order; the others
/// keep their `live` order; the two runs are interleaved by live position, and
/// where one of the pair is not live the `wanted` element goes first.
fn order_like_kubernetes(
    merged: Vec<Value>,
    wanted: &[Value],
    live: &[Value],
    identity: Identity,
) -> Vec<Value> {
    let (mut named, mut server_only): (Vec<Value>, Vec<Value>) = merged
        .into_iter()
        .partition(|v| identity.position(wanted, v).is_some());
    named.sort_by_key(|v| identity.position(wanted, v));
    server_only.sort_by_key(|v| identity.position(live, v).unwrap_or(usize::MAX));

    let mut out = Vec::with_capacity(named.len() + server_only.len());
    let mut named = named.into_iter().peekable();
    let mut server_only = server_only.into_iter().peekable();
    loop {
        let take_server_only = match (server_only.peek(), named.peek()) {
            (None, None) => break,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (Some(left), Some(right)) => matches!(
                (identity.position(live, left), identity.position(live, right)),
                (Some(l), Some(r)) if l < r
            ),
        };
        let next = if take_server_only {
            server_only.next()
        } else {
            named.next()
        };
        out.extend(next);
    }
    out
}

/// An atomic list's element as it will be stored: object members that are
/// `null` (or directives, which mean nothing inside an atomic list) dropped.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(key, value)| !value.is_null() && !is_directive(key))
                .map(|(key, value)| (key.clone(), without_nulls(value)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        scalar => scalar.clone(),
    }
}

#[cfg(test)]
mod tests;
