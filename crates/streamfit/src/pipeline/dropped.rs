//! Files dropped mid-epoch under [`OnBadFile::Skip`](crate::data::source::OnBadFile::Skip).
//!
//! A file that opened fine can still fail while it is read (a corrupt page). Under `Skip` the
//! reader reports the failed unit and goes on; the consumer, which takes units in plan order,
//! drops the file from that plan position on: the rows of the failing unit delivered before
//! the failure stay, the rest of that unit and every later unit of the file in the epoch's plan
//! are skipped, and later epochs leave the file out. The decision is made by plan position,
//! never by timing, so the batches stay a pure function of the data, the seed and the
//! settings, whatever the reader count.
//!
//! [`FileDrop`] is one such event (what the epoch line, the report and a checkpoint record);
//! [`DroppedFiles`] is the record a [`Pipeline`](super::Pipeline) keeps across its epochs;
//! `PassDrops` is a running pass's view of it; [`position_rows`] gives the rows each plan
//! position really delivers, which the cursor tracker and a resume count with. Nothing here
//! reads a file.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::data::source::{Source, Unit};

/// A file dropped from an epoch because one of its units failed while being read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileDrop {
    /// Index of the file in the source.
    pub file: usize,
    /// The file.
    pub path: PathBuf,
    /// Epoch (from 0) whose pass found the failure.
    pub epoch: u64,
    /// Position in that epoch's plan of the unit that failed.
    pub position: usize,
    /// The failing unit's row group (piece) in the file.
    pub row_group: usize,
    /// Rows of the failing unit delivered before the failure (they are trained on).
    pub rows_delivered: u64,
    /// Rows of the epoch's plan left out: the rest of the failing unit and the file's later
    /// units in the plan.
    pub rows_skipped: u64,
    /// Why the unit failed.
    pub error: String,
}

/// The files a pipeline has dropped, shared by its passes (and by the evaluation passes made
/// from it), in the order they were found.
#[derive(Debug, Default)]
pub struct DroppedFiles {
    drops: Mutex<Vec<FileDrop>>,
}

impl DroppedFiles {
    /// Every drop so far.
    pub fn all(&self) -> Vec<FileDrop> {
        self.lock().clone()
    }

    /// The drops found in epoch `epoch`.
    pub fn in_epoch(&self, epoch: u64) -> Vec<FileDrop> {
        self.lock()
            .iter()
            .filter(|d| d.epoch == epoch)
            .cloned()
            .collect()
    }

    /// True when file `file` was dropped in an epoch before `epoch` (it is left out of it).
    pub fn left_out(&self, file: usize, epoch: u64) -> bool {
        self.lock()
            .iter()
            .any(|d| d.file == file && d.epoch < epoch)
    }

    /// Records `drop` unless its file is already recorded as dropped.
    pub fn record(&self, drop: FileDrop) {
        let mut drops = self.lock();
        if !drops.iter().any(|d| d.file == drop.file) {
            drops.push(drop);
        }
    }

    /// Replaces the record (a resumed run takes its checkpoint's).
    pub fn replace(&self, drops: Vec<FileDrop>) {
        *self.lock() = drops;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FileDrop>> {
        self.drops.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Rows each position of an epoch's `plan` (unit indices) delivers, given that epoch's
/// `drops`: a unit's rows, the rows delivered before the failure at a drop's position, and
/// none at the dropped file's later positions.
pub fn position_rows(units: &[Unit], plan: &[usize], drops: &[FileDrop]) -> Vec<u64> {
    plan.iter()
        .enumerate()
        .map(|(position, &unit)| {
            let unit = &units[unit];
            match drops.iter().find(|d| d.file == unit.file) {
                Some(d) if position == d.position => d.rows_delivered.min(unit.num_rows),
                Some(d) if position > d.position => 0,
                _ => unit.num_rows,
            }
        })
        .collect()
}

/// What a pass does with the units of a plan position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Deliver every block.
    Deliver,
    /// Deliver this many rows, then discard (the failing unit of a drop already known).
    DeliverUpTo(u64),
    /// Discard every block (a later unit of a dropped file).
    Discard,
}

/// A running pass's view of the dropped files: which plan positions it delivers, and the
/// drops it finds.
pub(crate) struct PassDrops {
    source: Arc<dyn Source>,
    record: Arc<DroppedFiles>,
    epoch: u64,
    /// Position in the epoch's plan of the pass's first unit (a resumed pass starts later).
    offset: usize,
    /// The pass's units, in plan order.
    plan: Vec<usize>,
    /// The epoch's drops: (file, position in the epoch's plan, rows delivered there).
    known: Vec<(usize, usize, u64)>,
}

impl PassDrops {
    /// The view of a pass over `plan`, the units of epoch `epoch`'s plan from position
    /// `offset` on, recording what it finds in `record`.
    pub(crate) fn new(
        source: Arc<dyn Source>,
        record: Arc<DroppedFiles>,
        epoch: u64,
        offset: usize,
        plan: Vec<usize>,
    ) -> Self {
        let known = record
            .in_epoch(epoch)
            .iter()
            .map(|d| (d.file, d.position, d.rows_delivered))
            .collect();
        PassDrops {
            source,
            record,
            epoch,
            offset,
            plan,
            known,
        }
    }

    /// What to do with the blocks of pass position `position`.
    pub(crate) fn disposition(&self, position: usize) -> Disposition {
        let file = self.source.units()[self.plan[position]].file;
        let at = self.offset + position;
        match self.known.iter().find(|(f, _, _)| *f == file) {
            Some(&(_, p, delivered)) if at == p => Disposition::DeliverUpTo(delivered),
            Some(&(_, p, _)) if at > p => Disposition::Discard,
            _ => Disposition::Deliver,
        }
    }

    /// The unit at pass position `position` failed with `error` after `delivered` rows:
    /// records the drop of its file and returns the rows of the epoch it leaves out.
    pub(crate) fn failed(&mut self, position: usize, delivered: u64, error: String) -> u64 {
        let units = self.source.units();
        let unit = units[self.plan[position]];
        let later: u64 = self.plan[position + 1..]
            .iter()
            .map(|&u| &units[u])
            .filter(|u| u.file == unit.file)
            .map(|u| u.num_rows)
            .sum();
        let rows_skipped = unit.num_rows.saturating_sub(delivered) + later;
        let at = self.offset + position;
        self.known.push((unit.file, at, delivered));
        self.record.record(FileDrop {
            file: unit.file,
            path: self.source.files()[unit.file].clone(),
            epoch: self.epoch,
            position: at,
            row_group: unit.index_in_file,
            rows_delivered: delivered,
            rows_skipped,
            error,
        });
        rows_skipped
    }
}
