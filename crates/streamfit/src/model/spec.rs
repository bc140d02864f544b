//! What defines a model's shape: its kind, its output head, and the hidden layers of the
//! kinds that have them.
//!
//! A [`ModelSpec`] is plain data (saved in checkpoints; a model file keeps the same fields),
//! checked once by [`ModelSpec::problem`] and turned into a [`Model`] by [`ModelSpec::build`].
//! Everything that depends on the kind goes through the kind's [`ModelFamily`] in the
//! registry; this file knows no kind by name (the constructors for the built-in kinds aside).

use serde::{Deserialize, Serialize};

use super::differentiable::Model;
use super::registry::{ModelKind, ParamLayout};

/// What a model predicts, and so its loss and metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Head {
    /// One value; squared error; RMSE.
    Regression,
    /// One probability; binary cross-entropy; accuracy at 0.5.
    Binary,
    /// K class probabilities; cross-entropy of the softmax; accuracy of the argmax.
    Multiclass(usize),
}

impl Head {
    /// Values predicted per row.
    pub fn outputs(self) -> usize {
        match self {
            Head::Regression | Head::Binary => 1,
            Head::Multiclass(k) => k,
        }
    }

    /// True for a classification head (accuracy is its metric; RMSE otherwise).
    pub fn is_classifier(self) -> bool {
        !matches!(self, Head::Regression)
    }

    /// True when `y` is a valid target: a class id in 0..K for a multiclass head (any finite
    /// value otherwise; the readers already reject non-finite ones).
    pub fn accepts(self, y: f32) -> bool {
        match self {
            Head::Multiclass(k) => y >= 0.0 && y.fract() == 0.0 && (y as usize) < k,
            Head::Binary => y == 0.0 || y == 1.0,
            Head::Regression => true,
        }
    }

    /// The head without its class count.
    pub fn kind(self) -> HeadKind {
        match self {
            Head::Regression => HeadKind::Regression,
            Head::Binary => HeadKind::Binary,
            Head::Multiclass(_) => HeadKind::Multiclass,
        }
    }

    /// `regression`, `binary` or `K classes`.
    pub fn describe(self) -> String {
        match self {
            Head::Regression => "regression".to_string(),
            Head::Binary => "binary".to_string(),
            Head::Multiclass(k) => format!("{k} classes"),
        }
    }
}

/// A [`Head`] without its class count: the task a caller asks for (the command line's
/// `«task»`) before the classes are known.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HeadKind {
    /// [`Head::Regression`].
    Regression,
    /// [`Head::Binary`].
    Binary,
    /// [`Head::Multiclass`].
    Multiclass,
}

impl HeadKind {
    /// The head, with `classes` classes when multiclass (ignored otherwise).
    pub fn with_classes(self, classes: usize) -> Head {
        match self {
            HeadKind::Regression => Head::Regression,
            HeadKind::Binary => Head::Binary,
            HeadKind::Multiclass => Head::Multiclass(classes),
        }
    }
}

/// Hidden-layer non-linearity of an MLP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Activation {
    /// max(0, x), with He initialisation.
    #[default]
    Relu,
    /// tanh(x), with Xavier initialisation.
    Tanh,
}

/// Most classes of a multiclass head.
pub const MAX_CLASSES: usize = 65_536;

/// Most parameters of a model (1 GiB of f32), so a mistyped shape is an error, not an
/// allocation failure.
pub const MAX_PARAMS: usize = 1 << 28;

/// Everything that defines a model's shape, given its feature count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelSpec {
    /// The kind the user chose: a registered [`ModelFamily`](super::ModelFamily).
    pub kind: ModelKind,
    /// Output head (regression for `linear`, binary for `logistic`, multiclass for `softmax`).
    pub head: Head,
    /// Hidden-layer widths (kinds with hidden layers only).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub hidden: Vec<usize>,
    /// Hidden-layer activation (kinds with hidden layers only).
    #[serde(default)]
    pub activation: Activation,
}

impl ModelSpec {
    /// A model of `kind` with `head` and no hidden layers.
    pub fn new(kind: ModelKind, head: Head) -> Self {
        ModelSpec {
            kind,
            head,
            hidden: Vec::new(),
            activation: Activation::Relu,
        }
    }

    /// Linear regression.
    pub fn linear() -> Self {
        Self::new(ModelKind::Linear, Head::Regression)
    }

    /// Logistic regression.
    pub fn logistic() -> Self {
        Self::new(ModelKind::Logistic, Head::Binary)
    }

    /// Softmax regression over `classes` classes.
    pub fn softmax(classes: usize) -> Self {
        Self::new(ModelKind::Softmax, Head::Multiclass(classes))
    }

    /// An MLP with these hidden widths, activation and head.
    pub fn mlp(hidden: Vec<usize>, activation: Activation, head: Head) -> Self {
        ModelSpec {
            kind: ModelKind::Mlp,
            head,
            hidden,
            activation,
        }
    }

    /// The first setting that cannot be used, as (option, reason): the class count, then the
    /// kind's own settings ([`ModelFamily::problem`](super::ModelFamily::problem)), then
    /// whether the kind can have this head.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        if let Head::Multiclass(k) = self.head
            && !(2..=MAX_CLASSES).contains(&k)
        {
            return Some((
                "classes",
                format!("must be between 2 and {MAX_CLASSES}, got {k}"),
            ));
        }
        let family = self.kind.family();
        if let Some(problem) = family.problem(self) {
            return Some(problem);
        }
        let head = self.head.kind();
        if family.head_kind(head) != head {
            return Some((
                "model",
                format!("a {:?} model cannot have a {:?} head", self.kind, self.head),
            ));
        }
        None
    }

    /// A short description, e.g. `mlp 64,32 relu (binary)`.
    pub fn describe(&self) -> String {
        self.kind.family().describe(self)
    }

    /// How a model file lists this model's parameters.
    pub fn param_layout(&self) -> ParamLayout {
        self.kind.family().param_layout()
    }

    /// The model on `num_features` features. The spec has passed [`ModelSpec::problem`].
    pub fn build(&self, num_features: usize) -> Box<dyn Model> {
        self.kind.family().build(self, num_features)
    }
}
