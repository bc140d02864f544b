//! The `not used:` line `train` prints: every column of the data that is neither a feature,
//! the label nor the row weight, with its type and why (nothing is left out silently), and for
//! a string column an estimate of its distinct values from the first unit (no extra pass).

use streamfit::data::source::{ColumnRole, Source};
use streamfit::error::render_options;

use super::output::thousands;

/// Columns named in full; more are counted.
const SHOWN: usize = 20;

/// The line, or `None` when every column is used. `weight` is the «weight_column» (used).
pub(crate) fn not_used(source: &dyn Source, weight: Option<&str>) -> Option<String> {
    let unused: Vec<_> = source
        .describe()
        .columns
        .into_iter()
        .filter(|c| c.role == ColumnRole::Unused && Some(c.name.as_str()) != weight)
        .collect();
    if unused.is_empty() {
        return None;
    }
    let shown = &unused[..unused.len().min(SHOWN)];
    let names: Vec<String> = shown.iter().map(|c| c.name.clone()).collect();
    // A count the source cannot give (or a read that fails) leaves the column without one.
    let distinct = source
        .first_unit_distinct(&names)
        .unwrap_or_else(|_| vec![None; names.len()]);
    let described: Vec<String> = shown
        .iter()
        .zip(distinct)
        .map(|(c, distinct)| {
            let count = distinct.map_or(String::new(), |n| {
                let within = if source.units().len() > 1 {
                    " in the first row group"
                } else {
                    ""
                };
                format!("~{} distinct{within}: ", thousands(n))
            });
            format!(
                "{} ({}, {count}{})",
                c.name,
                c.arrow_type,
                render_options(&c.note)
            )
        })
        .collect();
    let mut line = format!("not used: {}", described.join(", "));
    if unused.len() > SHOWN {
        line.push_str(&format!(" and {} more", unused.len() - SHOWN));
    }
    Some(line)
}
