//! What preparing a run finds on the way, as data for the front end to show.
//!
//! [`PrepareEvent`]s are facts, not text: the command line prints them, a Python caller may
//! log them. This module formats nothing.

use std::path::PathBuf;

/// What preparing a run found or did, in the order it happened. The front end shows these
/// (the command line prints the warnings always, the rest unless quiet).
#[derive(Debug, Clone, PartialEq)]
pub enum PrepareEvent {
    /// The classes of a multiclass model were counted: K = the largest label + 1.
    ClassesCounted {
        classes: usize,
        largest_label: f64,
        /// Rows read.
        rows: u64,
        seconds: f64,
    },
    /// A warning: a file of the training data could not be opened and was left out
    /// ([`crate::config::OnBadFile::Skip`]).
    FileSkipped { path: PathBuf, error: String },
    /// «standardize» auto: the scale check found the raw features on mixed scales, so the run
    /// standardises them.
    ScalesMixed(super::scale_check::ScaleCheck),
    /// The standardisation statistics were computed.
    Standardized {
        num_features: usize,
        /// Rows read.
        rows: u64,
        seconds: f64,
    },
    /// The statistics pass of «fill_nulls» (mean) or «null_indicators» counted each feature
    /// column's missing values.
    MissingCounted {
        counts: super::missing::MissingCounts,
        /// The columns given an indicator feature.
        indicators: Vec<String>,
        seconds: f64,
    },
    /// The vocabulary pass of «categorical» counted each categorical column's values.
    CategoriesCounted {
        columns: Vec<super::categories::ColumnVocabulary>,
        /// Rows read.
        rows: u64,
        seconds: f64,
    },
    /// «hash_buckets»: these categorical columns are hashed (no pass).
    CategoriesHashed { columns: Vec<String>, buckets: u32 },
    /// «drop_null_labels» left out the rows whose label is null (counted when the data was
    /// opened; every epoch trains on the rest).
    NullLabelsDropped {
        /// Rows left out.
        dropped: u64,
        /// Rows kept.
        rows: u64,
    },
    /// «class_weight» `balanced`: the classes' rows were counted and weighted N / (C · n_c).
    ClassWeighted {
        /// Rows of each class.
        counts: Vec<u64>,
        /// Each class's weight.
        weights: Vec<f32>,
        seconds: f64,
    },
    /// A warning: a checkpoint newer than the one resumed from failed its checks (the text
    /// says which and why).
    CheckpointSkipped { warning: String },
    /// A warning: that unusable newer checkpoint was renamed, so that it neither counts
    /// towards `keep_checkpoints` nor shadows the checkpoints this run writes.
    CheckpointMovedAside { from: PathBuf, to: PathBuf },
    /// «memory_limit» sized the shuffle buffer and prefetch depth to fit.
    MemoryFitted(super::memory::Fitted),
    /// The run continues from this checkpoint.
    Resuming {
        path: PathBuf,
        iteration: u64,
        /// The epoch it continues in, from 1.
        epoch: usize,
    },
}

impl PrepareEvent {
    /// True for the events that report a problem the run works around.
    pub fn is_warning(&self) -> bool {
        matches!(
            self,
            PrepareEvent::FileSkipped { .. }
                | PrepareEvent::CheckpointSkipped { .. }
                | PrepareEvent::CheckpointMovedAside { .. }
        )
    }
}

/// Hands each event to the caller as it happens and keeps it.
pub(super) struct Events<'f> {
    pub(super) seen: Vec<PrepareEvent>,
    pub(super) on_event: &'f mut dyn FnMut(&PrepareEvent),
}

impl Events<'_> {
    pub(super) fn push(&mut self, event: PrepareEvent) {
        (self.on_event)(&event);
        self.seen.push(event);
    }
}
