//! Checks recorded watch streams against the store's committed history.
//!
//! This module owns the definition of a correct watch stream: given every committed event under
//! the watched prefix and the revision the watch started at, a recording must deliver each event
//! with `revision >= start` exactly once, in revision order, with all events of one revision in the
//! same batch, and with no gap below the highest revision it has delivered or announced in a
//! progress notification. A watch resumed at [`resume_revision`] (possibly on another replica) is
//! checked as one stream with [`check_resumed`]. It does no I/O; it only judges recordings.
//!
//! A batch's `progress_revision`, with or without events, is read as the claim "every event up to
//! this revision has now been delivered".

use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct WatchedEvent {
    pub revision: i64,
    pub key: Vec<u8>,
    pub kind: EventKind,
    /// Empty for deletes.
    pub value: Vec<u8>,
}

impl fmt::Debug for WatchedEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} {:?}@{}",
            self.kind,
            String::from_utf8_lossy(&self.key),
            self.revision
        )?;
        if self.kind == EventKind::Put {
            write!(f, "={:?}", String::from_utf8_lossy(&self.value))?;
        }
        Ok(())
    }
}

/// One message received on a watch stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchBatch {
    pub events: Vec<WatchedEvent>,
    /// Set on progress notifications (a batch without events) and wherever the server vouches
    /// that everything up to this revision has been delivered.
    pub progress_revision: Option<i64>,
}

impl WatchBatch {
    pub fn events(events: Vec<WatchedEvent>) -> Self {
        Self {
            events,
            progress_revision: None,
        }
    }

    pub fn progress(revision: i64) -> Self {
        Self {
            events: Vec::new(),
            progress_revision: Some(revision),
        }
    }
}

/// The first way a recording departs from a correct watch stream. `batch` indexes the recording
/// (across segments for [`check_resumed`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchViolation {
    #[error("batch {batch}: event {event:?} is below the start revision {start}")]
    BeforeStart {
        batch: usize,
        event: WatchedEvent,
        start: i64,
    },
    #[error("batch {batch}: event {event:?} arrived after revision {previous} was delivered")]
    OutOfOrder {
        batch: usize,
        event: WatchedEvent,
        previous: i64,
    },
    #[error("batch {batch}: event {event:?} was already delivered")]
    Duplicate { batch: usize, event: WatchedEvent },
    #[error(
        "batch {batch}: revision {revision} has {expected} events but only {delivered} arrived \
         together"
    )]
    SplitRevision {
        batch: usize,
        revision: i64,
        expected: usize,
        delivered: usize,
    },
    #[error("batch {batch}: event {event:?} was never committed (committed at that revision: {committed:?})")]
    Unexpected {
        batch: usize,
        event: WatchedEvent,
        committed: Vec<WatchedEvent>,
    },
    #[error(
        "batch {batch}: committed event {missing:?} was skipped; revision {delivered} came next"
    )]
    Gap {
        batch: usize,
        missing: WatchedEvent,
        delivered: i64,
    },
    #[error(
        "batch {batch}: progress revision {progress} is below revision {previous} already \
         delivered or announced"
    )]
    ProgressBackwards {
        batch: usize,
        progress: i64,
        previous: i64,
    },
    #[error(
        "batch {batch}: progress revision {progress} announced before committed event \
         {missing:?} was delivered"
    )]
    ProgressSkipsEvent {
        batch: usize,
        progress: i64,
        missing: WatchedEvent,
    },
}

/// The revision a client resumes at after the stream broke: one past the highest revision the
/// recording delivered or announced, or `start` if it saw nothing.
pub fn resume_revision(start: i64, recording: &[WatchBatch]) -> i64 {
    recording
        .iter()
        .flat_map(|b| {
            b.events
                .iter()
                .map(|e| e.revision)
                .chain(b.progress_revision)
        })
        .max()
        .map_or(start, |r| (r + 1).max(start))
}

/// Checks one recording of a watch started at `start`. `reference` holds every committed event
/// under the watched prefix, in revision order.
pub fn check_stream(
    reference: &[WatchedEvent],
    start: i64,
    recording: &[WatchBatch],
) -> Result<(), WatchViolation> {
    check_resumed(reference, start, &[recording])
}

/// Checks a watch started at `start` whose stream broke and was resumed, each segment after the
/// first starting at [`resume_revision`] of everything before it, as one stream.
pub fn check_resumed(
    reference: &[WatchedEvent],
    start: i64,
    segments: &[&[WatchBatch]],
) -> Result<(), WatchViolation> {
    let batches: Vec<&WatchBatch> = segments.iter().flat_map(|s| s.iter()).collect();
    let mut checker = Checker::new(reference, start);
    for (batch, b) in batches.iter().enumerate() {
        checker
            .batch(batch, b)
            .map_err(|v| v.arrived_late(&batches))?;
    }
    Ok(())
}

impl WatchViolation {
    /// A gap whose event does arrive later is reported where it arrives, out of order.
    fn arrived_late(self, batches: &[&WatchBatch]) -> Self {
        let WatchViolation::Gap {
            batch,
            missing,
            delivered,
        } = self
        else {
            return self;
        };
        let late = (batch..batches.len()).find(|&i| batches[i].events.contains(&missing));
        match late {
            Some(late) => WatchViolation::OutOfOrder {
                batch: late,
                event: missing,
                previous: delivered,
            },
            None => WatchViolation::Gap {
                batch,
                missing,
                delivered,
            },
        }
    }
}

struct Checker<'a> {
    start: i64,
    /// Committed events with `revision >= start`, grouped by revision, in order.
    committed: Vec<(i64, Vec<&'a WatchedEvent>)>,
    /// Index into `committed` of the first revision not delivered yet.
    next: usize,
    /// The highest revision delivered, with its events.
    last_delivered: Option<(i64, Vec<WatchedEvent>)>,
    /// The highest revision delivered or announced by a progress notification.
    high_water: Option<i64>,
}

impl<'a> Checker<'a> {
    fn new(reference: &'a [WatchedEvent], start: i64) -> Self {
        let mut by_revision: BTreeMap<i64, Vec<&WatchedEvent>> = BTreeMap::new();
        for e in reference.iter().filter(|e| e.revision >= start) {
            by_revision.entry(e.revision).or_default().push(e);
        }
        Self {
            start,
            committed: by_revision.into_iter().collect(),
            next: 0,
            last_delivered: None,
            high_water: None,
        }
    }

    fn batch(&mut self, batch: usize, b: &WatchBatch) -> Result<(), WatchViolation> {
        for group in b.events.chunk_by(|x, y| x.revision == y.revision) {
            self.revision(batch, group)?;
        }
        if let Some(progress) = b.progress_revision {
            self.progress(batch, progress)?;
        }
        Ok(())
    }

    /// Checks the events of one revision that arrived together.
    fn revision(&mut self, batch: usize, group: &[WatchedEvent]) -> Result<(), WatchViolation> {
        let revision = group[0].revision;
        if revision < self.start {
            return Err(WatchViolation::BeforeStart {
                batch,
                event: group[0].clone(),
                start: self.start,
            });
        }
        if let Some((previous, delivered)) = &self.last_delivered {
            if revision < *previous {
                return Err(WatchViolation::OutOfOrder {
                    batch,
                    event: group[0].clone(),
                    previous: *previous,
                });
            }
            if revision == *previous {
                return Err(match group.iter().find(|e| delivered.contains(e)) {
                    Some(event) => WatchViolation::Duplicate {
                        batch,
                        event: event.clone(),
                    },
                    None => WatchViolation::SplitRevision {
                        batch,
                        revision,
                        expected: self.committed_at(revision).len(),
                        delivered: group.len(),
                    },
                });
            }
        }

        let index = self.committed.partition_point(|(r, _)| *r < revision);
        let committed = self.committed_at(revision);
        for (i, event) in group.iter().enumerate() {
            if group[..i].contains(event) {
                return Err(WatchViolation::Duplicate {
                    batch,
                    event: event.clone(),
                });
            }
            if !committed.contains(&event) {
                return Err(WatchViolation::Unexpected {
                    batch,
                    event: event.clone(),
                    committed: committed.into_iter().cloned().collect(),
                });
            }
        }
        if group.len() < committed.len() {
            return Err(WatchViolation::SplitRevision {
                batch,
                revision,
                expected: committed.len(),
                delivered: group.len(),
            });
        }
        if let Some((_, skipped)) = self.committed[self.next..index].first() {
            return Err(WatchViolation::Gap {
                batch,
                missing: skipped[0].clone(),
                delivered: revision,
            });
        }
        // A revision at or below an announced progress revision would have been reported as
        // skipped by that announcement already, so only ordering is left to track.
        self.next = index + 1;
        self.last_delivered = Some((revision, group.to_vec()));
        self.high_water = self.high_water.max(Some(revision));
        Ok(())
    }

    fn progress(&mut self, batch: usize, progress: i64) -> Result<(), WatchViolation> {
        if let Some(previous) = self.high_water.filter(|&p| progress < p) {
            return Err(WatchViolation::ProgressBackwards {
                batch,
                progress,
                previous,
            });
        }
        if let Some((_, missing)) = self
            .committed
            .get(self.next)
            .filter(|(r, _)| *r <= progress)
        {
            return Err(WatchViolation::ProgressSkipsEvent {
                batch,
                progress,
                missing: missing[0].clone(),
            });
        }
        self.high_water = Some(progress);
        Ok(())
    }

    fn committed_at(&self, revision: i64) -> Vec<&'a WatchedEvent> {
        let index = self.committed.partition_point(|(r, _)| *r < revision);
        match self.committed.get(index) {
            Some((r, events)) if *r == revision => events.clone(),
            _ => Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(revision: i64, key: &str, value: &str) -> WatchedEvent {
        WatchedEvent {
            revision,
            key: key.as_bytes().to_vec(),
            kind: EventKind::Put,
            value: value.as_bytes().to_vec(),
        }
    }

    fn delete(revision: i64, key: &str) -> WatchedEvent {
        WatchedEvent {
            revision,
            key: key.as_bytes().to_vec(),
            kind: EventKind::Delete,
            value: Vec::new(),
        }
    }

    /// Revisions 2..=7 under the prefix; revision 4 is a transaction touching two keys.
    fn reference() -> Vec<WatchedEvent> {
        vec![
            put(2, "/a", "1"),
            put(3, "/b", "1"),
            put(4, "/a", "2"),
            delete(4, "/b"),
            put(6, "/c", "1"),
            delete(7, "/a"),
        ]
    }

    fn batch(events: &[WatchedEvent]) -> WatchBatch {
        WatchBatch::events(events.to_vec())
    }

    #[test]
    fn a_complete_stream_passes() {
        let r = reference();
        let recording = [
            batch(&r[0..1]),
            batch(&r[1..4]),
            WatchBatch::progress(5),
            batch(&r[4..6]),
            WatchBatch::progress(9),
        ];
        assert_eq!(check_stream(&r, 1, &recording), Ok(()));
    }

    #[test]
    fn a_stream_that_stops_early_passes_up_to_what_it_saw() {
        let r = reference();
        assert_eq!(check_stream(&r, 3, &[batch(&r[1..2])]), Ok(()));
        assert_eq!(check_stream(&r, 3, &[]), Ok(()));
    }

    #[test]
    fn events_below_the_start_revision_are_a_violation() {
        let r = reference();
        let err = check_stream(&r, 3, &[batch(&r[0..2])]).unwrap_err();
        assert!(
            matches!(err, WatchViolation::BeforeStart { start: 3, .. }),
            "{err}"
        );
    }

    #[test]
    fn events_out_of_revision_order_are_a_violation() {
        let r = reference();
        let recording = [batch(&r[0..1]), batch(&r[2..4]), batch(&r[1..2])];
        let err = check_stream(&r, 1, &recording).unwrap_err();
        assert!(
            matches!(
                err,
                WatchViolation::OutOfOrder {
                    batch: 2,
                    previous: 4,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn events_out_of_revision_order_within_a_batch_are_a_violation() {
        let r = reference();
        let recording = [batch(&[r[0].clone(), r[4].clone(), r[1].clone()])];
        let err = check_stream(&r, 1, &recording).unwrap_err();
        assert_eq!(
            err,
            WatchViolation::OutOfOrder {
                batch: 0,
                event: put(3, "/b", "1"),
                previous: 6,
            }
        );
    }

    #[test]
    fn a_skipped_event_is_a_gap() {
        let r = reference();
        let recording = [batch(&r[0..1]), batch(&r[2..4])];
        let err = check_stream(&r, 1, &recording).unwrap_err();
        assert_eq!(
            err,
            WatchViolation::Gap {
                batch: 1,
                missing: put(3, "/b", "1"),
                delivered: 4,
            }
        );
        assert!(err.to_string().contains("skipped"), "{err}");
    }

    #[test]
    fn an_event_delivered_twice_is_a_duplicate() {
        let r = reference();
        let across_batches = [batch(&r[0..2]), batch(&r[1..2])];
        let err = check_stream(&r, 1, &across_batches).unwrap_err();
        assert!(
            matches!(err, WatchViolation::Duplicate { batch: 1, .. }),
            "{err}"
        );

        let within_a_batch = [batch(&[r[0].clone(), r[0].clone()])];
        let err = check_stream(&r, 1, &within_a_batch).unwrap_err();
        assert!(
            matches!(err, WatchViolation::Duplicate { batch: 0, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_revision_split_across_batches_is_a_violation() {
        let r = reference();
        let recording = [batch(&r[0..3]), batch(&r[3..4])];
        let err = check_stream(&r, 1, &recording).unwrap_err();
        assert_eq!(
            err,
            WatchViolation::SplitRevision {
                batch: 0,
                revision: 4,
                expected: 2,
                delivered: 1,
            }
        );
    }

    #[test]
    fn an_event_never_committed_is_unexpected() {
        let r = reference();
        let wrong_value = [batch(&[put(2, "/a", "9")])];
        let err = check_stream(&r, 1, &wrong_value).unwrap_err();
        assert!(
            matches!(err, WatchViolation::Unexpected { batch: 0, .. }),
            "{err}"
        );

        let no_such_revision = [batch(&[put(5, "/a", "1")])];
        let err = check_stream(&r, 5, &no_such_revision).unwrap_err();
        assert!(matches!(err, WatchViolation::Unexpected { .. }), "{err}");
    }

    #[test]
    fn a_progress_revision_going_backwards_is_a_violation() {
        let r = reference();
        let below_progress = [
            batch(&r[0..1]),
            WatchBatch::progress(3),
            WatchBatch::progress(2),
        ];
        let err = check_stream(&[r[0].clone()], 1, &below_progress).unwrap_err();
        assert_eq!(
            err,
            WatchViolation::ProgressBackwards {
                batch: 2,
                progress: 2,
                previous: 3,
            }
        );

        let below_events = [batch(&r[0..4]), WatchBatch::progress(3)];
        let err = check_stream(&r, 1, &below_events).unwrap_err();
        assert!(
            matches!(err, WatchViolation::ProgressBackwards { previous: 4, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_progress_revision_past_an_undelivered_event_is_a_violation() {
        let r = reference();
        // Revision 6 is announced as done, then its event arrives below it.
        let recording = [batch(&r[0..4]), WatchBatch::progress(6), batch(&r[4..5])];
        let err = check_stream(&r, 1, &recording).unwrap_err();
        assert_eq!(
            err,
            WatchViolation::ProgressSkipsEvent {
                batch: 1,
                progress: 6,
                missing: put(6, "/c", "1"),
            }
        );
    }

    #[test]
    fn a_progress_revision_on_an_event_batch_covers_that_batch() {
        let r = reference();
        let mut with_progress = batch(&r[0..2]);
        with_progress.progress_revision = Some(3);
        assert_eq!(check_stream(&r, 1, &[with_progress.clone()]), Ok(()));

        with_progress.progress_revision = Some(4);
        let err = check_stream(&r, 1, &[with_progress]).unwrap_err();
        assert!(
            matches!(err, WatchViolation::ProgressSkipsEvent { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_watch_resumed_at_the_next_revision_checks_as_one_stream() {
        let r = reference();
        let first = [batch(&r[0..2]), WatchBatch::progress(3)];
        let resume = resume_revision(1, &first);
        assert_eq!(resume, 4);
        let second = [batch(&r[2..4]), batch(&r[4..6])];
        assert_eq!(check_resumed(&r, 1, &[&first, &second]), Ok(()));
    }

    #[test]
    fn a_resumed_watch_that_repeats_the_last_revision_is_a_duplicate() {
        let r = reference();
        let first = [batch(&r[0..4])];
        let second = [batch(&r[2..4]), batch(&r[4..6])];
        let err = check_resumed(&r, 1, &[&first, &second]).unwrap_err();
        assert!(
            matches!(err, WatchViolation::Duplicate { batch: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn a_resumed_watch_on_a_replica_that_lost_events_has_a_gap() {
        let r = reference();
        let first = [batch(&r[0..2])];
        let second = [batch(&r[4..6])];
        let err = check_resumed(&r, 1, &[&first, &second]).unwrap_err();
        assert!(
            matches!(
                err,
                WatchViolation::Gap {
                    batch: 1,
                    delivered: 6,
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn resume_revision_of_an_empty_recording_is_the_start() {
        assert_eq!(resume_revision(7, &[]), 7);
        assert_eq!(resume_revision(7, &[WatchBatch::progress(3)]), 7);
    }
}
