//! Linearizability checking of recorded client histories against a sequential [`Model`].
//!
//! This module owns the search: Wing & Gong's backtracking over the operations that may take
//! effect next, with Lowe's memoization of `(set of linearized operations, model state)` so that
//! no configuration is explored twice, and P-compositionality: the history is partitioned per key
//! and each key is checked on its own. It does no I/O and never panics on a malformed history;
//! every check runs within a [`Budget`] so a pathological history ends in
//! [`CheckResult::Timeout`] instead of hanging the test.
//!
//! An operation whose output was never observed (the request timed out or failed ambiguously) may
//! have taken effect at any point after its call, or never: it is given an infinite return time and
//! may be linearized with any output the model allows, or left out.

use std::collections::{BTreeMap, HashSet};
use std::fmt::{self, Debug, Write as _};
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

/// A sequential specification: the states an object can be in and which operations are legal in
/// each of them.
pub trait Model {
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug;

    /// The state before any operation.
    fn init() -> Self::State;

    /// The state after `input` was applied to `state` and answered with `output`, or `None` when
    /// that answer is impossible in `state`.
    fn step(state: &Self::State, input: &Self::Input, output: &Self::Output)
        -> Option<Self::State>;

    /// Every state `input` may lead to from `state` when its output was never observed.
    fn step_unobserved(state: &Self::State, input: &Self::Input) -> Vec<Self::State>;

    /// Whether `input` never changes the state. Unobserved read-only operations are dropped before
    /// the search since they can neither constrain nor change anything.
    fn is_read_only(_input: &Self::Input) -> bool {
        false
    }
}

/// One client request as recorded by the test.
pub struct Operation<M: Model> {
    pub client_id: u64,
    pub key: Vec<u8>,
    pub input: M::Input,
    /// `None` when the request failed ambiguously: it may or may not have taken effect.
    pub output: Option<M::Output>,
    /// When the request was sent, on any clock shared by all clients (e.g. nanoseconds since the
    /// test started).
    pub call: u64,
    /// When the response arrived; `None` when it never did. Ignored when `output` is `None`.
    pub ret: Option<u64>,
}

// Written by hand because derives would demand `M: Clone + Debug` of the model marker type.
impl<M: Model> Clone for Operation<M> {
    fn clone(&self) -> Self {
        Self {
            client_id: self.client_id,
            key: self.key.clone(),
            input: self.input.clone(),
            output: self.output.clone(),
            call: self.call,
            ret: self.ret,
        }
    }
}

impl<M: Model> Debug for Operation<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Operation")
            .field("client_id", &self.client_id)
            .field("key", &String::from_utf8_lossy(&self.key))
            .field("input", &self.input)
            .field("output", &self.output)
            .field("call", &self.call)
            .field("ret", &self.ret)
            .finish()
    }
}

/// Limits on how long [`check_with_budget`] may search, over all keys together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Wall-clock time.
    pub time: Duration,
    /// Number of attempts to linearize one operation in one configuration.
    pub steps: u64,
}

impl Default for Budget {
    fn default() -> Self {
        Self {
            time: Duration::from_secs(10),
            steps: 50_000_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CheckResult {
    /// Every key's history is linearizable.
    Ok,
    /// The history of `key` is not linearizable; `detail` shows how far the search got.
    Illegal { key: Vec<u8>, detail: String },
    /// The budget ran out before an answer was found (and no key was found illegal so far).
    Timeout,
}

impl CheckResult {
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckResult::Ok)
    }
}

impl fmt::Display for CheckResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckResult::Ok => f.write_str("linearizable"),
            CheckResult::Illegal { key, detail } => write!(
                f,
                "history of key {:?} is not linearizable: {detail}",
                String::from_utf8_lossy(key)
            ),
            CheckResult::Timeout => f.write_str("linearizability check ran out of budget"),
        }
    }
}

/// Checks `history` with the default [`Budget`].
pub fn check<M: Model>(history: &[Operation<M>]) -> CheckResult {
    check_with_budget(history, Budget::default())
}

/// Checks that `history` is linearizable with respect to `M`, one key at a time.
///
/// An illegal key is reported even if another key ran out of budget first.
pub fn check_with_budget<M: Model>(history: &[Operation<M>], budget: Budget) -> CheckResult {
    let mut partitions: BTreeMap<&[u8], Vec<&Operation<M>>> = BTreeMap::new();
    for op in history {
        partitions.entry(op.key.as_slice()).or_default().push(op);
    }
    let mut limits = Limits {
        deadline: Instant::now() + budget.time,
        steps_left: budget.steps,
        exhausted: false,
    };
    let mut timed_out = false;
    for (key, ops) in partitions {
        match check_partition::<M>(&ops, &mut limits) {
            Outcome::Linearizable => {}
            Outcome::Illegal(detail) => {
                return CheckResult::Illegal {
                    key: key.to_vec(),
                    detail,
                }
            }
            Outcome::Timeout => timed_out = true,
        }
    }
    if timed_out {
        CheckResult::Timeout
    } else {
        CheckResult::Ok
    }
}

/// A compare-and-set register per key, as the store offers: the state is the key's value, `None`
/// while the key is absent.
pub struct CasRegister<V = Vec<u8>>(PhantomData<V>);

pub type CasOperation<V = Vec<u8>> = Operation<CasRegister<V>>;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CasInput<V> {
    Read,
    Write(V),
    /// Writes `new` if the current value equals `expected`; `expected == None` means "absent".
    Cas {
        expected: Option<V>,
        new: V,
    },
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CasOutput<V> {
    ReadOk(Option<V>),
    WriteOk,
    /// Whether the compare succeeded and the write took effect.
    CasOk(bool),
    DeleteOk,
}

impl<V: Clone + Eq + Hash + Debug> Model for CasRegister<V> {
    type State = Option<V>;
    type Input = CasInput<V>;
    type Output = CasOutput<V>;

    fn init() -> Option<V> {
        None
    }

    fn step(state: &Option<V>, input: &CasInput<V>, output: &CasOutput<V>) -> Option<Option<V>> {
        match (input, output) {
            (CasInput::Read, CasOutput::ReadOk(seen)) => (seen == state).then(|| state.clone()),
            (CasInput::Write(v), CasOutput::WriteOk) => Some(Some(v.clone())),
            (CasInput::Cas { expected, new }, CasOutput::CasOk(true)) => {
                (expected == state).then(|| Some(new.clone()))
            }
            (CasInput::Cas { expected, .. }, CasOutput::CasOk(false)) => {
                (expected != state).then(|| state.clone())
            }
            (CasInput::Delete, CasOutput::DeleteOk) => Some(None),
            _ => None,
        }
    }

    fn step_unobserved(state: &Option<V>, input: &CasInput<V>) -> Vec<Option<V>> {
        let next = match input {
            CasInput::Read => state.clone(),
            CasInput::Write(v) => Some(v.clone()),
            CasInput::Cas { expected, new } if expected == state => Some(new.clone()),
            CasInput::Cas { .. } => state.clone(),
            CasInput::Delete => None,
        };
        vec![next]
    }

    fn is_read_only(input: &CasInput<V>) -> bool {
        matches!(input, CasInput::Read)
    }
}

enum Outcome {
    Linearizable,
    Illegal(String),
    Timeout,
}

struct Limits {
    deadline: Instant,
    steps_left: u64,
    exhausted: bool,
}

impl Limits {
    /// Takes one step from the budget; false once it is spent.
    fn take_step(&mut self) -> bool {
        if self.exhausted || self.steps_left == 0 {
            self.exhausted = true;
            return false;
        }
        self.steps_left -= 1;
        // Reading the clock on every step would dominate small searches.
        if self.steps_left.is_multiple_of(1024) && Instant::now() >= self.deadline {
            self.exhausted = true;
        }
        !self.exhausted
    }
}

/// An operation prepared for the search.
struct Entry<'a, M: Model> {
    op: &'a Operation<M>,
    call: u64,
    /// `u64::MAX` when the response was never observed.
    ret: u64,
    /// Whether the operation must be linearized: its output was observed.
    required: bool,
}

#[derive(Clone, PartialEq, Eq, Hash)]
struct Bitset(Vec<u64>);

impl Bitset {
    fn new(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }
    fn contains(&self, i: usize) -> bool {
        self.0[i / 64] & (1 << (i % 64)) != 0
    }
    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn remove(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// One configuration on the search path, with the position of the next candidate to try.
struct Frame<S> {
    state: S,
    /// The entry whose linearization led here; `None` for the root.
    via: Option<usize>,
    /// Entries called after this instant cannot go next: an unlinearized entry returned before.
    horizon: u64,
    cursor: usize,
    /// Successor states of entry `pending_entry` not tried yet.
    pending: Vec<S>,
    pending_entry: usize,
}

fn check_partition<M: Model>(ops: &[&Operation<M>], limits: &mut Limits) -> Outcome {
    let mut entries: Vec<Entry<'_, M>> = Vec::with_capacity(ops.len());
    for &op in ops {
        match (&op.output, op.ret) {
            (None, _) if M::is_read_only(&op.input) => continue,
            (Some(_), Some(ret)) if ret < op.call => {
                return Outcome::Illegal(format!(
                    "malformed history: {op:?} returns before its call"
                ))
            }
            _ => {}
        }
        let ret = match (&op.output, op.ret) {
            (Some(_), Some(ret)) => ret,
            _ => u64::MAX,
        };
        entries.push(Entry {
            op,
            call: op.call,
            ret,
            required: op.output.is_some(),
        });
    }
    entries.sort_by_key(|e| (e.call, e.ret));
    let required_total = entries.iter().filter(|e| e.required).count();
    if required_total == 0 {
        return Outcome::Linearizable;
    }

    let mut linearized = Bitset::new(entries.len());
    let mut required_done = 0;
    let mut visited: HashSet<(Bitset, M::State)> = HashSet::new();
    let mut deepest = Deepest::<M::State> {
        depth: 0,
        path: Vec::new(),
        state: M::init(),
        linearized: linearized.clone(),
    };
    let mut stack = vec![new_frame(&entries, &linearized, M::init(), None)];

    while let Some(frame) = stack.last_mut() {
        let next = loop {
            if let Some(state) = frame.pending.pop() {
                break Some((frame.pending_entry, state));
            }
            let j = frame.cursor;
            if j >= entries.len() || entries[j].call > frame.horizon {
                break None;
            }
            frame.cursor += 1;
            if linearized.contains(j) {
                continue;
            }
            let op = entries[j].op;
            frame.pending = match &op.output {
                Some(output) => M::step(&frame.state, &op.input, output)
                    .into_iter()
                    .collect(),
                None => M::step_unobserved(&frame.state, &op.input),
            };
            frame.pending_entry = j;
        };

        let Some((j, state)) = next else {
            if let Some(via) = stack.pop().and_then(|f| f.via) {
                linearized.remove(via);
                if entries[via].required {
                    required_done -= 1;
                }
            }
            continue;
        };
        if !limits.take_step() {
            return Outcome::Timeout;
        }
        linearized.insert(j);
        if !visited.insert((linearized.clone(), state.clone())) {
            linearized.remove(j);
            continue;
        }
        if entries[j].required {
            required_done += 1;
            if required_done == required_total {
                return Outcome::Linearizable;
            }
        }
        if stack.len() > deepest.depth {
            deepest.depth = stack.len();
            deepest.path = stack.iter().filter_map(|f| f.via).chain([j]).collect();
            deepest.state = state.clone();
            deepest.linearized = linearized.clone();
        }
        stack.push(new_frame(&entries, &linearized, state, Some(j)));
    }
    Outcome::Illegal(describe_failure(&entries, &deepest))
}

fn new_frame<M: Model>(
    entries: &[Entry<'_, M>],
    linearized: &Bitset,
    state: M::State,
    via: Option<usize>,
) -> Frame<M::State> {
    let unlinearized = || (0..entries.len()).filter(|&i| !linearized.contains(i));
    Frame {
        state,
        via,
        horizon: unlinearized()
            .map(|i| entries[i].ret)
            .min()
            .unwrap_or(u64::MAX),
        cursor: unlinearized().next().unwrap_or(entries.len()),
        pending: Vec::new(),
        pending_entry: 0,
    }
}

/// The configuration with the most operations linearized, kept to explain a failure.
struct Deepest<S> {
    depth: usize,
    path: Vec<usize>,
    state: S,
    linearized: Bitset,
}

fn describe_failure<M: Model>(entries: &[Entry<'_, M>], deepest: &Deepest<M::State>) -> String {
    const SHOWN: usize = 8;
    let required_total = entries.iter().filter(|e| e.required).count();
    let required_done = deepest
        .path
        .iter()
        .filter(|&&i| entries[i].required)
        .count();
    let mut out = format!(
        "at most {required_done} of the {required_total} completed operations can be linearized; \
         after them the state is {:?}",
        deepest.state
    );
    let skipped = deepest.path.len().saturating_sub(SHOWN);
    let _ = write!(out, "\nlast linearized ({skipped} earlier not shown):");
    for &i in &deepest.path[skipped..] {
        let _ = write!(out, "\n  {}", describe_entry(&entries[i]));
    }
    let frame = new_frame(entries, &deepest.linearized, deepest.state.clone(), None);
    let _ = write!(out, "\nnone of these can take effect next:");
    let candidates = (frame.cursor..entries.len())
        .filter(|&i| !deepest.linearized.contains(i))
        .take_while(|&i| entries[i].call <= frame.horizon);
    for i in candidates.take(SHOWN) {
        let _ = write!(out, "\n  {}", describe_entry(&entries[i]));
    }
    out
}

fn describe_entry<M: Model>(entry: &Entry<'_, M>) -> String {
    let op = entry.op;
    let output = match &op.output {
        Some(output) => format!("{output:?}"),
        None => "unknown".to_string(),
    };
    let ret = match entry.ret {
        u64::MAX => "never".to_string(),
        ret => ret.to_string(),
    };
    format!(
        "client {} {:?} -> {output} [call {}, return {ret}]",
        op.client_id, op.input, op.call
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Vec<u8> {
        s.as_bytes().to_vec()
    }

    fn op(
        client_id: u64,
        input: CasInput<Vec<u8>>,
        output: Option<CasOutput<Vec<u8>>>,
        call: u64,
        ret: Option<u64>,
    ) -> CasOperation {
        Operation {
            client_id,
            key: v("k"),
            input,
            output,
            call,
            ret,
        }
    }

    fn write(client: u64, value: &str, call: u64, ret: u64) -> CasOperation {
        op(
            client,
            CasInput::Write(v(value)),
            Some(CasOutput::WriteOk),
            call,
            Some(ret),
        )
    }

    fn write_timed_out(client: u64, value: &str, call: u64) -> CasOperation {
        op(client, CasInput::Write(v(value)), None, call, None)
    }

    fn read(client: u64, seen: Option<&str>, call: u64, ret: u64) -> CasOperation {
        op(
            client,
            CasInput::Read,
            Some(CasOutput::ReadOk(seen.map(v))),
            call,
            Some(ret),
        )
    }

    fn cas(
        client: u64,
        expected: Option<&str>,
        new: &str,
        ok: bool,
        call: u64,
        ret: u64,
    ) -> CasOperation {
        op(
            client,
            CasInput::Cas {
                expected: expected.map(v),
                new: v(new),
            },
            Some(CasOutput::CasOk(ok)),
            call,
            Some(ret),
        )
    }

    fn on_key(mut op: CasOperation, key: &str) -> CasOperation {
        op.key = v(key);
        op
    }

    fn assert_illegal(history: &[CasOperation]) -> String {
        match check(history) {
            CheckResult::Illegal { key, detail } => {
                assert_eq!(key, v("k"));
                detail
            }
            other => panic!("expected an illegal history, got {other:?}"),
        }
    }

    #[test]
    fn cas_register_steps_follow_the_table() {
        type R = CasRegister<u8>;
        type Case = (Option<u8>, CasInput<u8>, CasOutput<u8>, Option<Option<u8>>);
        let cases: Vec<Case> = vec![
            (None, CasInput::Read, CasOutput::ReadOk(None), Some(None)),
            (None, CasInput::Read, CasOutput::ReadOk(Some(1)), None),
            (
                Some(1),
                CasInput::Read,
                CasOutput::ReadOk(Some(1)),
                Some(Some(1)),
            ),
            (
                Some(1),
                CasInput::Write(2),
                CasOutput::WriteOk,
                Some(Some(2)),
            ),
            (
                None,
                CasInput::Cas {
                    expected: None,
                    new: 1,
                },
                CasOutput::CasOk(true),
                Some(Some(1)),
            ),
            (
                Some(1),
                CasInput::Cas {
                    expected: None,
                    new: 2,
                },
                CasOutput::CasOk(true),
                None,
            ),
            (
                Some(1),
                CasInput::Cas {
                    expected: None,
                    new: 2,
                },
                CasOutput::CasOk(false),
                Some(Some(1)),
            ),
            (
                Some(1),
                CasInput::Cas {
                    expected: Some(1),
                    new: 2,
                },
                CasOutput::CasOk(false),
                None,
            ),
            (Some(1), CasInput::Delete, CasOutput::DeleteOk, Some(None)),
            (Some(1), CasInput::Write(2), CasOutput::CasOk(true), None),
        ];
        for (state, input, output, want) in cases {
            assert_eq!(
                R::step(&state, &input, &output),
                want,
                "{state:?} {input:?} {output:?}"
            );
        }
    }

    #[test]
    fn an_empty_history_is_linearizable() {
        assert_eq!(check::<CasRegister>(&[]), CheckResult::Ok);
    }

    #[test]
    fn sequential_writes_and_reads_are_linearizable() {
        let history = [
            read(1, None, 0, 1),
            write(1, "a", 2, 3),
            read(2, Some("a"), 4, 5),
            cas(2, Some("a"), "b", true, 6, 7),
            cas(1, Some("a"), "c", false, 8, 9),
            read(1, Some("b"), 10, 11),
        ];
        assert_eq!(check(&history), CheckResult::Ok);
    }

    #[test]
    fn concurrent_operations_may_take_effect_in_either_order() {
        // The read overlaps both writes, so it may see either of them, in either order.
        let history = [
            write(1, "a", 0, 10),
            write(2, "b", 1, 11),
            read(3, Some("a"), 2, 12),
            read(3, Some("a"), 13, 14),
        ];
        assert_eq!(check(&history), CheckResult::Ok);
    }

    #[test]
    fn a_stale_read_after_a_completed_write_is_illegal() {
        let history = [
            write(1, "a", 0, 1),
            write(1, "b", 2, 3),
            read(2, Some("a"), 4, 5),
        ];
        let detail = assert_illegal(&history);
        assert!(detail.contains("ReadOk"), "{detail}");
    }

    #[test]
    fn two_cas_from_the_same_expected_value_cannot_both_succeed() {
        let history = [
            write(1, "a", 0, 1),
            cas(2, Some("a"), "b", true, 10, 20),
            cas(3, Some("a"), "c", true, 15, 25),
        ];
        assert_illegal(&history);
    }

    #[test]
    fn a_read_of_a_value_never_written_is_illegal() {
        let history = [write(1, "a", 0, 1), read(2, Some("z"), 2, 3)];
        assert_illegal(&history);
    }

    #[test]
    fn a_read_cannot_see_a_write_that_starts_after_it_returned() {
        let history = [read(1, Some("a"), 0, 1), write(2, "a", 2, 3)];
        assert_illegal(&history);
    }

    #[test]
    fn a_timed_out_write_that_later_becomes_visible_is_linearizable() {
        let history = [
            write(1, "a", 0, 1),
            write_timed_out(2, "b", 2),
            read(3, Some("a"), 100, 101),
            read(3, Some("b"), 1_000, 1_001),
        ];
        assert_eq!(check(&history), CheckResult::Ok);
    }

    #[test]
    fn a_timed_out_write_that_is_never_seen_is_linearizable() {
        let history = [
            write(1, "a", 0, 1),
            write_timed_out(2, "b", 2),
            read(3, Some("a"), 10, 11),
            read(3, Some("a"), 12, 13),
        ];
        assert_eq!(check(&history), CheckResult::Ok);
    }

    #[test]
    fn a_timed_out_write_cannot_take_effect_before_its_call() {
        let history = [read(1, Some("b"), 0, 1), write_timed_out(2, "b", 5)];
        assert_illegal(&history);
    }

    #[test]
    fn a_timed_out_write_cannot_be_undone_once_seen() {
        let history = [
            write(1, "a", 0, 1),
            write_timed_out(2, "b", 2),
            read(3, Some("b"), 10, 11),
            read(3, Some("a"), 12, 13),
        ];
        assert_illegal(&history);
    }

    #[test]
    fn a_timed_out_cas_takes_effect_only_if_its_compare_holds() {
        let never_applies = [
            write(1, "a", 0, 1),
            op(
                2,
                CasInput::Cas {
                    expected: Some(v("x")),
                    new: v("b"),
                },
                None,
                2,
                None,
            ),
            read(3, Some("b"), 10, 11),
        ];
        assert_illegal(&never_applies);

        let applies = [
            write(1, "a", 0, 1),
            op(
                2,
                CasInput::Cas {
                    expected: Some(v("a")),
                    new: v("b"),
                },
                None,
                2,
                Some(3),
            ),
            read(3, Some("b"), 10, 11),
        ];
        assert_eq!(check(&applies), CheckResult::Ok);
    }

    #[test]
    fn failed_reads_are_ignored() {
        let history = [
            write(1, "a", 0, 1),
            op(2, CasInput::Read, None, 2, None),
            read(3, Some("a"), 10, 11),
        ];
        assert_eq!(check(&history), CheckResult::Ok);
    }

    #[test]
    fn keys_are_checked_independently() {
        let legal = [
            on_key(write(1, "a", 0, 1), "x"),
            on_key(read(2, None, 2, 3), "y"),
            on_key(read(2, Some("a"), 4, 5), "x"),
        ];
        assert_eq!(check(&legal), CheckResult::Ok);

        let illegal = [
            on_key(write(1, "a", 0, 1), "x"),
            on_key(read(2, Some("a"), 2, 3), "y"),
        ];
        match check(&illegal) {
            CheckResult::Illegal { key, .. } => assert_eq!(key, v("y")),
            other => panic!("expected key y to be illegal, got {other:?}"),
        }
    }

    #[test]
    fn an_operation_returning_before_its_call_is_reported() {
        let detail = assert_illegal(&[write(1, "a", 5, 4)]);
        assert!(detail.contains("malformed"), "{detail}");
    }

    #[test]
    fn a_spent_budget_ends_in_timeout() {
        let history = [
            write(1, "a", 0, 10),
            write(2, "b", 1, 11),
            read(3, Some("b"), 20, 21),
        ];
        let budget = Budget {
            time: Duration::from_secs(10),
            steps: 1,
        };
        assert_eq!(check_with_budget(&history, budget), CheckResult::Timeout);
    }

    /// xorshift64*: enough randomness for generating histories without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    enum Phase {
        Idle,
        Called(CasOperation),
        Applied(CasOperation),
    }

    /// Simulates `clients` clients against a sequential register per key: each request is called,
    /// takes effect atomically at some later tick and returns later still, so intervals overlap
    /// but the history is linearizable by construction. Some responses are lost.
    fn simulated_history(
        seed: u64,
        keys: u64,
        ops_per_key: u64,
        clients: usize,
    ) -> Vec<CasOperation> {
        let mut rng = Rng(seed);
        let mut registers: BTreeMap<Vec<u8>, Option<Vec<u8>>> = BTreeMap::new();
        let mut phases: Vec<Phase> = (0..clients).map(|_| Phase::Idle).collect();
        let mut history = Vec::new();
        let mut started = 0;
        let mut tick = 0;
        while started < keys * ops_per_key || phases.iter().any(|p| !matches!(p, Phase::Idle)) {
            tick += 1;
            let client = rng.below(clients as u64) as usize;
            phases[client] = match std::mem::replace(&mut phases[client], Phase::Idle) {
                Phase::Idle if started < keys * ops_per_key => {
                    started += 1;
                    let key = format!("key-{}", rng.below(keys)).into_bytes();
                    let value = |rng: &mut Rng| vec![b'0' + rng.below(4) as u8];
                    let input = match rng.below(10) {
                        0..=3 => CasInput::Read,
                        4..=5 => CasInput::Write(value(&mut rng)),
                        6 => CasInput::Delete,
                        _ => CasInput::Cas {
                            expected: (rng.below(4) != 0).then(|| value(&mut rng)),
                            new: value(&mut rng),
                        },
                    };
                    Phase::Called(Operation {
                        client_id: client as u64,
                        key,
                        input,
                        output: None,
                        call: tick,
                        ret: None,
                    })
                }
                Phase::Idle => Phase::Idle,
                Phase::Called(mut op) => {
                    // A request lost before it took effect.
                    if rng.below(100) == 0 {
                        history.push(op);
                        Phase::Idle
                    } else {
                        let state = registers.entry(op.key.clone()).or_default();
                        let output = match &op.input {
                            CasInput::Read => CasOutput::ReadOk(state.clone()),
                            CasInput::Write(v) => {
                                *state = Some(v.clone());
                                CasOutput::WriteOk
                            }
                            CasInput::Cas { expected, new } => {
                                let ok = expected == state;
                                if ok {
                                    *state = Some(new.clone());
                                }
                                CasOutput::CasOk(ok)
                            }
                            CasInput::Delete => {
                                *state = None;
                                CasOutput::DeleteOk
                            }
                        };
                        op.output = Some(output);
                        Phase::Applied(op)
                    }
                }
                Phase::Applied(mut op) => {
                    // A response lost after the request took effect.
                    if rng.below(100) == 0 {
                        op.output = None;
                    } else {
                        op.ret = Some(tick);
                    }
                    history.push(op);
                    Phase::Idle
                }
            };
        }
        history
    }

    #[test]
    fn a_simulated_history_of_five_keys_and_eight_clients_checks_quickly() {
        for seed in [1, 2, 3] {
            let history = simulated_history(seed, 5, 300, 8);
            assert_eq!(history.len(), 1500);
            let started = Instant::now();
            let result = check(&history);
            assert_eq!(result, CheckResult::Ok, "seed {seed}");
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "seed {seed} took {:?}",
                started.elapsed()
            );
        }
    }

    #[test]
    fn a_corrupted_simulated_history_is_illegal() {
        let mut history = simulated_history(7, 5, 300, 8);
        let victim = history
            .iter_mut()
            .find(|op| matches!(op.output, Some(CasOutput::ReadOk(_))))
            .expect("a read in the history");
        victim.output = Some(CasOutput::ReadOk(Some(v("never written"))));
        assert!(matches!(check(&history), CheckResult::Illegal { .. }));
    }
}
