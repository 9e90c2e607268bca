//! CSV files: the encoding (byte-order marks, UTF-8, else Windows-1252) and the delimiter
//! (`,`, `;` or tab) are sniffed, then the records are read into a [`Grid`].

use std::borrow::Cow;

use crate::grid::Grid;
use crate::profile::Encoding;
use crate::{BomError, Limits};

/// Decodes `bytes` to text: `encoding` when given, else from the byte-order mark, else UTF-8
/// when the bytes are valid UTF-8, else Windows-1252. A byte-order mark is never part of the text.
pub(crate) fn decode(bytes: &[u8], encoding: Option<Encoding>) -> (Cow<'_, str>, Encoding) {
    let (bom, body) = match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => (Some(Encoding::Utf8), rest),
        [0xFF, 0xFE, rest @ ..] => (Some(Encoding::Utf16Le), rest),
        [0xFE, 0xFF, rest @ ..] => (Some(Encoding::Utf16Be), rest),
        _ => (None, bytes),
    };
    let encoding = match (encoding, bom) {
        (Some(given), Some(found)) if given == found => found,
        // A given encoding that disagrees with the mark: the mark is kept as text.
        (Some(given), Some(_)) => return decode_as(bytes, given),
        (Some(given), None) => given,
        (None, Some(found)) => found,
        (None, None) => {
            if std::str::from_utf8(bytes).is_ok() {
                Encoding::Utf8
            } else {
                Encoding::Windows1252
            }
        }
    };
    decode_as(body, encoding)
}

fn decode_as(bytes: &[u8], encoding: Encoding) -> (Cow<'_, str>, Encoding) {
    let (text, _had_errors) = encoding.encoding().decode_without_bom_handling(bytes);
    (text, encoding)
}

const CANDIDATES: [u8; 3] = [b',', b';', b'\t'];
/// Records looked at to sniff the delimiter.
const SNIFF_RECORDS: usize = 30;

/// The delimiter that splits the first records into the most rows of one width: for each
/// candidate, the most common field count `m` (over 1) and how many records have it, `f`;
/// the score is `f × (m − 1)`. Ties go to `,`, then `;`, then tab.
pub(crate) fn sniff_delimiter(text: &str) -> u8 {
    let mut best = (0usize, b',');
    for &delimiter in &CANDIDATES {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(delimiter)
            .from_reader(text.as_bytes());
        let mut counts: Vec<(usize, usize)> = Vec::new();
        let mut record = csv::ByteRecord::new();
        for _ in 0..SNIFF_RECORDS {
            match reader.read_byte_record(&mut record) {
                Ok(true) => {}
                _ => break,
            }
            if record.iter().all(|f| f.iter().all(u8::is_ascii_whitespace)) {
                continue;
            }
            let n = record.len();
            match counts.iter_mut().find(|(width, _)| *width == n) {
                Some((_, seen)) => *seen = seen.saturating_add(1),
                None => counts.push((n, 1)),
            }
        }
        let (width, seen) = counts
            .iter()
            .copied()
            .max_by_key(|&(width, seen)| (seen, width))
            .unwrap_or((0, 0));
        let score = seen.saturating_mul(width.saturating_sub(1));
        if score > best.0 {
            best = (score, delimiter);
        }
    }
    best.1
}

/// Reads the records of `text` into a grid; each row's line is the line its record starts on.
pub(crate) fn read_records(text: &str, delimiter: u8, limits: &Limits) -> Result<Grid, BomError> {
    let mut grid = Grid::new(limits);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter)
        .from_reader(text.as_bytes());
    let mut record = csv::ByteRecord::new();
    let bytes = text.as_bytes();
    let mut counted = 0usize;
    let mut line_before = 0usize;
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                return Err(BomError::Csv {
                    line: usize::try_from(line).unwrap_or(usize::MAX),
                });
            }
        }
        // The line the record starts on, counted from its byte offset (the csv crate's own line
        // count lags by one after a CRLF).
        let mut start = record
            .position()
            .map_or(0, |p| usize::try_from(p.byte()).unwrap_or(usize::MAX))
            .min(bytes.len());
        while matches!(bytes.get(start), Some(b'\r' | b'\n')) {
            start = start.saturating_add(1);
        }
        if start > counted {
            // A line ends with LF, CRLF, or a lone CR (old Mac files).
            let newlines = bytes.get(counted..start).map_or(0, |b| {
                let lone_cr =
                    |i: usize, c: u8| c == b'\r' && bytes.get(counted + i + 1) != Some(&b'\n');
                b.iter()
                    .enumerate()
                    .filter(|&(i, &c)| c == b'\n' || lone_cr(i, c))
                    .count()
            });
            line_before = line_before.saturating_add(newlines);
            counted = start;
        }
        let line = line_before.saturating_add(1);
        grid.start_row(line)?;
        for (column, field) in record.iter().enumerate() {
            // The text was decoded to UTF-8 and the delimiters are ASCII, so every field is UTF-8.
            let field = std::str::from_utf8(field).map_err(|_| BomError::Csv { line })?;
            grid.push_cell(column, field)?;
        }
    }
    grid.end_row();
    Ok(grid)
}

/// The delimiter byte for a profile's character, if it is one we read.
pub(crate) fn delimiter_byte(c: char) -> Result<u8, BomError> {
    match c {
        ',' => Ok(b','),
        ';' => Ok(b';'),
        '\t' => Ok(b'\t'),
        '|' => Ok(b'|'),
        _ => Err(BomError::InvalidProfile {
            reason: "the delimiter must be `,`, `;`, `|` or a tab".into(),
        }),
    }
}
