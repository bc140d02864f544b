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
    /// Sums over the counted rows of x = position and y = row id, both shifted by the first
    /// counted row's (for precision): the correlation's moments.
    moments: Moments,
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
            moments: Moments::default(),
            sampled_steps: 0,
            sampled_units: 0,
            step_units: Vec::new(),
            sampling_step: None,
        }
    }

    /// Adds a batch of step `step` (completed steps before it).
    pub(super) fn add(&mut self, ids: &[u64], step: u64) {
        self.moments.add(self.position, ids);
        self.position += ids.len() as u64;
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

    /// Spearman's ρ between stream position and file position (row ids are the file ranks),
    /// computed as the Pearson correlation of (position, row id) over the counted rows: exactly
    /// Spearman's ρ for a whole epoch of all rows, and the correlation of the rows seen for a
    /// resumed epoch (the rows since the resume), with «drop_last» or once a file was dropped.
    /// Always within [−1, 1]; 1 for fewer than two rows or no spread; NaN for one rank's share.
    pub(super) fn spearman(&self) -> f64 {
        if !self.whole_data {
            return f64::NAN;
        }
        self.moments.correlation()
    }

    /// Mean distinct units per sampled step.
    pub(super) fn units_per_step(&mut self) -> f64 {
        self.flush_step();
        self.sampled_units as f64 / self.sampled_steps.max(1) as f64
    }
}

/// Running sums for a Pearson correlation of (x, y), shifted by the first pair so that the
/// sums of squares stay small next to f64's precision.
#[derive(Default)]
struct Moments {
    origin: Option<(u64, u64)>,
    n: f64,
    sum_x: f64,
    sum_y: f64,
    sum_xx: f64,
    sum_yy: f64,
    sum_xy: f64,
}

impl Moments {
    /// Adds the pairs (`first_x + i`, `ys[i]`), in order.
    fn add(&mut self, first_x: u64, ys: &[u64]) {
        let Some(&y_first) = ys.first() else {
            return;
        };
        let (x0, y0) = *self.origin.get_or_insert((first_x, y_first));
        // Summed in locals, one batch at a time: the same sums in the same order as pair by
        // pair.
        let (mut n, mut sx, mut sy) = (self.n, self.sum_x, self.sum_y);
        let (mut sxx, mut syy, mut sxy) = (self.sum_xx, self.sum_yy, self.sum_xy);
        for (i, &y) in ys.iter().enumerate() {
            let x = (first_x + i as u64) as f64 - x0 as f64;
            let y = y as f64 - y0 as f64;
            n += 1.0;
            sx += x;
            sy += y;
            sxx += x * x;
            syy += y * y;
            sxy += x * y;
        }
        (self.n, self.sum_x, self.sum_y) = (n, sx, sy);
        (self.sum_xx, self.sum_yy, self.sum_xy) = (sxx, syy, sxy);
    }

    /// Pearson's r, clamped to [−1, 1] against rounding; 1 with fewer than two pairs or when
    /// either side has no spread.
    fn correlation(&self) -> f64 {
        if self.n < 2.0 {
            return 1.0;
        }
        let var_x = self.sum_xx - self.sum_x * self.sum_x / self.n;
        let var_y = self.sum_yy - self.sum_y * self.sum_y / self.n;
        let cov = self.sum_xy - self.sum_x * self.sum_y / self.n;
        if var_x <= 0.0 || var_y <= 0.0 {
            return 1.0;
        }
        (cov / (var_x.sqrt() * var_y.sqrt())).clamp(-1.0, 1.0)
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
        assert!((mixing.spearman() - 1.0).abs() < 1e-12);
        // Only step 0 (rows 0 and 1) is sampled: one unit.
        assert_eq!(mixing.units_per_step(), 1.0);
    }

    #[test]
    fn reversed_order_has_spearman_minus_one() {
        let units = units();
        let mut mixing = Mixing::new(&units, 0, true);
        mixing.add(&[7, 6, 5, 4, 3, 2, 1, 0], 0);
        // A reversal: ρ = −1.
        assert!((mixing.spearman() + 1.0).abs() < 1e-12);
        assert_eq!(mixing.units_per_step(), 2.0);
    }

    /// A resumed epoch counts only the rows after the resume (positions from 6 on); its ρ is
    /// their correlation, never outside [−1, 1] (the rows-since-resume n gave −51.6).
    #[test]
    fn a_resumed_epoch_keeps_spearman_within_one() {
        let units = units();
        let mut mixing = Mixing::new(&units, 6, true);
        mixing.add(&[0, 7], 0);
        let rho = mixing.spearman();
        assert!((-1.0..=1.0).contains(&rho), "ρ {rho}");
        let mut reversed = Mixing::new(&units, 4, true);
        reversed.add(&[3, 2, 1, 0], 0);
        assert!((reversed.spearman() + 1.0).abs() < 1e-12);
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
