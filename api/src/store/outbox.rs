//! A request's outbox: the writes it made, handed to the realtime broker only after its
//! transaction commits, so a rolled-back write is never heard of.

use std::sync::Mutex;

use crate::realtime::Write;

/// The writes of one request, in the order they were made.
#[derive(Debug, Default)]
pub struct Outbox {
    writes: Mutex<Vec<Write>>,
}

impl Outbox {
    /// Records `write`, to be published once the request commits.
    pub fn record(&self, write: Write) {
        self.lock().push(write);
    }

    /// How many writes are recorded: a mark for [`Outbox::since`].
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The writes recorded after `mark` (an earlier [`Outbox::len`]).
    pub fn since(&self, mark: usize) -> Vec<Write> {
        self.lock()
            .get(mark..)
            .map(<[Write]>::to_vec)
            .unwrap_or_default()
    }

    /// Takes what was recorded, leaving the outbox empty.
    pub fn take(&self) -> Vec<Write> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Write>> {
        self.writes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}
