//! The fingerprint of a run: everything that shapes its batch sequence and its parameter
//! trajectory, which a resume must not change.
//!
//! [`RunFingerprint`] is built from the trainer's settings and the batch stream's pipeline
//! settings and schema, saved in every checkpoint, and compared field by field on resume, so a
//! refusal names what changed («batch_size» was 50, now 64). It reads no data.

use serde::{Deserialize, Serialize};

use crate::data::Schema;
use crate::data::categorical::{Categorical, Encoding};
use crate::data::schema::MissingValues;
use crate::model::ModelSpec;
use crate::optim::{LrSchedule, OptimizerConfig};
use crate::pipeline::{BatchSource, LastBatch, Pipeline, PipelineConfig, Shuffle};
use crate::train::{HeldOut, RowWeights, Standardization, TrainerConfig};

/// What must not change between a run and its resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunFingerprint {
    /// Model kind and shape.
    pub model: ModelSpec,
    /// Optimizer, learning rate and schedule.
    pub optimizer: OptimizerConfig,
    /// Seed of the initial parameters.
    pub init_seed: u64,
    /// `early_stop` patience.
    pub early_stop: Option<usize>,
    /// Iterations the cosine schedule spans (set by `epochs`); absent for other schedules.
    pub schedule_steps: Option<u64>,
    /// Ranks of a data-parallel run (1 for one process).
    #[serde(default = "one")]
    pub world: usize,
    /// Rows per step.
    pub batch_rows: u64,
    /// The last partial step is dropped.
    pub drop_last: bool,
    /// Shuffle seed (absent with `no_shuffle`).
    pub shuffle_seed: Option<u64>,
    /// Shuffle-buffer rows.
    pub shuffle_buffer_rows: usize,
    /// Shuffle lanes (`shuffle_lanes`); absent when 1 (and in checkpoints written before
    /// lanes, which had one).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub shuffle_lanes: usize,
    /// Feature names, in order.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// Standardisation statistics, when on.
    pub standardize: Option<Standardization>,
    /// Fill values and indicator columns of missing values (`fill_nulls`,
    /// `null_indicators`); absent when none (and in checkpoints written before them).
    #[serde(default, skip_serializing_if = "MissingValues::is_empty")]
    pub missing: MissingValues,
    /// The label value mapped to 1 (`positive_label`); absent when none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub positive_label: Option<String>,
    /// Rows with a null label are left out (`drop_null_labels`); absent when off.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_null_labels: bool,
    /// The categorical columns' fitted encoding (`categorical`, `max_categories`,
    /// `hash_buckets`); absent when none (and in checkpoints written before it).
    #[serde(default, skip_serializing_if = "Categorical::is_empty")]
    pub categorical: Categorical,
    /// Steps between evaluations of the validation data (`eval_every`); absent when they
    /// follow every epoch (and in checkpoints written before the option existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_every: Option<u64>,
    /// The training units held out as validation data (`valid_fraction`), when any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_out: Option<HeldOut>,
    /// Row weights (`weight_column`, `class_weight`); absent when none (and in checkpoints
    /// written before them, which weighted no row).
    #[serde(default, skip_serializing_if = "is_unweighted")]
    pub weights: RowWeights,
}

impl RunFingerprint {
    /// CRC32C of the JSON form.
    pub fn hash(&self) -> u32 {
        crc32c::crc32c(&serde_json::to_vec(self).expect("a fingerprint serialises"))
    }

    /// The first difference from `other` (this run's), as "field: checkpoint X, now Y".
    pub fn difference(&self, now: &RunFingerprint) -> Option<String> {
        let mut diffs = Vec::new();
        let mut check = |name: &str, a: String, b: String| {
            if a != b {
                diffs.push(format!("{name} was {a}, now {b}"));
            }
        };
        check("«model»", self.model.describe(), now.model.describe());
        check(
            "«lr»",
            self.optimizer.learning_rate.to_string(),
            now.optimizer.learning_rate.to_string(),
        );
        if self.optimizer.learning_rate == now.optimizer.learning_rate {
            let json = |c: &OptimizerConfig| serde_json::to_string(c).unwrap_or_default();
            check(
                "the optimizer settings",
                json(&self.optimizer),
                json(&now.optimizer),
            );
        }
        check(
            "«seed» (initial parameters)",
            self.init_seed.to_string(),
            now.init_seed.to_string(),
        );
        check(
            "the number of MPI ranks",
            self.world.to_string(),
            now.world.to_string(),
        );
        check(
            "«epochs» (the cosine schedule's length)",
            format!("{:?}", self.schedule_steps),
            format!("{:?}", now.schedule_steps),
        );
        check(
            "«early_stop»",
            format!("{:?}", self.early_stop),
            format!("{:?}", now.early_stop),
        );
        check(
            "«eval_every»",
            self.eval_every.map_or("off".to_string(), |k| k.to_string()),
            now.eval_every.map_or("off".to_string(), |k| k.to_string()),
        );
        let held_out = |h: &Option<HeldOut>| {
            h.as_ref().map_or("off".to_string(), |h| {
                format!(
                    "{} ({} of {} units, seed {})",
                    h.fraction,
                    h.units.len(),
                    h.total_units,
                    h.seed
                )
            })
        };
        check(
            "«valid_fraction»",
            held_out(&self.held_out),
            held_out(&now.held_out),
        );
        check(
            "«batch_size»",
            self.batch_rows.to_string(),
            now.batch_rows.to_string(),
        );
        check(
            "«drop_last»",
            self.drop_last.to_string(),
            now.drop_last.to_string(),
        );
        let seed = |s: Option<u64>| s.map_or("«no_shuffle»".to_string(), |s| format!("seed {s}"));
        check(
            "«seed»/«no_shuffle»",
            seed(self.shuffle_seed),
            seed(now.shuffle_seed),
        );
        check(
            "«shuffle_buffer»",
            self.shuffle_buffer_rows.to_string(),
            now.shuffle_buffer_rows.to_string(),
        );
        check(
            "«shuffle_lanes»",
            self.shuffle_lanes.to_string(),
            now.shuffle_lanes.to_string(),
        );
        check(
            "the feature columns",
            self.features.join(","),
            now.features.join(","),
        );
        check("«label»", self.label.clone(), now.label.clone());
        check(
            "«standardize»",
            (self.standardize.is_some()).to_string(),
            (now.standardize.is_some()).to_string(),
        );
        let fills = |m: &MissingValues| {
            if m.fill.is_empty() {
                return "off".to_string();
            }
            let values: Vec<String> = m
                .fill
                .iter()
                .map(|f| format!("{}={}", f.column, f.value))
                .collect();
            values.join(",")
        };
        check("«fill_nulls»", fills(&self.missing), fills(&now.missing));
        check(
            "«positive_label»",
            format!("{:?}", self.positive_label),
            format!("{:?}", now.positive_label),
        );
        check(
            "«drop_null_labels»",
            self.drop_null_labels.to_string(),
            now.drop_null_labels.to_string(),
        );
        check(
            "«null_indicators»",
            self.missing.indicators.join(","),
            now.missing.indicators.join(","),
        );
        let encoding = |c: &Categorical| match &c.encoding {
            _ if c.is_empty() => "off".to_string(),
            Encoding::Unfitted => "unfitted".to_string(),
            Encoding::Hash { buckets } => format!("hashed into {buckets} buckets"),
            Encoding::OneHot(vocabularies) => {
                let sizes: Vec<String> = vocabularies
                    .iter()
                    .map(|v| format!("{} ({} values)", v.column, v.values.len()))
                    .collect();
                format!("one-hot {}", sizes.join(", "))
            }
        };
        check(
            "«categorical»",
            encoding(&self.categorical),
            encoding(&now.categorical),
        );
        check(
            "«weight_column»",
            format!("{:?}", self.weights.column),
            format!("{:?}", now.weights.column),
        );
        let class_weight = |w: &RowWeights| match w.class_weights.is_empty() {
            true => "none".to_string(),
            false => "balanced".to_string(),
        };
        check(
            "«class_weight»",
            class_weight(&self.weights),
            class_weight(&now.weights),
        );
        if diffs.is_empty() && self.weights != now.weights {
            diffs.push("the class weights differ (the data changed?)".to_string());
        }
        if diffs.is_empty() && self.categorical != now.categorical {
            diffs.push("the categorical vocabularies differ (the data changed?)".to_string());
        }
        if diffs.is_empty() && self.standardize != now.standardize {
            diffs.push("the standardisation statistics differ (the data changed?)".to_string());
        }
        (!diffs.is_empty()).then(|| diffs.join("; "))
    }
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

fn is_unweighted(weights: &RowWeights) -> bool {
    !weights.any()
}

impl RunFingerprint {
    /// The fingerprint of training with `config` on batches shaped by `pipeline` over data of
    /// `schema`, whose first epochs make `total_steps(epochs)` steps.
    pub fn new(
        config: &TrainerConfig,
        pipeline: &PipelineConfig,
        schema: &Schema,
        total_steps: impl FnOnce(usize) -> u64,
    ) -> Self {
        RunFingerprint {
            model: config.model.clone(),
            optimizer: config.optimizer.clone(),
            init_seed: config.init_seed,
            early_stop: config.early_stop,
            schedule_steps: (config.optimizer.schedule == LrSchedule::Cosine)
                .then(|| total_steps(config.epochs)),
            world: pipeline.world,
            batch_rows: pipeline.step_rows,
            drop_last: pipeline.last_batch == LastBatch::Drop,
            shuffle_seed: match pipeline.shuffle {
                Shuffle::Off => None,
                Shuffle::Seeded(seed) => Some(seed),
            },
            shuffle_buffer_rows: pipeline.shuffle_buffer_rows,
            shuffle_lanes: pipeline.lanes(),
            features: schema.feature_names.clone(),
            label: schema.label.clone(),
            standardize: config.standardize.clone(),
            missing: config.missing.clone(),
            positive_label: config.positive_label.clone(),
            drop_null_labels: config.drop_null_labels,
            categorical: config.categorical.clone(),
            eval_every: config.eval_every,
            held_out: config.held_out.clone(),
            weights: config.weights.clone(),
        }
    }

    /// The fingerprint of training with `config` on `stream`; `None` when the stream comes
    /// from no pipeline (it cannot be checkpointed).
    pub fn of_stream(stream: &dyn BatchSource, config: &TrainerConfig) -> Option<Self> {
        let pipeline = stream.config()?;
        Some(RunFingerprint::new(
            config,
            pipeline,
            stream.schema(),
            |epochs| stream.total_steps(epochs as u64),
        ))
    }
}

/// The fingerprint of a run of `config` on `pipeline`: what a resume must not change.
pub fn fingerprint(pipeline: &Pipeline, config: &TrainerConfig) -> RunFingerprint {
    RunFingerprint::new(
        config,
        pipeline.config(),
        pipeline.source().schema(),
        |epochs| pipeline.total_steps(epochs as u64),
    )
}
