//! rkube-telemetry
