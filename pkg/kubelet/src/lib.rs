pub mod backoff;
pub mod cni;
pub mod cri;
pub mod qos;
pub mod status;
