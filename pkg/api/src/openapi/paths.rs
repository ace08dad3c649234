//! The operations of the OpenAPI documents, derived from the resource table:
//! for each resource the paths Kubernetes publishes (collection, object,
//! subresources, all-namespaces list), one operation per verb the resource
//! allows, with Kubernetes' operation ids, `x-kubernetes-action` and
//! `x-kubernetes-group-version-kind`, and the query parameters the REST door
//! reads (only those: not `force`, `orphanDependents`, `resourceVersionMatch`
//! or `sendInitialEvents`, which it does not implement; nor the deprecated
//! `/watch/` paths). kubectl reads two things here: whether a kind's PATCH
//! takes `fieldValidation` (then it leaves validation to the server) and
//! whether it accepts strategic merge patches (then `apply` sends one).
//!
//! Neutral values only; `v2` and `v3` render them.

use crate::patch::PatchType;
use crate::registry::{self, ResourceInfo, Subresource};

use super::schemas::{Definitions, Gvk, API_RESOURCE_LIST, DELETE_OPTIONS, STATUS};

/// Where a parameter goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum In {
    Path,
    Query,
}

/// One path or query parameter (bodies are [`Body`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Param {
    pub name: &'static str,
    pub location: In,
    /// `string`, `integer` or `boolean`.
    pub ty: &'static str,
    pub description: &'static str,
}

impl Param {
    const fn query(name: &'static str, ty: &'static str, description: &'static str) -> Self {
        Param {
            name,
            location: In::Query,
            ty,
            description,
        }
    }
}

const NAMESPACE: Param = Param {
    name: "namespace",
    location: In::Path,
    ty: "string",
    description: "object name and auth scope, such as for teams and projects",
};
const NAME: Param = Param {
    name: "name",
    location: In::Path,
    ty: "string",
    description: "name of the object",
};
const PRETTY: Param = Param::query(
    "pretty",
    "string",
    "If 'true', then the output is pretty printed.",
);
const DRY_RUN: Param = Param::query(
    "dryRun",
    "string",
    "When present, indicates that modifications should not be persisted. The only valid value is All: every stage of the request is processed except storing the result.",
);
const FIELD_MANAGER: Param = Param::query(
    "fieldManager",
    "string",
    "fieldManager is a name associated with the actor or entity that is making these changes.",
);
pub(crate) const FIELD_VALIDATION: Param = Param::query(
    "fieldValidation",
    "string",
    "fieldValidation instructs the server on how to handle objects in the request containing unknown or duplicate fields. Valid values are: Ignore (drop them silently), Warn (drop them and return a Warning header per field), Strict (fail the request with a BadRequest error naming them).",
);
const LIST_PARAMS: &[Param] = &[
    Param::query(
        "allowWatchBookmarks",
        "boolean",
        "allowWatchBookmarks requests watch events with type \"BOOKMARK\", which carry only the resourceVersion the watch has reached.",
    ),
    Param::query(
        "continue",
        "string",
        "The continue token of a previous paginated list, to read the next chunk at the same resourceVersion. An expired token answers 410 Gone.",
    ),
    Param::query(
        "fieldSelector",
        "string",
        "A selector to restrict the list of returned objects by their fields. Defaults to everything.",
    ),
    Param::query(
        "labelSelector",
        "string",
        "A selector to restrict the list of returned objects by their labels. Defaults to everything.",
    ),
    Param::query(
        "limit",
        "integer",
        "limit is the maximum number of responses to return for a list call; if more items exist, the list's metadata.continue is set.",
    ),
    Param::query(
        "resourceVersion",
        "string",
        "resourceVersion sets a constraint on what resource versions a request may be served from. For a watch, the version to start after.",
    ),
    Param::query(
        "timeoutSeconds",
        "integer",
        "Timeout for the list/watch call, regardless of any activity or inactivity.",
    ),
    Param::query(
        "watch",
        "boolean",
        "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications.",
    ),
];
const GRACE_PERIOD: Param = Param::query(
    "gracePeriodSeconds",
    "integer",
    "The duration in seconds before the object should be deleted. Zero means delete immediately.",
);
const PROPAGATION: Param = Param::query(
    "propagationPolicy",
    "string",
    "Whether and how garbage collection is performed: 'Orphan', 'Background' or 'Foreground'.",
);

/// What an operation's request body is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Body {
    /// An object of this definition, as JSON.
    Object(String),
    /// A patch, in any of these media types.
    Patch(Vec<&'static str>),
}

/// What a response carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Payload {
    /// An object of this definition.
    Object(String),
    /// Plain text (a pod's log).
    Text,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Operation {
    /// `get`, `put`, `post`, `delete` or `patch`.
    pub method: &'static str,
    pub id: String,
    pub description: String,
    /// `x-kubernetes-action`
    pub action: &'static str,
    pub gvk: Option<Gvk>,
    pub params: Vec<Param>,
    pub body: Option<Body>,
    pub responses: Vec<(u16, Payload)>,
    /// Whether the 200 answer of a list can also be a watch stream.
    pub watchable: bool,
    pub tag: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Path {
    pub path: String,
    /// Parameters every operation of the path takes.
    pub params: Vec<Param>,
    pub operations: Vec<Operation>,
}

/// `CoreV1`, `AppsV1`, `RbacAuthorizationV1`: how operation ids name a group version.
fn gv_ident(group: &str, version: &str) -> String {
    let group = if group.is_empty() {
        "core"
    } else {
        group.strip_suffix(".k8s.io").unwrap_or(group)
    };
    let mut out: String = group.split('.').map(capitalize).collect();
    out.push_str(&capitalize(version));
    out
}

/// `core_v1`, `apps_v1`, `rbacAuthorization_v1`: the tag of a group version's operations.
fn gv_tag(group: &str, version: &str) -> String {
    let ident = gv_ident(group, "");
    let mut chars = ident.chars();
    let first = chars.next().map(|c| c.to_ascii_lowercase());
    format!(
        "{}{}_{version}",
        first.into_iter().collect::<String>(),
        chars.as_str()
    )
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub(crate) fn prefix(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The paths of one group version, sorted by path.
pub(crate) fn paths(defs: &Definitions, group: &str, version: &str) -> Vec<Path> {
    let gv = gv_ident(group, version);
    let tag = gv_tag(group, version);
    let mut out = vec![Path {
        path: format!("{}/", prefix(group, version)),
        params: Vec::new(),
        operations: vec![Operation {
            method: "get",
            id: format!("get{gv}APIResources"),
            description: "get available resources".into(),
            action: "",
            gvk: None,
            params: Vec::new(),
            body: None,
            responses: vec![(200, Payload::Object(API_RESOURCE_LIST.into()))],
            watchable: false,
            tag: tag.clone(),
        }],
    }];
    for r in registry::resources_in(group, version) {
        resource_paths(defs, r, &gv, &tag, &mut out);
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out
}

struct OpBuilder<'a> {
    gv: &'a str,
    tag: &'a str,
    /// `Namespaced` for namespaced resources.
    scope: &'static str,
}

impl OpBuilder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn op(
        &self,
        method: &'static str,
        verb: &str,
        suffix: &str,
        kind: &str,
        description: String,
        action: &'static str,
        gvk: Gvk,
        params: Vec<Param>,
        body: Option<Body>,
        responses: Vec<(u16, Payload)>,
    ) -> Operation {
        Operation {
            method,
            id: format!("{verb}{}{}{kind}{suffix}", self.gv, self.scope),
            description,
            action,
            gvk: Some(gvk),
            params,
            body,
            responses,
            watchable: action == "list",
            tag: self.tag.to_owned(),
        }
    }
}

fn write_params() -> Vec<Param> {
    vec![DRY_RUN, FIELD_MANAGER, FIELD_VALIDATION]
}

fn patch_body() -> Body {
    Body::Patch(
        [PatchType::Json, PatchType::Merge, PatchType::StrategicMerge]
            .iter()
            .map(|t| t.content_type())
            .collect(),
    )
}

fn resource_paths(
    defs: &Definitions,
    r: &'static ResourceInfo,
    gv: &str,
    tag: &str,
    out: &mut Vec<Path>,
) {
    let Some(schema) = defs.kind(r.group, r.kind) else {
        return;
    };
    let kind = r.kind;
    let obj = || Payload::Object(schema.name.clone());
    let status = || Payload::Object(STATUS.into());
    let b = OpBuilder {
        gv,
        tag,
        scope: if r.namespaced { "Namespaced" } else { "" },
    };
    let base = prefix(r.group, r.version);
    let (collection, scope_params) = if r.namespaced {
        (
            format!("{base}/namespaces/{{namespace}}/{}", r.plural),
            vec![NAMESPACE, PRETTY],
        )
    } else {
        (format!("{base}/{}", r.plural), vec![PRETTY])
    };
    let gvk = schema.gvk;

    let mut ops = Vec::new();
    if r.has_verb("list") {
        if let Some((_, list)) = &schema.list {
            ops.push(b.op(
                "get",
                "list",
                "",
                kind,
                format!("list or watch objects of kind {kind}"),
                "list",
                gvk,
                LIST_PARAMS.to_vec(),
                None,
                vec![(200, Payload::Object(list.clone()))],
            ));
        }
    }
    if r.has_verb("create") {
        ops.push(b.op(
            "post",
            "create",
            "",
            kind,
            format!("create a {kind}"),
            "post",
            gvk,
            write_params(),
            Some(Body::Object(schema.name.clone())),
            vec![(200, obj()), (201, obj()), (202, obj())],
        ));
    }
    if r.has_verb("deletecollection") {
        let mut params = LIST_PARAMS.to_vec();
        params.retain(|p| p.name != "watch" && p.name != "allowWatchBookmarks");
        params.extend([DRY_RUN, GRACE_PERIOD, PROPAGATION]);
        params.sort_by_key(|p| p.name);
        ops.push(Operation {
            id: format!("delete{gv}Collection{}{kind}", b.scope),
            ..b.op(
                "delete",
                "",
                "",
                kind,
                format!("delete collection of {kind}"),
                "deletecollection",
                gvk,
                params,
                Some(Body::Object(DELETE_OPTIONS.into())),
                vec![(200, status())],
            )
        });
    }
    push_path(out, collection.clone(), scope_params.clone(), ops);

    let item = format!("{collection}/{{name}}");
    let mut item_params = vec![NAME];
    item_params.extend(scope_params.iter().copied());
    let mut ops = Vec::new();
    if r.has_verb("get") {
        ops.push(b.op(
            "get",
            "read",
            "",
            kind,
            format!("read the specified {kind}"),
            "get",
            gvk,
            Vec::new(),
            None,
            vec![(200, obj())],
        ));
    }
    if r.has_verb("update") {
        ops.push(b.op(
            "put",
            "replace",
            "",
            kind,
            format!("replace the specified {kind}"),
            "put",
            gvk,
            write_params(),
            Some(Body::Object(schema.name.clone())),
            vec![(200, obj()), (201, obj())],
        ));
    }
    if r.has_verb("delete") {
        ops.push(b.op(
            "delete",
            "delete",
            "",
            kind,
            format!("delete a {kind}"),
            "delete",
            gvk,
            vec![DRY_RUN, GRACE_PERIOD, PROPAGATION],
            Some(Body::Object(DELETE_OPTIONS.into())),
            vec![(200, status()), (202, status())],
        ));
    }
    if r.has_verb("patch") {
        let params = write_params();
        ops.push(b.op(
            "patch",
            "patch",
            "",
            kind,
            format!("partially update the specified {kind}"),
            "patch",
            gvk,
            params,
            Some(patch_body()),
            vec![(200, obj()), (201, obj())],
        ));
    }
    push_path(out, item.clone(), item_params.clone(), ops);

    for s in r.subresources {
        subresource_path(defs, &b, r, s, &item, &item_params, out);
    }

    if r.namespaced && r.has_verb("list") {
        if let Some((_, list)) = &schema.list {
            let all = OpBuilder { scope: "", ..b };
            let op = Operation {
                id: format!("list{gv}{kind}ForAllNamespaces"),
                ..all.op(
                    "get",
                    "list",
                    "",
                    kind,
                    format!("list or watch objects of kind {kind}"),
                    "list",
                    gvk,
                    LIST_PARAMS.to_vec(),
                    None,
                    vec![(200, Payload::Object(list.clone()))],
                )
            };
            push_path(out, format!("{base}/{}", r.plural), vec![PRETTY], vec![op]);
        }
    }
}

fn subresource_path(
    defs: &Definitions,
    b: &OpBuilder<'_>,
    r: &ResourceInfo,
    s: &Subresource,
    item: &str,
    item_params: &[Param],
    out: &mut Vec<Path>,
) {
    let group = s.group_version.map_or(r.group, |(g, _)| g);
    let Some(schema) = defs.kind(group, s.kind) else {
        return;
    };
    let kind = r.kind;
    let suffix = capitalize(s.name);
    let obj = || Payload::Object(schema.name.clone());
    let gvk = schema.gvk;
    let has = |verb: &str| s.verbs.contains(&verb);
    let mut ops = Vec::new();
    if s.name == "log" {
        if has("get") {
            ops.push(b.op(
                "get",
                "read",
                &suffix,
                kind,
                format!("read log of the specified {kind}"),
                "get",
                gvk,
                vec![
                    Param::query(
                        "container",
                        "string",
                        "The container for which to stream logs.",
                    ),
                    Param::query("follow", "boolean", "Follow the log stream of the pod."),
                    Param::query(
                        "tailLines",
                        "integer",
                        "The number of lines from the end of the logs to show.",
                    ),
                ],
                None,
                vec![(200, Payload::Text)],
            ));
        }
    } else {
        let what = s.name;
        if has("get") {
            ops.push(b.op(
                "get",
                "read",
                &suffix,
                kind,
                format!("read {what} of the specified {kind}"),
                "get",
                gvk,
                Vec::new(),
                None,
                vec![(200, obj())],
            ));
        }
        if has("create") {
            ops.push(b.op(
                "post",
                "create",
                &suffix,
                kind,
                format!("create {what} of a {kind}"),
                "post",
                gvk,
                write_params(),
                Some(Body::Object(schema.name.clone())),
                vec![(200, obj()), (201, obj()), (202, obj())],
            ));
        }
        if has("update") {
            ops.push(b.op(
                "put",
                "replace",
                &suffix,
                kind,
                format!("replace {what} of the specified {kind}"),
                "put",
                gvk,
                write_params(),
                Some(Body::Object(schema.name.clone())),
                vec![(200, obj()), (201, obj())],
            ));
        }
        if has("patch") {
            let params = write_params();
            ops.push(b.op(
                "patch",
                "patch",
                &suffix,
                kind,
                format!("partially update {what} of the specified {kind}"),
                "patch",
                gvk,
                params,
                Some(patch_body()),
                vec![(200, obj()), (201, obj())],
            ));
        }
    }
    push_path(out, format!("{item}/{}", s.name), item_params.to_vec(), ops);
}

fn push_path(out: &mut Vec<Path>, path: String, params: Vec<Param>, operations: Vec<Operation>) {
    if !operations.is_empty() {
        out.push(Path {
            path,
            params,
            operations,
        });
    }
}
