//! The preprocessing flags `train` and `convert` share: missing values, categorical columns and
//! the label's mapping. `train` saves what they fit with the model; `convert` stores the
//! encoded rows and the fit in the shard manifest. Either way `predict` and `eval` apply the
//! same to raw files.

use clap::Args;
use streamfit::data::categorical::CategoricalColumns;
use streamfit::data::schema::FillNulls;

/// `--fill-nulls`, `--null-indicators`, `--categorical`, `--max-categories`, `--hash-buckets`,
/// `--positive-label`, `--drop-null-labels`.
#[derive(Args, Debug, Clone)]
pub(crate) struct PreprocessArgs {
    /// Fill nulls and NaN in the feature columns with 0, each column's mean (one statistics
    /// pass over the training rows) or this number; saved with the model (by convert: the
    /// filled values in the shards, the fill values in the manifest), so predict and eval
    /// fill the same [default: a null is an error]
    #[arg(long, value_name = "zero|mean|VALUE", value_parser = parse_fill_nulls)]
    pub(crate) fill_nulls: Option<FillNulls>,
    /// Add a 0/1 feature COL_is_null for each feature column that held a missing value
    /// (found by the statistics pass)
    #[arg(long, requires = "fill_nulls")]
    pub(crate) null_indicators: bool,
    /// One-hot encode these string, dictionary, boolean or integer columns (`auto`: every
    /// string and dictionary column, among the --features when named). The --max-categories
    /// most frequent values of each get a feature COL=value (one counting pass, bounded
    /// memory); every other value, and any value unseen in training, COL=<other>; nulls
    /// COL=<null>. Saved with the model (by convert: the one-hot features in the shards, the
    /// vocabularies in the manifest)
    #[arg(long, value_name = "A,B|auto", value_delimiter = ',')]
    pub(crate) categorical: Option<Vec<String>>,
    /// Values of each --categorical column that get their own feature (the most frequent)
    #[arg(long, default_value_t = 100, value_name = "K")]
    pub(crate) max_categories: usize,
    /// Hash the --categorical columns into N shared features hash_0..hash_{N-1} instead
    /// (bucket = CRC-32 of the bytes `column=value` mod N, as Python's zlib.crc32; no pass)
    #[arg(long, value_name = "N", requires = "categorical")]
    pub(crate) hash_buckets: Option<u32>,
    /// Make the label 1 where it equals VALUE and 0 elsewhere; the label column may then be
    /// a string, dictionary, boolean or number column (e.g. `yes`, or 1 of a -1/+1 label).
    /// Saved with the model, so eval maps its labels the same
    #[arg(long, value_name = "VALUE")]
    pub(crate) positive_label: Option<String>,
    /// Leave out the rows whose label is null (counted first, so every training epoch has
    /// exactly ceil(kept rows / batch) iterations) [default: a null label is an error]
    #[arg(long)]
    pub(crate) drop_null_labels: bool,
}

impl PreprocessArgs {
    /// `--categorical` as the library's column choice (names trimmed).
    pub(crate) fn categorical_columns(&self) -> CategoricalColumns {
        CategoricalColumns::from_names(self.categorical.as_deref())
    }
}

/// `--fill-nulls zero|mean|VALUE`.
fn parse_fill_nulls(text: &str) -> Result<FillNulls, String> {
    text.parse::<FillNulls>()
        .map_err(|e| streamfit::error::render_options(&e.to_string()).into_owned())
}
