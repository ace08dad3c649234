use std::collections::BTreeMap;
use std::io::Read as _;

use super::*;

fn demo() -> ImageDef {
    ImageDef {
        name: "rkube.local/demo:2".into(),
        entries: vec![
            Entry::Dir("bin".into()),
            Entry::File {
                path: "bin/tool".into(),
                contents: b"#!tool".to_vec(),
                mode: 0o755,
            },
            Entry::Symlink {
                path: "bin/sh".into(),
                target: "tool".into(),
            },
        ],
        entrypoint: vec!["/bin/tool".into()],
        cmd: vec!["x".into()],
    }
}

type Files = BTreeMap<String, (tar::EntryType, Vec<u8>, Option<String>)>;

fn files(tar_bytes: &[u8]) -> Files {
    let mut a = tar::Archive::new(tar_bytes);
    a.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            let kind = e.header().entry_type();
            let link = e.link_name().unwrap().map(|l| l.display().to_string());
            let mut data = Vec::new();
            e.read_to_end(&mut data).unwrap();
            (path, (kind, data, link))
        })
        .collect()
}

#[test]
fn an_archive_is_an_oci_layout_whose_blobs_match_their_digests() {
    let (archive, manifest_digest) = oci_archive(&demo()).unwrap();
    let f = files(&archive);
    assert_eq!(f["oci-layout"].1, br#"{"imageLayoutVersion":"1.0.0"}"#);
    let index: serde_json::Value = serde_json::from_slice(&f["index.json"].1).unwrap();
    let m = &index["manifests"][0];
    assert_eq!(
        m["annotations"]["io.containerd.image.name"],
        "rkube.local/demo:2"
    );
    assert_eq!(m["annotations"]["org.opencontainers.image.ref.name"], "2");
    assert_eq!(m["digest"], manifest_digest.as_str());
    let blob = |digest: &str| f[&format!("blobs/sha256/{}", &digest[7..])].1.clone();
    for (path, (_, data, _)) in &f {
        if let Some(hex) = path.strip_prefix("blobs/sha256/") {
            assert_eq!(sha256(data), format!("sha256:{hex}"), "{path}");
        }
    }
    let manifest: serde_json::Value = serde_json::from_slice(&blob(&manifest_digest)).unwrap();
    assert_eq!(m["size"], blob(&manifest_digest).len());
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let layer_digest = manifest["layers"][0]["digest"].as_str().unwrap();
    assert_eq!(config["rootfs"]["diff_ids"][0], layer_digest);
    assert_eq!(config["config"]["Entrypoint"][0], "/bin/tool");
    let layer = files(&blob(layer_digest));
    assert_eq!(layer["bin/tool"].1, b"#!tool");
    assert_eq!(layer["bin/sh"].0, tar::EntryType::Symlink);
    assert_eq!(layer["bin/sh"].2.as_deref(), Some("tool"));
}

#[test]
fn the_same_inputs_give_the_same_digest() {
    assert_eq!(oci_archive(&demo()).unwrap(), oci_archive(&demo()).unwrap());
    let mut other = demo();
    other.cmd = vec!["y".into()];
    assert_ne!(
        oci_archive(&demo()).unwrap().1,
        oci_archive(&other).unwrap().1
    );
}

#[test]
fn a_dynamically_linked_binary_is_refused_for_the_pause_image() {
    let exe = std::env::current_exe().unwrap();
    assert!(!is_static_elf(&std::fs::read(&exe).unwrap()));
    assert!(matches!(pause_image(&exe), Err(Error::ImageInput { .. })));
    assert!(!is_static_elf(b"#!/bin/sh\n"));
}

#[test]
fn the_demo_image_links_its_applets_to_busybox_when_busybox_static_is_installed() {
    let path = Path::new(BUSYBOX_PATH);
    if !path.exists() {
        eprintln!("skipped: {BUSYBOX_PATH} is missing (apt-get install busybox-static)");
        return;
    }
    assert!(is_static_elf(&std::fs::read(path).unwrap()));
    let def = busybox_image(path).unwrap();
    let layer = files(&layer_tar(&def).unwrap());
    for applet in ["sh", "sleep", "httpd", "wget", "nc"] {
        assert_eq!(
            layer[&format!("bin/{applet}")].2.as_deref(),
            Some("busybox")
        );
    }
}
