//! [`LoaderState`]: where a [`Loader`](super::Loader) stands, as plain serialisable data.
//!
//! A state names an epoch and the steps already handed out in it, together with the
//! [`LoaderSettings`] that shaped the batch sequence; a loader refuses a state made under other
//! settings, naming the first one that differs. Since the batches of an epoch are a pure
//! function of the data, the seed and the settings, the position inside the epoch (the
//! shuffle buffer's rows, the generator) is computed again from these numbers when the state
//! is loaded; nothing of the data is stored.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// What shapes a loader's batch sequence: a state carries it, and a loader given the state
/// must have the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderSettings {
    /// Rows of the whole dataset.
    pub num_rows: u64,
    /// Feature names, in order.
    pub features: Vec<String>,
    /// Label column.
    pub label: String,
    /// Rows per step (of this rank).
    pub batch_rows: u64,
    /// The last partial step is dropped.
    pub drop_last: bool,
    /// Shuffle seed (absent without shuffling).
    pub shuffle_seed: Option<u64>,
    /// Shuffle-buffer rows.
    pub shuffle_buffer_rows: usize,
    /// Shuffle lanes; absent when 1 (and in states taken before lanes existed).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub shuffle_lanes: usize,
    /// This rank.
    pub rank: usize,
    /// Ranks sharing the data.
    pub world: usize,
}

impl LoaderSettings {
    /// The first difference from `now` (the loader's settings), as "«name» was X, now Y".
    pub fn difference(&self, now: &LoaderSettings) -> Option<String> {
        let seed = |s: Option<u64>| s.map_or("«no_shuffle»".to_string(), |s| format!("seed {s}"));
        [
            (
                "the number of rows",
                self.num_rows.to_string(),
                now.num_rows.to_string(),
            ),
            (
                "the feature columns",
                self.features.join(","),
                now.features.join(","),
            ),
            ("«label»", self.label.clone(), now.label.clone()),
            (
                "«batch_size»",
                self.batch_rows.to_string(),
                now.batch_rows.to_string(),
            ),
            (
                "«drop_last»",
                self.drop_last.to_string(),
                now.drop_last.to_string(),
            ),
            (
                "«seed»/«no_shuffle»",
                seed(self.shuffle_seed),
                seed(now.shuffle_seed),
            ),
            (
                "«shuffle_buffer»",
                self.shuffle_buffer_rows.to_string(),
                now.shuffle_buffer_rows.to_string(),
            ),
            (
                "«shuffle_lanes»",
                self.shuffle_lanes.to_string(),
                now.shuffle_lanes.to_string(),
            ),
            ("«rank»", self.rank.to_string(), now.rank.to_string()),
            (
                "«world_size»",
                self.world.to_string(),
                now.world.to_string(),
            ),
        ]
        .into_iter()
        .find(|(_, was, is)| was != is)
        .map(|(name, was, is)| format!("{name} was {was}, now {is}"))
    }
}

fn one() -> usize {
    1
}

fn is_one(n: &usize) -> bool {
    *n == 1
}

/// Where a loader stands: the epoch (from 0) and the steps of it already handed out, under
/// `settings`. Between epochs it is the next epoch with no steps taken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderState {
    /// Format of the state; 1.
    pub version: u32,
    /// Epoch, from 0.
    pub epoch: u64,
    /// Steps of the epoch already handed out.
    pub batches: u64,
    /// The settings the batch sequence was made under.
    pub settings: LoaderSettings,
}

impl LoaderState {
    /// The format this version writes.
    pub const VERSION: u32 = 1;

    /// Checks that a loader with `settings` can continue from this state.
    pub fn check(&self, settings: &LoaderSettings) -> Result<()> {
        if self.version != Self::VERSION {
            return Err(Error::config(
                "state",
                format!(
                    "version {} is not one this streamfit reads (it reads {})",
                    self.version,
                    Self::VERSION
                ),
            ));
        }
        match self.settings.difference(settings) {
            Some(difference) => Err(Error::config(
                "state",
                format!("it was taken under other settings: {difference}"),
            )),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> LoaderSettings {
        LoaderSettings {
            num_rows: 1000,
            features: vec!["a".into(), "b".into()],
            label: "label".into(),
            batch_rows: 64,
            drop_last: false,
            shuffle_seed: Some(0),
            shuffle_buffer_rows: 256,
            shuffle_lanes: 1,
            rank: 0,
            world: 1,
        }
    }

    #[test]
    fn a_state_under_other_settings_is_refused_naming_the_setting() {
        let state = LoaderState {
            version: LoaderState::VERSION,
            epoch: 1,
            batches: 3,
            settings: settings(),
        };
        state.check(&settings()).unwrap();
        let now = LoaderSettings {
            batch_rows: 32,
            ..settings()
        };
        let message = state.check(&now).unwrap_err().to_string();
        assert_eq!(
            message,
            "invalid state: it was taken under other settings: batch_size was 64, now 32"
        );
        let old = LoaderState {
            version: 9,
            ..state
        };
        assert!(
            old.check(&settings())
                .unwrap_err()
                .to_string()
                .contains("version 9")
        );
    }

    #[test]
    fn a_state_round_trips_through_json() {
        let state = LoaderState {
            version: LoaderState::VERSION,
            epoch: 2,
            batches: 7,
            settings: settings(),
        };
        let json = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<LoaderState>(&json).unwrap(), state);
    }
}
