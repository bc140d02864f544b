//! The label check: a row whose label the model's head cannot take is refused, by name.
//!
//! A multiclass head refuses a label that is not a class id in 0..K, a binary (logistic) head
//! one that is not 0 or 1 (so -1/+1 or 1/2 labels never train a silent nonsense model); the
//! error names the file and the row in it when the rows come from a [`Source`], and the row's
//! global id otherwise. This is a check on values the trainer is about to use, not a data reader.

use std::path::PathBuf;

use crate::data::RowBlock;
use crate::data::source::{Source, Unit};
use crate::error::{Error, Result};
use crate::model::Head;
use crate::pipeline::BatchSource;

/// Refuses a row whose label the head cannot take (a multiclass label that is not a class id
/// in 0..K, a binary label that is not 0 or 1), naming the file and the row in it.
pub fn check_labels(source: &dyn Source, head: Head, rows: &RowBlock) -> Result<()> {
    if head == Head::Regression {
        return Ok(());
    }
    check(
        Some((source.units(), source.files())),
        &source.schema().label,
        head,
        rows,
    )
}

/// [`check_labels`] for the rows of a batch stream: named in the source behind it, if any.
pub(crate) fn check_stream_labels(
    stream: &dyn BatchSource,
    head: Head,
    rows: &RowBlock,
) -> Result<()> {
    if head == Head::Regression {
        return Ok(());
    }
    let files = stream.source().map(|s| (s.units(), s.files()));
    check(files, &stream.schema().label, head, rows)
}

/// The check itself; `files` locates a row by its global id (its units and files).
fn check(
    files: Option<(&[Unit], &[PathBuf])>,
    label: &str,
    head: Head,
    rows: &RowBlock,
) -> Result<()> {
    let bad = rows.targets().iter().position(|&y| !head.accepts(y));
    let Some(i) = bad else {
        return Ok(());
    };
    let id = rows.row_ids()[i];
    let (file, row) = match files {
        Some((units, files)) => {
            let unit = &units[units.partition_point(|u| u.first_row_id + u.num_rows <= id)];
            let file_start = units
                .iter()
                .find(|u| u.file == unit.file)
                .map_or(0, |u| u.first_row_id);
            (files[unit.file].clone(), id - file_start)
        }
        None => (PathBuf::from("(batch stream)"), id),
    };
    let (column, value) = (label.to_string(), f64::from(rows.targets()[i]));
    Err(match head {
        Head::Multiclass(classes) => Error::BadLabel {
            file,
            row,
            column,
            value,
            classes,
        },
        _ => Error::BadBinaryLabel {
            file,
            row,
            column,
            value,
        },
    })
}
