//! Read-ahead of remote units: [`Prefetch`] fetches the used column chunks of the units a
//! pass will read, in the order it will read them, ahead of the readers and within
//! «fetch_ahead_bytes».
//!
//! When a pass starts, the pipeline hands the source its plan
//! ([`Source::plan_hint`](crate::data::source::Source::plan_hint)); the remote units of it
//! become a queue, fetched in order on the I/O runtime, a few units at once, while the bytes
//! fetched (or in flight) and not yet taken fit the budget. A unit larger than the whole
//! budget is left to its reader. A reader asking for a unit ([`Prefetch::take`]) takes its
//! bytes when they are fetched, waits when their fetch is in flight (it always ends, in bytes
//! or an error), and otherwise gets `None` and fetches the unit itself; the units queued before
//! it are then dropped from the queue (the readers are past them). A reader never waits for
//! budget, so read-ahead cannot deadlock the pipeline, and the bytes are the ones a reader
//! would have fetched, so results are the same whatever the budget. A new plan replaces the
//! old one (its fetched bytes are dropped); so does dropping the source ([`Prefetch::stop`]).

use std::collections::{HashMap, VecDeque};
use std::ops::Range;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use futures::FutureExt;

use crate::data::source::parquet::data::assemble;
use crate::data::source::parquet::ranges::ByteRanges;
use crate::data::source::remote::{RemoteObject, spawn};
use crate::error::{Error, Result};

/// Units fetched at once by read-ahead (each with up to 8 requests in flight).
const UNITS_IN_FLIGHT: usize = 8;

/// One unit to read ahead: its object and the byte ranges of its used column chunks.
pub(super) struct Job {
    /// The unit's index in the source.
    pub unit: usize,
    pub object: Arc<RemoteObject>,
    pub ranges: Vec<Range<u64>>,
}

impl Job {
    fn bytes(&self) -> u64 {
        self.ranges
            .iter()
            .map(|r| r.end.saturating_sub(r.start))
            .sum()
    }
}

/// A unit read ahead: its fetch in flight, or its bytes (or the error) waiting for a reader.
enum Slot {
    InFlight {
        bytes: u64,
    },
    Ready {
        bytes: u64,
        data: Result<ByteRanges>,
    },
}

/// The read-ahead of one pass.
#[derive(Default)]
struct State {
    /// Bumped by each new plan: fetches of an older one are dropped when they end.
    generation: u64,
    queue: VecDeque<Job>,
    slots: HashMap<usize, Slot>,
    /// Bytes in flight or fetched and not yet taken.
    held: u64,
    in_flight: usize,
}

/// Read-ahead of one source's remote units.
pub(super) struct Prefetch {
    budget: u64,
    state: Mutex<State>,
    changed: Condvar,
}

impl Prefetch {
    /// Read-ahead within `budget` bytes.
    pub(super) fn new(budget: u64) -> Arc<Prefetch> {
        Arc::new(Prefetch {
            budget,
            state: Mutex::default(),
            changed: Condvar::new(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts reading `jobs` ahead, in order, instead of any earlier plan.
    pub(super) fn plan(self: &Arc<Self>, jobs: Vec<Job>) {
        {
            let mut state = self.lock();
            let generation = state.generation + 1;
            *state = State {
                generation,
                queue: jobs.into(),
                ..State::default()
            };
        }
        // Readers of an older plan waiting on a fetch now fetch for themselves.
        self.changed.notify_all();
        self.pump();
    }

    /// Stops reading ahead and drops what was read ahead.
    pub(super) fn stop(&self) {
        let mut state = self.lock();
        let generation = state.generation + 1;
        *state = State {
            generation,
            ..State::default()
        };
        drop(state);
        self.changed.notify_all();
    }

    /// The bytes of `unit` if it was read ahead (waiting while its fetch is in flight), or
    /// `None` when the reader is to fetch it itself.
    pub(super) fn take(self: &Arc<Self>, unit: usize) -> Option<Result<ByteRanges>> {
        let mut state = self.lock();
        loop {
            match state.slots.get(&unit) {
                Some(Slot::InFlight { .. }) => {
                    state = self.changed.wait(state).unwrap_or_else(|e| e.into_inner());
                }
                Some(Slot::Ready { .. }) => {
                    let Some(Slot::Ready { bytes, data }) = state.slots.remove(&unit) else {
                        unreachable!("the slot was ready");
                    };
                    state.held -= bytes;
                    drop(state);
                    self.pump();
                    return Some(data);
                }
                None => {
                    // Not fetched yet: the readers are at or past it, so the queue up to it
                    // is no longer ahead of them.
                    if let Some(at) = state.queue.iter().position(|j| j.unit == unit) {
                        state.queue.drain(..=at);
                    }
                    return None;
                }
            }
        }
    }

    /// Starts the fetches that fit: the next queued units while the budget holds them (a unit
    /// larger than the whole budget is skipped) and fewer than [`UNITS_IN_FLIGHT`] are in
    /// flight.
    fn pump(self: &Arc<Self>) {
        let mut state = self.lock();
        while state.in_flight < UNITS_IN_FLIGHT {
            let Some(bytes) = state.queue.front().map(Job::bytes) else {
                break;
            };
            if bytes > self.budget {
                state.queue.pop_front();
                continue;
            }
            if state.held + bytes > self.budget {
                break;
            }
            let job = state.queue.pop_front().expect("the queue has a front");
            state.held += bytes;
            state.in_flight += 1;
            state.slots.insert(job.unit, Slot::InFlight { bytes });
            let generation = state.generation;
            let this = self.clone();
            let unit = job.unit;
            let task = async move {
                let fetched = std::panic::AssertUnwindSafe(job.object.fetch_ranges(&job.ranges))
                    .catch_unwind()
                    .await
                    .unwrap_or_else(|_| Err(Error::internal("a read-ahead fetch panicked")));
                let data = fetched
                    .map(|(bytes, permit)| assemble(job.object.size(), &job.ranges, bytes, permit));
                this.finish(generation, unit, data);
            };
            if let Err(e) = spawn(task) {
                state.in_flight -= 1;
                state.slots.insert(
                    unit,
                    Slot::Ready {
                        bytes,
                        data: Err(e),
                    },
                );
            }
        }
    }

    /// Records the end of `unit`'s fetch, started under plan `generation`.
    fn finish(self: &Arc<Self>, generation: u64, unit: usize, data: Result<ByteRanges>) {
        {
            let mut state = self.lock();
            if state.generation != generation {
                return;
            }
            state.in_flight -= 1;
            if let Some(Slot::InFlight { bytes }) = state.slots.get(&unit) {
                let bytes = *bytes;
                state.slots.insert(unit, Slot::Ready { bytes, data });
            }
        }
        self.changed.notify_all();
        self.pump();
    }
}
