//! A training run from its options to its output files: everything between a
//! [`TrainConfig`](crate::config::TrainConfig) and the trainer's loop.
//!
//! Layer 3. [`PreparedRun::new`] checks the options, opens the training and validation data
//! (holding units of the training data out as validation data for «valid_fraction», and
//! cutting the validation data to its first «valid_rows» rows, through [`SubsetSource`]),
//! refuses outputs that would overwrite an input or cannot be written
//! ([`crate::output_path`]), counts the classes of a multiclass model when they are to come
//! from the data, fits the encoding of «categorical» columns ([`categories`](self::categories):
//! a counting pass for one-hot vocabularies, none for «hash_buckets»), resolves «fill_nulls» and «null_indicators» into fill values and indicator
//! columns ([`missing`](self::missing): a statistics pass when means or indicators are
//! needed), both from the training rows only ([`fit`](self::fit), which `convert` uses too;
//! shards `convert` encoded bring their fitted preprocessing instead), decides whether to standardise (by default when the scale check finds the raw
//! features on mixed scales: [`ScaleCheck`]) and computes the standardisation statistics, loads the checkpoint to resume
//! from (moving corrupt newer ones aside), builds the pipelines and the memory budget (fitted
//! to «memory_limit», or refused when larger than the memory available: [`memory`]), and
//! opens the metrics file, all before any thread of the trainer starts. [`PreparedRun::train`] trains (writing
//! the metrics file as it goes), [`PreparedRun::report`] builds the report and
//! [`PreparedRun::write_outputs`] writes the model, report and plot. What preparing finds on
//! the way is [`PrepareEvent`]s, facts for the front end to show; this module prints nothing,
//! draws no progress, and installs no signal handler or tracing subscriber: those are the
//! front end's.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use streamfit::comm::SingleProcess;
//! use streamfit::config::{Origin, TrainConfig};
//! use streamfit::model::ModelSpec;
//! use streamfit::run::PreparedRun;
//! use streamfit::train::Standardize;
//!
//! # fn main() -> streamfit::error::Result<()> {
//! let mut config = TrainConfig { data: vec![PathBuf::from("data/")], ..TrainConfig::default() };
//! config.trainer.model = ModelSpec::softmax(0);
//! config.classes = Origin::FromData; // K = the largest label + 1
//! config.standardize = Standardize::Always;
//! let mut run = PreparedRun::with_events(config, &SingleProcess, &mut |event| {
//!     eprintln!("{event:?}");
//! })?;
//! let result = run.train(&mut ())?;
//! let report = run.report(&result, None);
//! run.write_outputs(&result, &report)?;
//! println!("train loss {:?} after {} iterations", result.final_train_loss(), result.iterations());
//! # Ok(())
//! # }
//! ```

mod categories;
mod event;
mod finish;
mod fit;
pub mod memory;
mod missing;
mod prepare;
mod scale_check;
mod subset;
mod weighting;

pub use self::categories::ColumnVocabulary;
pub use self::event::PrepareEvent;
pub use self::fit::fit_preprocessing;
pub use self::missing::MissingCounts;
pub(crate) use self::missing::{check_positive_label_seen, count_dropped_labels};
pub use self::prepare::{PreparedRun, check_output_dir, count_classes};
pub use self::scale_check::{
    ColumnRange, SCALE_FACTOR, ScaleCheck, ScaleEvidence, StandardizeDecision, decide_standardize,
    encoded_features, resolve_standardization,
};
pub use self::subset::SubsetSource;
