//! rkube-ops
