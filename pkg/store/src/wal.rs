//! A segmented write-ahead log: the on-disk form of the Raft log, vote and
//! committed pointer.
//!
//! The log is a folder of segment files `{seq:016x}.wal`, written in order.
//! Each holds a sequence of framed records:
//!
//! ```text
//! | len: u32 LE | crc32: u32 LE | kind: u8 | payload: len-1 bytes |
//! ```
//!
//! `crc32` covers the length and the kind and payload bytes, so a torn or
//! bit-flipped record is recognised. A length of zero marks the end of a
//! segment: segments are created at their full size as sparse files (so an
//! `fdatasync` after an append does not have to grow the file), and the
//! unwritten rest reads as zeros.
//!
//! Replaying the records in order rebuilds the state: an entry record inserts
//! an entry, a truncate record drops every entry from an index on, a purge
//! record drops every entry up to a log id and remembers it, and vote and
//! committed records set those. Every segment starts with a header (the vote,
//! committed pointer and last purged log id as they stood when it was
//! created), so older segments can be deleted once every entry in them is
//! purged: replaying what is left still gives the same state.
//!
//! Crash safety: a segment is created under a temporary name, with its header
//! fsynced, and renamed into place; the previous segment is fsynced before the
//! next one starts. So only the newest segment can end in a torn record (a
//! write that was never acknowledged): on open it is cut off at the last whole
//! record, and its unwritten space zeroed again. A bad record anywhere else is
//! corruption, and opening fails with the segment and offset rather than
//! silently dropping acknowledged entries.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::types::{Entry, LogId, Vote};

/// The size a segment is created with (sparse). A segment grows past it only
/// when a single write is larger.
pub const DEFAULT_SEGMENT_SIZE: u64 = 64 << 20;

const HEADER_LEN: usize = 9;
const KIND_ENTRY: u8 = 1;
const KIND_TRUNCATE: u8 = 2;
const KIND_PURGE: u8 = 3;
const KIND_VOTE: u8 = 4;
const KIND_COMMITTED: u8 = 5;
/// The largest record replay accepts; anything longer is a corrupt length.
const MAX_RECORD: usize = 1 << 30;

/// One change to the log's state, as written to disk.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// An entry, already encoded with postcard (the log store encodes it on
    /// the caller's thread).
    Entry {
        index: u64,
        bytes: Vec<u8>,
    },
    /// Remove entries with index >= the value.
    Truncate(u64),
    /// Remove entries with index <= the log id's, and remember it.
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

/// What replaying the log gives.
#[derive(Default, Debug)]
pub struct State {
    pub entries: BTreeMap<u64, Entry>,
    pub last_purged: Option<LogId>,
    pub vote: Option<Vote>,
    pub committed: Option<LogId>,
}

/// A record as read back: the entry decoded.
enum Replayed {
    Entry(Entry),
    Truncate(u64),
    Purge(LogId),
    Vote(Vote),
    Committed(Option<LogId>),
}

impl State {
    /// Applies one record; returns the entry index it wrote, if any.
    fn apply(&mut self, record: Replayed) -> u64 {
        match record {
            Replayed::Entry(entry) => {
                let index = entry.log_id.index;
                self.entries.insert(index, entry);
                return index;
            }
            Replayed::Truncate(from) => {
                self.entries.split_off(&from);
            }
            Replayed::Purge(upto) => {
                self.entries = self.entries.split_off(&(upto.index + 1));
                self.last_purged = Some(upto);
            }
            Replayed::Vote(v) => self.vote = Some(v),
            Replayed::Committed(c) => self.committed = c,
        }
        0
    }
}

/// What the log has written so far that a new segment's header repeats.
#[derive(Default, Clone, Copy)]
struct Meta {
    vote: Option<Vote>,
    committed: Option<LogId>,
    last_purged: Option<LogId>,
}

struct Segment {
    seq: u64,
    /// The highest entry index written into it (0 when none).
    max_index: u64,
}

/// The writer's handle on the log folder. Not shared: one thread writes.
pub struct Wal {
    dir: PathBuf,
    segment_size: u64,
    /// Full segments, oldest first.
    closed: Vec<Segment>,
    current: Segment,
    file: File,
    /// Where the next record goes in the current segment.
    offset: u64,
    /// Where the current segment's header ends (nothing else written yet
    /// when `offset` equals it).
    header_end: u64,
    /// The state as of the last record written (for the next header).
    meta: Meta,
    buf: Vec<u8>,
}

fn segment_name(seq: u64) -> String {
    format!("{seq:016x}.wal")
}

fn corrupt(path: &Path, offset: u64, what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!(
            "raft log segment {} is corrupt at byte {offset}: {what}",
            path.display()
        ),
    )
}

fn encode_record(buf: &mut Vec<u8>, record: &Record) {
    let start = buf.len();
    buf.extend_from_slice(&[0u8; HEADER_LEN]);
    let kind = match record {
        Record::Entry { bytes, .. } => {
            buf.extend_from_slice(bytes);
            KIND_ENTRY
        }
        Record::Truncate(from) => {
            buf.extend_from_slice(&from.to_le_bytes());
            KIND_TRUNCATE
        }
        Record::Purge(l) => {
            buf.extend_from_slice(&postcard::to_stdvec(l).expect("plain data"));
            KIND_PURGE
        }
        Record::Vote(v) => {
            buf.extend_from_slice(&postcard::to_stdvec(v).expect("plain data"));
            KIND_VOTE
        }
        Record::Committed(c) => {
            buf.extend_from_slice(&postcard::to_stdvec(c).expect("plain data"));
            KIND_COMMITTED
        }
    };
    buf[start + 8] = kind;
    let len = (buf.len() - start - 8) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&buf[start + 8..]);
    let crc = h.finalize();
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// How reading one segment ended.
enum Tail {
    /// A zero length, or the end of the file: the segment is whole.
    Clean,
    /// A record that is cut short or fails its checksum, at the end offset.
    Torn(&'static str),
}

/// Reads the records of one segment, in order, until its end; returns the
/// offset where its valid records end. Reads only up to the end marker: a
/// segment is mostly unwritten (sparse) space.
fn read_segment(path: &Path, mut f: impl FnMut(Replayed)) -> std::io::Result<(u64, Tail)> {
    use std::io::Read;
    let mut file = std::io::BufReader::with_capacity(256 << 10, File::open(path)?);
    // Reads exactly `buf.len()` bytes; false when the file ends first.
    let mut fill = |buf: &mut [u8]| -> std::io::Result<bool> {
        match file.read_exact(buf) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
            Err(e) => Err(e),
        }
    };
    let mut at = 0u64;
    let mut header = [0u8; 8];
    let mut body = Vec::new();
    loop {
        if !fill(&mut header[..4])? {
            return Ok((at, Tail::Clean));
        }
        let len = u32::from_le_bytes(header[..4].try_into().unwrap()) as usize;
        if len == 0 {
            return Ok((at, Tail::Clean));
        }
        body.resize(len.min(MAX_RECORD), 0);
        if len > MAX_RECORD || !fill(&mut header[4..])? || !fill(&mut body)? {
            return Ok((at, Tail::Torn("record runs past the end")));
        }
        let crc = u32::from_le_bytes(header[4..].try_into().unwrap());
        let mut h = crc32fast::Hasher::new();
        h.update(&(len as u32).to_le_bytes());
        h.update(&body);
        if h.finalize() != crc {
            return Ok((at, Tail::Torn("checksum mismatch")));
        }
        let payload = &body[1..];
        let record = match body[0] {
            KIND_ENTRY => postcard::from_bytes(payload).map(Replayed::Entry).ok(),
            KIND_TRUNCATE => payload
                .try_into()
                .ok()
                .map(|b| Replayed::Truncate(u64::from_le_bytes(b))),
            KIND_PURGE => postcard::from_bytes(payload).map(Replayed::Purge).ok(),
            KIND_VOTE => postcard::from_bytes(payload).map(Replayed::Vote).ok(),
            KIND_COMMITTED => postcard::from_bytes(payload).map(Replayed::Committed).ok(),
            _ => None,
        };
        // A record whose checksum holds but which does not decode was written
        // by something else (or a newer rkube): never skip over it.
        let Some(record) = record else {
            return Ok((at, Tail::Torn("record does not decode")));
        };
        f(record);
        at += 8 + len as u64;
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl Wal {
    /// Opens the log in `dir` (creating it), replays it, and returns the
    /// writer with the state it holds.
    pub fn open(dir: &Path, segment_size: u64) -> std::io::Result<(Self, State)> {
        std::fs::create_dir_all(dir)?;
        let mut seqs = Vec::new();
        for ent in std::fs::read_dir(dir)? {
            let ent = ent?;
            let name = ent.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                // A segment that was being created when the process stopped:
                // it was never in use.
                std::fs::remove_file(ent.path())?;
                continue;
            }
            if let Some(hex) = name.strip_suffix(".wal") {
                if let Ok(seq) = u64::from_str_radix(hex, 16) {
                    seqs.push(seq);
                }
            }
        }
        seqs.sort_unstable();
        let mut state = State::default();
        let mut segments = Vec::new();
        let mut last_end = 0u64;
        for (i, &seq) in seqs.iter().enumerate() {
            let path = dir.join(segment_name(seq));
            let mut max_index = 0;
            let (end, tail) = read_segment(&path, |r| {
                max_index = max_index.max(state.apply(r));
            })?;
            let newest = i + 1 == seqs.len();
            if let Tail::Torn(what) = tail {
                let at = end;
                if !newest {
                    return Err(corrupt(&path, at, what));
                }
                // The newest segment ends in a write that never completed.
                tracing::warn!(
                    segment = %path.display(), offset = at, reason = what,
                    "raft log ends in a torn record (a write cut short by a crash); dropping it"
                );
                let f = OpenOptions::new().write(true).open(&path)?;
                let len = f.metadata()?.len();
                f.set_len(at)?;
                f.set_len(len.max(segment_size))?;
                f.sync_all()?;
            }
            last_end = end;
            segments.push(Segment { seq, max_index });
        }
        let meta = Meta {
            vote: state.vote,
            committed: state.committed,
            last_purged: state.last_purged,
        };
        let mut wal = match segments.pop() {
            Some(current) => {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(dir.join(segment_name(current.seq)))?;
                Wal {
                    dir: dir.to_path_buf(),
                    segment_size,
                    closed: segments,
                    current,
                    file,
                    offset: last_end,
                    header_end: 0,
                    meta,
                    buf: Vec::new(),
                }
            }
            None => {
                let (file, offset) = create_segment(dir, 1, segment_size, &meta)?;
                Wal {
                    dir: dir.to_path_buf(),
                    segment_size,
                    closed: Vec::new(),
                    current: Segment {
                        seq: 1,
                        max_index: 0,
                    },
                    file,
                    offset,
                    header_end: offset,
                    meta,
                    buf: Vec::new(),
                }
            }
        };
        wal.buf.reserve(64 << 10);
        Ok((wal, state))
    }

    /// Appends `records` in one write, and makes them durable
    /// (`fdatasync`) when `durable`. Records that are written without fsync
    /// become durable with the next durable write.
    pub fn write(&mut self, records: &[Record], durable: bool) -> std::io::Result<()> {
        if records.is_empty() && !durable {
            return Ok(());
        }
        self.buf.clear();
        let mut meta = self.meta;
        let mut max_index = 0;
        for r in records {
            encode_record(&mut self.buf, r);
            match r {
                Record::Entry { index, .. } => max_index = max_index.max(*index),
                Record::Truncate(_) => {}
                Record::Purge(l) => meta.last_purged = Some(*l),
                Record::Vote(v) => meta.vote = Some(*v),
                Record::Committed(c) => meta.committed = *c,
            }
        }
        let only_header = self.offset == self.header_end;
        if self.offset + self.buf.len() as u64 > self.segment_size && !only_header {
            self.rotate()?;
        }
        self.file.write_all_at(&self.buf, self.offset)?;
        self.offset += self.buf.len() as u64;
        if durable {
            self.file.sync_data()?;
        }
        self.meta = meta;
        self.current.max_index = self.current.max_index.max(max_index);
        Ok(())
    }

    /// Closes the current segment (fsynced) and starts the next one.
    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let seq = self.current.seq + 1;
        let (file, offset) = create_segment(&self.dir, seq, self.segment_size, &self.meta)?;
        let old = std::mem::replace(&mut self.current, Segment { seq, max_index: 0 });
        self.closed.push(old);
        self.file = file;
        self.offset = offset;
        self.header_end = offset;
        Ok(())
    }

    /// Deletes the oldest segments whose entries are all purged. Call only
    /// after the purge record is durable.
    pub fn remove_purged(&mut self) -> std::io::Result<()> {
        let Some(purged) = self.meta.last_purged else {
            return Ok(());
        };
        let n = self
            .closed
            .iter()
            .take_while(|s| s.max_index <= purged.index)
            .count();
        if n == 0 {
            return Ok(());
        }
        for s in self.closed.drain(..n) {
            std::fs::remove_file(self.dir.join(segment_name(s.seq)))?;
        }
        sync_dir(&self.dir)
    }

    /// How many segment files the log has (for tests and metrics).
    pub fn segments(&self) -> usize {
        self.closed.len() + 1
    }
}

fn encode_header(buf: &mut Vec<u8>, meta: &Meta) {
    if let Some(v) = meta.vote {
        encode_record(buf, &Record::Vote(v));
    }
    if let Some(p) = meta.last_purged {
        encode_record(buf, &Record::Purge(p));
    }
    encode_record(buf, &Record::Committed(meta.committed));
}

/// Creates segment `seq` with its header, durably: written under a temporary
/// name, fsynced, renamed, and the folder fsynced.
fn create_segment(
    dir: &Path,
    seq: u64,
    segment_size: u64,
    meta: &Meta,
) -> std::io::Result<(File, u64)> {
    let mut header = Vec::new();
    encode_header(&mut header, meta);
    let tmp = dir.join(format!("{}.tmp", segment_name(seq)));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)?;
    file.set_len(segment_size.max(header.len() as u64))?;
    file.write_all_at(&header, 0)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(segment_name(seq)))?;
    sync_dir(dir)?;
    Ok((file, header.len() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Command, TypeConfig};
    use openraft::{CommittedLeaderId, EntryPayload};

    fn log_id(term: u64, index: u64) -> LogId {
        LogId::new(CommittedLeaderId::new(term, 1), index)
    }

    fn entry(term: u64, index: u64) -> Record {
        let e: Entry = openraft::Entry::<TypeConfig> {
            log_id: log_id(term, index),
            payload: EntryPayload::Normal(Command::Compact {
                revision: index as i64,
            }),
        };
        Record::Entry {
            index,
            bytes: postcard::to_stdvec(&e).unwrap(),
        }
    }

    fn indexes(s: &State) -> Vec<(u64, u64)> {
        s.entries
            .values()
            .map(|e| (e.log_id.leader_id.term, e.log_id.index))
            .collect()
    }

    #[test]
    fn replays_entries_truncates_purges_vote_and_committed() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, state) = Wal::open(dir.path(), 4096).unwrap();
            assert!(state.entries.is_empty() && state.vote.is_none());
            wal.write(&[entry(1, 1), entry(1, 2), entry(1, 3)], true)
                .unwrap();
            wal.write(&[Record::Truncate(3), entry(2, 3), entry(2, 4)], true)
                .unwrap();
            wal.write(&[Record::Vote(Vote::new(2, 1))], true).unwrap();
            wal.write(&[Record::Purge(log_id(1, 1))], true).unwrap();
            wal.write(&[Record::Committed(Some(log_id(2, 3)))], false)
                .unwrap();
        }
        let (_, state) = Wal::open(dir.path(), 4096).unwrap();
        assert_eq!(indexes(&state), vec![(1, 2), (2, 3), (2, 4)]);
        assert_eq!(state.vote, Some(Vote::new(2, 1)));
        assert_eq!(state.last_purged, Some(log_id(1, 1)));
        assert_eq!(state.committed, Some(log_id(2, 3)));
    }

    #[test]
    fn a_torn_tail_is_dropped_and_the_log_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join(segment_name(1));
        let end_of_two;
        {
            let (mut wal, _) = Wal::open(dir.path(), 4096).unwrap();
            wal.write(&[entry(1, 1), entry(1, 2)], true).unwrap();
            end_of_two = wal.offset;
            wal.write(&[entry(1, 3)], true).unwrap();
        }
        // Cut the third record in half, as a crash in the middle of the
        // write (before its fsync returned) could leave it.
        let f = OpenOptions::new().write(true).open(&seg).unwrap();
        let third = std::fs::read(&seg).unwrap();
        let half = end_of_two + 6;
        f.write_all_at(&vec![0u8; third.len() - half as usize], half)
            .unwrap();
        drop(f);
        {
            let (mut wal, state) = Wal::open(dir.path(), 4096).unwrap();
            assert_eq!(indexes(&state), vec![(1, 1), (1, 2)]);
            assert_eq!(wal.offset, end_of_two);
            wal.write(&[entry(2, 3)], true).unwrap();
        }
        let (_, state) = Wal::open(dir.path(), 4096).unwrap();
        assert_eq!(indexes(&state), vec![(1, 1), (1, 2), (2, 3)]);
    }

    #[test]
    fn a_flipped_bit_in_the_newest_segment_drops_only_what_follows_it() {
        let dir = tempfile::tempdir().unwrap();
        let seg = dir.path().join(segment_name(1));
        let at;
        {
            let (mut wal, _) = Wal::open(dir.path(), 4096).unwrap();
            wal.write(&[entry(1, 1)], true).unwrap();
            at = wal.offset;
            wal.write(&[entry(1, 2)], true).unwrap();
        }
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg)
            .unwrap();
        let mut b = [0u8; 1];
        f.read_exact_at(&mut b, at + 12).unwrap();
        f.write_all_at(&[b[0] ^ 0x40], at + 12).unwrap();
        drop(f);
        let (_, state) = Wal::open(dir.path(), 4096).unwrap();
        assert_eq!(indexes(&state), vec![(1, 1)]);
    }

    #[test]
    fn corruption_in_an_older_segment_refuses_to_open() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path(), 100).unwrap();
            for i in 1..=20 {
                wal.write(&[entry(1, i)], true).unwrap();
            }
            assert!(wal.segments() > 2, "small segments rotate");
        }
        let seg = dir.path().join(segment_name(1));
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&seg)
            .unwrap();
        f.write_all_at(&[0xff], 20).unwrap();
        drop(f);
        let err = Wal::open(dir.path(), 100).err().expect("must not open");
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("corrupt"), "{err}");
    }

    #[test]
    fn segments_rotate_and_purged_ones_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path(), 100).unwrap();
            wal.write(&[Record::Vote(Vote::new(3, 2))], true).unwrap();
            for i in 1..=40 {
                wal.write(&[entry(3, i)], true).unwrap();
            }
            let before = wal.segments();
            assert!(before >= 5, "{before} segments");
            wal.write(&[Record::Purge(log_id(3, 30))], true).unwrap();
            wal.remove_purged().unwrap();
            assert!(wal.segments() < before, "purged segments are deleted");
            let files = std::fs::read_dir(dir.path()).unwrap().count();
            assert_eq!(files, wal.segments());
        }
        let (_, state) = Wal::open(dir.path(), 100).unwrap();
        assert_eq!(
            indexes(&state),
            (31..=40).map(|i| (3, i)).collect::<Vec<_>>()
        );
        assert_eq!(state.last_purged, Some(log_id(3, 30)));
        assert_eq!(state.vote, Some(Vote::new(3, 2)), "headers carry the vote");
    }

    #[test]
    fn a_segment_left_half_created_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (mut wal, _) = Wal::open(dir.path(), 4096).unwrap();
            wal.write(&[entry(1, 1)], true).unwrap();
        }
        std::fs::write(dir.path().join("0000000000000002.wal.tmp"), b"junk").unwrap();
        let (_, state) = Wal::open(dir.path(), 4096).unwrap();
        assert_eq!(indexes(&state), vec![(1, 1)]);
        assert!(!dir.path().join("0000000000000002.wal.tmp").exists());
    }

    #[test]
    fn one_write_larger_than_a_segment_fits() {
        let dir = tempfile::tempdir().unwrap();
        let big = Record::Entry {
            index: 1,
            bytes: {
                let e: Entry = openraft::Entry::<TypeConfig> {
                    log_id: log_id(1, 1),
                    payload: EntryPayload::Normal(Command::Batch(
                        (0..2000)
                            .map(|r| Command::Compact { revision: r })
                            .collect(),
                    )),
                };
                postcard::to_stdvec(&e).unwrap()
            },
        };
        {
            let (mut wal, _) = Wal::open(dir.path(), 1024).unwrap();
            wal.write(&[entry(1, 0)], true).unwrap();
            wal.write(std::slice::from_ref(&big), true).unwrap();
            wal.write(&[entry(1, 2)], true).unwrap();
        }
        let (_, state) = Wal::open(dir.path(), 1024).unwrap();
        assert_eq!(indexes(&state), vec![(1, 0), (1, 1), (1, 2)]);
    }
}
