//! Part of a dataset as a dataset of its own: the training units left and the units held out
//! as validation data (`valid_fraction`), or the first rows of the validation data
//! (`valid_rows`).
//!
//! [`SubsetSource`] presents chosen units of another [`Source`], in file order, the last one
//! possibly cut to its first rows, as a source whose rows are numbered from 0 in that order:
//! its units' `first_row_id`s and the ids of the rows it delivers are its own, so what a
//! pipeline relies on (every row once, row ids as ranks in file order) holds of it as of any
//! source. Its files, their identity and its description are the whole dataset's; reading
//! delegates to the whole dataset, which names the real file and row group in any error.
//! Which units are chosen is decided here ([`SubsetSource::hold_out`],
//! [`SubsetSource::first_rows`]) from the seed and the unit list alone, never from thread
//! counts or timing.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use rand::seq::SliceRandom;

use crate::data::sketch::CategoryCounts;
use crate::data::source::shard::Preprocessing;
use crate::data::source::{ChunkSink, FileIdentity, Source, SourceInfo, Unit};
use crate::data::{RowBlock, Schema};
use crate::error::{Error, Result};
use crate::pipeline::{RngStream, rng_for};
use crate::train::HeldOut;

/// Some units of another source, renumbered; see the module docs.
pub struct SubsetSource {
    whole: Arc<dyn Source>,
    /// For each unit of the subset, its index in `whole`.
    picked: Vec<usize>,
    /// The subset's units: the whole's, with the subset's row ids (and the last one's rows
    /// cut by [`SubsetSource::first_rows`]).
    units: Vec<Unit>,
}

impl SubsetSource {
    /// The units `picked` (indices into `whole`'s units, ascending), the last one cut to
    /// `last_rows` rows when given.
    fn new(whole: Arc<dyn Source>, picked: Vec<usize>, last_rows: Option<u64>) -> Self {
        let mut next_row_id = 0u64;
        let mut units = Vec::with_capacity(picked.len());
        for (i, &index) in picked.iter().enumerate() {
            let mut unit = whole.units()[index];
            if i + 1 == picked.len()
                && let Some(rows) = last_rows
            {
                unit.num_rows = unit.num_rows.min(rows);
            }
            unit.first_row_id = next_row_id;
            next_row_id += unit.num_rows;
            units.push(unit);
        }
        SubsetSource {
            whole,
            picked,
            units,
        }
    }

    /// Splits `whole` into training and held-out units: round(`fraction` × units) of them (at
    /// least one, and one left to train on) held out, chosen by a permutation seeded from
    /// `seed` alone. Returns the training subset, the held-out subset and what was held out.
    /// A dataset of one unit cannot be split: a `valid_fraction` error.
    pub fn hold_out(
        whole: &Arc<dyn Source>,
        fraction: f64,
        seed: u64,
    ) -> Result<(SubsetSource, SubsetSource, HeldOut)> {
        let total = whole.units().len();
        if total < 2 {
            return Err(Error::config(
                "valid_fraction",
                format!(
                    "holds out whole units (row groups), and the training data has {total}; write it in smaller row groups or give validation data with «valid»"
                ),
            ));
        }
        let count = ((fraction * total as f64).round() as usize).clamp(1, total - 1);
        let mut order: Vec<usize> = (0..total).collect();
        order.shuffle(&mut rng_for(seed, 0, RngStream::Holdout));
        let mut held: Vec<usize> = order[..count].to_vec();
        held.sort_unstable();
        let kept: Vec<usize> = (0..total)
            .filter(|i| held.binary_search(i).is_err())
            .collect();
        let valid = SubsetSource::new(whole.clone(), held.clone(), None);
        let record = HeldOut {
            fraction,
            seed,
            units: held,
            total_units: total as u64,
            rows: valid.num_rows(),
        };
        Ok((SubsetSource::new(whole.clone(), kept, None), valid, record))
    }

    /// The first `rows` rows of `whole` in file order (all of them when it has fewer).
    pub fn first_rows(whole: &Arc<dyn Source>, rows: u64) -> SubsetSource {
        let mut picked = Vec::new();
        let mut covered = 0u64;
        for (index, unit) in whole.units().iter().enumerate() {
            if covered >= rows {
                break;
            }
            if unit.num_rows > 0 {
                picked.push(index);
                covered += unit.num_rows;
            }
        }
        let before_last = covered - picked.last().map_or(0, |&i| whole.units()[i].num_rows);
        SubsetSource::new(whole.clone(), picked, Some(rows - before_last.min(rows)))
    }

    /// The whole dataset's index of each unit of the subset.
    pub fn picked(&self) -> &[usize] {
        &self.picked
    }
}

impl Source for SubsetSource {
    fn units(&self) -> &[Unit] {
        &self.units
    }

    fn schema(&self) -> &Schema {
        self.whole.schema()
    }

    fn first_unit_distinct(&self, columns: &[String]) -> Result<Vec<Option<u64>>> {
        self.whole.first_unit_distinct(columns)
    }

    fn row_width(&self) -> usize {
        self.whole.row_width()
    }

    fn files(&self) -> &[PathBuf] {
        self.whole.files()
    }

    fn read_unit(
        &self,
        unit: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let whole = self.whole.units()[self.picked[unit]];
        let mut renumber = Renumber::new(whole, self.units[unit], sink);
        self.whole
            .read_unit(self.picked[unit], max_block_rows, &mut renumber)
    }

    fn read_rows(
        &self,
        unit: usize,
        offsets: &[u64],
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<u64> {
        let whole = self.whole.units()[self.picked[unit]];
        let mut renumber = Renumber::new(whole, self.units[unit], sink);
        let read =
            self.whole
                .read_rows(self.picked[unit], offsets, max_block_rows, &mut renumber)?;
        Ok(read.min(self.units[unit].num_rows))
    }

    fn file_bytes(&self) -> u64 {
        self.whole.file_bytes()
    }

    fn describe(&self) -> SourceInfo {
        self.whole.describe()
    }

    fn identity(&self) -> Result<Vec<FileIdentity>> {
        self.whole.identity()
    }

    fn fetch_budget_bytes(&self) -> u64 {
        self.whole.fetch_budget_bytes()
    }

    fn read_explicitly(&self, explicit: bool) {
        self.whole.read_explicitly(explicit);
    }

    fn unit_io_bytes(&self) -> u64 {
        self.whole.unit_io_bytes()
    }

    fn stored_preprocessing(&self) -> Option<&Preprocessing> {
        self.whole.stored_preprocessing()
    }

    fn categorical_columns(&self) -> Vec<String> {
        self.whole.categorical_columns()
    }

    /// Counts the whole unit's values (a unit cut by [`SubsetSource::first_rows`] too: the
    /// vocabulary pass counts the units of [`SubsetSource::hold_out`] only, which are whole).
    fn count_categories(&self, unit: usize, counts: &mut CategoryCounts) -> Result<()> {
        self.whole.count_categories(self.picked[unit], counts)
    }

    fn plan_hint(&self, units_in_read_order: &[usize]) {
        let whole: Vec<usize> = units_in_read_order
            .iter()
            .map(|&u| self.picked[u])
            .collect();
        self.whole.plan_hint(&whole);
    }
}

/// Passes a whole unit's blocks on as the subset's: rows past the subset unit's end dropped
/// (and the read stopped), ids moved from the whole dataset's numbering to the subset's.
struct Renumber<'s> {
    /// The whole dataset's first row id of the unit.
    from: u64,
    /// The subset's.
    to: u64,
    /// Rows of the unit the subset keeps.
    keep: u64,
    sink: &'s mut dyn ChunkSink,
}

impl<'s> Renumber<'s> {
    fn new(whole: Unit, part: Unit, sink: &'s mut dyn ChunkSink) -> Self {
        Renumber {
            from: whole.first_row_id,
            to: part.first_row_id,
            keep: part.num_rows,
            sink,
        }
    }
}

impl ChunkSink for Renumber<'_> {
    fn empty_block(&mut self) -> RowBlock {
        self.sink.empty_block()
    }

    fn send(&mut self, mut block: RowBlock) -> ControlFlow<()> {
        // Rows past the kept ones come last in a unit's blocks: drop them from the end.
        let mut cut = false;
        for i in (0..block.num_rows()).rev() {
            if block.row_ids()[i] - self.from >= self.keep {
                block.swap_remove(i);
                cut = true;
            }
        }
        for id in block.row_ids_mut() {
            *id = *id - self.from + self.to;
        }
        let flow = if block.is_empty() {
            ControlFlow::Continue(())
        } else {
            self.sink.send(block)
        };
        if cut { ControlFlow::Break(()) } else { flow }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TrainConfig;
    use crate::generate::{GenerateConfig, Task, generate};

    /// 1,000 rows in 2 files of 5 row groups of 100 rows.
    fn dataset(dir: &std::path::Path) -> Arc<dyn Source> {
        let out = dir.join("data");
        generate(
            &GenerateConfig {
                task: Task::Linear,
                rows: 1_000,
                features: 2,
                shards: 2,
                row_group_rows: 100,
                out: out.clone(),
                ..GenerateConfig::default()
            },
            &|_| {},
        )
        .unwrap();
        TrainConfig {
            data: vec![out],
            ..TrainConfig::default()
        }
        .open_source()
        .unwrap()
    }

    /// Every row of `source`, read unit by unit: (id, target).
    fn rows(source: &dyn Source) -> Vec<(u64, f32)> {
        let mut out = Vec::new();
        for unit in 0..source.units().len() {
            let mut blocks: Vec<RowBlock> = Vec::new();
            source.read_unit(unit, 64, &mut blocks).unwrap();
            for block in blocks {
                out.extend(
                    block
                        .row_ids()
                        .iter()
                        .copied()
                        .zip(block.targets().iter().copied()),
                );
            }
        }
        out
    }

    #[test]
    fn held_out_and_training_units_split_the_rows_renumbered() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dataset(dir.path());
        let all = rows(whole.as_ref());
        let (train, valid, held) = SubsetSource::hold_out(&whole, 0.25, 7).unwrap();
        // round(0.25 × 10) = 3 units (rounded half away from zero).
        assert_eq!(held.units.len(), 3);
        assert_eq!(held.total_units, 10);
        assert_eq!(
            (train.num_rows(), valid.num_rows(), held.rows),
            (700, 300, 300)
        );
        assert_eq!(valid.picked(), held.units.as_slice());
        // The same seed holds out the same units; another seed others.
        assert_eq!(SubsetSource::hold_out(&whole, 0.25, 7).unwrap().2, held);
        assert_ne!(
            SubsetSource::hold_out(&whole, 0.25, 8).unwrap().2.units,
            held.units
        );
        for subset in [&train, &valid] {
            let got = rows(subset);
            let ids: Vec<u64> = got.iter().map(|r| r.0).collect();
            assert_eq!(
                ids,
                (0..subset.num_rows()).collect::<Vec<_>>(),
                "renumbered in order"
            );
            // Each row is the whole dataset's row of its unit.
            let mut expected = Vec::new();
            for &u in subset.picked() {
                let unit = whole.units()[u];
                expected.extend(
                    all[unit.first_row_id as usize..(unit.first_row_id + unit.num_rows) as usize]
                        .iter()
                        .map(|r| r.1),
                );
            }
            let targets: Vec<f32> = got.iter().map(|r| r.1).collect();
            assert_eq!(targets, expected);
        }
    }

    #[test]
    fn first_rows_cut_the_last_unit() {
        let dir = tempfile::tempdir().unwrap();
        let whole = dataset(dir.path());
        let all = rows(whole.as_ref());
        let first = SubsetSource::first_rows(&whole, 250);
        assert_eq!(first.num_rows(), 250);
        assert_eq!(first.units().len(), 3);
        assert_eq!(rows(&first), all[..250].to_vec());
        assert_eq!(SubsetSource::first_rows(&whole, 5_000).num_rows(), 1_000);
    }

    #[test]
    fn a_single_unit_cannot_be_split() {
        let dir = tempfile::tempdir().unwrap();
        let whole: Arc<dyn Source> = Arc::new(SubsetSource::first_rows(&dataset(dir.path()), 50));
        match SubsetSource::hold_out(&whole, 0.5, 0) {
            Err(Error::Config { field, .. }) => assert_eq!(field, "valid_fraction"),
            other => panic!(
                "expected a valid_fraction error, got {:?}",
                other.map(|r| r.2)
            ),
        }
    }
}
