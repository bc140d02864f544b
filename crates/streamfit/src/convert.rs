//! `convert`: Parquet into streamfit shards, streaming.
//!
//! The Parquet source is read by the pipeline's readers in file order (`scan`), so memory
//! stays at a few decoded blocks whatever the dataset's size. Unit boundaries are kept: each
//! row group becomes one unit of the shard dataset, and a shard holds whole units only (a new
//! shard starts when the next unit would pass `--shard-rows`, unless the shard is empty). The
//! shard dataset therefore has the same units, in the same order, with the same row ids as its
//! source, and training on either with the same seed gives the same batches.
//!
//! With preprocessing options (the `train` options «categorical», «max_categories»,
//! «hash_buckets», «fill_nulls», «null_indicators», and the columns' «positive_label» and
//! «drop_null_labels»), the preprocessing is fitted first, exactly as `train` fits it on the
//! same data ([`fit_preprocessing`]: the same passes, the same vocabularies and means), and
//! the shards store the *encoded* rows: one-hot, hashed and indicator features, fills, mapped
//! labels. Columns the scale check finds far off centre (a timestamp near 1.7e9 s) are
//! centred in f64 before the f32 cast, as a standardised `train` run centres them (unless
//! [`ConvertPreprocess::centre`] is off). What was fitted and applied goes into the manifest
//! ([`Preprocessing`], manifest version 2) with the scale check's verdict, so that training on
//! the shards equals training on the source with the same options, and saves the same model
//! file (which `predict` and `eval` apply to raw Parquet files). A plain conversion stores no
//! preprocessing.
//!
//! Everything is written into `DIR.partial` and renamed to `DIR` at the end, after every file
//! and the directory were synced: an interrupted conversion never leaves a directory that looks
//! complete (a leftover `DIR.partial` is removed by the next conversion to `DIR`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::atomic_file::{sync_dir, write_atomically};
use crate::config::TrainConfig;
use crate::data::ColumnSpec;
use crate::data::categorical::CategoricalColumns;
use crate::data::schema::FillNulls;
use crate::data::source::shard::{
    MANIFEST, MANIFEST_FORMAT, MANIFEST_VERSION, Manifest, ManifestShard, ManifestSource,
    Preprocessing, ShardMeta, ShardWriter,
};
use crate::data::source::{ColumnRole, OpenOptions, ParquetFormat, Source, SourceFormat};
use crate::error::{Error, Result};
use crate::output_path::InputSet;
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::run::{
    PrepareEvent, check_positive_label_seen, count_dropped_labels, decide_standardize,
    fit_preprocessing,
};
use crate::train::Standardize;

/// Target bytes per shard when `--shard-rows` is not given.
pub const DEFAULT_SHARD_BYTES: u64 = 256 << 20;

/// Settings of `convert`.
#[derive(Debug, Clone)]
pub struct ConvertConfig {
    /// Parquet files and/or directories of them.
    pub data: Vec<PathBuf>,
    /// Feature and label columns to keep, and the label's «positive_label» and
    /// «drop_null_labels» (fitted preprocessing must be left unset: it is fitted here).
    pub columns: ColumnSpec,
    /// Preprocessing to fit and apply to the stored rows. By default none (but far off
    /// centre columns centred).
    pub preprocess: ConvertPreprocess,
    /// Output directory (must not exist).
    pub out: PathBuf,
    /// Rows per shard (whole units only). By default about 256 MB of rows.
    pub shard_rows: Option<u64>,
    /// Reader threads. By default 2.
    pub num_readers: usize,
}

impl Default for ConvertConfig {
    fn default() -> Self {
        ConvertConfig {
            data: Vec::new(),
            columns: ColumnSpec::default(),
            preprocess: ConvertPreprocess::default(),
            out: PathBuf::new(),
            shard_rows: None,
            num_readers: 2,
        }
    }
}

/// The preprocessing `convert` fits on the source and applies to the rows it stores; each
/// field is the `train` option of its name ([`TrainConfig`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertPreprocess {
    /// «fill_nulls». By default none: a null is an error.
    pub fill_nulls: Option<FillNulls>,
    /// «null_indicators». By default off.
    pub null_indicators: bool,
    /// «categorical». By default none.
    pub categorical: CategoricalColumns,
    /// «max_categories». By default 100.
    pub max_categories: usize,
    /// «hash_buckets». By default off.
    pub hash_buckets: Option<u32>,
    /// Centre the columns the scale check finds far off centre in f64 before the f32 cast
    /// (option `no_centre` turns it off: the stored values are then the raw ones, rounded).
    /// By default on.
    pub centre: bool,
}

impl Default for ConvertPreprocess {
    fn default() -> Self {
        let train = TrainConfig::default();
        ConvertPreprocess {
            fill_nulls: None,
            null_indicators: false,
            categorical: CategoricalColumns::None,
            max_categories: train.max_categories,
            hash_buckets: None,
            centre: true,
        }
    }
}

/// What a conversion wrote.
#[derive(Debug, Clone)]
pub struct ConvertSummary {
    /// Rows converted.
    pub rows: u64,
    /// Features per row.
    pub num_features: usize,
    /// Shard files written.
    pub shards: usize,
    /// Units (source row groups) kept.
    pub units: usize,
    /// Bytes of the shard files.
    pub bytes: u64,
    /// Bytes of the source files.
    pub source_bytes: u64,
    /// Wall time.
    pub seconds: f64,
    /// The preprocessing fitted and applied (stored in the manifest).
    pub preprocessing: Preprocessing,
}

/// Rows per shard for about [`DEFAULT_SHARD_BYTES`] with `num_features` features.
pub fn default_shard_rows(num_features: usize) -> u64 {
    (DEFAULT_SHARD_BYTES / (4 * (num_features as u64 + 1))).max(1)
}

/// `DIR.partial`, the scratch name a conversion to `DIR` writes under.
pub fn partial_dir(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_os_string();
    name.push(".partial");
    out.with_file_name(name)
}

/// One planned shard: its units (indices into the source's units) and rows.
struct PlannedShard {
    units: std::ops::Range<usize>,
    rows: u64,
}

/// Groups consecutive units into shards of at most `shard_rows` rows (a unit larger than
/// that gets a shard of its own).
fn plan_shards(source: &dyn Source, shard_rows: u64) -> Vec<PlannedShard> {
    let mut shards: Vec<PlannedShard> = Vec::new();
    for (i, unit) in source.units().iter().enumerate() {
        match shards.last_mut() {
            Some(last) if last.rows + unit.num_rows <= shard_rows => {
                last.units.end = i + 1;
                last.rows += unit.num_rows;
            }
            _ => shards.push(PlannedShard {
                units: i..i + 1,
                rows: unit.num_rows,
            }),
        }
    }
    shards
}

/// Converts `config.data` into a shard dataset at `config.out`. `progress` is called with
/// the rows written so far after every block.
pub fn convert(config: &ConvertConfig, progress: &mut dyn FnMut(u64)) -> Result<ConvertSummary> {
    convert_with_events(config, &mut |_| {}, progress)
}

/// Converts like [`convert`], handing what fitting the preprocessing found (its passes, the
/// rows «drop_null_labels» leaves out) to `on_event` as it happens.
pub fn convert_with_events(
    config: &ConvertConfig,
    on_event: &mut dyn FnMut(PrepareEvent),
    progress: &mut dyn FnMut(u64),
) -> Result<ConvertSummary> {
    let started = Instant::now();
    if config.shard_rows == Some(0) {
        return Err(Error::config("shard_rows", "must be at least 1"));
    }
    if config.num_readers == 0 || config.num_readers > 256 {
        return Err(Error::config("readers", "must be between 1 and 256"));
    }
    if config.out.exists() {
        return Err(Error::config(
            "out",
            format!(
                "{} already exists; choose a new directory or remove it",
                config.out.display()
            ),
        ));
    }
    let parent = match config.out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !parent.is_dir() {
        return Err(Error::output(
            &config.out,
            format!("directory {} does not exist", parent.display()),
        ));
    }
    let (source, preprocessing) = open_encoded(config, on_event)?;
    let schema = source.schema().clone();
    let d = schema.num_features();
    let shard_rows = config.shard_rows.unwrap_or_else(|| default_shard_rows(d));
    let plan = plan_shards(source.as_ref(), shard_rows);

    let partial = partial_dir(&config.out);
    // A leftover scratch directory is removed below: never one that holds the input.
    let mut inputs = InputSet::new();
    inputs.add_dataset(source.as_ref(), &config.data);
    inputs.check_replaced_dir("out", &partial)?;
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(|e| Error::output(&partial, e))?;
    }
    std::fs::create_dir(&partial).map_err(|e| Error::output(&partial, e))?;

    let written = write_shards(
        source.clone(),
        &plan,
        &partial,
        config.num_readers,
        preprocessing,
        progress,
    )
    .and_then(|manifest| {
        sync_dir(&partial).map_err(|e| Error::output(&partial, e))?;
        std::fs::rename(&partial, &config.out).map_err(|e| Error::output(&config.out, e))?;
        sync_dir(&parent).map_err(|e| Error::output(&parent, e))?;
        Ok(manifest)
    });
    let manifest = match written {
        Ok(manifest) => manifest,
        Err(e) => {
            // Nothing half-written stays behind (a killed run leaves only DIR.partial).
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    Ok(ConvertSummary {
        rows: manifest.num_rows,
        num_features: d,
        shards: manifest.shards.len(),
        units: source.units().len(),
        bytes: manifest.shards.iter().map(|s| s.bytes).sum(),
        source_bytes: source.file_bytes(),
        seconds: started.elapsed().as_secs_f64(),
        preprocessing: manifest.preprocessing,
    })
}

/// Opens the source as `train` opens it with the same options: the preprocessing fitted
/// ([`fit_preprocessing`]), «positive_label» checked, far off centre columns centred when the
/// scale check finds them (as a standardised run centres them). Returns the source that
/// decodes the encoded rows, and what it applies.
fn open_encoded(
    config: &ConvertConfig,
    on_event: &mut dyn FnMut(PrepareEvent),
) -> Result<(Arc<dyn Source>, Preprocessing)> {
    let preprocess = &config.preprocess;
    let mut fit = TrainConfig {
        data: config.data.clone(),
        columns: config.columns.clone(),
        num_readers: config.num_readers,
        fill_nulls: preprocess.fill_nulls,
        null_indicators: preprocess.null_indicators,
        categorical: preprocess.categorical.clone(),
        max_categories: preprocess.max_categories,
        hash_buckets: preprocess.hash_buckets,
        standardize: Standardize::Auto,
        ..TrainConfig::default()
    };
    fit.check()?;
    fit_preprocessing(&mut fit, on_event)?;
    // Opened as `train` opens Parquet: directory trees, patterns, partition keys as features
    // and the columns' filter included.
    let open = |columns: &ColumnSpec| -> Result<Arc<dyn Source>> {
        let options = OpenOptions {
            columns: columns.clone(),
            ..OpenOptions::default()
        };
        Ok(ParquetFormat.open(&config.data, &options)?.0)
    };
    let mut source = open(&fit.columns)?;
    if let Some(dropped) = count_dropped_labels(&fit, &source)? {
        on_event(dropped);
    }
    check_positive_label_seen(&fit, &source)?;
    let decision = decide_standardize(&fit, &source);
    if preprocess.centre && !decision.centre.is_empty() {
        fit.columns.centre = decision.centre;
        source = open(&fit.columns)?;
    }
    let mut preprocessing = Preprocessing {
        missing: fit.columns.missing,
        positive_label: fit.columns.positive_label,
        drop_null_labels: fit.columns.drop_null_labels,
        categorical: fit.columns.categorical,
        centre: fit.columns.centre,
        scales_mixed: false,
    };
    // Rows stored as decoded are judged as stored; encoded ones by the source's verdict.
    preprocessing.scales_mixed = !preprocessing.is_empty() && decision.standardize;
    Ok((source, preprocessing))
}

/// Writes the planned shards and the manifest into `dir`.
fn write_shards(
    source: Arc<dyn Source>,
    plan: &[PlannedShard],
    dir: &Path,
    num_readers: usize,
    preprocessing: Preprocessing,
    progress: &mut dyn FnMut(u64),
) -> Result<Manifest> {
    let schema = source.schema().clone();
    let shard_name = |i: usize| format!("shard-{i:05}.sfs");
    let units = source.units();
    let mut entries: Vec<ManifestShard> = Vec::with_capacity(plan.len());
    let mut current: Option<(usize, ShardWriter)> = None;
    let mut next_shard = 0usize;
    let mut rows_written = 0u64;
    let open_shard = |index: usize| -> Result<ShardWriter> {
        let shard = &plan[index];
        let meta = ShardMeta {
            feature_names: schema.feature_names.clone(),
            label: schema.label.clone(),
            first_row_id: units[shard.units.start].first_row_id,
            units: units[shard.units.clone()]
                .iter()
                .map(|u| u.num_rows)
                .collect(),
        };
        ShardWriter::create(&dir.join(shard_name(index)), &meta, shard.rows)
    };
    let pipeline = Pipeline::new(source.clone(), PipelineConfig::file_order(num_readers));
    pipeline.scan(|block| {
        let mut i = 0;
        while i < block.num_rows() {
            if current.is_none() {
                current = Some((next_shard, open_shard(next_shard)?));
                next_shard += 1;
            }
            let (index, writer) = current.as_mut().expect("just opened");
            let n = (block.num_rows() - i).min(writer.rows_left() as usize);
            writer.write_rows(block, i..i + n)?;
            i += n;
            rows_written += n as u64;
            if writer.rows_left() == 0 {
                let (index, writer) = (*index, current.take().expect("open").1);
                let bytes = writer.finish()?;
                entries.push(ManifestShard {
                    file: shard_name(index),
                    rows: plan[index].rows,
                    bytes,
                });
            }
        }
        progress(rows_written);
        Ok(())
    })?;
    if current.is_some() || entries.len() != plan.len() || rows_written != source.num_rows() {
        return Err(Error::internal(format!(
            "conversion ended after {rows_written} of {} rows",
            source.num_rows()
        )));
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT.to_string(),
        // Without preprocessing the manifest is a version 1 one, which older builds read.
        version: if preprocessing.is_empty() {
            1
        } else {
            MANIFEST_VERSION
        },
        num_rows: rows_written,
        feature_names: schema.feature_names.clone(),
        label: schema.label.clone(),
        source: ManifestSource {
            files: source.files().to_vec(),
            schema: used_columns(source.as_ref()),
        },
        shards: entries,
        preprocessing,
    };
    let manifest_path = dir.join(MANIFEST);
    let mut json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| Error::output(&manifest_path, e))?;
    json.push(b'\n');
    write_atomically(&manifest_path, &json)?;
    Ok(manifest)
}

/// The used columns with their decoded types, as the manifest records its source's schema:
/// `columns [x: Float32, month: int64, label: Float32] (2 features)`.
fn used_columns(source: &dyn Source) -> String {
    let info = source.describe();
    let used: Vec<String> = info
        .columns
        .iter()
        .filter(|c| c.role != ColumnRole::Unused)
        .map(|c| format!("{}: {}", c.name, c.arrow_type))
        .collect();
    let features = source.num_features();
    format!("columns [{}] ({features} features)", used.join(", "))
}
