//! rkube's Kubernetes resource layer (being built; see docs/api.md).
