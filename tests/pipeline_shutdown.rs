//! Stage protocol: a reader's error reaches the consumer instead of hanging, and dropping a
//! stream early stops and joins every pipeline thread.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use streamfit::data::Schema;
use streamfit::data::source::{ChunkSink, Source, SourceInfo, Unit};
use streamfit::error::{Error, Result};
use streamfit::pipeline::{Pipeline, PipelineConfig, Shuffle};

/// An in-memory source of `units` units of 1,000 rows; unit `fail_at` returns an error.
struct FakeSource {
    units: Vec<Unit>,
    schema: Schema,
    files: Vec<PathBuf>,
    fail_at: Option<usize>,
}

impl FakeSource {
    fn new(num_units: usize, fail_at: Option<usize>) -> Self {
        let units = (0..num_units)
            .map(|u| Unit {
                file: 0,
                index_in_file: u,
                num_rows: 1_000,
                first_row_id: u as u64 * 1_000,
            })
            .collect();
        FakeSource {
            units,
            schema: Schema {
                feature_names: vec!["a".into(), "b".into()],
                label: "y".into(),
            },
            files: vec![PathBuf::from("fake.parquet")],
            fail_at,
        }
    }
}

impl Source for FakeSource {
    fn units(&self) -> &[Unit] {
        &self.units
    }
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn files(&self) -> &[PathBuf] {
        &self.files
    }
    fn describe(&self) -> SourceInfo {
        SourceInfo {
            format: "fake",
            unit_kind: "unit",
            columns: Vec::new(),
            codecs: Vec::new(),
        }
    }

    fn file_bytes(&self) -> u64 {
        0
    }
    fn read_unit(
        &self,
        unit: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> Result<()> {
        if Some(unit) == self.fail_at {
            return Err(Error::Corrupt {
                file: "fake.parquet".into(),
                row_group: Some(unit),
                reason: "injected".into(),
            });
        }
        let u = self.units[unit];
        let mut done = 0;
        while done < u.num_rows {
            let n = (u.num_rows - done).min(max_block_rows as u64);
            let mut block = sink.empty_block();
            block.reset(2);
            for i in 0..n {
                let id = u.first_row_id + done + i;
                block.push_row(&[id as f32, 1.0], 0.0, id);
            }
            done += n;
            if sink.send(block).is_break() {
                return Ok(());
            }
        }
        Ok(())
    }
}

fn config() -> PipelineConfig {
    PipelineConfig {
        step_rows: 100,
        shuffle: Shuffle::Seeded(3),
        shuffle_buffer_rows: 2_000,
        block_rows: 300,
        prefetch: 2,
        ..PipelineConfig::default()
    }
}

/// Runs `f` on a thread and fails the test if it does not finish in time.
fn within<T: Send + 'static>(timeout: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(timeout)
        .expect("deadlock: did not finish in time")
}

#[test]
fn reader_error_surfaces_instead_of_hanging() {
    for (readers, lanes) in [(1, 1), (2, 1), (4, 1), (2, 3)] {
        let message = within(Duration::from_secs(10), move || {
            let pipeline = Pipeline::new(
                Arc::new(FakeSource::new(60, Some(37))),
                PipelineConfig {
                    num_readers: readers,
                    shuffle_lanes: lanes,
                    ..config()
                },
            );
            let mut rows = 0;
            for batch in pipeline.epoch(0).unwrap() {
                match batch {
                    Ok(b) => rows += b.rows.num_rows(),
                    Err(e) => return (e.to_string(), rows),
                }
            }
            panic!("the stream ended without the error after {rows} rows");
        });
        assert!(
            message.0.contains("fake.parquet") && message.0.contains("row group 37"),
            "{}",
            message.0
        );
        assert!(message.1 < 60_000, "error reported only after all rows");
    }
}

#[test]
fn dropping_the_stream_early_joins_every_thread() {
    within(Duration::from_secs(10), || {
        for lanes in [1, 3] {
            let pipeline = Pipeline::new(
                Arc::new(FakeSource::new(200, None)),
                PipelineConfig {
                    shuffle_lanes: lanes,
                    ..config()
                },
            );
            for _ in 0..20 {
                let mut stream = pipeline.epoch(0).unwrap();
                let first = stream.next().unwrap().unwrap();
                assert_eq!(first.rows.num_rows(), 100);
                drop(stream); // while the batch is still held, and the readers are mid-epoch
                drop(first);
            }
        }
    });
}

#[test]
fn a_consumer_that_holds_every_batch_does_not_deadlock_the_drop() {
    within(Duration::from_secs(10), || {
        for lanes in [1, 3] {
            let pipeline = Pipeline::new(
                Arc::new(FakeSource::new(50, None)),
                PipelineConfig {
                    shuffle_lanes: lanes,
                    ..config()
                },
            );
            let mut stream = pipeline.epoch(0).unwrap();
            // Hold more batches than the pool recycles (prefetch + 2): the stage must not wait
            // for a buffer that never comes back, and the drop must still join it.
            let held: Vec<_> = (0..10).map(|_| stream.next().unwrap().unwrap()).collect();
            let mut ids: Vec<u64> = held
                .iter()
                .flat_map(|b| b.rows.row_ids().to_vec())
                .collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), 1_000, "ten distinct batches of 100 rows");
            drop(stream);
            drop(held);
        }
    });
}
