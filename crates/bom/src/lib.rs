//! Reads the bill-of-materials exports people really have into a tree, rolls up part totals and
//! compares two BOMs. Bytes in, a [`Bom`] out: no IO, no async, no clock.
//!
//! # What it reads
//! - **CSV**: UTF-8 with or without a byte-order mark, UTF-16 LE/BE with a byte-order mark,
//!   Windows-1252 when the bytes are not valid UTF-8 (SOLIDWORKS' `°`); the delimiter (`,`, `;`
//!   or tab) is sniffed from the first records.
//! - **XLSX** and **XLS** through calamine; the sheet is picked by name, by default the first.
//!
//! The format comes from the file name's extension, else from the magic bytes (`PK` → XLSX,
//! `D0 CF 11 E0` → XLS, anything else → CSV).
//!
//! # The import profile
//! Title rows above the header (`$PRPSHEET:…`, an assembly number alone) are skipped: the header
//! is the first row, within the first 30, where at least two cells are column names we know,
//! in English and in the tools' other languages (`ITEM NO.`, `Level`/`NIVEL`, `CODIGO_PAI`,
//! `PART NUMBER`/`Item`/`CODIGO`, `DESCRIPTION`/`DESCRICAO`, `QTY.`/`Qty Per`/`QTD_NIVEL`,
//! `U/M`/`UNIDADE`…), matched without regard to case, accents, punctuation and surrounding
//! spaces. Every other column is kept as a property. What was detected is an [`ImportProfile`]
//! (serde, JSON-friendly) that the hub shows and an Administrator corrects; reading with a given
//! profile uses it instead of detecting, and a column it names that the file lacks is an error.
//!
//! The tree comes from dotted item numbers (`2.17.1` under `2.17`), a level column (0- or
//! 1-based, numbers or text such as `'1'`), a parent part-number column (TOTVS `CODIGO_PAI`), or
//! none ([`Hierarchy`]). Each file's rows are kept as they are: a SOLIDWORKS indented BOM has no
//! row for the assembly itself (its top-level rows are depth 0), a SyteLine or TOTVS export's
//! level-0 row is the assembly. [`Bom::root`] names the assembly either way, so two BOMs of the
//! same product compare line by line.
//!
//! # Row errors
//! A row that is wrong is kept, with [`RowIssue`]s saying what is wrong: a blank part number, a
//! quantity that is not a number, a parent that is missing (dotted `3.2` without `3`, a level
//! that jumps by more than one, a parent code not found above the row), the same part twice
//! under one parent, a row with no item number in a dotted BOM (kept at the top level, since
//! its place in the tree is unknown). A gap in the numbering (`2.1`, `2.3`) is fine.
//!
//! # Limits
//! Hostile input never panics, hangs or exhausts memory: [`Limits`] caps the rows, the columns,
//! the bytes of one cell, the depth of the tree and the bytes an XLSX inflates to (checked
//! before calamine opens it). [`BomError`] messages name columns, lines and limits, never the
//! contents of a cell.

mod build;
mod compare;
mod grid;
mod profile;
mod rollup;
mod text;
mod workbook;
mod xls_guard;

pub use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

pub use compare::{Change, Comparison, LineComparison, LineStatus, Matching, compare};
pub use profile::{ColumnRole, Encoding, Format, Hierarchy, ImportProfile, Role};
pub use rollup::{Node, PartTotal, children_of, parts, tree};

/// Bounds on what one read may take; the defaults suit the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Data rows (after the header).
    pub max_rows: usize,
    /// Columns; blank cells beyond the limit are ignored, a non-blank one is an error.
    pub max_columns: usize,
    /// Bytes of one cell, after trimming.
    pub max_cell_bytes: usize,
    /// Depth of the tree (0 = top level); a deeper row is an error on that row.
    pub max_depth: u32,
    /// Bytes all the entries of an XLSX archive inflate to.
    pub max_uncompressed_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_rows: 1_000_000,
            max_columns: 512,
            max_cell_bytes: 32 * 1024,
            max_depth: 64,
            max_uncompressed_bytes: 256 * 1024 * 1024,
        }
    }
}

/// How to read one file.
#[derive(Debug, Clone, Default)]
pub struct ReadOptions {
    /// The worksheet to read (XLSX/XLS); overrides the profile's. `None`: the profile's, else
    /// the first.
    pub sheet: Option<String>,
    /// A saved profile to read with instead of detecting one.
    pub profile: Option<ImportProfile>,
    /// The part number of the assembly this BOM describes, when the caller knows it.
    pub root_part: Option<String>,
    /// Size bounds.
    pub limits: Limits,
}

/// Where [`Bom::root`] came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RootSource {
    /// [`ReadOptions::root_part`].
    Option,
    /// The file's one top-level row, which is the assembly (SyteLine, TOTVS).
    Row,
    /// The file name's stem before the first `_` (`ACV0158450_sw.csv`).
    FileName,
    /// A title row above the header holding a part number alone.
    TitleRow,
}

/// The assembly a BOM describes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RootPart {
    /// Its part number.
    pub part_number: String,
    /// Where it came from.
    pub source: RootSource,
    /// The row that is the assembly, when the file has one.
    pub row: Option<usize>,
}

/// How bad a row issue is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The row cannot be used as it is.
    Error,
    /// The row is usable; a person should look at it.
    Warning,
}

/// What is wrong with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowIssue {
    /// The column the issue is about, as the header names it.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
    /// Error or warning.
    pub severity: Severity,
}

/// One row of a BOM.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BomRow {
    /// Its index in [`Bom::rows`].
    pub row: usize,
    /// Its 1-based line (CSV) or row number (sheets) in the file.
    pub line: usize,
    /// Its place in the tree: the dotted item number (`2.17.1`) for dotted BOMs; for level and
    /// parent hierarchies, a path of 1-based sibling orders (`1.2.1`); `?<line>` for a row of a
    /// dotted BOM without an item number.
    pub path: String,
    /// The parent row, `None` at the top level.
    pub parent_row: Option<usize>,
    /// 0 = top level. For a level hierarchy, the level the file gives minus the base.
    pub depth: u32,
    /// The item number as written (whole numbers a spreadsheet made floats read back as such).
    pub position: Option<String>,
    /// The part number, trimmed; `""` when blank (then an issue says so).
    pub part_number: String,
    /// The description.
    pub description: Option<String>,
    /// The quantity per parent; `None` when the file has no quantity column or it is not a
    /// number (then an issue says so).
    pub quantity: Option<Decimal>,
    /// The unit of measure.
    pub unit: Option<String>,
    /// The other columns' non-blank values, in column order.
    pub properties: Vec<(String, String)>,
    /// What is wrong with the row; empty when nothing is.
    pub issues: Vec<RowIssue>,
}

impl BomRow {
    /// Whether an issue of severity [`Severity::Error`] is on this row.
    pub fn has_errors(&self) -> bool {
        self.issues.iter().any(|i| i.severity == Severity::Error)
    }

    /// The value of the property `name` (as the header names it).
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A BOM read from one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bom {
    /// How it was read: detected, or the one given.
    pub profile: ImportProfile,
    /// The workbook's sheet names (empty for CSV).
    pub sheets: Vec<String>,
    /// The assembly it describes, when known.
    pub root: Option<RootPart>,
    /// The rows, in file order.
    pub rows: Vec<BomRow>,
    /// Lines below the header that are not BOM rows and were left out: a section title such as
    /// SyteLine's `Group Item: …` (one cell, no part number, no quantity).
    pub skipped_lines: Vec<usize>,
}

/// Why a file could not be read at all. Messages name columns, lines and limits, never cell
/// contents.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BomError {
    /// The file holds no rows.
    #[error("the file is empty")]
    Empty,
    /// No header row was found.
    #[error(
        "no header row found in the first {searched} rows: expected column names such as ITEM NO., PART NUMBER, QTY."
    )]
    NoHeader {
        /// Rows searched.
        searched: usize,
    },
    /// The header has no part-number column.
    #[error("the header on line {line} has no part number column")]
    NoPartNumberColumn {
        /// The header's line.
        line: usize,
    },
    /// A column the profile names is not in the file.
    #[error("the column \"{column}\" of the import profile is not in the file's header")]
    MissingColumn {
        /// The column's name.
        column: String,
    },
    /// The profile cannot be used.
    #[error("the import profile cannot be used: {reason}")]
    InvalidProfile {
        /// Why.
        reason: String,
    },
    /// The sheet asked for is not in the workbook.
    #[error("the workbook has no sheet named \"{sheet}\"")]
    SheetNotFound {
        /// The sheet asked for.
        sheet: String,
    },
    /// The file is not a readable CSV.
    #[error("the CSV cannot be read at line {line}")]
    Csv {
        /// Where.
        line: usize,
    },
    /// The workbook cannot be read.
    #[error("the {format} file cannot be read: {reason}")]
    Unreadable {
        /// `xlsx` or `xls`.
        format: &'static str,
        /// Why.
        reason: String,
    },
    /// An XLSX inflates to more than the limit.
    #[error("the workbook inflates to more than {limit} bytes")]
    TooLarge {
        /// [`Limits::max_uncompressed_bytes`].
        limit: u64,
    },
    /// An XLS whose sheets span more cells than can be held.
    #[error("the workbook's sheets span more than {limit} cells")]
    TooManyCells {
        /// The budget.
        limit: u64,
    },
    /// More rows than the limit.
    #[error("the file has more than {limit} rows")]
    TooManyRows {
        /// [`Limits::max_rows`].
        limit: usize,
    },
    /// A non-blank cell beyond the column limit.
    #[error("line {line} has more than {limit} columns")]
    TooManyColumns {
        /// Where.
        line: usize,
        /// [`Limits::max_columns`].
        limit: usize,
    },
    /// A cell larger than the limit.
    #[error("the cell in column {column} of line {line} is larger than {limit} bytes")]
    CellTooLarge {
        /// Where.
        line: usize,
        /// 1-based column.
        column: usize,
        /// [`Limits::max_cell_bytes`].
        limit: usize,
    },
}

/// The format for a file: from its name's extension, else from its first bytes.
pub fn detect_format(bytes: &[u8], file_name: &str) -> Format {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "csv" | "txt" | "tsv" => Format::Csv,
        "xlsx" | "xlsm" => Format::Xlsx,
        "xls" => Format::Xls,
        _ => match bytes {
            [b'P', b'K', ..] => Format::Xlsx,
            [0xD0, 0xCF, 0x11, 0xE0, ..] => Format::Xls,
            _ => Format::Csv,
        },
    }
}

/// Reads a BOM export: `bytes` is the whole file, `file_name` its name (for the format and the
/// assembly's part number). Row-level problems are [`RowIssue`]s on the rows; an error means
/// nothing usable could be read.
pub fn read(bytes: &[u8], file_name: &str, options: &ReadOptions) -> Result<Bom, BomError> {
    let given = options.profile.as_ref();
    let format = given.map_or_else(|| detect_format(bytes, file_name), |p| p.format);
    let sheet = options
        .sheet
        .as_deref()
        .or_else(|| given.and_then(|p| p.sheet.as_deref()));
    let limits = &options.limits;
    let source = match format {
        Format::Csv => {
            let (text, encoding) = text::decode(bytes, given.and_then(|p| p.encoding));
            let delimiter = match given.and_then(|p| p.delimiter) {
                Some(c) => text::delimiter_byte(c)?,
                None => text::sniff_delimiter(&text),
            };
            let grid = text::read_records(&text, delimiter, limits)?;
            build::Source {
                format,
                grid,
                sheets: Vec::new(),
                sheet: None,
                delimiter: Some(char::from(delimiter)),
                encoding: Some(encoding),
            }
        }
        Format::Xlsx | Format::Xls => {
            let read = if format == Format::Xlsx {
                workbook::read_xlsx(bytes, sheet, limits)?
            } else {
                workbook::read_xls(bytes, sheet, limits)?
            };
            build::Source {
                format,
                grid: read.grid,
                sheets: read.names,
                sheet: Some(read.name),
                delimiter: None,
                encoding: None,
            }
        }
    };
    build::build(source, file_name, options)
}
