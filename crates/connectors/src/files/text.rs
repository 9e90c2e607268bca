//! A file's text: its encoding and (for CSV) its delimiter, set per file or detected per file,
//! the bytes decoded to UTF-8 (with `encoding_rs`) as they stream, and an unclosed quote found.
//!
//! Detection looks at the first [`SNIFF_BYTES`] only, so discovery, samples, pipelines and the
//! upload check all read a file the same way:
//! - encoding: a byte order mark (UTF-8, UTF-16 LE or BE) decides (but a UTF-8 mark before
//!   bytes that are not UTF-8 is dropped and the text read as Windows-1252); else a file whose
//!   first bytes hold a NUL is not text (a spreadsheet or another binary file); else UTF-8 when
//!   those bytes are valid UTF-8, Windows-1252 when they are not. Bytes further on that are not
//!   valid in the encoding end the read with an error naming the line.
//! - delimiter: each of `,` `;` tab and `|` splits the first [`SNIFF_RECORDS`] records with the
//!   CSV parser itself (so quoted delimiters do not count); the one giving the same number of
//!   fields (two or more) to the largest share of the records wins, then the one giving more
//!   fields, then the earlier in that list. None gives two fields: a comma (one column).

use super::config::FileSettings;
use crate::{ConnectorError, FailureKind, FileLayout};
use encoding_rs::{Decoder, DecoderResult, Encoding, UTF_8, WINDOWS_1252};
use std::io::{self, Chain, Cursor, Read};

/// The first bytes of a file that decide its encoding.
pub(crate) const SNIFF_BYTES: usize = 1024 * 1024;
/// The records that decide a CSV file's delimiter.
const SNIFF_RECORDS: usize = 100;
/// At most this much decoded text of the first bytes is split to find the delimiter.
const SNIFF_TEXT_BYTES: usize = 64 * 1024;
/// The delimiters detected, in order of preference.
const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";
/// Decoding buffers.
const BUFFER: usize = 32 * 1024;

/// A problem with a file's text, carried through the CSV and JSON readers as an I/O error's
/// inner error, so that the message names the file's line. Never holds the text.
#[derive(Debug)]
pub(crate) enum TextProblem {
    /// Bytes that are not valid in the encoding the file is read with.
    Malformed {
        line: u64,
        encoding: &'static Encoding,
        /// The encoding was detected (not set).
        detected: bool,
    },
    /// A field opened with a quote that the file never closes.
    UnclosedQuote { line: u64 },
}

impl std::fmt::Display for TextProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TextProblem::Malformed {
                line,
                encoding,
                detected: true,
            } if *encoding == UTF_8 => write!(
                f,
                "line {line}: not UTF-8, though the first {} MiB were (so it is read as \
                 UTF-8); set the file's encoding (csv.files), e.g. to windows-1252",
                SNIFF_BYTES / 1024 / 1024
            ),
            TextProblem::Malformed { line, encoding, .. } => {
                write!(f, "line {line}: not valid {}", encoding.name())
            }
            TextProblem::UnclosedQuote { line } => write!(
                f,
                "line {line}: unclosed quote (the quoted field that starts there never ends)"
            ),
        }
    }
}

impl std::error::Error for TextProblem {}

/// The problem a reader's I/O error carries, if it is one of ours.
pub(crate) fn problem(err: &io::Error) -> Option<&TextProblem> {
    err.get_ref()
        .and_then(|inner| inner.downcast_ref::<TextProblem>())
}

/// The first bytes held back for detection, then the rest of the file.
pub(crate) type Rest<R> = Chain<Cursor<Vec<u8>>, R>;

/// A file opened as text: decoded to UTF-8 as it is read.
pub(crate) struct Text<R> {
    pub(crate) reader: Decoded<Rest<R>>,
    pub(crate) encoding: &'static Encoding,
    /// The decoded start of the file (at most [`SNIFF_TEXT_BYTES`]), for the delimiter.
    head: String,
    /// `head` is not the whole file.
    head_cut: bool,
}

/// Reads the first bytes of `input` and decides its encoding.
pub(crate) fn open<R: Read>(
    name: &str,
    mut input: R,
    settings: &FileSettings,
) -> Result<Text<R>, ConnectorError> {
    let mut first = Vec::new();
    input
        .by_ref()
        .take(SNIFF_BYTES as u64)
        .read_to_end(&mut first)
        .map_err(|err| super::io_error(name, &err))?;
    let whole = first.len() < SNIFF_BYTES;
    let (encoding, detected) = match settings.encoding {
        Some(encoding) => (encoding, false),
        None => (
            detect(&first, whole).map_err(|why| {
                ConnectorError::failed(FailureKind::Protocol, format!("{name}: {why}"))
            })?,
            true,
        ),
    };
    // A UTF-8 byte order mark is no text in another encoding that reads ASCII as ASCII.
    if encoding != UTF_8 && encoding.is_ascii_compatible() && first.starts_with(UTF8_BOM) {
        first.drain(..UTF8_BOM.len());
    }
    // The head for the delimiter: enough bytes for SNIFF_TEXT_BYTES of text in any encoding.
    let head_bytes = first.get(..SNIFF_TEXT_BYTES * 2).unwrap_or(&first);
    let (head, _) = encoding.decode_with_bom_removal(head_bytes);
    let mut head = head.into_owned();
    let mut head_cut = !whole || head_bytes.len() < first.len();
    if head.len() > SNIFF_TEXT_BYTES {
        let mut end = SNIFF_TEXT_BYTES;
        while !head.is_char_boundary(end) {
            end -= 1;
        }
        head.truncate(end);
        head_cut = true;
    }
    let reader = Decoded {
        inner: Cursor::new(first).chain(input),
        decoder: encoding.new_decoder_with_bom_removal(),
        encoding,
        detected,
        raw: vec![0; BUFFER],
        raw_at: 0,
        raw_end: 0,
        eof: false,
        finished: false,
        out: vec![0; BUFFER],
        out_at: 0,
        out_end: 0,
        lines: 0,
        failed: None,
    };
    Ok(Text {
        reader,
        encoding,
        head,
        head_cut,
    })
}

/// The encoding of a file that starts with `first` (`whole`: that is all of it), or why it is not
/// text.
fn detect(first: &[u8], whole: bool) -> Result<&'static Encoding, &'static str> {
    if let Some((encoding, bom)) = Encoding::for_bom(first) {
        // A UTF-8 byte order mark before text that is not UTF-8 (some tools write one before
        // Windows-1252 text).
        let rest = first.get(bom..).unwrap_or_default();
        if encoding == UTF_8 && !looks_utf8(rest, whole) {
            return Ok(WINDOWS_1252);
        }
        return Ok(encoding);
    }
    if first.starts_with(b"PK\x03\x04") {
        return Err(
            "not a text file: a ZIP archive, such as an Excel workbook (.xlsx); \
                    save it as CSV",
        );
    }
    if first.starts_with(b"\xD0\xCF\x11\xE0") {
        return Err("not a text file: an Excel 97-2003 workbook (.xls); save it as CSV");
    }
    if first.contains(&0) {
        return Err(
            "not a text file (it holds NUL bytes); a UTF-16 file without a byte order \
                    mark needs its encoding set (csv.files)",
        );
    }
    if looks_utf8(first, whole) {
        Ok(UTF_8)
    } else {
        Ok(WINDOWS_1252)
    }
}

/// `bytes` are valid UTF-8, but for a character cut at the end when they are not `whole`.
fn looks_utf8(bytes: &[u8], whole: bool) -> bool {
    match std::str::from_utf8(bytes) {
        Ok(_) => true,
        Err(err) => err.error_len().is_none() && !whole,
    }
}

impl<R: Read> Text<R> {
    /// The delimiter set, or the one detected.
    fn delimiter(&self, settings: &FileSettings) -> u8 {
        settings
            .delimiter
            .or_else(|| sniff_delimiter(&self.head, self.head_cut))
            .unwrap_or(b',')
    }

    /// A CSV reader over the decoded text, and how the file is read.
    pub(crate) fn csv(
        self,
        settings: &FileSettings,
    ) -> (csv::Reader<QuoteCheck<Decoded<Rest<R>>>>, FileLayout) {
        let delimiter = self.delimiter(settings);
        let layout = FileLayout {
            encoding: self.encoding.name().to_owned(),
            delimiter: Some(char::from(delimiter).to_string()),
        };
        let reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(settings.header)
            .from_reader(QuoteCheck::new(self.reader, delimiter));
        (reader, layout)
    }

    /// How a JSON file is read.
    pub(crate) fn layout(&self) -> FileLayout {
        FileLayout {
            encoding: self.encoding.name().to_owned(),
            delimiter: None,
        }
    }
}

/// The delimiter that splits the records of `text` most consistently (`cut`: the last line may
/// be incomplete); `None` when none gives two fields.
fn sniff_delimiter(text: &str, cut: bool) -> Option<u8> {
    // (records agreeing on the field count, records, field count, delimiter)
    let mut best: Option<(usize, usize, usize, u8)> = None;
    for delimiter in DELIMITERS {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        let mut counts: Vec<usize> = Vec::new();
        for record in reader.records().take(SNIFF_RECORDS + 1) {
            match record {
                Ok(record) => counts.push(record.len()),
                Err(_) => break,
            }
        }
        if cut || counts.len() > SNIFF_RECORDS {
            counts.pop();
        }
        let mut tally: std::collections::BTreeMap<usize, usize> = Default::default();
        for count in &counts {
            *tally.entry(*count).or_default() += 1;
        }
        // The most frequent count; of equally frequent ones, the larger.
        let Some((fields, agree)) = tally
            .into_iter()
            .max_by_key(|(fields, agree)| (*agree, *fields))
        else {
            continue;
        };
        if fields < 2 {
            continue;
        }
        let total = counts.len();
        let better = match best {
            None => true,
            Some((best_agree, best_total, best_fields, _)) => {
                // Compare agree/total with best_agree/best_total without division.
                let share = agree * best_total;
                let best_share = best_agree * total;
                share > best_share || (share == best_share && fields > best_fields)
            }
        };
        if better {
            best = Some((agree, total, fields, delimiter));
        }
    }
    best.map(|(_, _, _, delimiter)| delimiter)
}

/// A file's bytes decoded to UTF-8 as they are read. Bytes not valid in the encoding end the
/// read with a [`TextProblem::Malformed`] naming the line.
pub(crate) struct Decoded<R> {
    inner: R,
    decoder: Decoder,
    encoding: &'static Encoding,
    detected: bool,
    raw: Vec<u8>,
    raw_at: usize,
    raw_end: usize,
    /// `inner` has no more bytes.
    eof: bool,
    /// The decoder has been told so and has nothing more.
    finished: bool,
    out: Vec<u8>,
    out_at: usize,
    out_end: usize,
    /// Line breaks handed out so far.
    lines: u64,
    /// The line of the malformed bytes, once found.
    failed: Option<u64>,
}

fn count_lines(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|b| **b == b'\n').count() as u64
}

impl<R: Read> Decoded<R> {
    fn malformed(&self, line: u64) -> io::Error {
        io::Error::other(TextProblem::Malformed {
            line,
            encoding: self.encoding,
            detected: self.detected,
        })
    }
}

impl<R: Read> Read for Decoded<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if let Some(line) = self.failed {
                return Err(self.malformed(line));
            }
            if self.out_at < self.out_end {
                let ready = self.out.get(self.out_at..self.out_end).unwrap_or_default();
                let n = ready.len().min(buf.len());
                let (from, to) = (ready.get(..n).unwrap_or_default(), buf.get_mut(..n));
                if let Some(to) = to {
                    to.copy_from_slice(from);
                }
                self.lines += count_lines(from);
                self.out_at += n;
                return Ok(n);
            }
            if self.finished || buf.is_empty() {
                return Ok(0);
            }
            if self.raw_at == self.raw_end && !self.eof {
                self.raw_end = self.inner.read(&mut self.raw)?;
                self.raw_at = 0;
                self.eof = self.raw_end == 0;
            }
            let input = self.raw.get(self.raw_at..self.raw_end).unwrap_or_default();
            let (result, read, written) =
                self.decoder
                    .decode_to_utf8_without_replacement(input, &mut self.out, self.eof);
            self.raw_at += read;
            self.out_at = 0;
            self.out_end = written;
            match result {
                DecoderResult::InputEmpty if self.eof => self.finished = true,
                DecoderResult::InputEmpty | DecoderResult::OutputFull => {}
                DecoderResult::Malformed(..) => {
                    let before = self.out.get(..written).unwrap_or_default();
                    self.failed = Some(self.lines + count_lines(before) + 1);
                }
            }
        }
    }
}

/// Where the CSV text is, as the `csv` parser sees it (a quote opens a quoted field only at the
/// start of a field; a doubled quote inside one is a quote).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    FieldStart,
    Unquoted,
    Quoted,
    /// A quote inside a quoted field: its end, or the first of a doubled quote.
    QuoteInQuoted,
}

/// Passes CSV text through and ends it with [`TextProblem::UnclosedQuote`] when the file ends
/// inside a quoted field (the `csv` parser would silently take the rest of the file as that
/// field). Line breaks between records become `\n` (`\r\n` and a lone `\r` alike; those inside
/// quoted fields are kept), which the parser takes the same, so that its line numbers are right
/// (it counts a record of a `\r\n` file as starting on the line before).
pub(crate) struct QuoteCheck<R> {
    inner: R,
    delimiter: u8,
    state: Quoting,
    line: u64,
    opened_at: u64,
    /// The last byte was a record's `\r`, given as `\n`: a `\n` right after it is dropped.
    after_cr: bool,
}

impl<R> QuoteCheck<R> {
    fn new(inner: R, delimiter: u8) -> Self {
        QuoteCheck {
            inner,
            delimiter,
            state: Quoting::FieldStart,
            line: 1,
            opened_at: 0,
            after_cr: false,
        }
    }
}

impl<R> QuoteCheck<R> {
    /// One byte that may change the state: a quote, the delimiter or a line break.
    fn step(&mut self, b: u8) -> Option<u8> {
        if std::mem::take(&mut self.after_cr) && b == b'\n' {
            return None;
        }
        let end_of_field = b == self.delimiter || b == b'\n' || b == b'\r';
        let quoted = self.state == Quoting::Quoted;
        self.state = match self.state {
            Quoting::FieldStart | Quoting::Unquoted if end_of_field => Quoting::FieldStart,
            Quoting::FieldStart if b == b'"' => {
                self.opened_at = self.line;
                Quoting::Quoted
            }
            Quoting::FieldStart | Quoting::Unquoted => Quoting::Unquoted,
            Quoting::Quoted if b == b'"' => Quoting::QuoteInQuoted,
            Quoting::Quoted => Quoting::Quoted,
            Quoting::QuoteInQuoted if b == b'"' => Quoting::Quoted,
            Quoting::QuoteInQuoted if end_of_field => Quoting::FieldStart,
            Quoting::QuoteInQuoted => Quoting::Unquoted,
        };
        let out = if b == b'\r' && !quoted {
            self.after_cr = true;
            b'\n'
        } else {
            b
        };
        if out == b'\n' {
            self.line += 1;
        }
        Some(out)
    }

    /// Checks and rewrites `data` in place; answers how many bytes are kept at its start.
    fn scan(&mut self, data: &mut [u8]) -> usize {
        let delimiter = self.delimiter;
        let (mut read, mut kept) = (0, 0);
        while read < data.len() {
            // A run of bytes that changes nothing but a field's start is moved as it is.
            let ordinary = |b: &u8| !matches!(*b, b'"' | b'\n' | b'\r') && *b != delimiter;
            let run = data
                .get(read..)
                .map_or(0, |rest| rest.iter().take_while(|b| ordinary(b)).count());
            if run > 0 {
                self.after_cr = false;
                self.state = match self.state {
                    Quoting::Quoted => Quoting::Quoted,
                    _ => Quoting::Unquoted,
                };
                if kept != read {
                    data.copy_within(read..read + run, kept);
                }
                read += run;
                kept += run;
                continue;
            }
            let Some(&b) = data.get(read) else { break };
            read += 1;
            if let Some(out) = self.step(b) {
                if let Some(slot) = data.get_mut(kept) {
                    *slot = out;
                }
                kept += 1;
            }
        }
        kept
    }
}

impl<R: Read> Read for QuoteCheck<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let n = self.inner.read(buf)?;
            if n == 0 {
                if self.state == Quoting::Quoted && !buf.is_empty() {
                    return Err(io::Error::other(TextProblem::UnclosedQuote {
                        line: self.opened_at,
                    }));
                }
                return Ok(0);
            }
            let kept = self.scan(buf.get_mut(..n).unwrap_or_default());
            // A read of only a dropped `\n` gives nothing: read on rather than end.
            if kept > 0 {
                return Ok(kept);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn auto() -> FileSettings {
        FileSettings {
            delimiter: None,
            header: true,
            encoding: None,
        }
    }

    fn read_all(bytes: &[u8]) -> (String, &'static str, u8) {
        let text = open("f.csv", bytes, &auto()).unwrap();
        let encoding = text.encoding.name();
        let delimiter = text.delimiter(&auto());
        let mut out = String::new();
        let mut reader = text.reader;
        reader.read_to_string(&mut out).unwrap();
        (out, encoding, delimiter)
    }

    #[test]
    fn detects_encodings() {
        let (text, encoding, _) = read_all(b"\xEF\xBB\xBFa;b\nx;\xC3\xBC\n");
        assert_eq!((text.as_str(), encoding), ("a;b\nx;ü\n", "UTF-8"));
        let (text, encoding, _) = read_all(b"a,b\nx,\xFC\xB0\n");
        assert_eq!((text.as_str(), encoding), ("a,b\nx,ü°\n", "windows-1252"));
        let (text, encoding, delimiter) = read_all(b"\xEF\xBB\xBFa;b\r\nx;\xFC\r\n");
        assert_eq!(
            (text.as_str(), encoding, delimiter),
            ("a;b\r\nx;ü\r\n", "windows-1252", b';')
        );
        let le: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("a\tb\n1\tÄ\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        let (text, encoding, delimiter) = read_all(&le);
        assert_eq!(
            (text.as_str(), encoding, delimiter),
            ("a\tb\n1\tÄ\n", "UTF-16LE", b'\t')
        );
        let be: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("a|b\n1|€\n".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        let (text, encoding, delimiter) = read_all(&be);
        assert_eq!(
            (text.as_str(), encoding, delimiter),
            ("a|b\n1|€\n", "UTF-16BE", b'|')
        );
        for binary in [&b"PK\x03\x04rest"[..], b"\xD0\xCF\x11\xE0", b"a,b\n\0\0"] {
            let err = open("f.csv", binary, &auto()).err().unwrap();
            assert!(
                err.to_string().starts_with("f.csv: not a text file"),
                "{err}"
            );
        }
    }

    #[test]
    fn malformed_bytes_name_their_line() {
        let mut bytes = b"a,b\n".repeat(SNIFF_BYTES / 4 + 10);
        bytes.extend_from_slice(b"x,\xFF\n");
        let text = open("f.csv", bytes.as_slice(), &auto()).unwrap();
        assert_eq!(text.encoding, UTF_8, "the first MiB is UTF-8");
        let mut reader = text.reader;
        let err = reader.read_to_end(&mut Vec::new()).unwrap_err();
        let message = problem(&err).unwrap().to_string();
        let line = SNIFF_BYTES / 4 + 11;
        assert!(
            message.starts_with(&format!("line {line}: not UTF-8")),
            "{message}"
        );
    }

    #[test]
    fn sniffs_delimiters_respecting_quotes() {
        for (text, expected) in [
            ("a,b,c\n1,2,3\n", Some(b',')),
            ("a;b;c\n1;\"2,5\";3\n4;5,5;6\n", Some(b';')),
            ("name;price\n\"x; y\";1,5\nz;2,5\n", Some(b';')),
            ("a\tb\n1\t2\n", Some(b'\t')),
            ("a|b\n1|2\n", Some(b'|')),
            ("\"a,b\"|c\n\"1,2\"|3\n", Some(b'|')),
            ("single\nvalue\n", None),
            (
                "ITEM NO.,QTY.,DESCRIPTION\n1,1,BUSHING .375\"MNPT X .25\"FNPT\n",
                Some(b','),
            ),
        ] {
            assert_eq!(sniff_delimiter(text, false), expected, "{text:?}");
        }
    }

    #[test]
    fn finds_unclosed_quotes() {
        let mut check = QuoteCheck::new(&b"a,b\n1,\"x\"\"y\"\n2,\"open\n3,4\n"[..], b',');
        let err = check.read_to_end(&mut Vec::new()).unwrap_err();
        assert_eq!(
            problem(&err).unwrap().to_string(),
            "line 3: unclosed quote (the quoted field that starts there never ends)"
        );
        let mut check = QuoteCheck::new(&b"a;b\n1;x\"y\n2;\"q;\"\"\"\n"[..], b';');
        check.read_to_end(&mut Vec::new()).unwrap();
        // Record breaks become \n; those inside quoted fields stay.
        let mut check = QuoteCheck::new(&b"a,b\r\n1,\"x\r\ny\"\r2,3\r\n"[..], b',');
        let mut out = Vec::new();
        check.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"a,b\n1,\"x\r\ny\"\n2,3\n");
        // One byte at a time, as a reader may hand them.
        let mut out = Vec::new();
        let mut check = QuoteCheck::new(OneByte(b"a\r\nb\r\n"), b',');
        check.read_to_end(&mut out).unwrap();
        assert_eq!(out, b"a\nb\n");
    }

    struct OneByte(&'static [u8]);

    impl Read for OneByte {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match (self.0.split_first(), buf.first_mut()) {
                (Some((b, rest)), Some(slot)) => {
                    *slot = *b;
                    self.0 = rest;
                    Ok(1)
                }
                _ => Ok(0),
            }
        }
    }
}
