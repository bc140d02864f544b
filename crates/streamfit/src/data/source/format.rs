//! Opening a dataset: the registry of input formats and the one function that picks one.
//!
//! A [`SourceFormat`] says which paths it reads ([`SourceFormat::claims`]) and opens them into
//! an `Arc<dyn Source>`. [`FORMATS`] lists the built-in formats in the order they are asked:
//! shard datasets first, Parquet last as the fallback that claims anything. [`open`] asks them
//! in that order; [`open_with`] takes another list, so a caller (or a test) can bring a format
//! of its own. Both apply the rules every dataset obeys, whatever its format: training needs
//! at least one feature column.
//!
//! Adding a format is one new file (a [`Source`] and its [`SourceFormat`]) plus its `mod` line
//! and one entry in [`FORMATS`]. Nothing here reads rows; how a format lays out its units is
//! its own business.

use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::data::ColumnSpec;
use crate::data::source::Source;
use crate::data::source::parquet::ParquetFormat;
use crate::data::source::shard::ShardFormat;
use crate::error::{Error, Result};

/// Files left out of a dataset, each with the error that made it unreadable.
pub type SkippedFiles = Vec<(PathBuf, String)>;

/// What a file that cannot be opened (missing, not of its format, a corrupt footer,
/// encrypted) does to the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBadFile {
    /// Fail the whole dataset. The default.
    #[default]
    Error,
    /// Leave the file out and report it in the [`SkippedFiles`]. A file that opens but whose
    /// data is damaged is found only while reading: a training pipeline then drops it from
    /// that point on ([`crate::pipeline::dropped`]); other passes still fail.
    Skip,
}

/// How to open a dataset, whatever its format.
#[derive(Debug, Clone, PartialEq)]
pub struct OpenOptions {
    /// Feature and label columns. By default every numeric column but `label`, which is the
    /// label.
    pub columns: ColumnSpec,
    /// Check each block of shard rows against its checksum on first touch. By default on.
    pub verify_checksums: bool,
    /// What an unreadable file does. By default [`OnBadFile::Error`].
    pub on_bad_file: OnBadFile,
}

impl Default for OpenOptions {
    fn default() -> Self {
        OpenOptions {
            columns: ColumnSpec::default(),
            verify_checksums: true,
            on_bad_file: OnBadFile::Error,
        }
    }
}

/// An input format: which paths it reads, and how to open them.
///
/// Contract: `open` is called only with paths `claims` accepted. It returns the opened source
/// and the files it left out under [`OnBadFile::Skip`] (empty otherwise), or an error naming
/// the file, and option (by field name, as `data` or `features`), that is at fault.
pub trait SourceFormat: Sync {
    /// Short name (`parquet`, `shards`), for messages and logs.
    fn name(&self) -> &'static str;
    /// True when this format reads `paths`. Cheap: it may look at names and directory
    /// entries, but does not open the data.
    fn claims(&self, paths: &[PathBuf]) -> bool;
    /// Opens `paths` as one dataset.
    fn open(
        &self,
        paths: &[PathBuf],
        options: &OpenOptions,
    ) -> Result<(Arc<dyn Source>, SkippedFiles)>;
}

/// The built-in formats, in the order they are asked: a shard dataset directory (given
/// alone), then Parquet files and directories of them (the fallback).
pub static FORMATS: &[&dyn SourceFormat] = &[&ShardFormat, &ParquetFormat];

/// Opens `paths` with the first of [`FORMATS`] that claims them: a directory with a shard
/// manifest is a shard dataset (given alone); anything else is Parquet (every footer parsed
/// once). Returns the source and the files left out (only under [`OnBadFile::Skip`]).
pub fn open(paths: &[PathBuf], options: &OpenOptions) -> Result<(Arc<dyn Source>, SkippedFiles)> {
    open_with(FORMATS, paths, options)
}

/// Like [`open`], asking `formats` in order instead of [`FORMATS`]. Paths no format claims
/// are a `data` error; a dataset without a feature column is a `features` error.
pub fn open_with(
    formats: &[&dyn SourceFormat],
    paths: &[PathBuf],
    options: &OpenOptions,
) -> Result<(Arc<dyn Source>, SkippedFiles)> {
    let Some(format) = formats.iter().find(|f| f.claims(paths)) else {
        let names: Vec<&str> = formats.iter().map(|f| f.name()).collect();
        let given: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(Error::config(
            "data",
            format!(
                "no input format ({}) reads {}",
                names.join(", "),
                given.join(", ")
            ),
        ));
    };
    tracing::debug!(format = format.name(), "opening {} path(s)", paths.len());
    let (source, skipped) = format.open(paths, options)?;
    if source.num_features() == 0 {
        return Err(no_features(source.as_ref(), &options.columns));
    }
    Ok((source, skipped))
}

/// The error for a dataset that has no feature column besides the label.
fn no_features(source: &dyn Source, columns: &ColumnSpec) -> Error {
    let first = source
        .files()
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    Error::config(
        "features",
        format!(
            "{first}: no numeric feature columns besides the label `{}` (columns: {})",
            columns.label,
            source
                .describe()
                .columns
                .iter()
                .map(|c| format!("{}: {}", c.name, c.arrow_type))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::data::source::write::{Compression, ParquetWriter};
    use crate::data::source::{ChunkSink, FileIdentity, SourceInfo, Unit};
    use crate::data::{RowBlock, Schema};

    /// Rows held in memory: the path `mem:N` names N rows of `num_features` features, row r
    /// holding `r` in every feature and `-r` as its target, in units of two rows.
    struct MemoryFormat {
        num_features: usize,
    }

    struct MemorySource {
        units: Vec<Unit>,
        schema: Schema,
        files: Vec<PathBuf>,
    }

    impl SourceFormat for MemoryFormat {
        fn name(&self) -> &'static str {
            "memory"
        }

        fn claims(&self, paths: &[PathBuf]) -> bool {
            matches!(paths, [p] if p.to_str().is_some_and(|s| s.starts_with("mem:")))
        }

        fn open(
            &self,
            paths: &[PathBuf],
            options: &OpenOptions,
        ) -> Result<(Arc<dyn Source>, SkippedFiles)> {
            let rows: u64 = paths[0].to_str().unwrap()["mem:".len()..]
                .parse()
                .map_err(|_| Error::config("data", "mem:N needs a row count"))?;
            let units = (0..rows)
                .step_by(2)
                .enumerate()
                .map(|(i, first)| Unit {
                    file: 0,
                    index_in_file: i,
                    num_rows: (rows - first).min(2),
                    first_row_id: first,
                })
                .collect();
            let source = MemorySource {
                units,
                schema: Schema {
                    feature_names: (0..self.num_features).map(|j| format!("x{j}")).collect(),
                    label: options.columns.label.clone(),
                },
                files: paths.to_vec(),
            };
            Ok((Arc::new(source), Vec::new()))
        }
    }

    impl Source for MemorySource {
        fn units(&self) -> &[Unit] {
            &self.units
        }

        fn schema(&self) -> &Schema {
            &self.schema
        }

        fn files(&self) -> &[PathBuf] {
            &self.files
        }

        fn read_unit(
            &self,
            unit: usize,
            max_block_rows: usize,
            sink: &mut dyn ChunkSink,
        ) -> Result<()> {
            let u = self.units[unit];
            let d = self.num_features();
            let ids: Vec<u64> = (u.first_row_id..u.first_row_id + u.num_rows).collect();
            for piece in ids.chunks(max_block_rows.max(1)) {
                let mut block = sink.empty_block();
                block.reset(d);
                for &id in piece {
                    block.push_row(&vec![id as f32; d], -(id as f32), id);
                }
                if sink.send(block).is_break() {
                    break;
                }
            }
            Ok(())
        }

        fn file_bytes(&self) -> u64 {
            0
        }

        fn describe(&self) -> SourceInfo {
            SourceInfo {
                format: "memory",
                unit_kind: "two rows",
                columns: Vec::new(),
                codecs: Vec::new(),
            }
        }

        fn identity(&self) -> Result<Vec<FileIdentity>> {
            Ok(vec![FileIdentity {
                path: self.files[0].clone(),
                bytes: self.num_rows(),
                tail_crc32c: 0,
                etag: None,
            }])
        }
    }

    fn write_parquet(path: &Path, feature_names: &[&str], rows: usize) {
        let names: Vec<String> = feature_names.iter().map(|n| n.to_string()).collect();
        let mut writer =
            ParquetWriter::create(path, &names, "label", Compression::None, 4).unwrap();
        let features = names.iter().map(|_| vec![1.0; rows]).collect();
        writer.write_columns(features, vec![0.0; rows]).unwrap();
        writer.finish().unwrap();
    }

    #[test]
    fn a_format_of_its_own_is_opened_through_open_with() {
        let memory = MemoryFormat { num_features: 3 };
        let formats: [&dyn SourceFormat; 2] = [&memory, &ParquetFormat];
        let (source, skipped) =
            open_with(&formats, &[PathBuf::from("mem:5")], &OpenOptions::default()).unwrap();
        assert!(skipped.is_empty());
        assert_eq!(source.num_rows(), 5);
        assert_eq!(source.units().len(), 3);
        let mut blocks: Vec<RowBlock> = Vec::new();
        for unit in 0..source.units().len() {
            source.read_unit(unit, 1, &mut blocks).unwrap();
        }
        let ids: Vec<u64> = blocks.iter().flat_map(|b| b.row_ids().to_vec()).collect();
        assert_eq!(ids, [0, 1, 2, 3, 4]);
        assert_eq!(blocks[4].row(0), [4.0, 4.0, 4.0]);
        assert_eq!(blocks[4].targets(), [-4.0]);
        // Its own identity, not one read from a file.
        assert_eq!(source.identity().unwrap()[0].bytes, 5);
        // Paths it does not claim fall through to Parquet.
        let err = open_with(
            &formats,
            &[PathBuf::from("/nonexistent.parquet")],
            &OpenOptions::default(),
        )
        .err()
        .unwrap();
        assert!(matches!(err, Error::Io { .. }), "{err}");
    }

    #[test]
    fn paths_no_format_claims_are_a_data_error() {
        let memory = MemoryFormat { num_features: 1 };
        let err = open_with(
            &[&memory],
            &[PathBuf::from("x.csv")],
            &OpenOptions::default(),
        )
        .err()
        .unwrap();
        assert!(matches!(err, Error::Config { field: "data", .. }), "{err}");
        assert!(
            err.to_string()
                .contains("no input format (memory) reads x.csv"),
            "{err}"
        );
    }

    #[test]
    fn every_format_needs_a_feature_column() {
        let memory = MemoryFormat { num_features: 0 };
        let err = open_with(
            &[&memory],
            &[PathBuf::from("mem:2")],
            &OpenOptions::default(),
        )
        .err()
        .unwrap();
        assert!(
            matches!(
                err,
                Error::Config {
                    field: "features",
                    ..
                }
            ),
            "{err}"
        );

        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("labels.parquet");
        write_parquet(&path, &[], 3);
        let err = open(std::slice::from_ref(&path), &OpenOptions::default())
            .err()
            .unwrap();
        let expected = format!(
            "{}: no numeric feature columns besides the label `label` (columns: label: Float32)",
            path.display()
        );
        assert!(err.to_string().contains(&expected), "{err}");
    }

    #[test]
    fn shards_come_first_and_parquet_is_the_fallback() {
        let names: Vec<&str> = FORMATS.iter().map(|f| f.name()).collect();
        assert_eq!(names, ["shards", "parquet"]);
        assert!(FORMATS.last().unwrap().claims(&[PathBuf::from("anything")]));
    }

    #[test]
    fn a_shard_dataset_must_be_given_alone() {
        let dir = tempfile::tempdir().unwrap();
        let shards = dir.path().join("shards");
        std::fs::create_dir(&shards).unwrap();
        std::fs::write(shards.join("manifest.json"), "{}").unwrap();
        let other = dir.path().join("a.parquet");
        write_parquet(&other, &["x"], 3);
        let err = open(&[other, shards.clone()], &OpenOptions::default())
            .err()
            .unwrap();
        assert!(matches!(err, Error::Config { field: "data", .. }), "{err}");
        let expected = format!(
            "{} is a shard dataset; give it alone, not with other paths",
            shards.display()
        );
        assert!(err.to_string().contains(&expected), "{err}");
    }

    #[test]
    fn an_unreadable_file_fails_the_dataset_unless_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("a.parquet");
        write_parquet(&good, &["x", "y"], 5);
        let bad = dir.path().join("b.parquet");
        std::fs::write(&bad, b"not parquet at all").unwrap();
        let paths = [dir.path().to_path_buf()];
        let err = open(&paths, &OpenOptions::default()).err().unwrap();
        assert!(matches!(err, Error::Corrupt { .. }), "{err}");
        let options = OpenOptions {
            on_bad_file: OnBadFile::Skip,
            ..OpenOptions::default()
        };
        let (source, skipped) = open(&paths, &options).unwrap();
        assert_eq!(source.files(), std::slice::from_ref(&good));
        assert_eq!(source.num_rows(), 5);
        assert_eq!(skipped.len(), 1);
        assert_eq!(skipped[0].0, bad);
        // A Parquet source's identity is its files', read from disk.
        assert_eq!(
            source.identity().unwrap(),
            [FileIdentity::of(&good).unwrap()]
        );
    }
}
