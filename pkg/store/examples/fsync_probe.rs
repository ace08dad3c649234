//! Probe: latency of one durable redb commit of a ~300-byte row vs a raw
//! append + fdatasync, on the disk of the given folder.
use std::io::Write;
use std::time::Instant;

use redb::{Database, Durability, TableDefinition};

const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

fn pct(mut v: Vec<f64>) -> String {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    format!(
        "p50 {:.3} ms p99 {:.3} ms",
        v[v.len() / 2],
        v[v.len() * 99 / 100]
    )
}

fn main() {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let path = std::path::Path::new(&dir).join("probe.redb");
    let _ = std::fs::remove_file(&path);
    let db = Database::builder().create(&path).unwrap();
    let row = vec![7u8; 300];
    let mut t = Vec::new();
    for i in 0..2000u64 {
        let s = Instant::now();
        let mut txn = db.begin_write().unwrap();
        txn.set_durability(Durability::Immediate).unwrap();
        {
            let mut log = txn.open_table(LOG).unwrap();
            log.insert(i, row.as_slice()).unwrap();
        }
        txn.commit().unwrap();
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    println!("redb durable commit: {}", pct(t));
    let p2 = std::path::Path::new(&dir).join("probe.wal");
    let mut f = std::fs::File::create(&p2).unwrap();
    f.set_len(64 << 20).unwrap();
    f.sync_all().unwrap();
    let mut t = Vec::new();
    for _ in 0..2000u64 {
        let s = Instant::now();
        f.write_all(&row).unwrap();
        f.sync_data().unwrap();
        t.push(s.elapsed().as_secs_f64() * 1e3);
    }
    println!("preallocated append + fdatasync: {}", pct(t));
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(&p2);
}
