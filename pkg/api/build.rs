//! Compiles Kubernetes' protobuf wire schema (`proto/k8s`) into a descriptor set that
//! `src/protobuf.rs` decodes request bodies with. Uses `$PROTOC` when set, else
//! the protoc that the `protoc-bin-vendored` crate ships (no apt step). Only the
//! `server` feature has protobuf bodies; without it there is nothing to build.

#[cfg(feature = "server")]
use std::path::Path;
#[cfg(feature = "server")]
use std::process::Command;

#[cfg(not(feature = "server"))]
fn main() {}

#[cfg(feature = "server")]
fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let mut files = Vec::new();
    collect(&root.join("k8s"), &mut files);
    files.sort();
    println!("cargo:rerun-if-changed={}", root.join("k8s").display());
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    println!("cargo:rerun-if-env-changed=PROTOC");
    let out = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("k8s.bin");
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => std::path::PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()
            .expect("protoc-bin-vendored has a protoc for this platform"),
    };
    let protoc = protoc.display().to_string();
    let status = Command::new(&protoc)
        .arg("-I")
        .arg(&root)
        .arg("--include_imports")
        .arg(format!("--descriptor_set_out={}", out.display()))
        .args(&files)
        .status()
        .unwrap_or_else(|e| panic!("running {protoc} : {e}"));
    assert!(status.success(), "{protoc} failed on proto/k8s");
}

#[cfg(feature = "server")]
fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("proto/k8s is readable") {
        let path = entry.expect("directory entry").path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path);
        }
    }
}
