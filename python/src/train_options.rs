//! The options of `streamfit.train`, read from its keyword arguments into a [`TrainConfig`]
//! as `streamfit train` maps its flags (`--batch-size` is `batch_size=`): the same defaults,
//! the same checks, errors naming the keyword argument. What is not a run option (`progress`,
//! `quiet`, `trace`) is the caller's.

use std::path::PathBuf;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use streamfit::config::{OnBadFile, Origin, Outputs, Resume, TrainConfig};
use streamfit::data::categorical::CategoricalColumns;
use streamfit::model::{Activation, HeadKind, ModelKind};
use streamfit::optim::{LrSchedule, OptimizerConfig, OptimizerKind};
use streamfit::pipeline::Shuffle;
use streamfit::train::{Eval, Standardize};

use crate::loader::{columns, pipeline_options, read_options};
use crate::options::{Options, choice};

/// The model options (`model`, `classes`, `hidden`, `activation`, `task`), as the command
/// line's `ModelArgs` applies them.
fn model_options(options: &mut Options<'_>, config: &mut TrainConfig) -> PyResult<()> {
    let name = options
        .string("model")?
        .unwrap_or_else(|| "logistic".to_string());
    let kind = ModelKind::named(&name).ok_or_else(|| {
        let names: Vec<&str> = ModelKind::all().into_iter().map(|k| k.name()).collect();
        PyValueError::new_err(format!(
            "invalid model: `{name}` is not one of {}",
            names.join(", ")
        ))
    })?;
    let classes = options.size("classes")?;
    let hidden = options.counts("hidden")?.unwrap_or_else(|| vec![64]);
    let activation = choice(
        "activation",
        options.string("activation")?,
        &[("relu", Activation::Relu), ("tanh", Activation::Tanh)],
        Activation::Relu,
    )?;
    let task = choice(
        "task",
        options.string("task")?,
        &[
            ("regression", HeadKind::Regression),
            ("binary", HeadKind::Binary),
            ("multiclass", HeadKind::Multiclass),
        ],
        HeadKind::Binary,
    )?;
    let head = kind.head_kind(task);
    config.classes = match (head == HeadKind::Multiclass, classes) {
        (true, None) => Origin::FromData,
        _ => Origin::Given,
    };
    config.trainer.model = kind.spec(head.with_classes(classes.unwrap_or(0)), hidden, activation);
    Ok(())
}

/// The optimizer options, as the command line's `OptimizerArgs` applies them.
fn optimizer_options(options: &mut Options<'_>, config: &mut TrainConfig) -> PyResult<()> {
    let kind = choice(
        "optimizer",
        options.string("optimizer")?,
        &[
            ("sgd", OptimizerKind::Sgd),
            ("momentum", OptimizerKind::Momentum),
            ("nesterov", OptimizerKind::Nesterov),
            ("adam", OptimizerKind::Adam),
            ("adamw", OptimizerKind::AdamW),
        ],
        OptimizerKind::Sgd,
    )?;
    #[derive(Clone, Copy, PartialEq)]
    enum Schedule {
        Constant,
        Step,
        Cosine,
    }
    let schedule = choice(
        "lr_schedule",
        options.string("lr_schedule")?,
        &[
            ("constant", Schedule::Constant),
            ("step", Schedule::Step),
            ("cosine", Schedule::Cosine),
        ],
        Schedule::Constant,
    )?;
    let step_size = options.count("lr_step_size")?;
    let step_epochs = options.count("lr_step_epochs")?;
    if step_size.is_some() && step_epochs.is_some() {
        return Err(PyValueError::new_err(
            "invalid lr_step_size: cannot be combined with lr_step_epochs",
        ));
    }
    if step_epochs == Some(0) {
        return Err(PyValueError::new_err(
            "invalid lr_step_epochs: must be at least 1",
        ));
    }
    config.lr_step_size = match (schedule, step_size) {
        (Schedule::Step, None) => Origin::FromData,
        _ => Origin::Given,
    };
    config.trainer.optimizer = OptimizerConfig {
        kind,
        learning_rate: options.float("lr")?.unwrap_or(kind.default_learning_rate()),
        momentum: options.float("momentum")?.unwrap_or(0.9),
        beta1: options.float("beta1")?.unwrap_or(0.9),
        beta2: options.float("beta2")?.unwrap_or(0.999),
        eps: options.float("eps")?.unwrap_or(1e-8),
        weight_decay: options.float("weight_decay")?.unwrap_or(0.0),
        schedule: match schedule {
            Schedule::Constant => LrSchedule::Constant,
            Schedule::Step => LrSchedule::Step {
                every: step_size.unwrap_or(step_epochs.unwrap_or(1)),
                gamma: options.float("lr_gamma")?.unwrap_or(0.1),
            },
            Schedule::Cosine => LrSchedule::Cosine,
        },
        warmup_steps: options.count("warmup_steps")?.unwrap_or(0),
        clip_grad_norm: options.float("clip_grad_norm")?,
    };
    options.float("lr_gamma")?;
    Ok(())
}

/// The run's options on `data`, as the command line's `streamfit train` maps its flags.
pub(crate) fn train_config(data: Vec<PathBuf>, options: &mut Options<'_>) -> PyResult<TrainConfig> {
    let mut config = TrainConfig {
        data,
        columns: columns(options)?,
        ..TrainConfig::default()
    };
    pipeline_options(options, &mut config)?;
    read_options(options, &mut config)?;
    // Megabytes (10^6 bytes); 0 is refused by the run's checks, naming `memory_limit`.
    config.memory_limit_mb = options.count("memory_limit")?;
    let seed = options.count("seed")?.unwrap_or(0);
    config.shuffle = if options.bool("no_shuffle")?.unwrap_or(false) {
        Shuffle::Off
    } else {
        Shuffle::Seeded(seed)
    };
    config.trainer.init_seed = seed;
    config.trainer.early_stop = options.size("early_stop")?;
    if let Some(epochs) = options.size("epochs")? {
        config.trainer.epochs = epochs;
    }
    // As on the command line: the running train loss by default, the full-data pass with
    // `full_loss=True`; `no_eval=True` is the default's older spelling.
    let full_loss = options.bool("full_loss")?.unwrap_or(false);
    let no_eval = options.bool("no_eval")?.unwrap_or(false);
    if full_loss && no_eval {
        return Err(PyValueError::new_err(
            "invalid full_loss: cannot be combined with no_eval",
        ));
    }
    config.trainer.eval = if full_loss {
        Eval::EveryEpoch
    } else {
        Eval::Off
    };
    config.trainer.eval_every = options.count("eval_every")?;
    config.valid_rows = options.count("valid_rows")?;
    config.valid_fraction = options.float64("valid_fraction")?;
    if let Some(t) = options.size("threads")? {
        config.trainer.num_threads = t;
    }
    config.valid = options.paths("valid")?.unwrap_or_default();
    config.on_bad_file = choice(
        "on_bad_file",
        options.string("on_bad_file")?,
        &[("error", OnBadFile::Error), ("skip", OnBadFile::Skip)],
        OnBadFile::Error,
    )?;
    // `standardize=True` always, `False` never (`--no-standardize`), unset: when the scales
    // are mixed.
    config.standardize = match options.bool("standardize")? {
        Some(true) => Standardize::Always,
        Some(false) => Standardize::Never,
        None => Standardize::Auto,
    };
    // `fill_nulls="mean"`, `"zero"` or a number as text (`"0.5"`), as on the command line.
    config.fill_nulls = options
        .string("fill_nulls")?
        .map(|text| text.parse())
        .transpose()
        .map_err(crate::errors::to_py)?;
    config.null_indicators = options.bool("null_indicators")?.unwrap_or(false);
    config.columns.positive_label = options.string("positive_label")?;
    config.columns.drop_null_labels = options.bool("drop_null_labels")?.unwrap_or(false);
    config.columns.weight = options.string("weight_column")?;
    // `class_weight="balanced"` (or `"none"`), as on the command line.
    if let Some(text) = options.string("class_weight")? {
        config.class_weight = text.parse().map_err(crate::errors::to_py)?;
    }
    // `categorical="auto"`, `"a,b"` or `["a", "b"]`, as on the command line.
    config.categorical = CategoricalColumns::from_names(options.strings("categorical")?.as_deref());
    if let Some(k) = options.size("max_categories")? {
        config.max_categories = k;
    }
    config.hash_buckets = options
        .count("hash_buckets")?
        .map(|n| {
            u32::try_from(n).map_err(|_| PyValueError::new_err("invalid hash_buckets: too large"))
        })
        .transpose()?;
    config.checkpoint_dir = options.path("checkpoint_dir")?;
    config.checkpoint_every = options.count("checkpoint_every")?;
    if let Some(k) = options.size("keep_checkpoints")? {
        config.keep_checkpoints = k;
    }
    config.resume = options.string("resume")?.map(|which| match which.as_str() {
        "auto" => Resume::Auto,
        path => Resume::Path(PathBuf::from(path)),
    });
    config.outputs = Outputs {
        save_model: options.path("save_model")?,
        report: options.path("report")?,
        metrics: options.path("metrics")?,
        plot: options.path("plot")?,
        plot_log: options.bool("log_y")?.unwrap_or(false),
        trace: None,
        profile: options.bool("profile")?.unwrap_or(false),
    };
    model_options(options, &mut config)?;
    optimizer_options(options, &mut config)?;
    Ok(config)
}
