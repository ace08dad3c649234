//! The kinds that are only ever request bodies, never served as resources of their own:
//! `pods/binding`'s Binding, the `scale` subresources' autoscaling/v1 Scale, and the
//! DeleteOptions of a delete (accepted under `meta.k8s.io` and the core group, as
//! Kubernetes registers it). Their types decode, round-trip for strict decoding and join
//! the OpenAPI documents like a served kind's.

use k8s_openapi::api::{autoscaling::v1 as autoscalingv1, core::v1 as corev1};
use k8s_openapi::apimachinery::pkg::apis::meta::v1 as metav1;

use super::ObjectType;

pub(crate) static BODIES: &[ObjectType] = &[
    ObjectType::body::<corev1::Binding>(),
    ObjectType::body::<autoscalingv1::Scale>(),
    ObjectType::named::<metav1::DeleteOptions>("meta.k8s.io", "v1", "DeleteOptions", None),
    ObjectType::named::<metav1::DeleteOptions>("", "v1", "DeleteOptions", None),
];
