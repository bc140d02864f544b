//! Writes the table of `benches/categorical.sh`: ROWS rows of an `id` string with ROWS distinct
//! values, five categorical columns (`c0`..`c3` strings with 10, 100, 1,000 and 10,000 values,
//! `c4` a dictionary column with 5), ten float32 columns `x0`..`x9` and a 0/1 `label` that
//! depends on `x0` and `c0`; snappy, row groups of 1,048,576 rows, written in batches of
//! 65,536 rows (memory stays small whatever ROWS is). Values come from a fixed-seed generator.
//!
//! Usage: `cargo run --release --example categorical_table -- OUT.parquet ROWS`

use std::sync::Arc;

use arrow_array::types::Int32Type;
use arrow_array::{ArrayRef, DictionaryArray, Float32Array, RecordBatch, StringArray};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

const BATCH_ROWS: usize = 65_536;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(out), Some(rows)) = (
        args.get(1),
        args.get(2).and_then(|r| r.parse::<usize>().ok()),
    ) else {
        eprintln!("usage: categorical_table OUT.parquet ROWS");
        std::process::exit(2);
    };
    let mut state = 0x5EED_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_max_row_group_row_count(Some(1 << 20))
        .build();
    let file = std::fs::File::create(out).expect("create the output file");
    let mut writer: Option<ArrowWriter<std::fs::File>> = None;
    let plans = ["free", "basic", "pro", "team", "enterprise"];
    let mut start = 0;
    while start < rows {
        let n = BATCH_ROWS.min(rows - start);
        let mut columns: Vec<(String, ArrayRef)> = Vec::new();
        columns.push((
            "id".into(),
            Arc::new(StringArray::from_iter_values(
                (start..start + n).map(|i| format!("customer-{i:010}")),
            )),
        ));
        let mut c0 = Vec::with_capacity(n);
        for (k, cardinality) in [10u64, 100, 1_000, 10_000].into_iter().enumerate() {
            let values: Vec<u64> = (0..n).map(|_| next() % cardinality).collect();
            if k == 0 {
                c0 = values.clone();
            }
            columns.push((
                format!("c{k}"),
                Arc::new(StringArray::from_iter_values(
                    values.iter().map(|v| format!("v{v}")),
                )),
            ));
        }
        let plan: DictionaryArray<Int32Type> =
            (0..n).map(|_| plans[(next() % 5) as usize]).collect();
        columns.push(("c4".into(), Arc::new(plan)));
        let mut x0 = Vec::with_capacity(n);
        for j in 0..10 {
            let values: Vec<f32> = (0..n)
                .map(|_| (next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0)
                .collect();
            if j == 0 {
                x0 = values.clone();
            }
            columns.push((format!("x{j}"), Arc::new(Float32Array::from(values))));
        }
        let label: Vec<f32> = x0
            .iter()
            .zip(&c0)
            .map(|(x, c)| f32::from(u8::from(x + (*c as f32 - 4.5) / 5.0 > 0.0)))
            .collect();
        columns.push(("label".into(), Arc::new(Float32Array::from(label))));
        let batch = RecordBatch::try_from_iter(columns).expect("a batch");
        let writer = writer.get_or_insert_with(|| {
            ArrowWriter::try_new(
                file.try_clone().expect("clone the file handle"),
                batch.schema(),
                Some(props.clone()),
            )
            .expect("a writer")
        });
        writer.write(&batch).expect("write a batch");
        start += n;
    }
    if let Some(writer) = writer {
        writer.close().expect("close the writer");
    }
}
