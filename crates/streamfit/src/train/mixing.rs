//! Shuffle-quality figures of one epoch, measured from the row ids the trainer sees.
//!
//! Two figures (see docs/tuning.md): Spearman's ρ between a row's position in the epoch's
//! stream and its position in the files (1 = file order, 0 = no relation), and the mean number
//! of distinct units (row groups) among a step's rows, sampled on every 8th step. [`Mixing`]
//! only counts; it changes no batch and reads no data.

use crate::data::source::Unit;

/// Shuffle-quality figures of one epoch, from the emitted row ids.
pub(super) struct Mixing<'a> {
    units: &'a [Unit],
    /// The stream ranks the whole data (false for one rank's share of a data-parallel run,
    /// whose positions are no ranking of the data: its Spearman's ρ is NaN).
    whole_data: bool,
    /// Position of the next emitted row in the epoch.
    position: u64,
    /// Σ (position − row id)², for Spearman's ρ = 1 − 6·Σd² / (n(n² − 1)).
    squared_rank_gaps: f64,
    counted: u64,
    /// Sampled steps and their distinct units.
    sampled_steps: u64,
    sampled_units: u64,
    step_units: Vec<usize>,
    sampling_step: Option<u64>,
}

impl<'a> Mixing<'a> {
    /// Figures over `units` for a stream whose next row is at `first_position` of the epoch
    /// (0, or the rows emitted before a resume); `whole_data` as in the field.
    pub(super) fn new(units: &'a [Unit], first_position: u64, whole_data: bool) -> Self {
        Mixing {
            units,
            whole_data,
            position: first_position,
            squared_rank_gaps: 0.0,
            counted: 0,
            sampled_steps: 0,
            sampled_units: 0,
            step_units: Vec::new(),
            sampling_step: None,
        }
    }

    /// Adds a batch of step `step` (completed steps before it).
    pub(super) fn add(&mut self, ids: &[u64], step: u64) {
        for &id in ids {
            let gap = self.position as f64 - id as f64;
            self.squared_rank_gaps += gap * gap;
            self.position += 1;
        }
        self.counted += ids.len() as u64;
        if step.is_multiple_of(8) {
            if self.sampling_step != Some(step) {
                self.flush_step();
                self.sampling_step = Some(step);
            }
            for &id in ids {
                let unit = self
                    .units
                    .partition_point(|u| u.first_row_id + u.num_rows <= id);
                if !self.step_units.contains(&unit) {
                    self.step_units.push(unit);
                }
            }
        }
    }

    fn flush_step(&mut self) {
        if self.sampling_step.take().is_some() {
            self.sampled_steps += 1;
            self.sampled_units += self.step_units.len() as u64;
            self.step_units.clear();
        }
    }

    /// Spearman's ρ between stream position and file position (row ids are the file ranks).
    /// Exact for a whole epoch of all rows; an approximation for a resumed epoch (the rows
    /// seen since), with «drop_last» or once a file was dropped (ids not a full ranking). NaN
    /// for one rank's share.
    pub(super) fn spearman(&self) -> f64 {
        if !self.whole_data {
            return f64::NAN;
        }
        let n = self.counted as f64;
        if self.counted == 0 || n < 2.0 {
            return 1.0;
        }
        1.0 - 6.0 * self.squared_rank_gaps / (n * (n * n - 1.0))
    }

    /// Mean distinct units per sampled step.
    pub(super) fn units_per_step(&mut self) -> f64 {
        self.flush_step();
        self.sampled_units as f64 / self.sampled_steps.max(1) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two units of 4 rows each.
    fn units() -> Vec<Unit> {
        (0..2)
            .map(|i| Unit {
                file: 0,
                index_in_file: i,
                num_rows: 4,
                first_row_id: 4 * i as u64,
            })
            .collect()
    }

    #[test]
    fn file_order_has_spearman_one_and_one_unit_per_step() {
        let units = units();
        let mut mixing = Mixing::new(&units, 0, true);
        for step in 0..4 {
            mixing.add(&[2 * step, 2 * step + 1], step);
        }
        assert_eq!(mixing.spearman(), 1.0);
        // Only step 0 (rows 0 and 1) is sampled: one unit.
        assert_eq!(mixing.units_per_step(), 1.0);
    }

    #[test]
    fn reversed_order_has_spearman_minus_one() {
        let units = units();
        let mut mixing = Mixing::new(&units, 0, true);
        mixing.add(&[7, 6, 5, 4, 3, 2, 1, 0], 0);
        // Σd² = n(n² − 1)/3 for a reversal, so ρ = 1 − 2 = −1.
        assert_eq!(mixing.spearman(), -1.0);
        assert_eq!(mixing.units_per_step(), 2.0);
    }

    #[test]
    fn a_rank_share_has_no_spearman() {
        let units = units();
        let mut mixing = Mixing::new(&units, 0, false);
        mixing.add(&[0, 1, 2, 3], 0);
        assert!(mixing.spearman().is_nan());
        assert_eq!(mixing.units_per_step(), 1.0);
    }
}
