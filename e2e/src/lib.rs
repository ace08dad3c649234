//! rkube-e2e
