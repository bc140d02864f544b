//! The profile tells input-bound from compute-bound: a reader slowed on purpose makes the
//! trainer wait (stall > 0.5, "input-bound"); a trainer slowed on purpose fills the prefetch
//! queue ("compute-bound"). One test, because the profile layer is the process's global
//! subscriber.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use streamfit::data::Schema;
use streamfit::data::source::{ChunkSink, Source, SourceInfo, Unit};
use streamfit::generate::Task;
use streamfit::pipeline::Pipeline;
use streamfit::telemetry::{Profile, ProfileLayer};
use streamfit::train::{BatchSize, StepRecord, TrainObserver, train};
use tracing_subscriber::layer::SubscriberExt;

/// A source that sleeps before each unit: a slow disk.
struct SlowSource {
    inner: Arc<dyn Source>,
    delay: Duration,
}

impl Source for SlowSource {
    fn units(&self) -> &[Unit] {
        self.inner.units()
    }
    fn schema(&self) -> &Schema {
        self.inner.schema()
    }
    fn files(&self) -> &[PathBuf] {
        self.inner.files()
    }
    fn file_bytes(&self) -> u64 {
        self.inner.file_bytes()
    }
    fn describe(&self) -> SourceInfo {
        self.inner.describe()
    }
    fn read_unit(
        &self,
        unit: usize,
        max_block_rows: usize,
        sink: &mut dyn ChunkSink,
    ) -> streamfit::Result<()> {
        std::thread::sleep(self.delay);
        self.inner.read_unit(unit, max_block_rows, sink)
    }
}

/// An observer that sleeps after every step: an expensive model.
struct SlowTrainer(Duration);

impl TrainObserver for SlowTrainer {
    fn on_step(&mut self, _: &StepRecord) -> streamfit::Result<()> {
        std::thread::sleep(self.0);
        Ok(())
    }
}

fn profile_of(
    layer: &ProfileLayer,
    source: Arc<dyn Source>,
    config: &streamfit::config::TrainConfig,
    observer: &mut dyn TrainObserver,
) -> Profile {
    let pipeline = Pipeline::new(source.clone(), config.pipeline_config(source.num_rows()));
    let _ = layer.take();
    let started = Instant::now();
    let result = train(&pipeline, &config.trainer, observer).expect("train");
    let epoch = &result.epochs[0];
    Profile::build(
        &layer.take(),
        started.elapsed().as_secs_f64(),
        4 * (source.num_features() as u64 + 1),
        result.stall_fraction(),
        epoch.queue_occupancy,
        epoch.queue_full_fraction,
    )
}

#[test]
fn the_profile_diagnoses_input_bound_and_compute_bound_runs() {
    let layer = ProfileLayer::new();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer.clone()))
        .expect("the only subscriber of this test binary");
    let dir = common::tempdir();
    let data = dir.path().join("data");
    common::dataset(&data, Task::Logistic, 40_000, 4, 2, 2_000, 3);
    let config = common::config(&data, BatchSize::Rows(64));
    let source = config.open_source().expect("open");

    let slow_reader: Arc<dyn Source> = Arc::new(SlowSource {
        inner: source.clone(),
        delay: Duration::from_millis(15),
    });
    let input = profile_of(&layer, slow_reader, &config, &mut ());
    assert!(input.stall_fraction > 0.5, "stall {}", input.stall_fraction);
    assert!(
        input.diagnosis.starts_with("input-bound"),
        "{}",
        input.diagnosis
    );
    assert!(
        input
            .stages
            .iter()
            .any(|s| s.stage == "read" && s.rows == 40_000)
    );

    let compute = profile_of(
        &layer,
        source,
        &config,
        &mut SlowTrainer(Duration::from_micros(300)),
    );
    assert!(
        compute.stall_fraction < 0.3,
        "stall {}",
        compute.stall_fraction
    );
    assert!(
        compute.diagnosis.starts_with("compute-bound"),
        "{}",
        compute.diagnosis
    );
}
