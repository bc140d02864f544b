//! `predict --keep`: columns passed through unchanged beside the predictions.
//!
//! [`Passthrough`] reads the kept columns (any type) of a source's files in file order, in
//! step with the rows the pipeline delivers in evaluation order, and hands them out as opaque
//! [`KeptRows`] for the prediction writer. It does not decode features or check values: the
//! kept columns are copied as they are stored (once their page headers are checked, as every
//! unit's are).

use std::path::PathBuf;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};

use crate::data::source::parquet::data::FileData;
use crate::data::source::parquet::files::open_file;
use crate::data::source::parquet::page_bounds;
use crate::error::{Error, Result};

/// Columns passed through unchanged (`predict --keep`), read in file order alongside a
/// source's rows: each file's row groups in order, in record batches of at most 8,192 rows.
pub struct Passthrough {
    files: std::vec::IntoIter<KeptFile>,
    reader: Option<(PathBuf, FileData, ParquetRecordBatchReader)>,
    pending: Option<RecordBatch>,
    schema: SchemaRef,
}

/// One file to pass columns through from.
struct KeptFile {
    path: PathBuf,
    data: FileData,
    metadata: ArrowReaderMetadata,
    mask: ProjectionMask,
}

/// Rows of passed-through columns (opaque outside the data layer).
pub struct KeptRows(pub(crate) Vec<RecordBatch>);

/// The schema of passed-through columns (opaque outside the data layer).
pub struct KeptSchema(pub(crate) SchemaRef);

impl Passthrough {
    /// Reads `columns` (top-level, any type) of `files`, which must all have them with the
    /// same types.
    pub fn open(files: &[PathBuf], columns: &[String]) -> Result<Self> {
        let mut opened = Vec::with_capacity(files.len());
        let mut schema: Option<SchemaRef> = None;
        for path in files {
            let (data, metadata) = open_file(path)?;
            let arrow = metadata.schema().clone();
            let mut roots = Vec::with_capacity(columns.len());
            for name in columns {
                let index = arrow.index_of(name).map_err(|_| Error::MissingColumn {
                    file: path.clone(),
                    column: name.clone(),
                    available: arrow
                        .fields()
                        .iter()
                        .map(|f| f.name().as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })?;
                roots.push(index);
            }
            let fields: Vec<_> = roots.iter().map(|&i| arrow.field(i).clone()).collect();
            let projected = Arc::new(arrow_schema::Schema::new(fields));
            match &schema {
                None => schema = Some(projected),
                Some(first) if first.fields() != projected.fields() => {
                    return Err(Error::SchemaMismatch {
                        first: files[0].clone(),
                        first_schema: format!("{:?}", first.fields()),
                        other: path.clone(),
                        other_schema: format!("{:?}", projected.fields()),
                    });
                }
                Some(_) => {}
            }
            let mask = ProjectionMask::roots(metadata.parquet_schema(), roots);
            opened.push(KeptFile {
                path: path.clone(),
                data,
                metadata,
                mask,
            });
        }
        // Columns come back in schema order; the writer puts them in the order asked for.
        Ok(Passthrough {
            files: opened.into_iter(),
            reader: None,
            pending: None,
            schema: schema.unwrap_or_else(|| Arc::new(arrow_schema::Schema::empty())),
        })
    }

    /// The passed-through columns' names and types.
    pub fn schema(&self) -> KeptSchema {
        KeptSchema(self.schema.clone())
    }

    /// The next `n` rows, in file order. Fewer rows left than `n` is an error (the files
    /// changed, or a footer disagrees with its pages).
    pub fn take(&mut self, n: usize) -> Result<KeptRows> {
        let mut out = Vec::new();
        let mut need = n;
        while need > 0 {
            let batch = match self.pending.take() {
                Some(b) => b,
                None => self.next_batch()?,
            };
            if batch.num_rows() > need {
                out.push(batch.slice(0, need));
                self.pending = Some(batch.slice(need, batch.num_rows() - need));
                need = 0;
            } else {
                need -= batch.num_rows();
                out.push(batch);
            }
        }
        Ok(KeptRows(out))
    }

    fn next_batch(&mut self) -> Result<RecordBatch> {
        loop {
            if let Some((path, data, reader)) = &mut self.reader {
                // A decoder that panics on malformed pages makes the file corrupt; the file
                // changing under the read explains any failure.
                let next = crate::guard::catch(|| reader.next()).unwrap_or_else(|reason| {
                    Some(Err(parquet::errors::ParquetError::General(reason).into()))
                });
                data.check()?;
                match next {
                    Some(Ok(batch)) => {
                        // Keep the asked-for order (projection returns schema order).
                        let columns = self
                            .schema
                            .fields()
                            .iter()
                            .map(|f| {
                                batch.column_by_name(f.name()).cloned().ok_or_else(|| {
                                    Error::internal(format!("kept column {} lost", f.name()))
                                })
                            })
                            .collect::<Result<Vec<_>>>()?;
                        return RecordBatch::try_new(self.schema.clone(), columns).map_err(|e| {
                            Error::Corrupt {
                                file: path.clone(),
                                row_group: None,
                                reason: e.to_string(),
                            }
                        });
                    }
                    Some(Err(e)) => {
                        return Err(Error::Corrupt {
                            file: path.clone(),
                            row_group: None,
                            reason: e.to_string(),
                        });
                    }
                    None => self.reader = None,
                }
            }
            let Some(KeptFile {
                path,
                data,
                metadata,
                mask,
            }) = self.files.next()
            else {
                return Err(Error::internal(
                    "the kept columns ran out before the rows did".to_string(),
                ));
            };
            // A remote file's kept columns are fetched for all its row groups at once.
            let bytes = data.chunks(metadata.metadata().row_groups(), &mask, false)?;
            for (index, row_group) in metadata.metadata().row_groups().iter().enumerate() {
                page_bounds::check_row_group(&bytes, row_group, &mask).map_err(|reason| {
                    Error::Corrupt {
                        file: path.clone(),
                        row_group: Some(index),
                        reason,
                    }
                })?;
            }
            let reader = crate::guard::catch(|| {
                ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata)
                    .with_projection(mask)
                    .with_batch_size(8192)
                    .build()
                    .map_err(|e| e.to_string())
            })
            .and_then(|built| built)
            .map_err(|reason| Error::Corrupt {
                file: path.clone(),
                row_group: None,
                reason,
            })?;
            self.reader = Some((path, data, reader));
        }
    }
}
