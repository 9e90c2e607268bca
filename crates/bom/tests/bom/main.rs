//! lockstep-bom's tests: the real exports in `shared/testdata/bom` (read where they are, never
//! copied), small hand-made inputs for encodings, delimiters and each row error, hostile input,
//! part totals and comparisons.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod compare;
mod encodings;
mod files;
mod hostile;
mod issues;
mod profiles;
mod totals;

use std::path::PathBuf;

use lockstep_bom::{Bom, BomRow, ReadOptions, read};

/// `shared/testdata/bom`, beside the repository (or under `LOCKSTEP_TESTDATA`).
pub fn testdata() -> PathBuf {
    match std::env::var_os("LOCKSTEP_TESTDATA") {
        Some(dir) => PathBuf::from(dir).join("bom"),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/testdata/bom"),
    }
}

/// Reads one test file with the default options.
pub fn read_file(relative: &str) -> Bom {
    read_file_with(relative, &ReadOptions::default())
}

pub fn read_file_with(relative: &str, options: &ReadOptions) -> Bom {
    let path = testdata().join(relative);
    let bytes =
        std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    read(&bytes, name, options).unwrap_or_else(|e| panic!("{relative}: {e}"))
}

/// Reads in-test bytes as a CSV file.
pub fn read_csv(bytes: &[u8]) -> Bom {
    read(bytes, "test.csv", &ReadOptions::default()).unwrap_or_else(|e| panic!("{e}"))
}

/// The row at `path` (`2.17.1`).
pub fn at<'a>(bom: &'a Bom, path: &str) -> &'a BomRow {
    bom.rows
        .iter()
        .find(|r| r.path == path)
        .unwrap_or_else(|| panic!("no row at {path}"))
}

/// The first row of part `part`.
pub fn part<'a>(bom: &'a Bom, part: &str) -> &'a BomRow {
    bom.rows
        .iter()
        .find(|r| r.part_number == part)
        .unwrap_or_else(|| panic!("no row of part {part}"))
}

pub fn max_depth(bom: &Bom) -> u32 {
    bom.rows.iter().map(|r| r.depth).max().unwrap_or(0)
}

/// `"8"`, `"0.25"` as a decimal.
pub fn dec(s: &str) -> lockstep_bom::Decimal {
    s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// The messages of a row's issues.
pub fn messages(row: &BomRow) -> Vec<&str> {
    row.issues.iter().map(|i| i.message.as_str()).collect()
}
