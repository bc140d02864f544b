//! What the decoder does to each scalar feature column's values besides the cast, resolved
//! against the feature names: the fill values of missing values and the indicator features
//! («fill_nulls», «null_indicators»), and the centres of large-magnitude columns, subtracted
//! in f64 before the f32 cast (standardisation's `centre`); and the row weight column
//! («weight_column»), which is never a feature. Resolution only: `decode.rs`
//! applies them, `columns.rs` places them in the [`Layout`](super::columns::Layout).

use arrow_schema::SchemaRef;

use crate::data::schema::{ColumnSpec, MissingValues};
use crate::data::source::parquet::columns::is_scalar_number;
use crate::error::{Error, Result};

/// Each feature column's fill value and the indicator columns (indices into `names`) of
/// `missing`; a column it names that is not a feature is an error.
pub(super) fn resolve_missing(
    missing: &MissingValues,
    names: &[String],
) -> Result<(Vec<Option<f32>>, Vec<usize>)> {
    let position = |option: &'static str, column: &str| {
        names.iter().position(|n| n == column).ok_or_else(|| {
            Error::config(
                option,
                format!(
                    "column `{column}` is not a feature column (features: {})",
                    names.join(", ")
                ),
            )
        })
    };
    let mut fill = vec![None; names.len()];
    for f in &missing.fill {
        fill[position("fill_nulls", &f.column)?] = Some(f.value as f32);
    }
    let mut indicators = Vec::with_capacity(missing.indicators.len());
    for column in &missing.indicators {
        let j = position("null_indicators", column)?;
        if fill[j].is_none() {
            return Err(Error::config(
                "null_indicators",
                format!("column `{column}` has an indicator but no fill value (add «fill_nulls»)"),
            ));
        }
        indicators.push(j);
    }
    Ok((fill, indicators))
}

/// Each feature column's centre (0 when not centred) from `spec.centre`, with the fill values
/// of centred columns centred the same (in f64); a centred column that is not a feature is an
/// error.
pub(super) fn resolve_centre(
    spec: &ColumnSpec,
    names: &[String],
    fill: &mut [Option<f32>],
) -> Result<Vec<f64>> {
    let mut centre = vec![0.0; names.len()];
    for c in &spec.centre {
        let j = names.iter().position(|n| *n == c.column).ok_or_else(|| {
            Error::config(
                "standardize",
                format!("the centred column `{}` is not a feature column", c.column),
            )
        })?;
        centre[j] = c.value;
        if let Some(value) = spec.missing.fill_of(&c.column) {
            fill[j] = Some((value - c.value) as f32);
        }
    }
    Ok(centre)
}

/// The root of «weight_column» in `schema`, when set: a numeric scalar column (cast like a
/// feature) that is not the label.
pub(super) fn resolve_weight(
    spec: &ColumnSpec,
    schema: &SchemaRef,
    find: &dyn Fn(&str) -> Result<usize>,
    label: Option<usize>,
) -> Result<Option<usize>> {
    let Some(name) = &spec.weight else {
        return Ok(None);
    };
    let index = find(name)?;
    if Some(index) == label {
        return Err(Error::config(
            "weight_column",
            format!("`{name}` is the label column; a row's weight is another column"),
        ));
    }
    let data_type = schema.field(index).data_type();
    if !is_scalar_number(data_type) {
        return Err(Error::config(
            "weight_column",
            format!("column `{name}` is {data_type}, not a numeric column"),
        ));
    }
    Ok(Some(index))
}

/// The error for the weight column named as a feature (in «features» or «categorical»).
pub(super) fn weight_is_a_feature(name: &str, option: &'static str) -> Error {
    Error::config(
        option,
        format!("`{name}` is the «weight_column»; a row's weight is never one of its features"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::schema::{ColumnCentre, ColumnFill};

    #[test]
    fn a_centred_column_has_its_fill_value_centred_in_f64() {
        let names: Vec<String> = ["ts", "x"].iter().map(|s| s.to_string()).collect();
        let mut spec = ColumnSpec::default();
        spec.missing.fill = vec![
            ColumnFill {
                column: "ts".to_string(),
                value: 1_700_000_010.0,
            },
            ColumnFill {
                column: "x".to_string(),
                value: 0.5,
            },
        ];
        spec.centre = vec![ColumnCentre {
            column: "ts".to_string(),
            value: 1_700_000_000.0,
        }];
        let (mut fill, _) = resolve_missing(&spec.missing, &names).unwrap();
        let centre = resolve_centre(&spec, &names, &mut fill).unwrap();
        assert_eq!(centre, vec![1_700_000_000.0, 0.0]);
        // 10 s, not 1.7e9 rounded to 128 s.
        assert_eq!(fill, vec![Some(10.0), Some(0.5)]);
        spec.centre[0].column = "nope".to_string();
        let err = resolve_centre(&spec, &names, &mut fill)
            .unwrap_err()
            .to_string();
        assert!(err.contains("`nope`"), "{err}");
    }
}
