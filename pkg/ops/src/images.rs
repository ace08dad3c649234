//! The node images a cluster needs without a registry, built by rkube from files on this
//! machine as OCI image-layout archives that `ctr images import` (or containerd's import
//! API) loads into each node's containerd:
//!
//! - [`PAUSE_IMAGE`]: `rkube-pause` alone (a static binary: the image has no libc), the
//!   sandbox image of every pod;
//! - [`BUSYBOX_IMAGE`]: Debian's static busybox with its applets as symlinks (`sh`,
//!   `sleep`, `httpd`, `wget`, `nc`, ...), the demo image.
//!
//! An archive is `oci-layout`, `index.json` (one manifest, named by the
//! `io.containerd.image.name` annotation) and `blobs/sha256/` (one uncompressed layer, the
//! config, the manifest). Everything is deterministic: the same inputs give the same
//! digests, so re-importing is a no-op.
//!
//! Never: fetch anything, or run docker.

use std::path::{Path, PathBuf};

use serde_json::json;
use sha2::{Digest as _, Sha256};

use crate::{Error, Result};

/// The sandbox (pause) image every node's containerd is configured with.
pub const PAUSE_IMAGE: &str = "rkube.local/pause:1";
/// The demo image.
pub const BUSYBOX_IMAGE: &str = "rkube.local/busybox:1.35";
/// Where Debian's busybox-static installs the binary.
pub const BUSYBOX_PATH: &str = "/bin/busybox";

/// The busybox applets the demo image links (a shell, process and file tools, and the
/// network tools the demos use). `wget -T` crashes in busybox 1.35 inside a container:
/// plain `wget` works.
pub const BUSYBOX_APPLETS: &[&str] = &[
    "sh", "ash", "sleep", "httpd", "wget", "nc", "echo", "cat", "ls", "ps", "true", "false", "env",
    "id", "hostname", "ip", "ifconfig", "ping", "mkdir", "rm", "kill", "date", "printf", "test",
    "[", "head", "tail", "grep", "sed", "awk", "touch", "mv", "cp", "chmod", "sync", "uname", "wc",
    "tee", "yes", "seq", "nslookup", "netstat", "top", "df", "du", "find", "xargs", "sort", "uniq",
    "cut", "tr", "pwd", "ln", "stat", "timeout", "dd", "free",
];

/// One entry of an image's only layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir(String),
    File {
        path: String,
        contents: Vec<u8>,
        mode: u32,
    },
    Symlink {
        path: String,
        target: String,
    },
}

/// An image to build: its name, its one layer, and how its containers start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageDef {
    pub name: String,
    pub entries: Vec<Entry>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// The pause image around `binary`, which must be statically linked.
pub fn pause_image(binary: &Path) -> Result<ImageDef> {
    let contents = std::fs::read(binary).map_err(|e| Error::io("read", binary, e))?;
    if !is_static_elf(&contents) {
        return Err(Error::ImageInput {
            path: binary.to_path_buf(),
            reason: "not a statically linked ELF binary (the pause image has no libc): build it \
                     with scripts/build-pause.sh"
                .to_string(),
        });
    }
    Ok(ImageDef {
        name: PAUSE_IMAGE.to_string(),
        entries: vec![Entry::File {
            path: "pause".to_string(),
            contents,
            mode: 0o755,
        }],
        entrypoint: vec!["/pause".to_string()],
        cmd: Vec::new(),
    })
}

/// The demo image around the static busybox at `binary`.
pub fn busybox_image(binary: &Path) -> Result<ImageDef> {
    let contents = std::fs::read(binary).map_err(|e| Error::io("read", binary, e))?;
    if !is_static_elf(&contents) {
        return Err(Error::ImageInput {
            path: binary.to_path_buf(),
            reason: "not a static busybox: install Debian's busybox-static".to_string(),
        });
    }
    let mut entries = vec![
        Entry::Dir("bin".into()),
        Entry::Dir("etc".into()),
        Entry::Dir("tmp".into()),
        Entry::Dir("var".into()),
        Entry::Dir("var/www".into()),
        Entry::File {
            path: "bin/busybox".into(),
            contents,
            mode: 0o755,
        },
        Entry::File {
            path: "etc/passwd".into(),
            contents: b"root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"
                .to_vec(),
            mode: 0o644,
        },
        Entry::File {
            path: "etc/group".into(),
            contents: b"root:x:0:\nnogroup:x:65534:\n".to_vec(),
            mode: 0o644,
        },
        Entry::File {
            path: "var/www/index.html".into(),
            contents: b"rkube busybox\n".to_vec(),
            mode: 0o644,
        },
    ];
    entries.extend(BUSYBOX_APPLETS.iter().map(|a| Entry::Symlink {
        path: format!("bin/{a}"),
        target: "busybox".to_string(),
    }));
    Ok(ImageDef {
        name: BUSYBOX_IMAGE.to_string(),
        entries,
        entrypoint: Vec::new(),
        cmd: vec!["sh".to_string()],
    })
}

/// Whether `elf` is an ELF executable without a program interpreter (PT_INTERP), i.e.
/// one that runs in an image with no dynamic loader. Pure.
pub fn is_static_elf(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 || elf[5] != 1 {
        return false; // only 64-bit little-endian ELF is expected here
    }
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]);
    let u64_at = |o: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&elf[o..o + 8]);
        u64::from_le_bytes(b)
    };
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    (0..usize::from(phnum)).all(|i| {
        let at = phoff + i * usize::from(phentsize);
        at + 4 > elf.len()
            || u32::from_le_bytes([elf[at], elf[at + 1], elf[at + 2], elf[at + 3]]) != PT_INTERP
    })
}

/// The image's layer as an uncompressed tar (deterministic: owner root, mtime 0).
pub fn layer_tar(def: &ImageDef) -> std::io::Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    for entry in &def.entries {
        let mut h = tar::Header::new_gnu();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match entry {
            Entry::Dir(path) => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, format!("{path}/"), std::io::empty())?;
            }
            Entry::File {
                path,
                contents,
                mode,
            } => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(*mode);
                h.set_size(contents.len() as u64);
                b.append_data(&mut h, path, contents.as_slice())?;
            }
            Entry::Symlink { path, target } => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_mode(0o777);
                h.set_size(0);
                b.append_link(&mut h, path, target)?;
            }
        }
    }
    b.into_inner()
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// The image as an OCI image-layout archive (a tar); returns it and the manifest digest.
pub fn oci_archive(def: &ImageDef) -> std::io::Result<(Vec<u8>, String)> {
    let layer = layer_tar(def)?;
    let layer_digest = sha256(&layer);
    let mut config = json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    if !def.entrypoint.is_empty() {
        config["config"]["Entrypoint"] = json!(def.entrypoint);
    }
    if !def.cmd.is_empty() {
        config["config"]["Cmd"] = json!(def.cmd);
    }
    let config = serde_json::to_vec(&config).expect("JSON values encode");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": sha256(&config),
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    }))
    .expect("JSON values encode");
    let manifest_digest = sha256(&manifest);
    let tag = def.name.rsplit_once(':').map_or("latest", |(_, t)| t);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": def.name,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }))
    .expect("JSON values encode");

    let mut b = tar::Builder::new(Vec::new());
    let mut add = |path: String, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, path, data)
    };
    add("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    add("index.json".into(), &index)?;
    for blob in [&layer, &config, &manifest] {
        let digest = sha256(blob);
        add(format!("blobs/sha256/{}", &digest["sha256:".len()..]), blob)?;
    }
    Ok((b.into_inner()?, manifest_digest))
}

/// Writes `def`'s archive to `dir/<file name from the image name>.tar`; returns the path.
pub fn write_archive(def: &ImageDef, dir: &Path) -> Result<PathBuf> {
    let file = dir.join(format!(
        "{}.tar",
        def.name.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    ));
    let (bytes, _) = oci_archive(def).map_err(|e| Error::io("build image", &file, e))?;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("create directory", dir, e))?;
    std::fs::write(&file, bytes).map_err(|e| Error::io("write", &file, e))?;
    Ok(file)
}

#[cfg(test)]
mod tests;
