//! Reading one Parquet unit (row group) into row-major blocks.
//!
//! A unit whose used columns are all flat, PLAIN-encoded float32 columns is read page by page
//! straight into rows (`pages.rs`: one copy fewer than the arrow reader); if a page turns out
//! to be one that path does not decode, the arrow reader takes over from that row. Any other
//! unit is read by the arrow reader with the file's projection mask, in record batches of at
//! most `max_block_rows` rows, each decoded by `decode.rs`. Either way the unit's page headers
//! are checked first (`page_bounds.rs`: no page may declare more bytes than its values can
//! need, so none makes the decompressor allocate gigabytes). After a unit is read its byte
//! range is released from this process's resident set (`MADV_DONTNEED`; the page cache keeps
//! it). The bytes come from [`FileData::chunks`](super::data::FileData::chunks): a local
//! file's map, or a remote unit's fetched column chunks. Errors name the file, row group, row
//! and column.

use parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};

use crate::data::source::parquet::decode::DecodeContext;
use crate::data::source::parquet::ranges::ByteRanges;
use crate::data::source::parquet::source::ParquetSource;
use crate::data::source::parquet::{page_bounds, pages};
use crate::data::source::{ChunkSink, Source, Unit};
use crate::error::{Error, Result};

impl ParquetSource {
    /// Reads unit `unit_index` into `sink` ([`Source::read_unit`](crate::data::source::Source::read_unit)):
    /// by pages when its columns allow, else (or from where the pages stopped) by the arrow
    /// reader.
    pub(super) fn read(
        &self,
        unit_index: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let unit = self.units[unit_index];
        let bytes = match self.read_ahead(unit_index) {
            Some(bytes) => bytes?,
            None => self.unit_bytes(&unit)?,
        };
        self.check_pages(&unit, &bytes)?;
        let file = &self.files[unit.file];
        let ctx = DecodeContext {
            path: &self.paths[unit.file],
            row_group: unit.index_in_file,
            schema: &self.schema,
            positive_label: self.positive_label.as_deref(),
            drop_null_labels: self.drop_null_labels,
            weight_column: self.weight.as_deref(),
        };
        let mut from_row = 0u64;
        if let Some(leaves) = &file.flat {
            let row_group = file.metadata.metadata().row_group(unit.index_in_file);
            if pages::plain_row_group(row_group, leaves) {
                match self.read_unit_pages(&unit, &bytes, leaves, &ctx, max_block_rows, sink)? {
                    None => return Ok(()),
                    Some(row) => from_row = row,
                }
            }
        }
        self.read_unit_arrow(&unit, bytes, from_row, &ctx, max_block_rows, sink)
    }

    /// The bytes of unit `unit_index` if read-ahead fetched them (or is fetching them), else
    /// `None`: the reader fetches them itself.
    fn read_ahead(&self, unit_index: usize) -> Option<Result<ByteRanges>> {
        #[cfg(feature = "remote")]
        if let Some(prefetch) = &self.prefetch {
            return prefetch.take(unit_index);
        }
        let _ = unit_index;
        None
    }

    /// The bytes of one unit's used column chunks (the whole map of a local file).
    pub(super) fn unit_bytes(&self, unit: &Unit) -> Result<ByteRanges> {
        let file = &self.files[unit.file];
        let row_group = file.metadata.metadata().row_group(unit.index_in_file);
        file.data
            .chunks([row_group], &file.mask, self.access.explicit())
    }

    /// A reader over one unit's used columns from row `from_row` of the unit on, in batches of
    /// at most `max_block_rows` rows.
    pub(super) fn unit_reader(
        &self,
        unit: &Unit,
        bytes: ByteRanges,
        from_row: u64,
        max_block_rows: usize,
    ) -> Result<ParquetRecordBatchReader> {
        let file = &self.files[unit.file];
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, file.metadata.clone())
                .with_projection(file.mask.clone())
                .with_row_groups(vec![unit.index_in_file])
                .with_batch_size(max_block_rows.max(1));
        if from_row > 0 {
            builder = builder.with_row_selection(RowSelection::from(vec![
                RowSelector::skip(from_row as usize),
                RowSelector::select((unit.num_rows - from_row) as usize),
            ]));
        }
        builder.build().map_err(|e| self.corrupt(unit, e))
    }

    /// Reads a unit of flat float32 columns page by page (see [`pages`](super::pages)). Returns `None` when
    /// the unit was read (or the sink stopped), or the row to continue from with the arrow
    /// reader when a page is one this path does not decode.
    fn read_unit_pages(
        &self,
        unit: &Unit,
        bytes: &ByteRanges,
        leaves: &[usize],
        ctx: &DecodeContext<'_>,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<Option<u64>> {
        let file = &self.files[unit.file];
        let row_group = file.metadata.metadata().row_group(unit.index_in_file);
        let d = self.schema.num_features();
        let has_label = leaves.len() > d;
        let column_name = |column: usize| match self.schema.feature_names.get(column) {
            Some(name) => name.clone(),
            None => self.schema.label.clone(),
        };
        let stop = |stop: pages::Stop| match stop {
            pages::Stop::Corrupt { column, reason } => match column {
                Some(c) => self.corrupt(unit, format!("column `{}`: {reason}", column_name(c))),
                None => self.corrupt(unit, reason),
            },
            pages::Stop::Null { column, row, .. } => Error::Null {
                file: self.paths[unit.file].clone(),
                row_group: unit.index_in_file,
                row,
                column: column_name(column),
            },
            pages::Stop::RowCount { found } => self.row_count_mismatch(unit, found),
            pages::Stop::Unsupported => Error::internal("unsupported page"),
        };
        let mut reader = pages::FlatReader::new(bytes, row_group, leaves).map_err(stop)?;
        while reader.rows_done() < unit.num_rows {
            let first = reader.rows_done();
            let n = (unit.num_rows - first).min(max_block_rows.max(1) as u64) as usize;
            let mut block = sink.empty_block();
            block.reset(d);
            let mut bad = false;
            let filled = {
                let _span =
                    tracing::trace_span!("decode", rows = n, bytes = n * 4 * (d + 1)).entered();
                block.append_with(n, unit.first_row_id + first, |x, y| {
                    if !has_label {
                        y.fill(0.0);
                    }
                    bad = reader.fill(n, x, y, has_label)?;
                    Ok(())
                })
            };
            // A NaN before a null is reported first (both are in the rows filled).
            let rows_ok = match &filled {
                Ok(()) if !bad => 0,
                Ok(()) => n,
                Err(pages::Stop::Null { filled, .. }) => *filled,
                Err(pages::Stop::Unsupported) => return Ok(Some(first)),
                Err(_) => 0,
            };
            if rows_ok > 0 {
                ctx.check_finite(&block.targets()[..rows_ok], 1, first, |_| {
                    self.schema.label.clone()
                })?;
                ctx.check_finite(&block.features()[..rows_ok * d], d, first, |j| {
                    self.schema.feature_names[j].clone()
                })?;
            }
            filled.map_err(stop)?;
            if sink.send(block).is_break() {
                return Ok(None);
            }
        }
        reader.finish().map_err(stop)?;
        self.release(unit);
        Ok(None)
    }

    /// Reads a unit from row `from_row` on with the arrow reader (the whole unit, or the rest
    /// of one the page path could not finish).
    fn read_unit_arrow(
        &self,
        unit: &Unit,
        bytes: ByteRanges,
        from_row: u64,
        ctx: &DecodeContext<'_>,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        let unit = *unit;
        let file = &self.files[unit.file];
        let mut rows_read = from_row;
        // With «drop_null_labels» the unit's count is of the rows kept; the footer's of all.
        let (stored_rows, mut kept) = if ctx.drop_null_labels {
            let row_group = file.metadata.metadata().row_group(unit.index_in_file);
            (u64::try_from(row_group.num_rows()).unwrap_or(0), 0u64)
        } else {
            (unit.num_rows, from_row)
        };
        let reader = self.unit_reader(&unit, bytes, rows_read, max_block_rows)?;
        let d = self.row_width();
        for batch in reader {
            let batch = batch.map_err(|e| self.corrupt(&unit, e))?;
            let n = batch.num_rows();
            if rows_read + n as u64 > stored_rows {
                return Err(self.row_count_mismatch(&unit, rows_read + n as u64));
            }
            let mut block = sink.empty_block();
            block.reset(d);
            let mut num_kept = n;
            {
                let _span =
                    tracing::trace_span!("decode", rows = n, bytes = n * 4 * (d + 1)).entered();
                block.append_with(n, unit.first_row_id + kept, |x, y| {
                    num_kept = ctx.decode_dropping(&file.layout, &batch, rows_read, x, y)?;
                    Ok::<(), Error>(())
                })?;
            }
            block.truncate(num_kept);
            rows_read += n as u64;
            kept += num_kept as u64;
            if kept > unit.num_rows {
                return Err(self.row_count_mismatch(&unit, kept));
            }
            if sink.send(block).is_break() {
                return Ok(());
            }
        }
        if rows_read != stored_rows || kept != unit.num_rows {
            return Err(self.row_count_mismatch(&unit, kept));
        }
        self.release(&unit);
        Ok(())
    }

    /// The error for a unit whose pages held `found` rows instead of its footer's count.
    pub(super) fn row_count_mismatch(&self, unit: &Unit, found: u64) -> Error {
        Error::RowCountMismatch {
            file: self.paths[unit.file].clone(),
            row_group: unit.index_in_file,
            expected: unit.num_rows,
            found,
        }
    }

    /// Refuses a unit whose used columns have a page header declaring more than the page can
    /// need ([`page_bounds`]), before any page is decompressed.
    pub(super) fn check_pages(&self, unit: &Unit, bytes: &ByteRanges) -> Result<()> {
        let file = &self.files[unit.file];
        let row_group = file.metadata.metadata().row_group(unit.index_in_file);
        page_bounds::check_row_group(bytes, row_group, &file.mask)
            .map_err(|reason| self.corrupt(unit, reason))
    }

    pub(super) fn corrupt(&self, unit: &Unit, reason: impl ToString) -> Error {
        Error::Corrupt {
            file: self.paths[unit.file].clone(),
            row_group: Some(unit.index_in_file),
            reason: reason.to_string(),
        }
    }

    /// Releases a row group's pages from this process's resident set (local files).
    pub(super) fn release(&self, unit: &Unit) {
        let file = &self.files[unit.file];
        file.data
            .release(file.metadata.metadata().row_group(unit.index_in_file));
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::path::Path;
    use std::sync::Arc;

    use arrow_array::{ArrayRef, Float32Array, RecordBatch};
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::{WriterProperties, WriterVersion};

    use super::*;
    use crate::data::source::Source;
    use crate::data::{ColumnSpec, RowBlock};

    /// Ten float32 columns `f0..f8` and `label` (odd ones nullable, none null), 2,000 rows
    /// in row groups of 700.
    fn write(path: &Path, dictionary: bool) {
        let columns: Vec<(String, ArrayRef, bool)> = (0..10)
            .map(|c| {
                let name = if c == 9 {
                    "label".to_string()
                } else {
                    format!("f{c}")
                };
                let values =
                    Float32Array::from_iter_values((0..2_000).map(|r| (r * 10 + c) as f32));
                (name, Arc::new(values) as ArrayRef, c % 2 == 1)
            })
            .collect();
        let batch = RecordBatch::try_from_iter_with_nullable(columns).unwrap();
        let props = WriterProperties::builder()
            .set_dictionary_enabled(dictionary)
            .set_writer_version(WriterVersion::PARQUET_2_0)
            .set_max_row_group_row_count(Some(700))
            .set_data_page_row_count_limit(128)
            .set_write_batch_size(32)
            .build();
        let mut writer =
            ArrowWriter::try_new(File::create(path).unwrap(), batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    fn rows(blocks: &[RowBlock]) -> (Vec<u64>, Vec<f32>, Vec<f32>) {
        let mut out = (Vec::new(), Vec::new(), Vec::new());
        for b in blocks {
            out.0.extend_from_slice(b.row_ids());
            out.1.extend_from_slice(b.features());
            out.2.extend_from_slice(b.targets());
        }
        out
    }

    #[test]
    fn flat_float_row_groups_take_the_page_path_and_dictionaries_do_not() {
        let dir = tempfile::tempdir().unwrap();
        for dictionary in [false, true] {
            let path = dir.path().join(format!("d{dictionary}.parquet"));
            write(&path, dictionary);
            let source = ParquetSource::open(&[path], &ColumnSpec::default()).unwrap();
            let file = &source.files[0];
            let leaves = file.flat.as_ref().expect("flat float columns");
            assert_eq!(leaves, &(0..10).collect::<Vec<_>>());
            for row_group in file.metadata.metadata().row_groups() {
                assert_eq!(pages::plain_row_group(row_group, leaves), !dictionary);
            }
        }
    }

    /// The arrow reader started mid-unit (the page path's fallback) delivers exactly the rest
    /// of the unit, with the right ids, as the page path would have.
    #[test]
    fn the_arrow_reader_resumes_a_unit_at_any_row() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flat.parquet");
        write(&path, false);
        let source = ParquetSource::open(&[path], &ColumnSpec::default()).unwrap();
        let unit = source.units[1];
        let ctx = DecodeContext {
            path: &source.paths[0],
            row_group: unit.index_in_file,
            schema: &source.schema,
            positive_label: None,
            drop_null_labels: false,
            weight_column: None,
        };
        let mut whole: Vec<RowBlock> = Vec::new();
        source.read_unit(1, 64, &mut whole).unwrap();
        let (ids, features, targets) = rows(&whole);
        assert_eq!(ids.len(), 700);
        for from in [0usize, 1, 64, 300, 699] {
            let mut rest: Vec<RowBlock> = Vec::new();
            source
                .read_unit_arrow(
                    &unit,
                    source.unit_bytes(&unit).unwrap(),
                    from as u64,
                    &ctx,
                    64,
                    &mut rest,
                )
                .unwrap();
            let (rest_ids, rest_features, rest_targets) = rows(&rest);
            assert_eq!(rest_ids, ids[from..], "from {from}");
            assert_eq!(rest_features, features[from * 9..], "from {from}");
            assert_eq!(rest_targets, targets[from..], "from {from}");
        }
    }
}
