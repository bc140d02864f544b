//! Writing Parquet: one file of float32 feature columns plus a float32 label
//! ([`ParquetWriter`]), or the predictions of `predict` ([`PredictionWriter`]).
//!
//! Used by `generate`, `predict` (and by tests that need files). Rows arrive one row group at a time as
//! columns, so nothing larger than a row group is ever held. The file is written under a
//! temporary name and renamed on [`ParquetWriter::finish`], so an interrupted write never
//! leaves a file that looks complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, FixedSizeListArray, Float32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

use crate::atomic_file::AtomicFile;
use crate::data::source::parquet::{KeptRows, KeptSchema};
use crate::error::{Error, Result};

/// Page compression of written Parquet files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    #[default]
    Snappy,
    Zstd,
    Lz4,
}

impl Compression {
    fn to_parquet(self) -> ParquetCompression {
        match self {
            Compression::None => ParquetCompression::UNCOMPRESSED,
            Compression::Snappy => ParquetCompression::SNAPPY,
            Compression::Zstd => ParquetCompression::ZSTD(ZstdLevel::default()),
            Compression::Lz4 => ParquetCompression::LZ4_RAW,
        }
    }
}

/// Writes one Parquet file of f32 feature columns and an f32 `label` column.
pub struct ParquetWriter {
    writer: ArrowWriter<AtomicFile>,
    schema: Arc<ArrowSchema>,
    path: PathBuf,
}

impl ParquetWriter {
    /// Creates `path` (under a temporary name until [`ParquetWriter::finish`]) with columns
    /// `feature_names` and `label`, row groups of at most `row_group_rows` rows.
    pub fn create(
        path: &Path,
        feature_names: &[String],
        label: &str,
        compression: Compression,
        row_group_rows: usize,
    ) -> Result<Self> {
        let mut fields: Vec<Field> = feature_names
            .iter()
            .map(|name| Field::new(name, DataType::Float32, false))
            .collect();
        fields.push(Field::new(label, DataType::Float32, false));
        let schema = Arc::new(ArrowSchema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(compression.to_parquet())
            .set_dictionary_enabled(false)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_max_row_group_row_count(Some(row_group_rows.max(1)))
            .build();
        let file = AtomicFile::create(path)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| Error::output(path, e))?;
        Ok(ParquetWriter {
            writer,
            schema,
            path: path.to_path_buf(),
        })
    }

    /// Appends rows given as one vector per feature column plus the labels (all one length).
    pub fn write_columns(&mut self, features: Vec<Vec<f32>>, labels: Vec<f32>) -> Result<()> {
        let mut columns: Vec<ArrayRef> = features
            .into_iter()
            .map(|c| Arc::new(Float32Array::from(c)) as ArrayRef)
            .collect();
        columns.push(Arc::new(Float32Array::from(labels)));
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::output(&self.path, e))?;
        self.writer
            .write(&batch)
            .map_err(|e| Error::output(&self.path, e))
    }

    /// Writes the footer and gives the file its final name ([`AtomicFile::commit`]).
    pub fn finish(self) -> Result<()> {
        self.writer
            .into_inner()
            .map_err(|e| Error::output(&self.path, e))?
            .commit()
    }
}

/// What a model predicts per row, and so the columns `predict` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredictionKind {
    /// `prediction` (float32).
    Value,
    /// `probability` of class 1 (float32) and `class` (int64, probability ≥ 0.5).
    Binary,
    /// `class` (int64, the most probable), its `probability` (float32), and `probabilities`
    /// (fixed-size list of K float32).
    Classes(usize),
}

impl PredictionKind {
    /// Names of the written prediction columns.
    pub fn column_names(self) -> &'static [&'static str] {
        match self {
            PredictionKind::Value => &["prediction"],
            PredictionKind::Binary => &["probability", "class"],
            PredictionKind::Classes(_) => &["class", "probability", "probabilities"],
        }
    }

    fn outputs(self) -> usize {
        match self {
            PredictionKind::Value | PredictionKind::Binary => 1,
            PredictionKind::Classes(k) => k,
        }
    }
}

/// Writes predictions (and passed-through columns) as one Parquet file, atomically: under a
/// temporary name until [`PredictionWriter::finish`], removed if dropped unfinished.
pub struct PredictionWriter {
    writer: ArrowWriter<AtomicFile>,
    schema: Arc<ArrowSchema>,
    kind: PredictionKind,
    path: PathBuf,
}

impl PredictionWriter {
    /// Creates `path` with the prediction columns of `kind` followed by the `kept` columns.
    pub fn create(path: &Path, kind: PredictionKind, kept: &KeptSchema) -> Result<Self> {
        let mut fields: Vec<Field> = match kind {
            PredictionKind::Value => vec![Field::new("prediction", DataType::Float32, false)],
            PredictionKind::Binary => vec![
                Field::new("probability", DataType::Float32, false),
                Field::new("class", DataType::Int64, false),
            ],
            PredictionKind::Classes(k) => vec![
                Field::new("class", DataType::Int64, false),
                Field::new("probability", DataType::Float32, false),
                Field::new(
                    "probabilities",
                    DataType::FixedSizeList(
                        Arc::new(Field::new_list_field(DataType::Float32, false)),
                        i32::try_from(k).unwrap_or(i32::MAX),
                    ),
                    false,
                ),
            ],
        };
        for field in kept.0.fields() {
            if kind.column_names().contains(&field.name().as_str()) {
                return Err(Error::config(
                    "keep",
                    format!(
                        "`{}` is also the name of a prediction column ({})",
                        field.name(),
                        kind.column_names().join(", ")
                    ),
                ));
            }
            fields.push(field.as_ref().clone());
        }
        let schema = Arc::new(ArrowSchema::new(fields));
        let props = WriterProperties::builder()
            .set_compression(ParquetCompression::SNAPPY)
            .set_max_row_group_row_count(Some(65_536))
            .build();
        let file = AtomicFile::create(path)?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| Error::output(path, e))?;
        Ok(PredictionWriter {
            writer,
            schema,
            kind,
            path: path.to_path_buf(),
        })
    }

    /// Appends rows: `outputs` holds the model's outputs (one value, one probability, or K
    /// class probabilities per row), `kept` the same rows of the passed-through columns.
    pub fn write(&mut self, outputs: &[f32], kept: Option<KeptRows>) -> Result<()> {
        let k = self.kind.outputs();
        let rows = outputs.len() / k;
        let pieces = match kept {
            Some(KeptRows(batches)) => batches,
            None => vec![RecordBatch::new_empty(Arc::new(ArrowSchema::empty()))],
        };
        let mut start = 0;
        for piece in pieces {
            let n = if piece.num_columns() == 0 {
                rows
            } else {
                piece.num_rows()
            };
            let mut columns = self.prediction_columns(&outputs[start * k..(start + n) * k]);
            columns.extend(piece.columns().iter().cloned());
            let batch = RecordBatch::try_new(self.schema.clone(), columns)
                .map_err(|e| Error::output(&self.path, e))?;
            self.writer
                .write(&batch)
                .map_err(|e| Error::output(&self.path, e))?;
            start += n;
        }
        if start != rows {
            return Err(Error::internal(format!(
                "{rows} predictions but {start} kept rows"
            )));
        }
        Ok(())
    }

    fn prediction_columns(&self, outputs: &[f32]) -> Vec<ArrayRef> {
        match self.kind {
            PredictionKind::Value => vec![Arc::new(Float32Array::from(outputs.to_vec()))],
            PredictionKind::Binary => vec![
                Arc::new(Float32Array::from(outputs.to_vec())),
                Arc::new(Int64Array::from_iter_values(
                    outputs.iter().map(|&p| i64::from(p >= 0.5)),
                )),
            ],
            PredictionKind::Classes(k) => {
                let mut classes = Vec::with_capacity(outputs.len() / k);
                let mut best = Vec::with_capacity(outputs.len() / k);
                for row in outputs.chunks_exact(k) {
                    let c = most_probable(row);
                    classes.push(c as i64);
                    best.push(row[c]);
                }
                let list = FixedSizeListArray::new(
                    Arc::new(Field::new_list_field(DataType::Float32, false)),
                    i32::try_from(k).unwrap_or(i32::MAX),
                    Arc::new(Float32Array::from(outputs.to_vec())),
                    None,
                );
                vec![
                    Arc::new(Int64Array::from(classes)),
                    Arc::new(Float32Array::from(best)),
                    Arc::new(list),
                ]
            }
        }
    }

    /// Writes the footer and gives the file its final name ([`AtomicFile::commit`]).
    /// Unfinished (an error stopped the run), the writer leaves nothing behind.
    pub fn finish(self) -> Result<()> {
        self.writer
            .into_inner()
            .map_err(|e| Error::output(&self.path, e))?
            .commit()
    }
}

/// The index of the largest of `probabilities`, the first on a tie (as the model's own
/// `argmax` picks it; a NaN never wins over the first value).
fn most_probable(probabilities: &[f32]) -> usize {
    let mut best = 0;
    for (i, p) in probabilities.iter().enumerate() {
        if *p > probabilities[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn most_probable_takes_the_first_of_equal_maxima() {
        assert_eq!(most_probable(&[0.1, 0.7, 0.2]), 1);
        assert_eq!(most_probable(&[0.4, 0.2, 0.4]), 0);
        assert_eq!(most_probable(&[0.5]), 0);
        assert_eq!(most_probable(&[f32::NAN, 0.9]), 0);
    }
}
