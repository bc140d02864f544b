//! Writing Parquet: one file of float32 feature columns plus a float32 label.
//!
//! Used by `generate` (and by tests that need files). Rows arrive one row group at a time as
//! columns, so nothing larger than a row group is ever held. The file is written under a
//! temporary name and renamed on [`ParquetWriter::finish`], so an interrupted write never
//! leaves a file that looks complete.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::{ArrayRef, Float32Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema as ArrowSchema};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as ParquetCompression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use serde::{Deserialize, Serialize};

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
    writer: ArrowWriter<File>,
    schema: Arc<ArrowSchema>,
    temp_path: PathBuf,
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
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let temp_path = path.with_file_name(format!(".{file_name}.tmp"));
        let file = File::create(&temp_path).map_err(|e| Error::output(&temp_path, e))?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(props))
            .map_err(|e| Error::output(path, e))?;
        Ok(ParquetWriter {
            writer,
            schema,
            temp_path,
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

    /// Writes the footer and gives the file its final name. (No fsync: the rename protects
    /// against an interrupted process, and generated data is cheap to make again.)
    pub fn finish(self) -> Result<()> {
        self.writer
            .close()
            .map_err(|e| Error::output(&self.path, e))?;
        std::fs::rename(&self.temp_path, &self.path).map_err(|e| Error::output(&self.path, e))
    }
}
