//! The tuner: runs the three measurements within the budget and turns them into a
//! recommendation (see the module docs of [`crate::tune`]).

use std::sync::Arc;

use crate::config::{MAX_PREFETCH, TrainConfig};
use crate::data::source::Source;
use crate::error::{Error, Result, render_options};
use crate::pipeline::{Pipeline, check_readers};
use crate::run::{
    PrepareEvent, count_classes, decide_standardize, encoded_features, resolve_standardization,
};
use crate::train::BatchSize;

use super::noise::measure_noise;
use super::result::{BatchTiming, Noise, SweepVerdict, TuneResult};
use super::stretch::run_for;
use super::sweep::{PrefetchSample, SweepPlan, decide, sweep};

/// Settings of `tune`.
#[derive(Debug, Clone)]
pub struct TuneConfig {
    /// The data, columns, model, optimizer and pipeline settings of the runs to time (their
    /// batch size, prefetch and readers are varied). Settings that come from the data are
    /// resolved as for training ([`crate::run::count_classes`]); with `standardize` the
    /// features are standardised as in training (one statistics pass first). Its checkpoints,
    /// resume and outputs are not used.
    pub base: TrainConfig,
    /// Batch sizes to time. By default 1, 4, 16, 64, 256, 1024, 4096.
    pub batch_sizes: Vec<u64>,
    /// Prefetch depths to try. By default 0, 1, 2, 4, 8, 16.
    pub prefetch_depths: Vec<usize>,
    /// Reader counts to try. By default 1 and 2.
    pub reader_counts: Vec<usize>,
    /// Times each (depth, readers) setting is timed, interleaved across the settings; at least
    /// 1. By default 5.
    pub repeats: usize,
    /// Wall-clock budget in seconds. By default 60.
    pub budget_seconds: f64,
    /// Rows sampled for the noise measurement. By default 4,096.
    pub noise_rows: usize,
}

/// What the tuner reports as it goes: preparing the runs, then each measurement as it ends.
#[derive(Debug, Clone, Copy)]
pub enum TuneEvent<'a> {
    /// Preparing the runs found something (the classes counted, the standardisation computed).
    Prepared(&'a PrepareEvent),
    /// One batch size was timed: the `index`-th (from 1) of `count`.
    BatchTimed {
        timing: &'a BatchTiming,
        index: usize,
        count: usize,
    },
    /// The gradient noise was measured.
    NoiseMeasured(&'a Noise),
    /// One repeat of one prefetch depth and reader count was timed: the `index`-th run (from
    /// 1) of `count` (settings × repeats).
    PrefetchTimed {
        sample: &'a PrefetchSample,
        index: usize,
        count: usize,
    },
}

/// Steps of b = 256 before the noise is measured: a little way into training, where the
/// gradient is still large against its noise (at convergence |G| → 0 and B_noise → ∞).
const WARM_UP_STEPS: u64 = 50;

/// Runs every measurement within the budget; see the module docs.
pub fn tune(config: &TuneConfig) -> Result<TuneResult> {
    tune_with_events(config, &mut |_| {})
}

/// Tunes like [`tune`], handing what preparing the runs finds and each measurement to
/// `on_event` as it happens.
pub fn tune_with_events(
    config: &TuneConfig,
    on_event: &mut dyn FnMut(TuneEvent<'_>),
) -> Result<TuneResult> {
    if config.batch_sizes.len() < 2 || config.batch_sizes.contains(&0) {
        return Err(Error::config(
            "batch_sizes",
            "give at least two batch sizes, each at least 1",
        ));
    }
    if config.prefetch_depths.is_empty() || config.reader_counts.is_empty() {
        return Err(Error::config(
            "prefetch_depths/readers_list",
            "give at least one depth and one reader count",
        ));
    }
    // The limits `train` has: every run of the tuner is a training run.
    for &readers in &config.reader_counts {
        check_readers("readers_list", readers)?;
    }
    if config.prefetch_depths.iter().any(|&p| p > MAX_PREFETCH) {
        return Err(Error::config(
            "prefetch_depths",
            format!("must be at most {MAX_PREFETCH}"),
        ));
    }
    if config.repeats == 0 {
        return Err(Error::config("repeats", "must be at least 1"));
    }
    if !config.budget_seconds.is_finite() || config.budget_seconds <= 0.0 {
        return Err(Error::config("budget_seconds", "must be positive"));
    }
    config.base.check()?;
    let (base, source) = resolve(&config.base, config.base.open_source()?, on_event)?;
    let config = &TuneConfig {
        base,
        ..config.clone()
    };
    let model = config.base.trainer.model.build(source.num_features());
    let model = model.as_ref();
    let budget = config.budget_seconds;
    let runs = config.prefetch_depths.len() * config.reader_counts.len();
    let batch_share = 0.45 * budget / config.batch_sizes.len() as f64;
    let prefetch_share = 0.45 * budget / (runs * config.repeats) as f64;

    // Warm-up: parameters a little way into training, where the noise is measured.
    let mut params = model.init_params(config.base.trainer.init_seed);
    run_for(
        &config.base,
        &source,
        model,
        &mut params,
        256,
        0.0,
        Some(WARM_UP_STEPS),
        None,
    )?;

    let mut batch = Vec::with_capacity(config.batch_sizes.len());
    for (i, &b) in config.batch_sizes.iter().enumerate() {
        let mut scratch = params.clone();
        let timed = run_for(
            &config.base,
            &source,
            model,
            &mut scratch,
            b,
            batch_share,
            None,
            None,
        )?;
        let timing = BatchTiming {
            batch_size: b,
            iterations: timed.iterations,
            seconds_per_iteration: timed.seconds / timed.iterations.max(1) as f64,
        };
        on_event(TuneEvent::BatchTimed {
            timing: &timing,
            index: i + 1,
            count: config.batch_sizes.len(),
        });
        batch.push(timing);
    }
    let (tau_f, tau_d, r_squared) = weighted_fit(&batch);
    let noise = measure_noise(&config.base, &source, model, &params, config.noise_rows)?;
    on_event(TuneEvent::NoiseMeasured(&noise));
    let dataset_rows = source.num_rows();
    let b_opt = optimal_batch_size(noise.b_noise, tau_f, tau_d, dataset_rows);
    let smallest = *config.batch_sizes.iter().min().expect("two sizes");
    let largest = *config.batch_sizes.iter().max().expect("two sizes");
    let recommended_batch_size = if b_opt.is_finite() {
        (2f64.powf(b_opt.max(1.0).log2().round()) as u64).clamp(smallest, largest)
    } else if b_opt == f64::INFINITY {
        largest
    } else {
        256u64.clamp(smallest, largest)
    };

    let settings: Vec<(usize, usize)> = config
        .reader_counts
        .iter()
        .flat_map(|&readers| {
            config
                .prefetch_depths
                .iter()
                .map(move |&depth| (depth, readers))
        })
        .collect();
    let plan = SweepPlan {
        base: &config.base,
        source: &source,
        model,
        params: &params,
        batch_size: recommended_batch_size,
        settings,
        repeats: config.repeats,
        seconds_per_run: prefetch_share,
    };
    let prefetch = sweep(&plan, &mut |sample, index, count| {
        on_event(TuneEvent::PrefetchTimed {
            sample,
            index,
            count,
        })
    })?;
    let decision = decide(&prefetch);
    let best = &prefetch[decision.best];
    let mut recommended = config.base.clone();
    recommended.batch_size = BatchSize::Rows(recommended_batch_size);
    let mut flags = format!("«batch_size» {recommended_batch_size}");
    if decision.verdict == SweepVerdict::Measurable {
        let chosen = &prefetch[decision.chosen];
        recommended.prefetch = chosen.prefetch;
        recommended.num_readers = chosen.readers;
        flags.push_str(&format!(
            " «prefetch» {} «readers» {}",
            chosen.prefetch, chosen.readers
        ));
    }
    Ok(TuneResult {
        batch,
        tau_f,
        tau_d,
        r_squared,
        noise,
        dataset_rows,
        b_opt,
        recommended_batch_size,
        repeats: config.repeats,
        sweep_verdict: decision.verdict,
        best_prefetch: best.prefetch,
        best_readers: best.readers,
        recommended_prefetch: recommended.prefetch,
        recommended_readers: recommended.num_readers,
        recommended_memory_bytes: recommended.memory_budget_bytes(&source),
        prefetch,
        flags: render_options(&flags).into_owned(),
    })
}

/// `base` with the settings that come from the data resolved on `source`: the classes of a
/// multiclass model, the standardisation (one statistics pass, as `train` does with
/// `standardize`) and a step schedule's step size (one epoch at the base batch size); and the
/// source to time, reopened to centre large-magnitude columns as they are decoded when the
/// run standardises them, as `train` does (so the noise is measured on the features training
/// sees).
fn resolve(
    base: &TrainConfig,
    mut source: Arc<dyn Source>,
    on_event: &mut dyn FnMut(TuneEvent<'_>),
) -> Result<(TrainConfig, Arc<dyn Source>)> {
    let mut base = base.clone();
    if let Some(event) = count_classes(&mut base, &source)? {
        on_event(TuneEvent::Prepared(&event));
    }
    base.check()?;
    base.trainer.standardize = None;
    let decision = decide_standardize(&base, &source);
    if !decision.centre.is_empty() {
        base.columns.centre = decision.centre.clone();
        source = base.open_source()?;
    }
    if let Some(mixed) = &decision.mixed {
        on_event(TuneEvent::Prepared(mixed));
    }
    if decision.standardize {
        let encoded = encoded_features(&base);
        let (mut standardization, event) =
            resolve_standardization(&source, base.num_readers, &encoded)?;
        standardization.centre = decision.centre;
        base.trainer.standardize = Some(standardization);
        on_event(TuneEvent::Prepared(&event));
    }
    let pipeline = Pipeline::new(source.clone(), base.pipeline_config(source.num_rows()));
    base.set_epoch_steps(pipeline.steps_in_epoch(0));
    Ok((base, source))
}

/// b_opt = sqrt(B_noise·τ_f / ((1 − B_noise/N)·τ_d)): the batch size that minimises the time
/// to a given loss when an epoch draws its batches without replacement from N rows, so the
/// mini-batch variance is tr(Σ)·(1/b − 1/N) (see `docs/tuning.md`). Infinite when
/// B_noise ≥ N (the noise costs more steps than the batch costs time at any b: the largest
/// batch is best); NaN when a figure is missing or not positive.
fn optimal_batch_size(b_noise: f64, tau_f: f64, tau_d: f64, dataset_rows: u64) -> f64 {
    if !(tau_d > 0.0 && tau_f > 0.0 && b_noise > 0.0) {
        return f64::NAN;
    }
    let correction = 1.0 - b_noise / dataset_rows as f64;
    if correction <= 0.0 {
        return f64::INFINITY;
    }
    (b_noise * tau_f / (correction * tau_d)).sqrt()
}

/// Fits T(b) = τ_f + τ_d·b with weights 1/T²; returns (τ_f, τ_d, weighted R²).
fn weighted_fit(timings: &[BatchTiming]) -> (f64, f64, f64) {
    let points: Vec<(f64, f64, f64)> = timings
        .iter()
        .filter(|t| t.iterations > 0 && t.seconds_per_iteration > 0.0)
        .map(|t| {
            let y = t.seconds_per_iteration;
            (t.batch_size as f64, y, 1.0 / (y * y))
        })
        .collect();
    let sw: f64 = points.iter().map(|p| p.2).sum();
    if points.len() < 2 || sw == 0.0 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let mx = points.iter().map(|p| p.2 * p.0).sum::<f64>() / sw;
    let my = points.iter().map(|p| p.2 * p.1).sum::<f64>() / sw;
    let sxx: f64 = points.iter().map(|p| p.2 * (p.0 - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| p.2 * (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = points.iter().map(|p| p.2 * (p.1 - my).powi(2)).sum();
    let slope = sxy / sxx;
    let intercept = my - slope * mx;
    let residual: f64 = points
        .iter()
        .map(|p| p.2 * (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    (intercept, slope, 1.0 - residual / syy)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A day of timestamps near 1.7e9 s (an f32 resolution of 128 s) and a 0/1 label.
    fn timestamps(path: &std::path::Path) {
        use arrow_array::{ArrayRef, Int64Array, RecordBatch, TimestampSecondArray};
        let ts: Vec<i64> = (0..2_000).map(|i| 1_700_000_000 + 43 * i).collect();
        let label: Vec<i64> = (0..2_000).map(|i| i64::from(i % 3 == 0)).collect();
        let batch = RecordBatch::try_from_iter([
            (
                "ts",
                Arc::new(TimestampSecondArray::from(ts).with_timezone("UTC")) as ArrayRef,
            ),
            ("label", Arc::new(Int64Array::from(label)) as ArrayRef),
        ])
        .unwrap();
        let file = std::fs::File::create(path).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    #[test]
    fn a_column_far_off_centre_is_centred_as_it_is_decoded_as_train_does() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("ts.parquet");
        timestamps(&data);
        let mut base = TrainConfig {
            data: vec![data],
            ..TrainConfig::default()
        };
        base.columns.features = crate::data::FeatureSelection::Columns(vec!["ts".to_string()]);
        base.columns.label = "label".to_string();
        let source = base.open_source().unwrap();
        let (resolved, source) = resolve(&base, source, &mut |_| {}).unwrap();
        assert_eq!(resolved.columns.centre.len(), 1);
        let centre = resolved.columns.centre[0].value;
        // The footer range's centre, as `train` takes it.
        assert_eq!(centre, 1_700_000_000.0 + 43.0 * 1_999.0 / 2.0);
        let standardization = resolved.trainer.standardize.expect("standardised");
        assert_eq!(standardization.centre, resolved.columns.centre);
        // The statistics are those of the centred values, decoded exactly (the uncentred mean
        // would be 1.7e9, and its spread rounded to 128 s).
        assert!(standardization.mean[0].abs() < 1.0, "{:?}", standardization);
        let std = f64::from(standardization.std[0]);
        let exact = 43.0 * ((2_000.0f64 * 2_000.0 - 1.0) / 12.0).sqrt();
        assert!(
            (std - exact).abs() < 1e-3 * exact,
            "std {std}, exact {exact}"
        );
        assert_eq!(source.num_rows(), 2_000);
    }

    #[test]
    fn optimal_batch_size_applies_the_finite_population_correction() {
        // B_noise = 400, τ_f/τ_d = 1: sqrt(400) = 20 for an unbounded dataset; with N = 800
        // the noise term is halved at b → N, so sqrt(400 / (1 − 400/800)) = sqrt(800).
        assert!((optimal_batch_size(400.0, 1e-6, 1e-6, u64::MAX) - 20.0).abs() < 1e-9);
        assert!((optimal_batch_size(400.0, 1e-6, 1e-6, 800) - 800f64.sqrt()).abs() < 1e-9);
        // B_noise ≥ N: the largest batch is best.
        assert_eq!(optimal_batch_size(400.0, 1e-6, 1e-6, 400), f64::INFINITY);
        assert!(optimal_batch_size(400.0, 0.0, 1e-6, 800).is_nan());
    }
}
