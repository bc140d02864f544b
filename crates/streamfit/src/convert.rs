//! `convert`: Parquet into streamfit shards, streaming.
//!
//! The Parquet source is read by the pipeline's readers in file order (`scan`), so memory
//! stays at a few decoded blocks whatever the dataset's size. Unit boundaries are kept: each
//! row group becomes one unit of the shard dataset, and a shard holds whole units only (a new
//! shard starts when the next unit would pass `--shard-rows`, unless the shard is empty). The
//! shard dataset therefore has the same units, in the same order, with the same row ids as its
//! source, and training on either with the same seed gives the same batches.
//!
//! Everything is written into `DIR.partial` and renamed to `DIR` at the end, after every file
//! and the directory were synced: an interrupted conversion never leaves a directory that looks
//! complete (a leftover `DIR.partial` is removed by the next conversion to `DIR`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use crate::atomic_file::{sync_dir, write_atomically};
use crate::data::ColumnSpec;
use crate::data::source::shard::{
    MANIFEST, MANIFEST_FORMAT, Manifest, ManifestShard, ManifestSource, ShardMeta, ShardWriter,
    VERSION,
};
use crate::data::source::{ColumnRole, OpenOptions, ParquetFormat, Source, SourceFormat};
use crate::error::{Error, Result};
use crate::output_path::InputSet;
use crate::pipeline::{Pipeline, PipelineConfig, Shuffle};

/// Target bytes per shard when `--shard-rows` is not given.
pub const DEFAULT_SHARD_BYTES: u64 = 256 << 20;

/// Settings of `convert`.
#[derive(Debug, Clone)]
pub struct ConvertConfig {
    /// Parquet files and/or directories of them.
    pub data: Vec<PathBuf>,
    /// Feature and label columns to keep.
    pub columns: ColumnSpec,
    /// Output directory (must not exist).
    pub out: PathBuf,
    /// Rows per shard (whole units only). By default about 256 MB of rows.
    pub shard_rows: Option<u64>,
    /// Reader threads. By default 2.
    pub num_readers: usize,
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
    // Opened as `train` opens Parquet: directory trees, patterns, partition keys as features
    // and the columns' filter included.
    let options = OpenOptions {
        columns: config.columns.clone(),
        ..OpenOptions::default()
    };
    let source = ParquetFormat.open(&config.data, &options)?.0;
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
    })
}

/// Writes the planned shards and the manifest into `dir`.
fn write_shards(
    source: Arc<dyn Source>,
    plan: &[PlannedShard],
    dir: &Path,
    num_readers: usize,
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
    let pipeline = Pipeline::new(
        source.clone(),
        PipelineConfig {
            shuffle: Shuffle::Off,
            num_readers,
            ..PipelineConfig::default()
        },
    );
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
        version: VERSION,
        num_rows: rows_written,
        feature_names: schema.feature_names.clone(),
        label: schema.label.clone(),
        source: ManifestSource {
            files: source.files().to_vec(),
            schema: used_columns(source.as_ref()),
        },
        shards: entries,
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
