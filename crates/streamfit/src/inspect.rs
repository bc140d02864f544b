//! `inspect`: what is in a dataset, what training would use, and (with `--stats`) per-column
//! statistics from one streamed pass, plus each string column's estimated distinct count and
//! most frequent values (a second, serial pass counting them as «categorical» would).
//!
//! Statistics of Parquet data count nulls and non-finite values instead of stopping at them
//! (units are summarised in parallel and merged in unit order, so the figures do not depend on
//! the thread count); a shard dataset holds only finite values and is scanned with the
//! pipeline's readers. When a used column holds a null or a non-finite value, the inspection is
//! still returned, together with the error training would stop with.

use std::path::PathBuf;
use std::sync::Arc;

use rayon::prelude::*;
use serde::Serialize;

use crate::config::TrainConfig;
use crate::data::categorical::{Categorical, CategoricalColumns, Encoding};
use crate::data::schema::ColumnFill;
use crate::data::sketch::{CategoryCounts, sketch_capacity};
use crate::data::source::shard::Preprocessing;
use crate::data::source::{
    ColumnInfo, OnBadFile, OpenOptions, PARTITION_STORED_TYPE, ParquetFormat, ParquetSource,
    Source, SourceFormat,
};
use crate::data::stats::{ColumnStats, DatasetStats, StatsAccumulator};
use crate::error::{Error, Result};
use crate::pipeline::{Pipeline, PipelineConfig};

/// Rows per decoded block of the statistics pass.
const STATS_BLOCK_ROWS: usize = 8_192;

/// Sizes of the units, in rows.
#[derive(Debug, Clone, Serialize)]
pub struct UnitSizes {
    /// Smallest unit.
    pub min_rows: u64,
    /// Largest unit.
    pub max_rows: u64,
    /// Mean rows per unit.
    pub mean_rows: f64,
}

/// Everything `inspect` reports (the `--json` object).
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// `parquet` or `shards`.
    pub format: &'static str,
    /// The files read.
    pub files: Vec<PathBuf>,
    /// Bytes of the files on disk.
    pub file_bytes: u64,
    /// Rows.
    pub rows: u64,
    /// Features per row.
    pub num_features: usize,
    /// Feature names in row order.
    pub feature_columns: Vec<String>,
    /// The label column.
    pub label_column: String,
    /// Units (row groups or shard row ranges).
    pub num_units: usize,
    /// What a unit is.
    pub unit_kind: &'static str,
    /// Rows per unit.
    pub unit_sizes: UnitSizes,
    /// Compression codecs of the used columns.
    pub codecs: Vec<String>,
    /// File bytes per row.
    pub file_bytes_per_row: f64,
    /// Decoded bytes per row (f32 features and target).
    pub decoded_bytes_per_row: u64,
    /// Resident-memory budget of `train` with the given flags.
    pub memory_budget_bytes: u64,
    /// Every column of the (first) file with its types and role.
    pub schema: Vec<ColumnInfo>,
    /// With `--stats`: statistics of each feature, in row order.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<ColumnStats>>,
    /// With `--stats`: statistics of the label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<ColumnStats>,
    /// With `--stats` on Parquet data: each string and dictionary column (the candidates of
    /// «categorical» `auto`), counted as the vocabulary pass counts them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<CategoryStats>>,
    /// A shard dataset `convert` encoded: the preprocessing fitted on its source and applied
    /// to its rows (as its manifest stores it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub preprocessing: Option<Preprocessing>,
}

/// A string or dictionary column's values, as `inspect --stats` shows them.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryStats {
    /// The column.
    pub column: String,
    /// Distinct values (estimated: HyperLogLog, about 1.6% standard error).
    pub distinct: u64,
    /// Nulls.
    pub nulls: u64,
    /// The most frequent values with their counts (exact while the column has at most
    /// 4,096 distinct values; otherwise over-estimated by at most rows / 4,096), most
    /// frequent first.
    pub top: Vec<(String, u64)>,
}

/// Inspects `config.data` (with its column flags; the pipeline flags size the memory budget).
/// With `stats`, also streams every used column once. The second value is the error training
/// would stop with when a used column holds a null or a non-finite value, or when a named
/// feature column is missing from some files (shown "missing in N files").
pub fn inspect(config: &TrainConfig, stats: bool) -> Result<(Inspection, Option<Error>)> {
    config.check()?;
    // Opened without the rule that training needs a feature column, so that `inspect` can
    // show a file that has none; and with a named feature column that some files lack
    // opened as null there (shown "missing in N files"), its error kept as training's.
    let mut columns = config.columns.clone();
    let mut absent_problem = None;
    let source: Arc<dyn Source> = if config.is_shard_dataset() {
        config.open_source()?
    } else {
        loop {
            let options = OpenOptions {
                columns: columns.clone(),
                verify_checksums: config.verify_checksums,
                on_bad_file: OnBadFile::Error,
            };
            match ParquetFormat.open(&config.data, &options) {
                Err(e @ Error::AbsentColumn { .. }) => {
                    let Error::AbsentColumn { column, .. } = &e else {
                        unreachable!()
                    };
                    columns.missing.fill.push(ColumnFill {
                        column: column.clone(),
                        value: 0.0,
                    });
                    absent_problem.get_or_insert(e);
                }
                opened => break opened?.0,
            }
        }
    };
    config.apply_read_mode(&source);
    let info = source.describe();
    // Plain Parquet files get the lenient statistics (nulls and non-finite values counted, not
    // fatal); a partitioned or filtered tree the generic pass over its rows.
    let partitioned = info
        .columns
        .iter()
        .any(|c| c.stored_type == PARTITION_STORED_TYPE);
    let parquet =
        if stats && !config.is_shard_dataset() && !partitioned && config.columns.filter.is_none() {
            Some(Arc::new(ParquetSource::open(&config.data, &columns)?))
        } else {
            None
        };
    let units = source.units();
    let rows = source.num_rows();
    let d = source.num_features();
    let schema = source.schema().clone();
    let mut inspection = Inspection {
        format: info.format,
        files: source.files().to_vec(),
        file_bytes: source.file_bytes(),
        rows,
        num_features: d,
        feature_columns: schema.feature_names.clone(),
        label_column: schema.label.clone(),
        num_units: units.len(),
        unit_kind: info.unit_kind,
        unit_sizes: UnitSizes {
            min_rows: units.iter().map(|u| u.num_rows).min().unwrap_or(0),
            max_rows: units.iter().map(|u| u.num_rows).max().unwrap_or(0),
            mean_rows: rows as f64 / units.len().max(1) as f64,
        },
        codecs: info.codecs,
        file_bytes_per_row: source.file_bytes() as f64 / rows.max(1) as f64,
        decoded_bytes_per_row: 4 * (d as u64 + 1),
        memory_budget_bytes: config.memory_budget_bytes(&source),
        schema: info.columns,
        columns: None,
        label: None,
        categories: None,
        preprocessing: source.stored_preprocessing().cloned(),
    };
    if !stats {
        return Ok((inspection, absent_problem));
    }
    let (result, problem) = match &parquet {
        Some(parquet) => parquet_stats(parquet)?,
        None => (dataset_stats(source.clone(), config.num_readers)?, None),
    };
    let DatasetStats {
        features, label, ..
    } = result;
    inspection.columns = Some(features);
    inspection.label = Some(label);
    if !config.is_shard_dataset() {
        inspection.categories = Some(category_stats(config)?);
    }
    Ok((inspection, absent_problem.or(problem)))
}

/// Most frequent values `inspect --stats` shows per string column.
const TOP_VALUES: usize = 5;

/// The string and dictionary columns of Parquet data (those «categorical» `auto` would
/// take), counted by one serial pass in unit order.
fn category_stats(config: &TrainConfig) -> Result<Vec<CategoryStats>> {
    let mut columns = config.columns.clone();
    columns.categorical = Categorical {
        columns: CategoricalColumns::Auto,
        encoding: Encoding::Unfitted,
    };
    let options = OpenOptions {
        columns,
        verify_checksums: config.verify_checksums,
        on_bad_file: OnBadFile::Error,
    };
    let source = ParquetFormat.open(&config.data, &options)?.0;
    let names = source.categorical_columns();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let mut counts = CategoryCounts::new(sketch_capacity(1));
    for unit in 0..source.units().len() {
        source.count_categories(unit, &mut counts)?;
    }
    Ok(names
        .iter()
        .map(|name| {
            let counted = counts.column(name);
            CategoryStats {
                column: name.clone(),
                distinct: counted.distinct.estimate(),
                nulls: counted.nulls,
                top: counted.values.top(TOP_VALUES),
            }
        })
        .collect())
}

/// Lenient statistics of Parquet data: units in parallel, merged in unit order.
fn parquet_stats(source: &ParquetSource) -> Result<(DatasetStats, Option<Error>)> {
    let parts: Vec<Result<(StatsAccumulator, Option<Error>)>> = (0..source.units().len())
        .into_par_iter()
        .map(|u| source.unit_stats(u, STATS_BLOCK_ROWS))
        .collect();
    let schema = source.schema();
    let mut total = StatsAccumulator::new(schema.num_features());
    let mut first_problem = None;
    for part in parts {
        let (acc, problem) = part?;
        total.merge(&acc);
        if first_problem.is_none() {
            first_problem = problem;
        }
    }
    Ok((
        total.finish(&schema.feature_names, &schema.label),
        first_problem,
    ))
}

/// Statistics of every used column through the pipeline's readers (blocks in file order, so
/// the result does not depend on the reader count). Stops at the first null or non-finite
/// value, as training would; `train --standardize` uses it.
pub fn dataset_stats(source: Arc<dyn Source>, num_readers: usize) -> Result<DatasetStats> {
    let schema = source.schema().clone();
    let mut total = StatsAccumulator::new(schema.num_features());
    let pipeline = Pipeline::new(
        source,
        PipelineConfig {
            block_rows: STATS_BLOCK_ROWS,
            ..PipelineConfig::file_order(num_readers)
        },
    );
    pipeline.scan(|block| {
        total.add_rows(block.features(), block.targets());
        Ok(())
    })?;
    Ok(total.finish(&schema.feature_names, &schema.label))
}
