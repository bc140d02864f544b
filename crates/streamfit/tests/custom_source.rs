//! A source format defined outside the crate plugs into the registry (`open_with`) and trains
//! through the ordinary pipeline and trainer: the extension point of docs/architecture.md.
//!
//! The format reads paths `line:N`: N rows computed on the fly, row r holding three features
//! in [-0.5, 0.5) and the target y = 2·x0 − x1 + 0.5·x2 + 0.25 exactly, in units of 100 rows.
//! Least squares on noiseless linear data has that exact optimum, so SGD must find it.

use std::path::PathBuf;
use std::sync::Arc;

use streamfit::config::TrainConfig;
use streamfit::data::Schema;
use streamfit::data::source::{
    ChunkSink, FORMATS, FileIdentity, OpenOptions, SkippedFiles, Source, SourceFormat, SourceInfo,
    Unit, open_with,
};
use streamfit::error::{Error, Result};
use streamfit::model::ModelSpec;
use streamfit::pipeline::Pipeline;
use streamfit::train::{BatchSize, Eval, TrainObserver, TrainResult, TrainerConfig, train};

const WEIGHTS: [f32; 3] = [2.0, -1.0, 0.5];
const BIAS: f32 = 0.25;
const UNIT_ROWS: u64 = 100;

struct LineFormat;

struct LineSource {
    units: Vec<Unit>,
    schema: Schema,
    files: Vec<PathBuf>,
}

fn features(id: u64) -> [f32; 3] {
    std::array::from_fn(|j| ((id * (j as u64 + 1) * 7_919 + 13) % 1_000) as f32 / 1_000.0 - 0.5)
}

impl SourceFormat for LineFormat {
    fn name(&self) -> &'static str {
        "line"
    }

    fn claims(&self, paths: &[PathBuf]) -> bool {
        matches!(paths, [p] if p.to_str().is_some_and(|s| s.starts_with("line:")))
    }

    fn open(
        &self,
        paths: &[PathBuf],
        options: &OpenOptions,
    ) -> Result<(Arc<dyn Source>, SkippedFiles)> {
        let rows: u64 = paths[0].to_str().unwrap_or_default()["line:".len()..]
            .parse()
            .map_err(|_| Error::config("data", "line:N needs a row count"))?;
        let units = (0..rows)
            .step_by(UNIT_ROWS as usize)
            .enumerate()
            .map(|(i, first)| Unit {
                file: 0,
                index_in_file: i,
                num_rows: (rows - first).min(UNIT_ROWS),
                first_row_id: first,
            })
            .collect();
        let source = LineSource {
            units,
            schema: Schema {
                feature_names: vec!["x0".into(), "x1".into(), "x2".into()],
                label: options.columns.label.clone(),
            },
            files: paths.to_vec(),
        };
        Ok((Arc::new(source), Vec::new()))
    }
}

impl Source for LineSource {
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
        let ids: Vec<u64> = (u.first_row_id..u.first_row_id + u.num_rows).collect();
        for piece in ids.chunks(max_block_rows.max(1)) {
            let mut block = sink.empty_block();
            block.reset(3);
            for &id in piece {
                let x = features(id);
                let y = x.iter().zip(WEIGHTS).map(|(x, w)| x * w).sum::<f32>() + BIAS;
                block.push_row(&x, y, id);
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
            format: "line",
            unit_kind: "100 rows",
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

/// Counts how often each row id is trained on, per epoch.
struct RowCounts {
    seen: Vec<Vec<u32>>,
}

impl TrainObserver for RowCounts {
    fn on_batch(&mut self, epoch: usize, row_ids: &[u64]) -> Result<()> {
        for &id in row_ids {
            self.seen[epoch - 1][id as usize] += 1;
        }
        Ok(())
    }
}

const ROWS: u64 = 5_000;
const EPOCHS: usize = 8;

fn fit(num_readers: usize, num_threads: usize) -> (TrainResult, RowCounts) {
    let formats: Vec<&dyn SourceFormat> = std::iter::once(&LineFormat as &dyn SourceFormat)
        .chain(FORMATS.iter().copied())
        .collect();
    let paths = [PathBuf::from(format!("line:{ROWS}"))];
    let (source, skipped) = open_with(&formats, &paths, &OpenOptions::default()).expect("open");
    assert!(skipped.is_empty());
    let config = TrainConfig {
        data: paths.to_vec(),
        batch_size: BatchSize::Rows(16),
        shuffle_buffer_rows: 1_000,
        num_readers,
        trainer: TrainerConfig {
            model: ModelSpec::linear(),
            epochs: EPOCHS,
            eval: Eval::EveryEpoch,
            num_threads,
            ..TrainerConfig::default()
        },
        ..TrainConfig::default()
    };
    config.check().expect("valid settings");
    let pipeline = Pipeline::new(source.clone(), config.pipeline_config(source.num_rows()));
    let mut counts = RowCounts {
        seen: vec![vec![0; ROWS as usize]; EPOCHS],
    };
    let result = train(&pipeline, &config.trainer, &mut counts).expect("train");
    (result, counts)
}

#[test]
fn a_source_format_of_ones_own_trains_to_the_exact_optimum_seeing_every_row_once() {
    let (result, counts) = fit(2, 2);
    for (epoch, seen) in counts.seen.iter().enumerate() {
        assert!(
            seen.iter().all(|&n| n == 1),
            "epoch {}: a row seen other than once",
            epoch + 1
        );
    }
    assert_eq!(result.iterations_per_epoch, ROWS.div_ceil(16));
    let params = &result.params;
    for (j, (got, want)) in params.iter().zip(WEIGHTS.iter().chain([&BIAS])).enumerate() {
        assert!((got - want).abs() < 1e-3, "parameter {j}: {got} vs {want}");
    }
    let loss = result.final_loss().expect("evaluated");
    assert!(loss < 1e-6, "full-data squared error {loss}");
}

#[test]
fn a_source_format_of_ones_own_gives_identical_parameters_for_any_reader_and_thread_count() {
    let bits = |r: &TrainResult| r.params.iter().map(|p| p.to_bits()).collect::<Vec<_>>();
    let (one, _) = fit(1, 1);
    let (many, _) = fit(3, 2);
    assert_eq!(bits(&one), bits(&many));
}
