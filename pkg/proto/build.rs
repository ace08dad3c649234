fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "rkube/store/v1/kv.proto",
        "rkube/raft/v1/raft.proto",
        "rkube/api/v1/api.proto",
        "etcd/etcdserverpb.proto",
    ];
    let paths: Vec<_> = files.iter().map(|f| root.join(f)).collect();
    for p in &paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    tonic_prost_build::configure()
        .bytes(".")
        .compile_protos(&paths, &[root])?;
    Ok(())
}
