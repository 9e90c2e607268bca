//! XLSX and XLS workbooks, read with calamine into a [`Grid`]. An XLSX is a ZIP archive: its
//! entries are measured (declared and real uncompressed sizes) before calamine opens it, so a
//! zip bomb is refused instead of inflated, and its worksheet is streamed cell by cell, so a
//! cell placed at the last row and column of a sheet costs nothing.

use std::fmt::Write as _;
use std::io::{Cursor, Read};

use calamine::{Data, DataRef, Reader, Xls, Xlsx};

use crate::grid::Grid;
use crate::{BomError, Limits};

/// Entries an XLSX may hold.
const MAX_ZIP_ENTRIES: usize = 10_000;

/// Refuses an archive whose entries inflate to more than `limits.max_uncompressed_bytes`, by the
/// sizes its directory declares and by the bytes they really inflate to (a declared size can lie).
pub(crate) fn check_zip(bytes: &[u8], limits: &Limits) -> Result<(), BomError> {
    let limit = limits.max_uncompressed_bytes;
    let mut archive =
        zip::ZipArchive::new(Cursor::new(bytes)).map_err(|_| BomError::Unreadable {
            format: "xlsx",
            reason: "not a valid ZIP archive".into(),
        })?;
    if archive.len() > MAX_ZIP_ENTRIES {
        return Err(BomError::Unreadable {
            format: "xlsx",
            reason: format!("the archive holds more than {MAX_ZIP_ENTRIES} entries"),
        });
    }
    let mut declared: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(|_| BomError::Unreadable {
            format: "xlsx",
            reason: "a ZIP entry cannot be read".into(),
        })?;
        declared = declared.saturating_add(entry.size());
        if declared > limit {
            return Err(BomError::TooLarge { limit });
        }
    }
    let mut inflated: u64 = 0;
    let mut buf = vec![0u8; 64 * 1024];
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).map_err(|_| BomError::Unreadable {
            format: "xlsx",
            reason: "a ZIP entry cannot be read".into(),
        })?;
        // An entry whose name cannot be decoded is scanned too.
        let shared_strings = match entry.name() {
            Ok(name) => name.to_ascii_lowercase().ends_with("sharedstrings.xml"),
            Err(_) => true,
        };
        let mut counts = CountScan::default();
        let mut size: u64 = 0;
        loop {
            let n = entry.read(&mut buf).map_err(|_| BomError::Unreadable {
                format: "xlsx",
                reason: "a ZIP entry cannot be inflated".into(),
            })?;
            if n == 0 {
                break;
            }
            inflated = inflated.saturating_add(n as u64);
            size = size.saturating_add(n as u64);
            if inflated > limit {
                return Err(BomError::TooLarge { limit });
            }
            if shared_strings {
                counts.feed(buf.get(..n).unwrap_or_default());
            }
        }
        // Calamine reserves room for a shared-string table's declared `uniqueCount` before
        // reading it: a count the entry cannot hold (an entry takes at least 4 bytes, `<si/>`)
        // is a lie that would cost terabytes.
        if counts.max > size / 4 {
            return Err(BomError::Unreadable {
                format: "xlsx",
                reason: "the shared strings declare more entries than they hold".into(),
            });
        }
    }
    Ok(())
}

/// Finds `uniqueCount="N"` in a stream of chunks and keeps the largest N.
#[derive(Debug, Default)]
struct CountScan {
    /// The end of the previous chunk, for a match split across two chunks.
    carry: Vec<u8>,
    max: u64,
}

impl CountScan {
    const NEEDLE: &'static [u8] = b"uniqueCount=";
    /// Enough for the needle, a quote and the digits of any `u64`.
    const CARRY: usize = 40;

    fn feed(&mut self, chunk: &[u8]) {
        let mut window = std::mem::take(&mut self.carry);
        window.extend_from_slice(chunk);
        let mut from = 0;
        while let Some(at) = window.get(from..).and_then(|w| {
            w.windows(Self::NEEDLE.len())
                .position(|x| x == Self::NEEDLE)
        }) {
            let start = from.saturating_add(at).saturating_add(Self::NEEDLE.len());
            let digits = window
                .get(start..)
                .unwrap_or_default()
                .iter()
                .skip_while(|b| matches!(b, b'"' | b'\'' | b' '))
                .take_while(|b| b.is_ascii_digit())
                .fold(0u64, |n, d| {
                    n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
                });
            self.max = self.max.max(digits);
            from = start;
        }
        let keep = window.len().saturating_sub(Self::CARRY);
        self.carry = window.split_off(keep);
    }
}

/// Writes a cell's value as text: whole numbers without a fraction (`545636.0` → `545636`),
/// other numbers in their shortest form that reads back the same.
fn write_float(out: &mut String, f: f64) {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15 {
        // Exact: |f| < 1e15 fits an i64 without loss.
        #[allow(clippy::cast_possible_truncation)]
        let i = f as i64;
        let _ = write!(out, "{i}");
    } else {
        let _ = write!(out, "{f}");
    }
}

fn write_data_ref(out: &mut String, value: &DataRef<'_>) {
    match value {
        DataRef::Int(i) => {
            let _ = write!(out, "{i}");
        }
        DataRef::Float(f) => write_float(out, *f),
        DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => out.push_str(s),
        DataRef::SharedString(s) => out.push_str(s),
        DataRef::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        DataRef::DateTime(d) => write_float(out, d.as_f64()),
        DataRef::Error(e) => {
            let _ = write!(out, "{e}");
        }
        DataRef::Empty => {}
    }
}

fn write_data(out: &mut String, value: &Data) {
    match value {
        Data::Int(i) => {
            let _ = write!(out, "{i}");
        }
        Data::Float(f) => write_float(out, *f),
        Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => out.push_str(s),
        Data::Bool(b) => out.push_str(if *b { "TRUE" } else { "FALSE" }),
        Data::DateTime(d) => write_float(out, d.as_f64()),
        Data::Error(e) => {
            let _ = write!(out, "{e}");
        }
        Data::Empty => {}
    }
}

/// The sheet to read: `wanted` by name (exact, else case-insensitive), else the first.
fn pick_sheet(names: &[String], wanted: Option<&str>) -> Result<String, BomError> {
    match wanted {
        Some(w) => names
            .iter()
            .find(|n| n.as_str() == w)
            .or_else(|| names.iter().find(|n| n.eq_ignore_ascii_case(w)))
            .cloned()
            .ok_or_else(|| BomError::SheetNotFound { sheet: w.into() }),
        None => names.first().cloned().ok_or(BomError::Empty),
    }
}

/// A workbook's sheet names and the cells of the chosen sheet.
pub(crate) struct Sheet {
    pub(crate) names: Vec<String>,
    pub(crate) name: String,
    pub(crate) grid: Grid,
}

pub(crate) fn read_xlsx(
    bytes: &[u8],
    sheet: Option<&str>,
    limits: &Limits,
) -> Result<Sheet, BomError> {
    check_zip(bytes, limits)?;
    // A panic inside calamine or quick-xml on a malformed workbook is a file we cannot read.
    std::panic::catch_unwind(|| stream_xlsx(bytes, sheet, limits)).map_err(|_| {
        BomError::Unreadable {
            format: "xlsx",
            reason: "the workbook is malformed".into(),
        }
    })?
}

fn stream_xlsx(bytes: &[u8], sheet: Option<&str>, limits: &Limits) -> Result<Sheet, BomError> {
    let unreadable = |_| BomError::Unreadable {
        format: "xlsx",
        reason: "calamine cannot open the workbook".into(),
    };
    let mut book: Xlsx<_> = Xlsx::new(Cursor::new(bytes)).map_err(unreadable)?;
    let names = book.sheet_names();
    let name = pick_sheet(&names, sheet)?;
    let mut reader = book
        .worksheet_cells_reader(&name)
        .map_err(|_| BomError::Unreadable {
            format: "xlsx",
            reason: "the worksheet cannot be read".into(),
        })?;
    let mut grid = Grid::new(limits);
    let mut scratch = String::new();
    let mut last: Option<(u32, u32)> = None;
    loop {
        let cell = reader.next_cell().map_err(|_| BomError::Unreadable {
            format: "xlsx",
            reason: "the worksheet's XML is malformed".into(),
        })?;
        let Some(cell) = cell else { break };
        let (row, col) = cell.get_position();
        if last.is_some_and(|l| (row, col) <= l) {
            return Err(BomError::Unreadable {
                format: "xlsx",
                reason: "the worksheet's cells are out of order".into(),
            });
        }
        if last.is_none_or(|(r, _)| r != row) {
            grid.start_row(usize::try_from(row).unwrap_or(usize::MAX).saturating_add(1))?;
        }
        last = Some((row, col));
        scratch.clear();
        write_data_ref(&mut scratch, cell.get_value());
        grid.push_cell(usize::try_from(col).unwrap_or(usize::MAX), &scratch)?;
    }
    grid.end_row();
    Ok(Sheet { names, name, grid })
}

pub(crate) fn read_xls(
    bytes: &[u8],
    sheet: Option<&str>,
    limits: &Limits,
) -> Result<Sheet, BomError> {
    let repacked = crate::xls_guard::check_xls(bytes)?;
    let unreadable = |reason: &str| BomError::Unreadable {
        format: "xls",
        reason: reason.into(),
    };
    // Calamine has panicked on malformed XLS records before: a panic is a file we cannot read.
    let opened = std::panic::catch_unwind(|| {
        let mut book: Xls<_> = Xls::new(Cursor::new(repacked.as_slice())).ok()?;
        let names = book.sheet_names();
        let range =
            pick_sheet(&names, sheet).map(|name| book.worksheet_range(&name).map(|r| (name, r)));
        Some((names, range))
    })
    .map_err(|_| unreadable("the workbook is malformed"))?;
    let (names, range) = opened.ok_or_else(|| unreadable("calamine cannot open the workbook"))?;
    let (name, range) = range?.map_err(|_| unreadable("the worksheet cannot be read"))?;
    let mut grid = Grid::new(limits);
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let first_row = usize::try_from(first_row).unwrap_or(usize::MAX);
    let first_col = usize::try_from(first_col).unwrap_or(usize::MAX);
    let mut scratch = String::new();
    for (i, cells) in range.rows().enumerate() {
        grid.start_row(first_row.saturating_add(i).saturating_add(1))?;
        for (j, value) in cells.iter().enumerate() {
            scratch.clear();
            write_data(&mut scratch, value);
            grid.push_cell(first_col.saturating_add(j), &scratch)?;
        }
    }
    grid.end_row();
    Ok(Sheet { names, name, grid })
}
