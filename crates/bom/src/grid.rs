//! The cells of one sheet or CSV file, held in one text buffer (no allocation per cell), with the
//! limits on rows, columns and cell size checked while they are read.

use std::ops::Range;

use crate::{BomError, Limits};

/// The non-blank rows of a file: each with its 1-based line (CSV) or row number (sheets).
#[derive(Debug, Default)]
pub(crate) struct Grid {
    text: String,
    cells: Vec<Range<usize>>,
    rows: Vec<GridRow>,
    /// The row being built: its line and where its cells start.
    open: Option<(usize, usize)>,
    max_rows: usize,
    max_columns: usize,
    max_cell_bytes: usize,
}

#[derive(Debug, Clone, Copy)]
struct GridRow {
    line: usize,
    start: usize,
    len: usize,
}

/// Rows read beyond `max_rows`, for the title rows above the header.
const HEADER_SLACK: usize = 64;

impl Grid {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_rows: limits.max_rows.saturating_add(HEADER_SLACK),
            max_columns: limits.max_columns,
            max_cell_bytes: limits.max_cell_bytes,
            ..Self::default()
        }
    }

    /// Starts a row at `line` (1-based); the previous one is closed.
    pub(crate) fn start_row(&mut self, line: usize) -> Result<(), BomError> {
        self.end_row();
        if self.rows.len() >= self.max_rows {
            return Err(BomError::TooManyRows {
                limit: self.max_rows.saturating_sub(HEADER_SLACK),
            });
        }
        self.open = Some((line, self.cells.len()));
        Ok(())
    }

    /// Adds a cell at 0-based `column` of the open row; blank columns in between are filled.
    /// Surrounding whitespace is trimmed.
    pub(crate) fn push_cell(&mut self, column: usize, value: &str) -> Result<(), BomError> {
        let Some((line, start)) = self.open else {
            return Ok(());
        };
        let value = value.trim();
        if value.len() > self.max_cell_bytes {
            return Err(BomError::CellTooLarge {
                line,
                column: column.saturating_add(1),
                limit: self.max_cell_bytes,
            });
        }
        if column >= self.max_columns {
            if value.is_empty() {
                return Ok(());
            }
            return Err(BomError::TooManyColumns {
                line,
                limit: self.max_columns,
            });
        }
        let have = self.cells.len().saturating_sub(start);
        if column < have {
            // A cell given twice (a hostile sheet): the first one wins.
            return Ok(());
        }
        let at = self.text.len();
        for _ in have..column {
            self.cells.push(at..at);
        }
        self.text.push_str(value);
        self.cells.push(at..self.text.len());
        Ok(())
    }

    /// Closes the open row; a row of blank cells is dropped.
    pub(crate) fn end_row(&mut self) {
        let Some((line, start)) = self.open.take() else {
            return;
        };
        let cells = self.cells.get(start..).unwrap_or_default();
        if cells.iter().all(|c| c.is_empty()) {
            if let Some(first) = cells.first() {
                self.text.truncate(first.start);
            }
            self.cells.truncate(start);
            return;
        }
        // Trailing blank cells are not kept.
        let len = cells
            .iter()
            .rposition(|c| !c.is_empty())
            .map_or(0, |i| i.saturating_add(1));
        self.cells.truncate(start.saturating_add(len));
        self.rows.push(GridRow { line, start, len });
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// The 1-based line of row `index`.
    pub(crate) fn line(&self, index: usize) -> usize {
        self.rows.get(index).map_or(0, |r| r.line)
    }

    /// The cell at `column` of row `index`, `""` when blank or absent.
    pub(crate) fn cell(&self, index: usize, column: usize) -> &str {
        let Some(row) = self.rows.get(index) else {
            return "";
        };
        if column >= row.len {
            return "";
        }
        self.cells
            .get(row.start.saturating_add(column))
            .and_then(|r| self.text.get(r.clone()))
            .unwrap_or("")
    }

    /// How many cells row `index` has (up to its last non-blank one).
    pub(crate) fn width(&self, index: usize) -> usize {
        self.rows.get(index).map_or(0, |r| r.len)
    }

    /// The cells of row `index`.
    pub(crate) fn row(&self, index: usize) -> impl Iterator<Item = &str> {
        (0..self.width(index)).map(move |c| self.cell(index, c))
    }

    /// The index of the row at `line`, if it is not blank.
    pub(crate) fn index_of_line(&self, line: usize) -> Option<usize> {
        self.rows.binary_search_by_key(&line, |r| r.line).ok()
    }
}
