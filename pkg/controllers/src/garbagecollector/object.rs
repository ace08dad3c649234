//! Any object as the garbage collector reads and writes it, whatever its kind: the
//! metadata it decides from ([`Meta`]), and the conditional writes it makes — a delete
//! with a UID precondition, and merge patches of `metadata.finalizers` or
//! `metadata.ownerReferences` that carry the resourceVersion they were computed from (a
//! compare-and-set; on a conflict the object is read again). Never: write an object it
//! did not just read, or delete without the UID it decided about.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use rkube_client::{Client, DeleteParams, Gvr, PatchType, WriteParams};
use serde::Deserialize;
use serde_json::{json, Value};

use super::Error;

/// How many times a patch is recomputed after a conflict before the attempt fails (and
/// is retried later with back-off).
const CONFLICT_RETRIES: usize = 5;

/// The metadata the garbage collector reads from any object.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub uid: String,
    #[serde(default)]
    pub resource_version: Option<String>,
    #[serde(default)]
    pub owner_references: Option<Vec<OwnerReference>>,
    #[serde(default)]
    pub deletion_timestamp: Option<Value>,
    #[serde(default)]
    pub finalizers: Option<Vec<String>>,
}

impl Meta {
    /// The metadata of `obj`, or `None` when it has none that reads.
    pub fn of(obj: &Value) -> Option<Meta> {
        Meta::deserialize(obj.get("metadata")?).ok()
    }

    pub fn owners(&self) -> &[OwnerReference] {
        self.owner_references.as_deref().unwrap_or_default()
    }

    pub fn finalizers(&self) -> &[String] {
        self.finalizers.as_deref().unwrap_or_default()
    }

    pub fn has_finalizer(&self, f: &str) -> bool {
        self.finalizers().iter().any(|x| x == f)
    }

    pub fn deleting(&self) -> bool {
        self.deletion_timestamp
            .as_ref()
            .is_some_and(|t| !t.is_null())
    }
}

/// Where one object is: its resource, namespace ("" when cluster-scoped), name and UID.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub client: &'a Client,
    pub gvr: &'a Gvr,
    pub namespace: &'a str,
    pub name: &'a str,
    pub uid: &'a str,
}

impl Target<'_> {
    /// The object's metadata as stored now; `None` when it is gone or another object
    /// (another UID) holds its name.
    pub async fn read(&self) -> Result<Option<Meta>, Error> {
        match self
            .client
            .get(self.gvr, self.namespace, self.name, "")
            .await
        {
            Ok(obj) => Ok(Meta::of(&obj).filter(|m| m.uid == self.uid)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(source) => Err(Error::Read {
                resource: self.gvr.resource.clone(),
                name: self.name.to_string(),
                source,
            }),
        }
    }

    /// Deletes the object with `policy`, only if it still has the UID decided about. An
    /// object already gone, or replaced by another of the same name, is left alone.
    pub async fn delete(&self, policy: &str) -> Result<(), Error> {
        let params = DeleteParams {
            propagation_policy: Some(policy.to_string()),
            precondition_uid: Some(self.uid.to_string()),
            ..Default::default()
        };
        match self
            .client
            .delete(self.gvr, self.namespace, self.name, &params)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            // The UID precondition failed (nothing to do), or the object kept moving
            // under the apiserver's own retries (try again later).
            Err(e) if e.is_conflict() => match self.read().await? {
                None => Ok(()),
                Some(_) => Err(self.write_error("delete", e)),
            },
            Err(source) => Err(self.write_error("delete", source)),
        }
    }

    /// Removes `finalizer` from the object, if it is there.
    pub async fn remove_finalizer(&self, finalizer: &str) -> Result<(), Error> {
        self.patch_metadata("finalizers", |meta| {
            let now: Vec<String> = meta
                .finalizers()
                .iter()
                .filter(|f| *f != finalizer)
                .cloned()
                .collect();
            (now.len() != meta.finalizers().len()).then(|| json!(now))
        })
        .await
    }

    /// Rewrites the object's owner references with `change` (which returns whether it
    /// changed anything).
    pub async fn change_owners(
        &self,
        change: impl Fn(&mut Vec<OwnerReference>) -> bool,
    ) -> Result<(), Error> {
        self.patch_metadata("ownerReferences", |meta| {
            let mut owners = meta.owners().to_vec();
            if !change(&mut owners) {
                return None;
            }
            Some(if owners.is_empty() {
                Value::Null
            } else {
                json!(owners)
            })
        })
        .await
    }

    /// Reads the object, computes the new value of `metadata.<field>` (`None`: nothing to
    /// change) and writes it with the resourceVersion it was computed from; again on a
    /// conflict. A gone object needs nothing.
    async fn patch_metadata(
        &self,
        field: &str,
        compute: impl Fn(&Meta) -> Option<Value>,
    ) -> Result<(), Error> {
        for _ in 0..CONFLICT_RETRIES {
            let Some(meta) = self.read().await? else {
                return Ok(());
            };
            let Some(value) = compute(&meta) else {
                return Ok(());
            };
            let patch = json!({"metadata": {
                "resourceVersion": meta.resource_version,
                field: value,
            }});
            let body = serde_json::to_vec(&patch).expect("JSON values encode");
            match self
                .client
                .patch(
                    self.gvr,
                    self.namespace,
                    self.name,
                    "",
                    PatchType::Merge,
                    &body,
                    &WriteParams::default(),
                )
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if e.is_not_found() => return Ok(()),
                Err(e) if e.is_conflict() => continue,
                Err(source) => return Err(self.write_error("patch", source)),
            }
        }
        Err(Error::Contended {
            resource: self.gvr.resource.clone(),
            name: self.name.to_string(),
        })
    }

    fn write_error(&self, verb: &'static str, source: rkube_client::Error) -> Error {
        Error::Write {
            verb,
            resource: self.gvr.resource.clone(),
            name: self.name.to_string(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_reads_from_any_object_nulls_and_all() {
        let m = Meta::of(&json!({"kind": "Widget", "metadata": {
            "name": "w", "uid": "u1", "resourceVersion": "7",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "o", "uid": "u0", "blockOwnerDeletion": true}],
            "deletionTimestamp": "2025-01-01T00:00:00Z",
            "finalizers": ["orphan"],
        }}))
        .unwrap();
        assert_eq!((m.name.as_str(), m.uid.as_str()), ("w", "u1"));
        assert_eq!(m.owners()[0].uid, "u0");
        assert!(m.deleting() && m.has_finalizer("orphan"));
        let bare = Meta::of(&json!({"metadata": {"name": "b", "uid": "u", "finalizers": null, "ownerReferences": null}})).unwrap();
        assert!(bare.owners().is_empty() && !bare.deleting() && bare.finalizers().is_empty());
        assert!(Meta::of(&json!({"kind": "Nothing"})).is_none());
    }
}
