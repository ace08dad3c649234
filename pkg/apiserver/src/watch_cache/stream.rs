//! The stream a watch hands to its front door: events known when the watch started
//! (initial objects, the end-of-initial-events bookmark, history replayed from the
//! window) first, then live events from the watcher's buffer, then, if the sending side
//! ended it, the reason (410 for a slow watcher). It ends at its deadline (the watch's
//! timeout) and unregisters its watcher when dropped, so a closed connection costs the
//! cache nothing after its next lock.

use std::collections::VecDeque;
use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::Stream;
use rkube_api::status::Status;
use tokio::sync::mpsc;

use super::dispatch::EndSlot;
use super::WatchEvent;

/// Removes a watcher from wherever it is registered when dropped.
pub type Registration = Box<dyn Send + Sync + 'static>;

/// A watch's events, as [`crate::registry::Registry::watch`] returns them.
pub struct WatchStream {
    first: VecDeque<WatchEvent>,
    rx: mpsc::Receiver<Result<WatchEvent, Status>>,
    ended: Option<EndSlot>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    done: bool,
    _registration: Option<Registration>,
}

impl WatchStream {
    /// `first` goes out before anything from `rx`; `ended` (if any) is read once `rx`
    /// closes; the stream ends after `timeout`; `registration` is dropped with it.
    pub fn new(
        first: VecDeque<WatchEvent>,
        rx: mpsc::Receiver<Result<WatchEvent, Status>>,
        ended: Option<EndSlot>,
        timeout: Duration,
        registration: Option<Registration>,
    ) -> Self {
        Self {
            first,
            rx,
            ended,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            done: false,
            _registration: registration,
        }
    }

    /// Puts `events` before everything else (a watch whose initial state came from
    /// elsewhere).
    pub fn prepend(&mut self, events: impl IntoIterator<Item = WatchEvent>) {
        let mut events: VecDeque<WatchEvent> = events.into_iter().collect();
        events.append(&mut self.first);
        self.first = events;
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.done = true;
            return Poll::Ready(None);
        }
        if let Some(ev) = this.first.pop_front() {
            return Poll::Ready(Some(Ok(ev)));
        }
        match this.rx.poll_recv(cx) {
            Poll::Ready(Some(item)) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                this.done = true;
                let why = this
                    .ended
                    .as_ref()
                    .and_then(|slot| slot.lock().expect("end slot").take());
                Poll::Ready(why.map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
