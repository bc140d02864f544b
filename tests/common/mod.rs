//! Helpers shared by the integration tests: running the built binary and checking how it exited
//! (`binary`), writing and reading test data (`files`), reading saved model files (`model`), and
//! configuring and training through the library (`training`). They set up, run and read back;
//! what a test expects stays in the test.
// Every test binary compiles all of this module and uses a part of it.
#![allow(dead_code, unused_imports)]

mod binary;
mod files;
mod model;
mod training;

pub use binary::{Outcome, TIMEOUT, binary, child_stderr, run, run_command, run_err, run_ok};
pub use files::{
    dataset, f32_column, parquet_files, read_json, read_parquet, tempdir, to_shards, write_columns,
    write_hive_part, write_parquet,
};
pub use model::{f32s, standardised};
pub use training::{bits, config, cosine, fit, pipeline, steps_of_epoch, try_fit};
