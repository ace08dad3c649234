//! Back-off per key (a pod's container, or its image): how long a crashing container or a
//! failing image pull waits before the next try. Kubernetes' rules: the first failure is
//! retried at once; each later one waits `initial`, doubling up to `max`; a key quiet for
//! `reset_after` starts over. Pure: times are passed in, nothing sleeps.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    pub initial: Duration,
    pub max: Duration,
    pub reset_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial: Duration::from_secs(10),
            max: Duration::from_secs(300),
            reset_after: Duration::from_secs(600),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    delay: Duration,
    updated: SystemTime,
}

#[derive(Debug, Clone, Default)]
pub struct Backoff {
    config: BackoffConfig,
    entries: HashMap<String, Entry>,
}

impl Backoff {
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            entries: HashMap::new(),
        }
    }

    fn live(&self, key: &str, now: SystemTime) -> Option<Entry> {
        let e = *self.entries.get(key)?;
        let quiet = now.duration_since(e.updated).unwrap_or_default();
        (quiet < self.config.reset_after).then_some(e)
    }

    /// How much longer `key` must wait when its last failure was at `failed_at`, or `None`
    /// when it may try now.
    pub fn remaining(&self, key: &str, failed_at: SystemTime, now: SystemTime) -> Option<Duration> {
        let e = self.live(key, now)?;
        let since = now.duration_since(failed_at).unwrap_or_default();
        e.delay.checked_sub(since).filter(|d| !d.is_zero())
    }

    /// Records a try of `key` at `now`; returns the delay the next failure will wait.
    pub fn next(&mut self, key: &str, now: SystemTime) -> Duration {
        let delay = match self.live(key, now) {
            None => self.config.initial,
            Some(e) => (e.delay * 2).min(self.config.max),
        };
        self.entries.insert(
            key.to_string(),
            Entry {
                delay,
                updated: now,
            },
        );
        delay
    }

    /// The delay `key` is at (for messages).
    pub fn delay(&self, key: &str, now: SystemTime) -> Option<Duration> {
        self.live(key, now).map(|e| e.delay)
    }

    /// Forgets every key starting with `prefix` (a deleted pod's).
    pub fn forget_prefix(&mut self, prefix: &str) {
        self.entries.retain(|k, _| !k.starts_with(prefix));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn a_crashing_container_waits_ten_seconds_doubling_to_five_minutes() {
        let mut b = Backoff::new(BackoffConfig::default());
        // (crash at, retried when allowed at) → the delays seen between crash and retry.
        let mut now = 1000;
        let mut waits = Vec::new();
        for _ in 0..8 {
            let failed = now;
            let wait = b
                .remaining("p/c", at(failed), at(now))
                .map_or(0, |d| d.as_secs());
            waits.push(wait);
            now += wait;
            assert_eq!(b.remaining("p/c", at(failed), at(now)), None);
            b.next("p/c", at(now));
            now += 1; // runs a second, then crashes again
        }
        assert_eq!(waits, [0, 10, 20, 40, 80, 160, 300, 300]);
    }

    #[test]
    fn a_key_quiet_for_ten_minutes_starts_over() {
        let mut b = Backoff::new(BackoffConfig::default());
        b.next("k", at(0));
        b.next("k", at(10));
        assert_eq!(b.delay("k", at(11)), Some(Duration::from_secs(20)));
        assert_eq!(b.remaining("k", at(11), at(11 + 599)), None);
        assert_eq!(
            b.remaining("k", at(700), at(700)),
            None,
            "reset after 10 minutes"
        );
        assert_eq!(b.next("k", at(700)), Duration::from_secs(10));
    }

    #[test]
    fn remaining_counts_from_the_failure() {
        let cases = [
            // (delay reached, failed at, now, remaining)
            (0, 100, 100, None),
            (1, 100, 100, Some(10)),
            (1, 100, 104, Some(6)),
            (1, 100, 110, None),
            (2, 100, 115, Some(5)),
        ];
        for (tries, failed, now, want) in cases {
            let mut b = Backoff::new(BackoffConfig::default());
            for _ in 0..tries {
                b.next("k", at(failed));
            }
            assert_eq!(
                b.remaining("k", at(failed), at(now)).map(|d| d.as_secs()),
                want,
                "{tries} tries, failed at {failed}, now {now}"
            );
        }
    }

    #[test]
    fn forgetting_a_pod_forgets_its_containers_only() {
        let mut b = Backoff::new(BackoffConfig::default());
        b.next("uid1/a", at(0));
        b.next("uid2/a", at(0));
        b.forget_prefix("uid1/");
        assert_eq!(b.delay("uid1/a", at(1)), None);
        assert!(b.delay("uid2/a", at(1)).is_some());
    }
}
