//! One subscriber's bounded buffer.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{FeedError, SUBSCRIBER_BUFFER};
use crate::realtime::change::Delivery;

/// Why a subscription ended, as a [`Mailbox`] stores it.
pub(super) const ENDED_NOT: u8 = 0;
pub(super) const ENDED_SLOW: u8 = 1;
pub(super) const ENDED_MISSED: u8 = 2;

/// One subscriber's buffer: the deliveries waiting for it, at most [`SUBSCRIBER_BUFFER`],
/// and why it ended, if it did. (A queue of its own rather than a channel: it holds
/// nothing while idle, and idle subscriptions are the common case.)
pub(super) struct Mailbox {
    queue: Mutex<VecDeque<Arc<Delivery>>>,
    waker: futures_util::task::AtomicWaker,
    ended: AtomicU8,
}

/// Why a delivery was not queued.
pub(super) struct Full;

impl Mailbox {
    pub(super) fn new() -> Self {
        Self {
            queue: Mutex::new(VecDeque::new()),
            waker: futures_util::task::AtomicWaker::new(),
            ended: AtomicU8::new(ENDED_NOT),
        }
    }

    fn queue(&self) -> MutexGuard<'_, VecDeque<Arc<Delivery>>> {
        self.queue
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues `delivery`, unless the subscriber is [`SUBSCRIBER_BUFFER`] behind.
    pub(super) fn push(&self, delivery: Arc<Delivery>) -> Result<(), Full> {
        {
            let mut queue = self.queue();
            if queue.len() >= SUBSCRIBER_BUFFER {
                return Err(Full);
            }
            queue.push_back(delivery);
        }
        self.waker.wake();
        Ok(())
    }

    /// Ends the subscription: the feed reports `reason` next.
    pub(super) fn end(&self, reason: u8) {
        self.ended.store(reason, Ordering::Release);
        self.queue().clear();
        self.waker.wake();
    }

    fn ended(&self) -> Option<FeedError> {
        match self.ended.load(Ordering::Acquire) {
            ENDED_SLOW => Some(FeedError::SlowConsumer),
            ENDED_MISSED => Some(FeedError::Missed),
            _ => None,
        }
    }

    /// The next delivery, or why the subscription ended.
    pub(super) async fn next(&self) -> Result<Arc<Delivery>, FeedError> {
        std::future::poll_fn(|cx| {
            self.waker.register(cx.waker());
            if let Some(reason) = self.ended() {
                return std::task::Poll::Ready(Err(reason));
            }
            match self.queue().pop_front() {
                Some(delivery) => std::task::Poll::Ready(Ok(delivery)),
                None => std::task::Poll::Pending,
            }
        })
        .await
    }
}
