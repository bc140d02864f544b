//! The prefetch/readers sweep: every (depth, readers) setting timed `repeats` times, the
//! repeats interleaved across the settings (round r runs every setting once, starting at the
//! r-th, so drift of a busy machine hits all settings alike), and the pure decision
//! [`decide`] that turns the medians and spreads into a recommendation.
//!
//! This module times and decides; the tuner ([`super::tuner`]) owns the budget and the
//! defaults kept when the settings make no measurable difference.

use std::sync::Arc;

use crate::config::TrainConfig;
use crate::data::source::Source;
use crate::error::Result;
use crate::model::Model;
use crate::train::BatchSize;

use super::result::{PrefetchRun, SweepVerdict};
use super::stretch::run_for;

/// One repeat of one setting, as the sweep reports it while it runs.
#[derive(Debug, Clone)]
pub struct PrefetchSample {
    /// `--prefetch`, batches.
    pub prefetch: usize,
    /// `--readers`, threads.
    pub readers: usize,
    /// Which repeat of this setting, from 1.
    pub repeat: usize,
    /// Training rows per second.
    pub rows_per_s: f64,
    /// Share of the time the trainer waited for data, in [0, 1].
    pub stall_fraction: f64,
}

/// What the sweep times: the runs' settings and where their parameters start.
pub(super) struct SweepPlan<'a> {
    pub(super) base: &'a TrainConfig,
    pub(super) source: &'a Arc<dyn Source>,
    pub(super) model: &'a dyn Model,
    pub(super) params: &'a [f32],
    pub(super) batch_size: u64,
    /// (depth, readers) of each setting, in the order the results are listed.
    pub(super) settings: Vec<(usize, usize)>,
    pub(super) repeats: usize,
    /// Seconds each repeat of each setting trains for.
    pub(super) seconds_per_run: f64,
}

/// Times every setting of `plan`, handing each repeat to `on_sample` with its position among
/// all runs (from 1) and their count.
pub(super) fn sweep(
    plan: &SweepPlan<'_>,
    on_sample: &mut dyn FnMut(&PrefetchSample, usize, usize),
) -> Result<Vec<PrefetchRun>> {
    let num_settings = plan.settings.len();
    let count = num_settings * plan.repeats;
    let mut samples: Vec<Vec<PrefetchSample>> = vec![Vec::new(); num_settings];
    for round in 0..plan.repeats {
        for k in 0..num_settings {
            let index = (k + round) % num_settings;
            let (prefetch, readers) = plan.settings[index];
            let mut base = plan.base.clone();
            base.prefetch = prefetch;
            base.num_readers = readers;
            let mut scratch = plan.params.to_vec();
            let timed = run_for(
                &base,
                plan.source,
                plan.model,
                &mut scratch,
                plan.batch_size,
                plan.seconds_per_run,
                None,
                None,
            )?;
            let sample = PrefetchSample {
                prefetch,
                readers,
                repeat: round + 1,
                rows_per_s: timed.rows as f64 / timed.seconds.max(1e-9),
                stall_fraction: timed.stall / timed.seconds.max(1e-9),
            };
            on_sample(&sample, round * num_settings + k + 1, count);
            samples[index].push(sample);
        }
    }
    Ok(plan
        .settings
        .iter()
        .zip(samples)
        .map(|(&(prefetch, readers), samples)| {
            let mut base = plan.base.clone();
            base.prefetch = prefetch;
            base.num_readers = readers;
            base.batch_size = BatchSize::Rows(plan.batch_size);
            let rows_per_s: Vec<f64> = samples.iter().map(|s| s.rows_per_s).collect();
            let stall: Vec<f64> = samples.iter().map(|s| s.stall_fraction).collect();
            PrefetchRun {
                prefetch,
                readers,
                median_rows_per_s: median(&rows_per_s),
                min_rows_per_s: rows_per_s.iter().copied().fold(f64::INFINITY, f64::min),
                max_rows_per_s: rows_per_s.iter().copied().fold(0.0, f64::max),
                rows_per_s_repeats: rows_per_s,
                stall_fraction: median(&stall),
                memory_budget_bytes: base.memory_budget_bytes(plan.source),
            }
        })
        .collect())
}

/// The middle value (the mean of the two middle ones for an even count; NaN for none).
fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        k if k % 2 == 1 => sorted[k / 2],
        k => (sorted[k / 2 - 1] + sorted[k / 2]) / 2.0,
    }
}

/// What [`decide`] makes of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Decision {
    pub(super) verdict: SweepVerdict,
    /// Index of the setting with the largest median (the smaller depth, then fewer readers, on
    /// a tie).
    pub(super) best: usize,
    /// Index of the smallest depth (then fewest readers) whose median is at least the best
    /// setting's minimum: within its spread. Only meaningful with a measurable verdict.
    pub(super) chosen: usize,
}

/// Decides from each setting's median and min–max spread. A setting is measurably slower than
/// the best (the largest median) when its spread lies wholly below the best's: every repeat of
/// it was slower than every repeat of the best. When no setting is (always so for a single
/// setting), the settings make no measurable difference. Otherwise the recommendation is the
/// smallest depth, then fewest readers, whose median is within the best's spread (at least
/// its minimum). `runs` is not empty.
///
/// Requiring every median to lie within every other setting's spread instead would call pure
/// noise a difference: among 12 settings of 5 repeats each, some median falls outside some
/// spread in nearly every run, while a spread wholly below the best's happens by chance in
/// about 1 run in 9 (`docs/tuning.md`).
pub(super) fn decide(runs: &[PrefetchRun]) -> Decision {
    let key = |r: &PrefetchRun| (r.prefetch, r.readers);
    let best = (0..runs.len())
        .max_by(|&a, &b| {
            runs[a]
                .median_rows_per_s
                .total_cmp(&runs[b].median_rows_per_s)
                .then(key(&runs[b]).cmp(&key(&runs[a])))
        })
        .expect("at least one setting");
    let floor = runs[best].min_rows_per_s;
    let chosen = (0..runs.len())
        .filter(|&i| runs[i].median_rows_per_s >= floor)
        .min_by_key(|&i| key(&runs[i]))
        .unwrap_or(best);
    let verdict = if runs.iter().all(|r| r.max_rows_per_s >= floor) {
        SweepVerdict::NoMeasurableDifference
    } else {
        SweepVerdict::Measurable
    };
    Decision {
        verdict,
        best,
        chosen,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A setting with the given repeats (rows/s), summarised as [`sweep`] does.
    fn run(prefetch: usize, readers: usize, repeats: &[f64]) -> PrefetchRun {
        PrefetchRun {
            prefetch,
            readers,
            rows_per_s_repeats: repeats.to_vec(),
            median_rows_per_s: median(repeats),
            min_rows_per_s: repeats.iter().copied().fold(f64::INFINITY, f64::min),
            max_rows_per_s: repeats.iter().copied().fold(0.0, f64::max),
            stall_fraction: 0.5,
            memory_budget_bytes: 0,
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn overlapping_spreads_make_no_measurable_difference() {
        // The case: depths 0, 4, 16 at 2.1–3.5M rows/s, the order changing between
        // repeats.
        let runs = [
            run(0, 1, &[2.1e6, 3.4e6, 2.9e6]),
            run(4, 1, &[3.5e6, 2.2e6, 2.8e6]),
            run(16, 1, &[2.6e6, 3.1e6, 2.3e6]),
        ];
        let decision = decide(&runs);
        assert_eq!(decision.verdict, SweepVerdict::NoMeasurableDifference);
        assert_eq!(decision.best, 0, "largest median 2.9M at depth 0");
    }

    #[test]
    fn medians_outside_other_spreads_are_not_a_difference_while_every_spread_overlaps_the_best() {
        // Four settings of a real sweep on a busy 2-core machine (rows/s, 3 repeats): the
        // median of depth 8 is below the minimum of depth 16, yet no spread lies wholly below
        // the best's (depth 2): noise, not a difference.
        let runs = [
            run(0, 1, &[2_344_675.0, 3_247_668.0, 5_625_840.0]),
            run(2, 1, &[3_809_564.0, 5_085_482.0, 7_785_158.0]),
            run(8, 2, &[2_683_822.0, 3_010_513.0, 4_145_404.0]),
            run(16, 1, &[4_235_535.0, 4_775_040.0, 5_524_924.0]),
        ];
        let decision = decide(&runs);
        assert_eq!(decision.verdict, SweepVerdict::NoMeasurableDifference);
        assert_eq!(decision.best, 1);
    }

    #[test]
    fn a_clear_winner_is_measurable_and_the_smallest_depth_within_its_spread_is_chosen() {
        // Depth 0 is clearly slower; depths 4 and 16 overlap, 16 has the largest median: the
        // smallest depth whose median reaches the best's minimum is 4.
        let runs = [
            run(0, 1, &[1.0e6, 1.1e6, 1.05e6]),
            run(4, 1, &[3.0e6, 3.2e6, 3.1e6]),
            run(16, 1, &[3.05e6, 3.3e6, 3.25e6]),
        ];
        let decision = decide(&runs);
        assert_eq!(decision.verdict, SweepVerdict::Measurable);
        assert_eq!((decision.best, decision.chosen), (2, 1));
    }

    #[test]
    fn fewest_readers_break_a_tie_in_depth() {
        let runs = [
            run(2, 2, &[5.0e6, 5.1e6, 5.2e6]),
            run(2, 1, &[4.9e6, 5.0e6, 5.05e6]),
            run(0, 1, &[1.0e6, 1.0e6, 1.0e6]),
        ];
        let decision = decide(&runs);
        assert_eq!(decision.verdict, SweepVerdict::Measurable);
        assert_eq!((decision.best, decision.chosen), (0, 1));
    }

    #[test]
    fn a_single_setting_or_identical_timings_make_no_measurable_difference() {
        assert_eq!(
            decide(&[run(8, 1, &[2.0e6, 2.5e6, 3.0e6])]).verdict,
            SweepVerdict::NoMeasurableDifference
        );
        let tied = [run(0, 1, &[1.0e6; 3]), run(16, 2, &[1.0e6; 3])];
        let decision = decide(&tied);
        assert_eq!(decision.verdict, SweepVerdict::NoMeasurableDifference);
        assert_eq!(decision.best, 0, "the smaller depth on a tie");
    }

    #[test]
    fn one_repeat_has_no_spread_so_only_equal_medians_tie() {
        let runs = [run(0, 1, &[1.0e6]), run(4, 1, &[1.01e6])];
        let decision = decide(&runs);
        assert_eq!(decision.verdict, SweepVerdict::Measurable);
        assert_eq!(decision.chosen, 1);
    }
}
