//! The model registry: every kind a [`ModelSpec`] can name, each described by a
//! [`ModelFamily`] (its name, head, settings check, description and how to build it).
//!
//! The built-in families are listed once, in `model/mod.rs`; a library user adds a family of
//! their own with [`register`], and from then on a spec, a checkpoint or a model file can name
//! it exactly like a built-in one. A [`ModelKind`] is the handle of a registered family: it
//! is serialised as the family's name, so the files written before the registry existed
//! read back unchanged. The registry only grows (a family is never removed), so every
//! `ModelKind` resolves. It knows nothing of how a family computes its loss: that is the
//! [`Model`] the family builds.

use std::any::{Any, TypeId};
use std::fmt;
use std::sync::{LazyLock, PoisonError, RwLock};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::differentiable::Model;
use super::spec::{HeadKind, ModelSpec};
use crate::error::{Error, Result};

/// How a model file lists the parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamLayout {
    /// One flat `params` vector in the model's own layout.
    Flat,
    /// `weights` (one per feature) and a `bias`: for models whose parameters are exactly
    /// `[w_0 .. w_{d-1}, b]`.
    WeightsAndBias,
}

/// A kind of model: what a [`ModelSpec`] of this kind means and how to build its [`Model`].
///
/// Implement it, then [`register`] it once (or list it in `model/mod.rs` for a built-in
/// kind). Every method is called rarely (when a run is configured, a file is loaded or a
/// model is built), never per batch.
pub trait ModelFamily: Any + Send + Sync {
    /// The kind's name in specs, checkpoints, model files and the command line's `«model»`:
    /// lowercase ASCII letters, digits, `_` and `-`, starting with a letter; unique.
    fn name(&self) -> &'static str;

    /// One line for a front end's list of models: what it is and its loss. Options are
    /// written `«name»`.
    fn summary(&self) -> &'static str;

    /// The head kind this family trains when the caller asks for `requested`: a family with
    /// one fixed head returns it whatever was asked, a family that can have any head returns
    /// `requested`. A spec whose head this does not return for it is refused.
    fn head_kind(&self, requested: HeadKind) -> HeadKind;

    /// True when the family uses a spec's `hidden` and `activation`; other families get a
    /// spec without hidden layers from [`ModelKind::spec`]. By default false.
    fn has_hidden_layers(&self) -> bool {
        false
    }

    /// The first of the spec's settings this family cannot use, as (option, reason); the
    /// class count and the head are checked by [`ModelSpec::problem`]. By default none.
    fn problem(&self, spec: &ModelSpec) -> Option<(&'static str, String)> {
        let _ = spec;
        None
    }

    /// A short description of a spec of this family. By default `name (head)`, e.g.
    /// `softmax (10 classes)`.
    fn describe(&self, spec: &ModelSpec) -> String {
        format!("{} ({})", self.name(), spec.head.describe())
    }

    /// The model of `spec` on `num_features` features. `spec` has passed
    /// [`ModelSpec::problem`].
    fn build(&self, spec: &ModelSpec, num_features: usize) -> Box<dyn Model>;

    /// How a model file lists the parameters. By default [`ParamLayout::Flat`].
    fn param_layout(&self) -> ParamLayout {
        ParamLayout::Flat
    }
}

/// A registered family and the type that registered it (none for the built-in ones).
struct Entry {
    family: &'static dyn ModelFamily,
    type_id: Option<TypeId>,
}

static REGISTRY: LazyLock<RwLock<Vec<Entry>>> = LazyLock::new(|| {
    RwLock::new(
        super::BUILT_IN
            .iter()
            .map(|&family| Entry {
                family,
                type_id: None,
            })
            .collect(),
    )
});

/// Registers `family`, so specs, checkpoints and model files can name it; returns its kind.
///
/// Registering a second value of the same type under the same name returns the kind
/// registered first (so every test of a process may register its family). Errors: a name
/// that is not lowercase letters, digits, `_` and `-` starting with a letter, or one that
/// another family already has.
pub fn register<F: ModelFamily>(family: F) -> Result<ModelKind> {
    let name = family.name();
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if !valid {
        return Err(Error::config(
            "model",
            format!(
                "`{name}` is not a model name (lowercase letters, digits, `_` and `-`, starting with a letter)"
            ),
        ));
    }
    let mut entries = REGISTRY.write().unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = entries.iter().find(|e| e.family.name() == name) {
        return if entry.type_id == Some(TypeId::of::<F>()) {
            Ok(ModelKind(entry.family.name()))
        } else {
            Err(Error::config(
                "model",
                format!("`{name}` is already the name of another model"),
            ))
        };
    }
    let family: &'static dyn ModelFamily = Box::leak(Box::new(family));
    entries.push(Entry {
        family,
        type_id: Some(TypeId::of::<F>()),
    });
    Ok(ModelKind(family.name()))
}

/// The handle of a registered [`ModelFamily`]: `Copy`, compared and serialised by name.
///
/// The built-in kinds are the associated constants ([`ModelKind::Linear`], ...), named as
/// the enum variants they were; others come from [`register`] or [`ModelKind::named`].
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ModelKind(&'static str);

#[allow(non_upper_case_globals)] // named as the enum variants they replace
impl ModelKind {
    /// Linear regression, loss = mean squared error (p − y)².
    pub const Linear: ModelKind = ModelKind("linear");
    /// Logistic regression, loss = binary cross-entropy on logits; labels in {0, 1}.
    pub const Logistic: ModelKind = ModelKind("logistic");
    /// Multiclass logistic regression, loss = cross-entropy of the softmax; labels are class
    /// ids 0..K−1.
    pub const Softmax: ModelKind = ModelKind("softmax");
    /// A multilayer perceptron with a regression, binary or multiclass head.
    pub const Mlp: ModelKind = ModelKind("mlp");

    /// The registered kind called `name`.
    pub fn named(name: &str) -> Option<ModelKind> {
        let entries = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|e| e.family.name() == name)
            .map(|e| ModelKind(e.family.name()))
    }

    /// Every registered kind: the built-in ones first, then in registration order.
    pub fn all() -> Vec<ModelKind> {
        let entries = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
        entries.iter().map(|e| ModelKind(e.family.name())).collect()
    }

    /// The kind's name, as files and the command line spell it.
    pub fn name(self) -> &'static str {
        self.0
    }

    /// The kind's family.
    pub fn family(self) -> &'static dyn ModelFamily {
        let entries = REGISTRY.read().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .find(|e| e.family.name() == self.0)
            .map(|e| e.family)
            .expect("a ModelKind names a registered family")
    }

    /// The head kind a model of this kind has when the caller asks for `requested` (see
    /// [`ModelFamily::head_kind`]).
    pub fn head_kind(self, requested: HeadKind) -> HeadKind {
        self.family().head_kind(requested)
    }

    /// A spec of this kind with `head`, and with `hidden` and `activation` when the kind has
    /// hidden layers (without them otherwise): what a front end builds from its options.
    pub fn spec(
        self,
        head: super::Head,
        hidden: Vec<usize>,
        activation: super::Activation,
    ) -> ModelSpec {
        if self.family().has_hidden_layers() {
            ModelSpec {
                kind: self,
                head,
                hidden,
                activation,
            }
        } else {
            ModelSpec::new(self, head)
        }
    }
}

impl fmt::Display for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The name with its first letter in capitals (`Linear`, `Mlp`), as the enum the kinds once
/// were printed them.
impl fmt::Debug for ModelKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut chars = self.0.chars();
        if let Some(first) = chars.next() {
            write!(f, "{}", first.to_ascii_uppercase())?;
        }
        f.write_str(chars.as_str())
    }
}

impl Serialize for ModelKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

impl<'de> Deserialize<'de> for ModelKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let name = String::deserialize(deserializer)?;
        ModelKind::named(&name).ok_or_else(|| {
            let known: Vec<String> = ModelKind::all().iter().map(|k| format!("`{k}`")).collect();
            serde::de::Error::custom(format!(
                "unknown variant `{name}`, expected one of {}",
                known.join(", ")
            ))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Activation, Head};

    #[test]
    fn the_built_in_constants_name_the_built_in_families_in_order() {
        let all = ModelKind::all();
        assert_eq!(
            all[..4],
            [
                ModelKind::Linear,
                ModelKind::Logistic,
                ModelKind::Softmax,
                ModelKind::Mlp
            ]
        );
        for kind in all {
            assert_eq!(kind.family().name(), kind.name());
        }
    }

    #[test]
    fn kinds_serialise_as_their_names_and_unknown_names_are_refused() {
        assert_eq!(
            serde_json::to_string(&ModelKind::Logistic).unwrap(),
            "\"logistic\""
        );
        let kind: ModelKind = serde_json::from_str("\"mlp\"").unwrap();
        assert_eq!(kind, ModelKind::Mlp);
        assert_eq!(format!("{kind:?} {kind}"), "Mlp mlp");
        let err = serde_json::from_str::<ModelKind>("\"forest\"").unwrap_err();
        assert!(
            err.to_string().starts_with(
                "unknown variant `forest`, expected one of `linear`, `logistic`, `softmax`, `mlp`"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_spec_from_options_keeps_hidden_layers_only_for_kinds_that_have_them() {
        let hidden = vec![64];
        let spec = |kind: ModelKind, task| {
            let head = kind.head_kind(task).with_classes(3);
            kind.spec(head, hidden.clone(), Activation::Tanh)
        };
        assert_eq!(
            spec(ModelKind::Linear, HeadKind::Binary),
            ModelSpec::linear()
        );
        assert_eq!(
            spec(ModelKind::Logistic, HeadKind::Multiclass),
            ModelSpec::logistic()
        );
        assert_eq!(
            spec(ModelKind::Softmax, HeadKind::Binary),
            ModelSpec::softmax(3)
        );
        assert_eq!(
            spec(ModelKind::Mlp, HeadKind::Regression),
            ModelSpec::mlp(vec![64], Activation::Tanh, Head::Regression)
        );
    }

    #[test]
    fn a_head_the_kind_cannot_have_is_refused() {
        let mut spec = ModelSpec::linear();
        spec.head = Head::Binary;
        let (field, reason) = spec.problem().expect("refused");
        assert_eq!(field, "model");
        assert_eq!(reason, "a Linear model cannot have a Binary head");
    }

    struct Impostor;

    impl ModelFamily for Impostor {
        fn name(&self) -> &'static str {
            "linear"
        }
        fn summary(&self) -> &'static str {
            "not linear regression"
        }
        fn head_kind(&self, _: HeadKind) -> HeadKind {
            HeadKind::Regression
        }
        fn build(&self, spec: &ModelSpec, num_features: usize) -> Box<dyn Model> {
            ModelSpec::linear().build(num_features + spec.hidden.len())
        }
    }

    #[test]
    fn a_taken_or_malformed_name_is_refused() {
        let err = register(Impostor).unwrap_err();
        assert!(err.to_string().contains("already the name"), "{err}");
        struct Shouting;
        impl ModelFamily for Shouting {
            fn name(&self) -> &'static str {
                "Forest"
            }
            fn summary(&self) -> &'static str {
                ""
            }
            fn head_kind(&self, requested: HeadKind) -> HeadKind {
                requested
            }
            fn build(&self, _: &ModelSpec, num_features: usize) -> Box<dyn Model> {
                ModelSpec::linear().build(num_features)
            }
        }
        assert!(register(Shouting).is_err());
        assert_eq!(ModelKind::named("Forest"), None);
    }
}
