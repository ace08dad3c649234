//! One resource's list-then-watch, as an explicit state machine.
//!
//! ```text
//!   Empty ──Init──▶ Listing{page…} ──InitApply × n──▶ (next page…) ──InitDone──▶ Listed{rv}
//!     ▲                                                                            │ watch from rv
//!     │ 410 Gone (compacted, or too slow)                                          ▼
//!     └────────────────────────────────────────────────────────────────────── Watching{watch}
//!                                                          Apply / Delete / Bookmark ↺
//! ```
//!
//! Each [`Watcher::step`] makes one transition and returns one [`Event`]. The first list
//! asks for resourceVersion "0" (any replica's state, served from the apiserver's cache,
//! as informers ask); a relist after 410 asks for the newest state (linearizable), so a
//! relist never goes back in time. Lists are paged. The watch starts from the list's
//! resourceVersion, with bookmarks; [`rkube_client::Watch`] already resumes from the last
//! delivered resourceVersion on another apiserver when one dies, so events are neither
//! lost nor repeated across that. When resuming is impossible (410), the watcher starts
//! over with a new list, whose events the reflector store diffs against what it holds.
//!
//! Every error is retryable and leaves the state where a retry makes sense (a failed list
//! page restarts the list; a failed watch open keeps the list's resourceVersion); the
//! caller decides how long to wait ([`Backoff`]).

use std::collections::VecDeque;
use std::time::Duration;

use rkube_client::{Client, Gvr, ListParams, TypedEvent, TypedWatch, WatchParams};

use crate::object::Resource;

/// What one step of the watcher produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Event<K> {
    /// A (re)list begins: the `InitApply` objects that follow replace everything known.
    Init,
    /// One object of the list.
    InitApply(K),
    /// The list is complete; it showed the state as of `resource_version`.
    InitDone { resource_version: String },
    /// An object was added or modified.
    Apply(K),
    /// An object was deleted (its last state).
    Delete(K),
    /// Nothing changed up to `resource_version`.
    Bookmark { resource_version: String },
}

/// Why a step failed. All of them are retryable.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("listing {resource} failed")]
    ListFailed {
        resource: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("starting a watch of {resource} failed")]
    WatchStartFailed {
        resource: String,
        #[source]
        source: rkube_client::Error,
    },
    #[error("the watch of {resource} failed")]
    WatchFailed {
        resource: String,
        #[source]
        source: rkube_client::Error,
    },
}

/// Which objects a watcher lists and watches.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Config {
    /// "" = every namespace (or a cluster-scoped resource).
    pub namespace: String,
    pub label_selector: String,
    pub field_selector: String,
    /// Objects per list page (0 = unpaged).
    pub page_size: i64,
}

impl Config {
    pub fn new() -> Self {
        Config {
            page_size: 500,
            ..Default::default()
        }
    }
}

enum State<K> {
    Empty,
    Listing {
        page: VecDeque<K>,
        continue_token: Option<String>,
        resource_version: String,
    },
    Listed {
        resource_version: String,
    },
    Watching {
        watch: TypedWatch<K>,
    },
}

/// The list-then-watch state machine of one resource; see the module documentation.
pub struct Watcher<K> {
    client: Client,
    gvr: Gvr,
    config: Config,
    state: State<K>,
    /// Whether a list has completed before (relists read the newest state).
    listed_once: bool,
    relists: u64,
}

impl<K: Resource> Watcher<K> {
    pub fn new(client: Client, config: Config) -> Self {
        Watcher {
            client,
            gvr: Gvr::of::<K>(),
            config,
            state: State::Empty,
            listed_once: false,
            relists: 0,
        }
    }

    /// How many lists have started (the first one included).
    pub fn lists(&self) -> u64 {
        self.relists
    }

    /// The apiserver the watch currently streams from (`None` while listing).
    pub fn endpoint(&self) -> Option<String> {
        match &self.state {
            State::Watching { watch } => watch.raw().endpoint(),
            _ => None,
        }
    }

    fn resource(&self) -> String {
        self.gvr.resource.clone()
    }

    fn list_params(&self, continue_token: Option<&str>) -> ListParams {
        ListParams {
            label_selector: self.config.label_selector.clone(),
            field_selector: self.config.field_selector.clone(),
            limit: self.config.page_size,
            continue_token: continue_token.unwrap_or_default().to_string(),
            resource_version: if self.listed_once { "" } else { "0" }.to_string(),
        }
    }

    async fn list_page(&mut self, continue_token: Option<&str>) -> Result<(), Error> {
        let api = rkube_client::Api::<K>::within(&self.client, &self.config.namespace);
        let params = self.list_params(continue_token);
        let page = api.list(&params).await.map_err(|source| {
            // Restart the whole list: a page without its predecessors means nothing.
            Error::ListFailed {
                resource: self.resource(),
                source,
            }
        });
        let page = match page {
            Ok(p) => p,
            Err(e) => {
                self.state = State::Empty;
                return Err(e);
            }
        };
        self.state = State::Listing {
            page: page.items.into(),
            continue_token: Some(page.continue_token).filter(|t| !t.is_empty()),
            resource_version: page.resource_version,
        };
        Ok(())
    }

    /// Makes one transition; see the module documentation.
    pub async fn step(&mut self) -> Result<Event<K>, Error> {
        loop {
            match &mut self.state {
                State::Empty => {
                    self.relists += 1;
                    self.state = State::Listing {
                        page: VecDeque::new(),
                        continue_token: None,
                        resource_version: String::new(),
                    };
                    // Fetch the first page before announcing the list, so a failing list
                    // does not make the store start a replacement it cannot finish.
                    self.list_page(None).await?;
                    return Ok(Event::Init);
                }
                State::Listing {
                    page,
                    continue_token,
                    resource_version,
                } => {
                    if let Some(obj) = page.pop_front() {
                        return Ok(Event::InitApply(obj));
                    }
                    if let Some(token) = continue_token.take() {
                        let rv = resource_version.clone();
                        // Also a 410 for an expired continue token: relist.
                        self.list_page(Some(&token)).await?;
                        // Pages of one list share its resourceVersion.
                        if let State::Listing {
                            resource_version, ..
                        } = &mut self.state
                        {
                            if resource_version.is_empty() {
                                *resource_version = rv;
                            }
                        }
                        continue;
                    }
                    let rv = std::mem::take(resource_version);
                    self.listed_once = true;
                    self.state = State::Listed {
                        resource_version: rv.clone(),
                    };
                    return Ok(Event::InitDone {
                        resource_version: rv,
                    });
                }
                State::Listed { resource_version } => {
                    let rv = resource_version.clone();
                    let api = rkube_client::Api::<K>::within(&self.client, &self.config.namespace);
                    let params = WatchParams {
                        label_selector: self.config.label_selector.clone(),
                        field_selector: self.config.field_selector.clone(),
                        resource_version: rv,
                        bookmarks: true,
                        timeout: None,
                    };
                    match api.watch(params).await {
                        Ok(watch) => self.state = State::Watching { watch },
                        Err(source) => {
                            if source.is_gone() {
                                self.state = State::Empty;
                            }
                            return Err(Error::WatchStartFailed {
                                resource: self.resource(),
                                source,
                            });
                        }
                    }
                }
                State::Watching { watch } => {
                    let position = watch.raw().resource_version().map(str::to_string);
                    match watch.next().await {
                        Some(Ok(TypedEvent::Added(o))) | Some(Ok(TypedEvent::Modified(o))) => {
                            return Ok(Event::Apply(o))
                        }
                        Some(Ok(TypedEvent::Deleted(o))) => return Ok(Event::Delete(o)),
                        Some(Ok(TypedEvent::Bookmark { resource_version }))
                        | Some(Ok(TypedEvent::InitialEventsEnd { resource_version })) => {
                            return Ok(Event::Bookmark { resource_version })
                        }
                        Some(Err(source)) => {
                            self.state = if source.is_gone() {
                                State::Empty
                            } else {
                                // Decode errors or no endpoint: open a new watch from where
                                // this one got to.
                                match watch.raw().resource_version() {
                                    Some(rv) => State::Listed {
                                        resource_version: rv.to_string(),
                                    },
                                    None => State::Empty,
                                }
                            };
                            return Err(Error::WatchFailed {
                                resource: self.resource(),
                                source,
                            });
                        }
                        None => {
                            // The watch ended (server timeout): continue from its position.
                            self.state =
                                match watch.raw().resource_version().or(position.as_deref()) {
                                    Some(rv) => State::Listed {
                                        resource_version: rv.to_string(),
                                    },
                                    None => State::Empty,
                                };
                        }
                    }
                }
            }
        }
    }
}

/// Exponential back-off with jitter between failed steps: 200 ms doubling to 30 s,
/// reset by a success.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(Duration::from_millis(200), Duration::from_secs(30))
    }
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            min,
            max,
        }
    }

    /// The wait before the next attempt (between half and all of the current delay).
    pub fn next_delay(&mut self) -> Duration {
        use rand::Rng;
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        let jitter = rand::thread_rng().gen_range(0.5..=1.0);
        d.mul_f64(jitter)
    }

    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_resets() {
        let mut b = Backoff::new(Duration::from_millis(100), Duration::from_millis(400));
        let d: Vec<_> = (0..4).map(|_| b.next_delay()).collect();
        for (got, cap) in d.iter().zip([100u64, 200, 400, 400]) {
            let cap = Duration::from_millis(cap);
            assert!(*got <= cap && *got >= cap / 2, "{got:?} vs {cap:?}");
        }
        b.reset();
        assert!(b.next_delay() <= Duration::from_millis(100));
    }
}
