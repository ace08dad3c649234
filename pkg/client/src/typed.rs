//! The typed layer: [`Api<K>`] for any k8s-openapi resource type, over the
//! raw [`Client`]. It only converts; failover and errors are the raw client's.

use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::watch::{Event, Watch, WatchParams};
use crate::{Client, DeleteParams, Gvr, ListParams, ObjectList, PatchType, WriteParams};

/// Calls for one resource type in one namespace (or all / cluster scope).
pub struct Api<K> {
    client: Client,
    gvr: Gvr,
    namespace: String,
    _kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Api<K> {
    fn clone(&self) -> Self {
        Api {
            client: self.client.clone(),
            gvr: self.gvr.clone(),
            namespace: self.namespace.clone(),
            _kind: PhantomData,
        }
    }
}

fn from_value<K: DeserializeOwned>(v: Value) -> Result<K> {
    serde_json::from_value(v).map_err(|e| Error::Decode(e.to_string()))
}

fn to_value<K: Serialize>(k: &K) -> Result<Value> {
    serde_json::to_value(k).map_err(|e| Error::Invalid(e.to_string()))
}

impl<K> Api<K>
where
    K: k8s_openapi::Resource
        + k8s_openapi::Metadata<Ty = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>
        + Serialize
        + DeserializeOwned,
{
    /// `K` in `namespace`.
    pub fn namespaced(client: &Client, namespace: &str) -> Self
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
    {
        Self::new(client, namespace)
    }

    /// A cluster-scoped `K`.
    pub fn cluster(client: &Client) -> Self
    where
        K: k8s_openapi::Resource<Scope = k8s_openapi::ClusterResourceScope>,
    {
        Self::new(client, "")
    }

    /// `K` in every namespace (for list and watch).
    pub fn all(client: &Client) -> Self {
        Self::new(client, "")
    }

    /// `K` in `namespace`, unchecked against `K`'s scope ("" = every namespace, or
    /// cluster scope): for generic code that does not know the scope at compile time.
    pub fn within(client: &Client, namespace: &str) -> Self {
        Self::new(client, namespace)
    }

    fn new(client: &Client, namespace: &str) -> Self {
        Api {
            client: client.clone(),
            gvr: Gvr::of::<K>(),
            namespace: namespace.to_string(),
            _kind: PhantomData,
        }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The newest state of `name` (linearizable).
    pub async fn get(&self, name: &str) -> Result<K> {
        from_value(
            self.client
                .get(&self.gvr, &self.namespace, name, "")
                .await?,
        )
    }

    pub async fn list(&self, params: &ListParams) -> Result<ObjectList<K>> {
        let l = self.client.list(&self.gvr, &self.namespace, params).await?;
        Ok(ObjectList {
            items: l.items.into_iter().map(from_value).collect::<Result<_>>()?,
            resource_version: l.resource_version,
            continue_token: l.continue_token,
        })
    }

    pub async fn create(&self, object: &K, params: &WriteParams) -> Result<K> {
        let v = to_value(object)?;
        from_value(
            self.client
                .create(&self.gvr, &self.namespace, &v, params)
                .await?,
        )
    }

    /// Replaces `object` (named by its metadata); a set resourceVersion must
    /// be current.
    pub async fn update(&self, object: &K, params: &WriteParams) -> Result<K> {
        let (v, name) = self.named(object)?;
        from_value(
            self.client
                .update(&self.gvr, &self.namespace, &name, &v, params)
                .await?,
        )
    }

    /// Replaces `object`'s status.
    pub async fn update_status(&self, object: &K, params: &WriteParams) -> Result<K> {
        let (v, name) = self.named(object)?;
        from_value(
            self.client
                .update_status(&self.gvr, &self.namespace, &name, &v, params)
                .await?,
        )
    }

    pub async fn patch(
        &self,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        params: &WriteParams,
    ) -> Result<K> {
        let body = serde_json::to_vec(patch).expect("JSON values encode");
        from_value(
            self.client
                .patch(
                    &self.gvr,
                    &self.namespace,
                    name,
                    "",
                    patch_type,
                    &body,
                    params,
                )
                .await?,
        )
    }

    /// Deletes `name`; returns the object as the delete left it.
    pub async fn delete(&self, name: &str, params: &DeleteParams) -> Result<K> {
        from_value(
            self.client
                .delete(&self.gvr, &self.namespace, name, params)
                .await?,
        )
    }

    pub async fn watch(&self, params: WatchParams) -> Result<TypedWatch<K>> {
        Ok(TypedWatch {
            inner: self
                .client
                .watch(&self.gvr, &self.namespace, params)
                .await?,
            _kind: PhantomData,
        })
    }

    fn named(&self, object: &K) -> Result<(Value, String)> {
        let name = object
            .metadata()
            .name
            .clone()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| Error::Invalid("the object has no metadata.name".into()))?;
        Ok((to_value(object)?, name))
    }
}

/// A watch event with typed objects.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedEvent<K> {
    Added(K),
    Modified(K),
    Deleted(K),
    Bookmark { resource_version: String },
    InitialEventsEnd { resource_version: String },
}

/// [`Watch`] with objects decoded into `K`.
pub struct TypedWatch<K> {
    inner: Watch,
    _kind: PhantomData<fn() -> K>,
}

impl<K: DeserializeOwned> TypedWatch<K> {
    pub async fn next(&mut self) -> Option<Result<TypedEvent<K>>> {
        let ev = match self.inner.next().await? {
            Ok(ev) => ev,
            Err(e) => return Some(Err(e)),
        };
        Some(match ev {
            Event::Added(o) => from_value(o).map(TypedEvent::Added),
            Event::Modified(o) => from_value(o).map(TypedEvent::Modified),
            Event::Deleted(o) => from_value(o).map(TypedEvent::Deleted),
            Event::Bookmark { resource_version } => Ok(TypedEvent::Bookmark { resource_version }),
            Event::InitialEventsEnd { resource_version } => {
                Ok(TypedEvent::InitialEventsEnd { resource_version })
            }
        })
    }

    /// The untyped watch underneath (resume point, endpoint, resumes).
    pub fn raw(&self) -> &Watch {
        &self.inner
    }
}
