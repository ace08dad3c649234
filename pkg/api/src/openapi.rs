//! The OpenAPI documents kubectl and client libraries download: the v3 index
//! (`/openapi/v3`), one OpenAPI 3.0 document per served group version
//! (`/openapi/v3/apis/apps/v1`), and the Swagger 2.0 document (`/openapi/v2`)
//! as JSON and as gnostic protobuf. kubectl uses them for `explain`, for
//! `apply`'s strategic merge patches (merge keys), and to learn that the
//! server validates fields itself (`fieldValidation` on PATCH operations).
//!
//! Everything is generated from the k8s-openapi types and the resource table
//! ([`crate::registry`]); nothing is typed in per field. Each document is
//! built once, on first use, and its bytes and hash kept for the life of the
//! process. [`serve`] answers a request for one of them (content negotiation,
//! ETags, the `?hash=` immutable URLs); it returns values, the REST door
//! writes them.
//!
//! - `schemas`: definitions from the types, with GVKs and patch extensions.
//! - `paths`: operations and parameters from the resource table.
//! - `v3`, `v2`: the two document shapes; `gnostic`: v2 in protobuf.

mod gnostic;
mod paths;
mod schemas;
mod serve;
mod v2;
mod v3;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use sha2::{Digest, Sha512};

pub use schemas::Gvk;
pub use serve::{serve, Reply, Request};

/// One document's bytes and their SHA-512 (upper-case hex, as Kubernetes
/// names its documents' versions in ETags and `?hash=`).
#[derive(Debug)]
pub struct Document {
    pub bytes: Vec<u8>,
    pub hash: String,
}

impl Document {
    fn new(bytes: Vec<u8>) -> Self {
        let hash = Sha512::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        Document { bytes, hash }
    }

    fn json(v: &serde_json::Value) -> Self {
        Self::new(serde_json::to_vec(v).expect("JSON values encode"))
    }
}

static DEFINITIONS: LazyLock<schemas::Definitions> = LazyLock::new(schemas::build);

static V2_JSON: LazyLock<Document> = LazyLock::new(|| Document::json(&v2::document(&DEFINITIONS)));

static V2_PROTOBUF: LazyLock<Document> =
    LazyLock::new(|| Document::new(gnostic::encode(&v2::document(&DEFINITIONS)).0));

static V3: LazyLock<BTreeMap<String, Document>> = LazyLock::new(|| {
    v2::group_versions()
        .into_iter()
        .map(|(g, v)| {
            (
                v3_path(g, v),
                Document::json(&v3::document(&DEFINITIONS, g, v)),
            )
        })
        .collect()
});

static V3_INDEX: LazyLock<Document> = LazyLock::new(|| {
    let paths: serde_json::Map<String, serde_json::Value> = V3
        .iter()
        .map(|(path, doc)| {
            (
                path.clone(),
                serde_json::json!({"serverRelativeURL": v3_url(path, &doc.hash)}),
            )
        })
        .collect();
    Document::json(&serde_json::json!({ "paths": paths }))
});

/// `api/v1` or `apis/<group>/<version>`: a group version's key in the v3 index.
pub fn v3_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("api/{version}")
    } else {
        format!("apis/{group}/{version}")
    }
}

/// The immutable address of a v3 document: `/openapi/v3/<path>?hash=<hash>`.
pub fn v3_url(path: &str, hash: &str) -> String {
    format!("/openapi/v3/{path}?hash={hash}")
}

/// `/openapi/v3`: `{"paths": {"api/v1": {"serverRelativeURL": ...}, ...}}`.
pub fn v3_index() -> &'static Document {
    &V3_INDEX
}

/// The OpenAPI 3.0 document of a group version, by its index key (`apis/apps/v1`).
pub fn v3_document(path: &str) -> Option<&'static Document> {
    V3.get(path)
}

/// `/openapi/v2` as JSON.
pub fn v2_json() -> &'static Document {
    &V2_JSON
}

/// `/openapi/v2` as gnostic's `openapi.v2.Document` protobuf.
pub fn v2_protobuf() -> &'static Document {
    &V2_PROTOBUF
}

#[cfg(test)]
mod tests;
