//! The features' ranges from the Parquet footers' column statistics, for the scale check
//! ([`Source::feature_ranges`](crate::data::source::Source::feature_ranges)).
//!
//! Footers are parsed without statistics when the files are opened (training never needs
//! them), so each footer is parsed once more here, decoding the statistics of the scalar
//! feature columns only. A row group's min and max become values through the same cast as
//! the data (a decimal's scale, a timestamp's unit: [`Values`]). Any gap (a file without
//! statistics for a column, a column a file lacks, a list layout, a footer that does not
//! parse again) gives `None`, and the caller reads the first unit instead. Reading no data,
//! this never fails a run.

use std::sync::Arc;

use arrow_array::Array;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::file::metadata::ParquetStatisticsPolicy;

use crate::data::source::parquet::columns::Layout;
use crate::data::source::parquet::decode::Values;
use crate::data::source::parquet::files::ParquetFile;
use crate::data::source::parquet::source::ParquetSource;

impl ParquetSource {
    /// The min and max of each feature over every row group of every file, from the footers'
    /// statistics; the features that are no column (indicators, categorical encodings) are
    /// 0/1 by construction. `None` where any file lacks them.
    pub(super) fn footer_ranges(&self) -> Option<Vec<(f64, f64)>> {
        let names = &self.schema.feature_names;
        let mut ranges = vec![(0.0, 1.0); names.len()];
        let Layout::Scalars { features, .. } = &self.files.first()?.layout else {
            return None;
        };
        let columns = &names[..features.len()];
        ranges[..features.len()].fill((f64::INFINITY, f64::NEG_INFINITY));
        for file in &self.files {
            let file_ranges = crate::guard::catch(|| file_ranges(file, columns))
                .ok()
                .flatten()?;
            for (range, (min, max)) in ranges.iter_mut().zip(file_ranges) {
                *range = (range.0.min(min), range.1.max(max));
            }
        }
        Some(ranges)
    }
}

/// The min and max of each of `columns` over `file`'s row groups.
fn file_ranges(file: &ParquetFile, columns: &[String]) -> Option<Vec<(f64, f64)>> {
    let parquet_schema = file.metadata.metadata().file_metadata().schema_descr();
    let arrow_schema = file.metadata.schema();
    let leaves: Vec<usize> = columns
        .iter()
        .map(|name| {
            StatisticsConverter::try_new(name, arrow_schema, parquet_schema)
                .ok()?
                .parquet_column_index()
        })
        .collect::<Option<_>>()?;
    let options = ArrowReaderOptions::new()
        .with_encoding_stats_policy(ParquetStatisticsPolicy::SkipAll)
        .with_column_stats_policy(ParquetStatisticsPolicy::skip_except(&leaves))
        .with_size_stats_policy(ParquetStatisticsPolicy::SkipAll);
    let metadata = ArrowReaderMetadata::load(&file.data.footer_bytes(), options).ok()?;
    let row_groups = metadata.metadata().row_groups();
    let (parquet_schema, arrow_schema) = (
        metadata.metadata().file_metadata().schema_descr(),
        Arc::clone(metadata.schema()),
    );
    columns
        .iter()
        .map(|name| {
            // INT96 timestamps have no usable order here: their statistics read as null.
            let converter =
                StatisticsConverter::try_new(name, &arrow_schema, parquet_schema).ok()?;
            let mins = converter.row_group_mins(row_groups).ok()?;
            let maxes = converter.row_group_maxes(row_groups).ok()?;
            if mins.null_count() > 0 || maxes.null_count() > 0 {
                return None;
            }
            let (mins, maxes) = (Values::of(mins.as_ref())?, Values::of(maxes.as_ref())?);
            let mut range = (f64::INFINITY, f64::NEG_INFINITY);
            for i in 0..row_groups.len() {
                range = (range.0.min(mins.value(i)), range.1.max(maxes.value(i)));
            }
            Some(range)
        })
        .collect()
}
