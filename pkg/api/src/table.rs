//! `meta.k8s.io/v1` Table output (what kubectl asks for with
//! `Accept: application/json;as=Table;v=v1;g=meta.k8s.io`): Kubernetes' column
//! definitions per kind and the cells of each row, computed as kubectl's server-side
//! printers compute them (pod STATUS from container states, READY counts, AGE as a human
//! duration, service PORT(S), node ROLES). Like Kubernetes' server, every column is
//! filled; kubectl hides priority-1 columns unless `-o wide`. Pure: the current time is
//! an argument. Each kind's columns and cells are its entry's [`Printer`]
//! (`crate::kinds`); this module renders whatever printer it is given.

pub(crate) mod printers;

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use serde_json::{json, Map, Value};

pub use printers::pod_status_reason;

/// What each row carries besides its cells (the `includeObject` parameter).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// The object's metadata as a `PartialObjectMetadata` (Kubernetes' default).
    #[default]
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// Parses the `includeObject` parameter (`None`, `Metadata`, `Object`; empty is
    /// Metadata); `None` for anything else.
    pub fn parse(s: &str) -> Option<IncludeObject> {
        match s {
            "None" => Some(IncludeObject::None),
            "" | "Metadata" => Some(IncludeObject::Metadata),
            "Object" => Some(IncludeObject::Object),
            _ => None,
        }
    }
}

/// Options of a table conversion.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TableOptions {
    pub include_object: IncludeObject,
    /// Omit the column definitions (watch events after the first).
    pub no_headers: bool,
}

/// One column: Kubernetes' `TableColumnDefinition`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Column {
    /// The column name as the server sends it (`Name`, `Nominated Node`); kubectl
    /// upper-cases it.
    pub name: &'static str,
    /// `string`, `integer`, `date`, ...
    pub type_: &'static str,
    /// `name` for the name column, otherwise empty.
    pub format: &'static str,
    pub description: String,
    /// 0 for default columns, 1 for `-o wide` ones.
    pub priority: i32,
}

impl Column {
    fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "type": self.type_,
            "format": self.format,
            "description": self.description,
            "priority": self.priority,
        })
    }
}

/// How a kind prints as a Table: Kubernetes' columns for it and each object's row. Each
/// kind's entry (`crate::kinds`) fills one in from `printers`.
#[derive(Clone, Copy, Debug)]
pub struct Printer {
    /// The column definitions. Their descriptions come from the API documentation, so
    /// building them is not free: the resource table builds each kind's once.
    pub columns: fn() -> Vec<Column>,
    /// One object's cells, in column order; `now` is the time ages are counted to.
    pub cells: fn(&Value, Timestamp) -> Vec<Value>,
    /// Extra conditions of an object's row (pods that completed), if any.
    pub conditions: fn(&Value) -> Option<Value>,
}

/// [`Printer::conditions`] for kinds whose rows carry none.
pub fn no_conditions(_: &Value) -> Option<Value> {
    None
}

/// The objects as a Table of `columns`, each row from `printer`. `list_meta` becomes the
/// table's metadata (a list's `resourceVersion`, `continue`, `remainingItemCount`; for a
/// single object, its resourceVersion).
pub fn to_table(
    columns: &[Column],
    printer: &Printer,
    objects: &[Value],
    list_meta: Value,
    opts: TableOptions,
    now: Timestamp,
) -> Value {
    let columns = if opts.no_headers {
        Value::Null
    } else {
        Value::Array(columns.iter().map(Column::to_json).collect())
    };
    let rows: Vec<Value> = objects
        .iter()
        .map(|obj| {
            let mut row = Map::new();
            row.insert("cells".into(), Value::Array((printer.cells)(obj, now)));
            if let Some(c) = (printer.conditions)(obj) {
                row.insert("conditions".into(), c);
            }
            let object = match opts.include_object {
                IncludeObject::None => Value::Null,
                IncludeObject::Metadata => json!({
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj.get("metadata").cloned().unwrap_or_else(|| json!({})),
                }),
                IncludeObject::Object => obj.clone(),
            };
            row.insert("object".into(), object);
            Value::Object(row)
        })
        .collect();
    let metadata = if list_meta.is_object() {
        list_meta
    } else {
        json!({})
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": metadata,
        "columnDefinitions": columns,
        "rows": rows,
    })
}

/// An autoscaling/v1 `Scale` as a Table (`kubectl get deployment x
/// --subresource=scale`): Kubernetes' scale printer, NAME DESIRED AVAILABLE.
pub fn scale_table(scale: &Value, opts: TableOptions) -> Value {
    let columns = [
        Column {
            name: "Name",
            type_: "string",
            format: "name",
            description: "Name must be unique within a namespace.".into(),
            priority: 0,
        },
        Column {
            name: "Desired",
            type_: "integer",
            format: "",
            description: "replicas is the desired number of instances for the scaled object."
                .into(),
            priority: 0,
        },
        Column {
            name: "Available",
            type_: "integer",
            format: "",
            description:
                "replicas is the actual number of observed instances of the scaled object.".into(),
            priority: 0,
        },
    ];
    let int = |p: &str| scale.pointer(p).and_then(Value::as_i64).unwrap_or(0);
    let cells = json!([
        scale
            .pointer("/metadata/name")
            .cloned()
            .unwrap_or(Value::Null),
        int("/spec/replicas"),
        int("/status/replicas"),
    ]);
    let object = match opts.include_object {
        IncludeObject::None => Value::Null,
        IncludeObject::Metadata => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": scale.get("metadata").cloned().unwrap_or_else(|| json!({})),
        }),
        IncludeObject::Object => scale.clone(),
    };
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": scale.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null)},
        "columnDefinitions": columns.iter().map(Column::to_json).collect::<Vec<_>>(),
        "rows": [{"cells": cells, "object": object}],
    })
}

/// Kubernetes' `HumanDuration`: `5s`, `3m10s`, `2d3h`, `45d`, `3y100d`; `0s` for up to a
/// second into the future (clock skew) and `<invalid>` beyond.
pub fn human_duration(d: SignedDuration) -> String {
    let seconds = d.as_secs();
    if seconds < -1 {
        return "<invalid>".to_string();
    }
    if seconds < 0 {
        return "0s".to_string();
    }
    if seconds < 60 * 2 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 60 * 3 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

/// The age of a timestamp string as kubectl prints it, `<unknown>` when absent or
/// unparsable.
pub fn translate_timestamp_since(ts: Option<&str>, now: Timestamp) -> String {
    match ts.and_then(|s| s.parse::<Timestamp>().ok()) {
        Some(t) => human_duration(now.duration_since(t)),
        None => "<unknown>".to_string(),
    }
}

#[cfg(test)]
mod tests;
