//! `inspect --stats`: lenient statistics of a Parquet unit.
//!
//! Training stops at the first null or non-finite value; `inspect` instead counts them, so a
//! user sees every column's count, mean, std, min, max, nulls and non-finite values, together
//! with the error training would stop with. This file only accumulates; the unit's reader is
//! `read.rs`'s, the typed column views `decode.rs`'s and the moments themselves
//! [`crate::data::stats`]'s.

use crate::data::RowBlock;
use crate::data::source::parquet::absent::with_absent_columns;
use crate::data::source::parquet::columns::Layout;
use crate::data::source::parquet::decode::{DecodeContext, Values};
use crate::data::source::parquet::source::ParquetSource;
use crate::data::source::{ChunkSink, Source};
use crate::data::stats::StatsAccumulator;
use crate::error::{Error, Result};

impl ParquetSource {
    /// Statistics of one unit's used columns that count nulls and non-finite values instead
    /// of stopping at them (for `inspect --stats`). Returns the accumulators and the first
    /// null or non-finite value found, as the error training would stop with. A list feature
    /// column is read strictly: a null, NaN or wrong length in it is returned as `Err`.
    pub fn unit_stats(
        &self,
        unit_index: usize,
        max_block_rows: usize,
    ) -> Result<(StatsAccumulator, Option<Error>)> {
        let unit = &self.units[unit_index];
        let stats = crate::guard::catch(|| self.unit_stats_unguarded(unit_index, max_block_rows))
            .unwrap_or_else(|reason| Err(self.corrupt(unit, reason)));
        // The file changing under the read explains any failure.
        self.files[unit.file].data.check()?;
        stats
    }

    fn unit_stats_unguarded(
        &self,
        unit_index: usize,
        max_block_rows: usize,
    ) -> Result<(StatsAccumulator, Option<Error>)> {
        let unit = self.units[unit_index];
        let file = &self.files[unit.file];
        let d = self.schema.num_features();
        let mut acc = StatsAccumulator::new(d);
        let mut problem: Option<Error> = None;
        if let Layout::List { .. } = file.layout {
            let mut sink = StatsSink {
                acc: &mut acc,
                scratch: RowBlock::default(),
            };
            self.read_unit(unit_index, max_block_rows, &mut sink)?;
            return Ok((acc, None));
        }
        let Layout::Scalars {
            features: cols,
            label,
            ..
        } = &file.layout
        else {
            unreachable!("list layouts returned above")
        };
        let bytes = self.unit_bytes(&unit)?;
        self.check_pages(&unit, &bytes)?;
        let reader = self.unit_reader(&unit, bytes, 0, max_block_rows)?;
        let ctx = DecodeContext {
            path: &self.paths[unit.file],
            row_group: unit.index_in_file,
            schema: &self.schema,
            positive_label: self.positive_label.as_deref(),
            drop_null_labels: false,
            weight_column: self.weight.as_deref(),
        };
        let mut rows_read = 0u64;
        let mut values = Vec::with_capacity(max_block_rows);
        for batch in reader {
            let batch = batch.map_err(|e| self.corrupt(&unit, e))?;
            let batch = with_absent_columns(&batch, cols);
            let columns = cols
                .iter()
                .zip(&self.schema.feature_names)
                .zip(acc.features.iter_mut())
                .chain(
                    label
                        .as_ref()
                        .map(|label| ((label, &self.schema.label), &mut acc.label)),
                );
            for ((&c, name), moments) in columns {
                let array = batch.column(c);
                let typed =
                    Values::of(array.as_ref()).ok_or_else(|| ctx.unsupported(array, name))?;
                values.clear();
                for i in 0..array.len() {
                    if array.is_valid(i) {
                        let v = typed.get(i);
                        if !v.is_finite() && problem.is_none() {
                            problem = Some(Error::NonFinite {
                                file: ctx.path.to_path_buf(),
                                row_group: ctx.row_group,
                                row: rows_read + i as u64,
                                column: name.clone(),
                                value: f64::from(v),
                            });
                        }
                        values.push(f64::from(v));
                    } else if problem.is_none() {
                        problem = Some(Error::Null {
                            file: ctx.path.to_path_buf(),
                            row_group: ctx.row_group,
                            row: rows_read + i as u64,
                            column: name.clone(),
                        });
                    }
                }
                moments.add(values.iter().copied());
                moments.add_nulls(array.null_count() as u64);
            }
            rows_read += batch.num_rows() as u64;
            acc.rows += batch.num_rows() as u64;
        }
        if rows_read != unit.num_rows {
            return Err(self.row_count_mismatch(&unit, rows_read));
        }
        self.release(&unit);
        Ok((acc, problem))
    }
}

/// A sink that adds every block to statistics and hands the block back for reuse.
struct StatsSink<'a> {
    acc: &'a mut StatsAccumulator,
    scratch: RowBlock,
}

impl ChunkSink for StatsSink<'_> {
    fn empty_block(&mut self) -> RowBlock {
        std::mem::take(&mut self.scratch)
    }

    fn send(&mut self, block: RowBlock) -> std::ops::ControlFlow<()> {
        self.acc.add_rows(block.features(), block.targets());
        self.scratch = block;
        std::ops::ControlFlow::Continue(())
    }
}
