//! Using a saved model: `predict` (one prediction per input row, written as Parquet) and
//! `eval` (loss and accuracy or RMSE on labelled data, then AUC, precision, recall, F1 and the
//! confusion matrix, or R² and MAE: [`crate::eval_metrics`]).
//!
//! Layer 3. Both stream the data through the training readers in file order (the
//! evaluation pipeline: no shuffling, every row once), so memory stays bounded however large
//! the data is, and `eval` computes exactly what the trainer's validation pass computes. Each
//! row goes through the model's fitted preprocessing as training's did: decoded (with its
//! large-magnitude columns centred in f64), filled, encoded, then, for a version-6 model
//! trained standardised, z-scored in f64 ([`Standardization::apply`]) before the model's
//! forward pass on the parameters as learned.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::config::TrainConfig;
use crate::data::schema::indicator_name;
use crate::data::source::Source;
use crate::data::source::parquet::Passthrough;
use crate::data::source::write::{PredictionKind, PredictionWriter};
use crate::data::{ColumnSpec, FeatureSelection};
use crate::error::{Error, Result};
use crate::eval_metrics::{EvalReport, EvalTally};
use crate::model::{EvalSums, Head, Metrics};
use crate::output_path::{InputSet, WriteMode};
use crate::pipeline::Pipeline;
use crate::train::{
    GradientEngine, ModelFile, Standardization, check_labels, eval_config, evaluate,
};

/// What `predict` and `eval` read.
#[derive(Debug, Clone)]
pub struct ApplyConfig {
    /// The saved model.
    pub model: PathBuf,
    /// Parquet files and/or directories, or one shard dataset.
    pub data: Vec<PathBuf>,
    /// Reader threads. By default 2.
    pub num_readers: usize,
    /// Verify shard checksums. By default on.
    pub verify_checksums: bool,
    /// Gradient (evaluation) threads.
    pub num_threads: usize,
    /// How local files are read ([`ReadMode`](crate::data::ReadMode)); `auto` by `Default`.
    pub read_mode: crate::data::ReadMode,
    /// `eval`: leave out the rows whose label is null ([`count_null_labels`] counts them).
    /// By default off: a null label is an error.
    pub drop_null_labels: bool,
}

/// What `predict` wrote.
#[derive(Debug, Clone)]
pub struct PredictSummary {
    /// Rows predicted (= rows of the input).
    pub rows: u64,
    /// Columns of the output file.
    pub columns: Vec<String>,
}

/// The model's columns as a selection: a list column when training used one (feature names
/// `name[0]`, `name[1]`, ...), the named scalar columns otherwise, with the fill values and
/// indicator features training used (the indicators are features, not columns), and the
/// categorical columns with their fitted encoding (whose features are not columns either).
fn column_spec(model: &ModelFile, ignore_label: bool, drop_null_labels: bool) -> ColumnSpec {
    let indicators: Vec<String> = model
        .missing
        .indicators
        .iter()
        .map(|c| indicator_name(c))
        .collect();
    let encoded = model.categorical.feature_names();
    let columns: Vec<String> = model
        .features
        .iter()
        .filter(|f| !indicators.contains(f) && !encoded.contains(f))
        .cloned()
        .collect();
    let list = model.features.first().and_then(|f| f.strip_suffix("[0]"));
    let features = match list {
        Some(name)
            if model
                .features
                .iter()
                .enumerate()
                .all(|(i, f)| *f == format!("{name}[{i}]")) =>
        {
            FeatureSelection::ListColumn(name.to_string())
        }
        _ => FeatureSelection::Columns(columns),
    };
    ColumnSpec {
        features,
        label: model.label.clone(),
        ignore_label,
        filter: None,
        exclude: Vec::new(),
        missing: model.missing.clone(),
        positive_label: model.positive_label.clone(),
        // `eval` scores every labelled row: a null label is an error unless dropped.
        drop_null_labels: drop_null_labels && !ignore_label,
        categorical: model.categorical.clone(),
        // Version 5: the columns training centred as it decoded them, centred the same.
        centre: model
            .standardization
            .as_ref()
            .map(|s| s.centre.clone())
            .unwrap_or_default(),
        weight: None,
    }
}

/// Opens the model and the data; the data must hold the model's feature columns.
fn open(
    config: &ApplyConfig,
    ignore_label: bool,
) -> Result<(ModelFile, TrainConfig, Arc<dyn Source>)> {
    let model = ModelFile::load(&config.model)?;
    let (train, source) = open_data(&model, config, ignore_label)?;
    Ok((model, train, source))
}

/// Opens the data of `config` for `model`; the data must hold the model's feature columns.
fn open_data(
    model: &ModelFile,
    config: &ApplyConfig,
    ignore_label: bool,
) -> Result<(TrainConfig, Arc<dyn Source>)> {
    let train = TrainConfig {
        data: config.data.clone(),
        columns: column_spec(model, ignore_label, config.drop_null_labels),
        num_readers: config.num_readers,
        verify_checksums: config.verify_checksums,
        read_mode: config.read_mode,
        ..TrainConfig::default()
    };
    if train.data.is_empty() {
        return Err(Error::config("data", "no input files or directories given"));
    }
    let source = train.open_source()?;
    if source.schema().feature_names != model.features {
        return Err(Error::config(
            "data",
            format!(
                "the model was trained on features [{}], but {} has [{}]",
                model.features.join(", "),
                source.files()[0].display(),
                source.schema().feature_names.join(", ")
            ),
        ));
    }
    // Rows `convert` centred hold x − centre: only a model that centres the same columns by the
    // same values reads them right (one trained on other rows, with the same feature names,
    // would take them for raw values).
    if let Some(stored) = source.stored_preprocessing() {
        let centre = model
            .standardization
            .as_ref()
            .map_or(&[][..], |s| s.centre.as_slice());
        if stored.centre.as_slice() != centre {
            let names = |c: &[crate::data::schema::ColumnCentre]| {
                if c.is_empty() {
                    "no column".to_string()
                } else {
                    c.iter()
                        .map(|c| c.column.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            };
            return Err(Error::config(
                "data",
                format!(
                    "{} holds column(s) {} centred by `convert`, but the model centres {}: \
                     use a model trained on these shards or on their source with the same \
                     options, or predict on the source",
                    config.data[0].display(),
                    names(&stored.centre),
                    names(centre)
                ),
            ));
        }
    }
    Ok((train, source))
}

/// Refuses an output name that does not end in `.parquet` or `.parq` (any case).
fn check_parquet_extension(out: &Path) -> Result<()> {
    let extension = out
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("parquet" | "parq") => Ok(()),
        other => Err(Error::config(
            "out",
            format!(
                "{} {}: predictions are written as Parquet only; name the file .parquet or .parq",
                out.display(),
                match other {
                    Some(e) => format!("has the extension `.{e}`"),
                    None => "has no extension".to_string(),
                }
            ),
        )),
    }
}

/// Writes one prediction per row of the data to `out` (Parquet), in input order, followed by
/// the `keep` columns of the input (Parquet input only). `on_rows` hears the rows done.
///
/// Refused before anything is written: an `out` that is the model or a data file (under any
/// name) or lies inside the shard dataset being read, a directory `out`, an `out` whose
/// extension is not `.parquet` or `.parq` (the output is always Parquet: `p.csv` would hold
/// Parquet under a CSV name), and a column kept twice.
pub fn predict(
    config: &ApplyConfig,
    out: &Path,
    keep: &[String],
    on_rows: &dyn Fn(u64),
) -> Result<PredictSummary> {
    if let Some(twice) = keep
        .iter()
        .enumerate()
        .find_map(|(i, name)| keep[..i].contains(name).then_some(name))
    {
        return Err(Error::config(
            "keep",
            format!("column `{twice}` is named twice; a Parquet file holds each column once"),
        ));
    }
    let (model_file, train, source) = open(config, true)?;
    let mut inputs = InputSet::new();
    inputs.add_file(&config.model);
    inputs.add_dataset(source.as_ref(), &config.data);
    inputs.check_file("out", out, WriteMode::Replace)?;
    check_parquet_extension(out)?;
    let spec = model_file.spec();
    let model = spec.build(model_file.features.len());
    let kind = match model.head() {
        Head::Regression => PredictionKind::Value,
        Head::Binary => PredictionKind::Binary,
        Head::Multiclass(k) => PredictionKind::Classes(k),
    };
    let mut passthrough = if keep.is_empty() {
        None
    } else if train.is_shard_dataset() {
        return Err(Error::config(
            "keep",
            "passes Parquet columns through; a shard dataset holds only the features and the label",
        ));
    } else {
        Some(Passthrough::open(source.files(), keep)?)
    };
    let kept_schema = match &passthrough {
        Some(p) => p.schema(),
        None => Passthrough::open(&[], &[])?.schema(),
    };
    let mut writer = PredictionWriter::create(out, kind, &kept_schema)?;
    let mut rows = 0u64;
    score(&model_file, &train, &source, &mut |outputs, n| {
        let kept = passthrough.as_mut().map(|p| p.take(n)).transpose()?;
        writer.write(outputs, kept)?;
        rows += n as u64;
        on_rows(rows);
        Ok(())
    })?;
    writer.finish()?;
    let mut columns: Vec<String> = kind.column_names().iter().map(|c| c.to_string()).collect();
    columns.extend(keep.iter().cloned());
    Ok(PredictSummary { rows, columns })
}

/// The outputs of `model` for every row of `config.data` (whose `model` path is not read), in
/// input order, handed to `on_batch` a batch at a time with the batch's row count: one value a
/// row (a regression's prediction, a binary model's probability of 1), or a multiclass model's
/// class probabilities, row by row. The data are raw rows, decoded with the preprocessing the
/// model file holds, as `predict` decodes them (what Python's `Model.predict` scores a table
/// with). Returns the rows scored.
pub fn predict_rows(
    model: &ModelFile,
    config: &ApplyConfig,
    on_batch: &mut dyn FnMut(&[f32], usize) -> Result<()>,
) -> Result<u64> {
    let (train, source) = open_data(model, config, true)?;
    score(model, &train, &source, on_batch)
}

/// Runs `model_file`'s model over one epoch of `source` (unshuffled, as `eval` reads) and hands
/// each batch's outputs and row count to `on_batch`; checks every row was scored.
fn score(
    model_file: &ModelFile,
    train: &TrainConfig,
    source: &Arc<dyn Source>,
    on_batch: &mut dyn FnMut(&[f32], usize) -> Result<()>,
) -> Result<u64> {
    let model = model_file.spec().build(model_file.features.len());
    let params = model_file.parameters();
    let pipeline = Pipeline::new(
        source.clone(),
        eval_config(&train.pipeline_config(source.num_rows()), source),
    );
    let outputs_per_row = model.head().outputs();
    let standardize = model_file.standardization_to_apply();
    let mut outputs = Vec::new();
    let mut rows = 0u64;
    for batch in pipeline.epoch(0)? {
        let mut batch = batch?;
        if let Some(s) = standardize {
            s.apply(&mut batch.rows);
        }
        let n = batch.rows.num_rows();
        outputs.clear();
        outputs.resize(n * outputs_per_row, 0.0);
        {
            let _span = tracing::trace_span!("eval", rows = n).entered();
            model.predict(&params, batch.rows.features(), &mut outputs);
        }
        on_batch(&outputs, n)?;
        rows += n as u64;
    }
    if rows != source.num_rows() {
        return Err(Error::internal(format!(
            "predicted {rows} rows, expected {}",
            source.num_rows()
        )));
    }
    Ok(rows)
}

/// The rows of the data whose label is null: what «drop_null_labels» leaves out of `eval`
/// (the rows without the option less those with it; footers only where they count nulls).
pub fn count_null_labels(config: &ApplyConfig) -> Result<u64> {
    let with = |drop_null_labels| {
        open(
            &ApplyConfig {
                drop_null_labels,
                ..config.clone()
            },
            false,
        )
        .map(|(_, _, source)| source.num_rows())
    };
    Ok(with(false)?.saturating_sub(with(true)?))
}

/// Mean loss and accuracy (classification) or RMSE (regression) of the saved model on the
/// data, with the row count.
pub fn evaluate_model(config: &ApplyConfig) -> Result<(Metrics, u64)> {
    let (metrics, rows, _) = evaluate_model_with(config, ExtraFigures::Off)?;
    Ok((metrics, rows))
}

/// Whether [`evaluate_model_with`] computes the [`EvalReport`] figures too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExtraFigures {
    /// Loss and accuracy or RMSE only.
    Off,
    /// Also AUC, precision, recall, F1 and the confusion matrix, or R² and MAE, from the same
    /// pass over the data (one more forward pass per batch, no more I/O).
    On,
}

/// [`evaluate_model`], plus the [`EvalReport`] when `extra` is [`ExtraFigures::On`] (the
/// default report, all `None`, otherwise).
///
/// The loss and accuracy or RMSE are summed exactly as [`evaluate()`] sums them (the same
/// engine chunks in the same order), so they stay bit for bit what the trainer's validation
/// pass computes; the extra figures take the batches in file order, so they are deterministic.
pub fn evaluate_model_with(
    config: &ApplyConfig,
    extra: ExtraFigures,
) -> Result<(Metrics, u64, EvalReport)> {
    let (model_file, train, source) = open(config, false)?;
    let model = model_file.spec().build(model_file.features.len());
    let params = model_file.parameters();
    let pipeline = Pipeline::new(
        source.clone(),
        eval_config(&train.pipeline_config(source.num_rows()), &source),
    );
    let mut engine = GradientEngine::new(model.as_ref(), config.num_threads)?;
    let standardize: Option<&Standardization> = model_file.standardization_to_apply();
    if extra == ExtraFigures::Off {
        let metrics = evaluate(&pipeline, &mut engine, &params, standardize)?;
        return Ok((metrics, source.num_rows(), EvalReport::default()));
    }
    let head = model.head();
    let mut sums = EvalSums::default();
    let mut tally = EvalTally::new(head);
    let mut outputs = Vec::new();
    for batch in pipeline.epoch(0)? {
        let mut batch = batch?;
        check_labels(source.as_ref(), head, &batch.rows)?;
        if let Some(s) = standardize {
            s.apply(&mut batch.rows);
        }
        sums.add(&engine.eval_sums(&params, &batch.rows));
        outputs.clear();
        outputs.resize(batch.rows.num_rows() * head.outputs(), 0.0);
        model.predict(&params, batch.rows.features(), &mut outputs);
        tally.add(&outputs, batch.rows.targets())?;
    }
    if sums.rows != source.num_rows() {
        return Err(Error::internal(format!(
            "evaluation saw {} rows, expected {}",
            sums.rows,
            source.num_rows()
        )));
    }
    Ok((sums.metrics(head), source.num_rows(), tally.report()))
}
