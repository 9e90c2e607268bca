//! The `files` connector: CSV, JSON and JSON Lines files in a folder inside the operator's files
//! directory, and files uploaded to the connection.
//!
//! Objects are the files directly in `config.directory` (named by their file name; symbolic links,
//! folders, other files and names that are not plain file names are not listed) and the uploaded
//! files (named `uploads/<name>`). The extension says the format: `.csv`; `.json` (a top-level
//! array of objects); `.jsonl` or `.ndjson` (one object a line). Each file's encoding and CSV
//! delimiter are set per file or detected per file (`text.rs`). Fields are inferred from the first
//! 1000 records.
//!
//! Each file is discovered on its own: a file that cannot be read is listed with its error and
//! no fields, and the others are discovered all the same. Files are read through
//! [`crate::FilesRoot`] every time (never by joining unchecked names), at most [`MAX_READ`] bytes
//! of each. Errors name the file and the line or record, never its content.

mod batch;
mod config;
pub(crate) mod infer;
mod text;
mod upload;

pub use config::{CsvOptions, FileOptions, FilesConfig, SECRET_FIELDS};
pub use upload::{check_file_name, check_upload};

use crate::{
    Connector, ConnectorError, Context, FailureKind, FileLayout, FilesRoot, ObjectKind, ObjectMeta,
    Record, UploadedFile,
};
use config::FileSettings;
use infer::{INFER_RECORDS, Inference, Source};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The most bytes read from one file to discover or sample it.
pub const MAX_READ: u64 = 64 * 1024 * 1024;

/// The prefix of uploaded files' object names.
const UPLOADS: &str = "uploads/";

/// Reads the files of one `files` connection.
#[derive(Debug)]
pub struct FilesConnector {
    config: Arc<FilesConfig>,
    uploads: Arc<Vec<UploadedFile>>,
    ctx: Context,
}

impl FilesConnector {
    /// Nothing is read yet. `uploads` are the files uploaded to the connection.
    pub fn new(config: FilesConfig, uploads: Vec<UploadedFile>, ctx: Context) -> Self {
        FilesConnector {
            config: Arc::new(config),
            uploads: Arc::new(uploads),
            ctx,
        }
    }

    /// Runs blocking file work off the async runtime.
    async fn blocking<T, F>(&self, work: F) -> Result<T, ConnectorError>
    where
        T: Send + 'static,
        F: FnOnce(&Reader) -> Result<T, ConnectorError> + Send + 'static,
    {
        let reader = Reader {
            config: Arc::clone(&self.config),
            uploads: Arc::clone(&self.uploads),
            root: self.ctx.files_root.clone(),
        };
        tokio::task::spawn_blocking(move || work(&reader))
            .await
            .map_err(|_| {
                ConnectorError::failed(FailureKind::Other, "reading the files was interrupted")
            })?
    }
}

impl Connector for FilesConnector {
    /// The folder exists and can be listed, or (without a folder) there is at least one usable
    /// uploaded file.
    async fn test(&self) -> Result<(), ConnectorError> {
        self.blocking(|reader| {
            if reader.config.directory.is_some() {
                reader.list_directory().map(|_| ())
            } else if reader.usable_uploads().next().is_some() {
                Ok(())
            } else {
                Err(ConnectorError::config(
                    "config.directory",
                    "set a folder inside the files directory, or upload files",
                ))
            }
        })
        .await
    }

    /// Every file, each read on its own: one that cannot be read carries its error.
    async fn discover(&self) -> Result<Vec<ObjectMeta>, ConnectorError> {
        self.blocking(|reader| {
            Ok(reader
                .objects()?
                .iter()
                .map(|object| {
                    let (fields, layout, error) = match reader.read(object, INFER_RECORDS) {
                        Ok(sample) => (sample.fields, Some(sample.layout), None),
                        Err(err) => {
                            tracing::debug!(kind = ?err.kind(), "a file could not be discovered");
                            (Vec::new(), None, Some(err.to_string()))
                        }
                    };
                    ObjectMeta {
                        name: object.name.clone(),
                        kind: ObjectKind::File,
                        fields,
                        layout,
                        error,
                    }
                })
                .collect())
        })
        .await
    }

    async fn sample(&self, object: &str, limit: usize) -> Result<Vec<Record>, ConnectorError> {
        let name = object.to_owned();
        self.blocking(move |reader| {
            let object = reader
                .objects()?
                .into_iter()
                .find(|o| o.name == name)
                .ok_or_else(|| {
                    ConnectorError::failed(FailureKind::NotFound, format!("{name}: no such file"))
                })?;
            let mut sample = reader.read(&object, INFER_RECORDS.max(limit))?;
            sample.records.truncate(limit);
            Ok(sample.records)
        })
        .await
    }
}

/// What the blocking work needs.
struct Reader {
    config: Arc<FilesConfig>,
    uploads: Arc<Vec<UploadedFile>>,
    root: Option<Arc<FilesRoot>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    Json,
    JsonLines,
}

impl Format {
    fn of(name: &str) -> Option<Format> {
        let (_, extension) = name.rsplit_once('.')?;
        match extension.to_ascii_lowercase().as_str() {
            "csv" => Some(Format::Csv),
            "json" => Some(Format::Json),
            "jsonl" | "ndjson" => Some(Format::JsonLines),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Location {
    /// A file in the configured folder; its name is the object's name.
    Directory,
    /// `uploads[i]`.
    Upload(usize),
}

#[derive(Debug, Clone)]
struct FileObject {
    name: String,
    format: Format,
    location: Location,
}

struct Sample {
    fields: Vec<crate::FieldMeta>,
    records: Vec<Record>,
    layout: FileLayout,
}

impl Reader {
    fn root(&self) -> Result<&FilesRoot, ConnectorError> {
        self.root.as_deref().ok_or_else(|| {
            ConnectorError::config(
                "config.directory",
                "the operator has not set a files directory (--files-root)",
            )
        })
    }

    /// The configured folder, checked again.
    fn directory(&self) -> Result<Option<PathBuf>, ConnectorError> {
        let Some(dir) = &self.config.directory else {
            return Ok(None);
        };
        let path = self.root()?.resolve("config.directory", dir)?;
        if !path.is_dir() {
            return Err(ConnectorError::failed(
                FailureKind::NotFound,
                "config.directory: not a folder",
            ));
        }
        Ok(Some(path))
    }

    /// The CSV/JSON/JSON Lines files directly in the folder, sorted by name.
    fn list_directory(&self) -> Result<Vec<FileObject>, ConnectorError> {
        let Some(dir) = self.directory()? else {
            return Ok(Vec::new());
        };
        let cannot_list = || {
            ConnectorError::failed(
                FailureKind::Other,
                "config.directory: the folder cannot be read",
            )
        };
        let mut objects = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(|_| cannot_list())? {
            let entry = entry.map_err(|_| cannot_list())?;
            // Names that cannot be named safely again (not UTF-8, backslashes, control
            // characters, hidden files) are not listed.
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            if check_file_name(&name).is_err() {
                continue;
            }
            let Some(format) = Format::of(&name) else {
                continue;
            };
            // Not followed: a symbolic link is not a file here.
            let is_file =
                std::fs::symlink_metadata(entry.path()).is_ok_and(|m| m.file_type().is_file());
            if is_file {
                objects.push(FileObject {
                    name,
                    format,
                    location: Location::Directory,
                });
            }
        }
        objects.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(objects)
    }

    /// Uploaded files with a plain name and a known extension (the first of duplicate names).
    fn usable_uploads(&self) -> impl Iterator<Item = FileObject> + '_ {
        let mut seen = std::collections::HashSet::new();
        self.uploads.iter().enumerate().filter_map(move |(i, upload)| {
            let name = upload.name.as_str();
            let format = Format::of(name).filter(|_| check_file_name(name).is_ok());
            if format.is_none() {
                tracing::warn!(upload = i, "an uploaded file is skipped: not a plain .csv, .json, .jsonl or .ndjson name");
            }
            let format = format.filter(|_| seen.insert(name))?;
            Some(FileObject {
                name: format!("{UPLOADS}{name}"),
                format,
                location: Location::Upload(i),
            })
        })
    }

    fn objects(&self) -> Result<Vec<FileObject>, ConnectorError> {
        let mut objects = self.list_directory()?;
        objects.extend(self.usable_uploads());
        Ok(objects)
    }

    /// Reads up to `max` records of a discovered object, and infers its fields from the first
    /// [`INFER_RECORDS`].
    fn read(&self, object: &FileObject, max: usize) -> Result<Sample, ConnectorError> {
        let settings = self.settings(object);
        match object.location {
            Location::Upload(i) => {
                let contents = self
                    .uploads
                    .get(i)
                    .map(|u| u.contents.as_slice())
                    .unwrap_or_default();
                read_format(&object.name, object.format, contents, &settings, max)
            }
            Location::Directory => {
                let path = self.file_path(&object.name)?;
                let file = std::fs::File::open(&path).map_err(|_| {
                    ConnectorError::failed(
                        FailureKind::Other,
                        format!("{}: cannot be opened", object.name),
                    )
                })?;
                read_format(&object.name, object.format, file, &settings, max)
            }
        }
    }

    /// How `object` is read: its own settings, the connection's, or detection.
    fn settings(&self, object: &FileObject) -> FileSettings {
        let upload = match object.location {
            Location::Upload(i) => self.uploads.get(i).map(|u| u.name.as_str()),
            Location::Directory => None,
        };
        self.config.settings(&object.name, upload)
    }

    /// A discovered file of the folder, resolved again through the files directory.
    fn file_path(&self, name: &str) -> Result<PathBuf, ConnectorError> {
        let dir = self.config.directory.as_deref().unwrap_or(".");
        let relative = Path::new(dir).join(name);
        let relative = relative.to_str().ok_or_else(|| {
            ConnectorError::failed(FailureKind::NotFound, format!("{name}: no such file"))
        })?;
        let path = self.root()?.resolve("object", relative)?;
        if !path.is_file() {
            return Err(ConnectorError::failed(
                FailureKind::NotFound,
                format!("{name}: no such file"),
            ));
        }
        Ok(path)
    }
}

/// A reader that fails once more than [`MAX_READ`] bytes were asked of it.
struct Capped<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Capped<R> {
    fn new(inner: R) -> Self {
        Capped {
            inner,
            left: MAX_READ,
        }
    }
}

/// The marker error of [`Capped`].
#[derive(Debug)]
struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("file too large to sample")
    }
}

impl std::error::Error for TooLarge {}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            // One more byte tells a file of exactly MAX_READ bytes from a larger one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(TooLarge)),
            };
        }
        let room = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(buf.get_mut(..room).unwrap_or_default())?;
        self.left = self.left.saturating_sub(n as u64);
        Ok(n)
    }
}

fn too_large(name: &str) -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Protocol,
        format!(
            "{name}: file too large to sample (more than {} MiB read)",
            MAX_READ / 1024 / 1024
        ),
    )
}

/// An I/O error while reading `name`: the cap, or anything else (without the OS's words, which
/// could hold a path).
fn io_error(name: &str, err: &std::io::Error) -> ConnectorError {
    if err.get_ref().is_some_and(|inner| inner.is::<TooLarge>()) {
        too_large(name)
    } else if let Some(problem) = text::problem(err) {
        ConnectorError::failed(FailureKind::Protocol, format!("{name}: {problem}"))
    } else {
        ConnectorError::failed(
            FailureKind::Other,
            format!("{name}: the file cannot be read"),
        )
    }
}

fn read_format<R: Read>(
    name: &str,
    format: Format,
    input: R,
    settings: &FileSettings,
    max: usize,
) -> Result<Sample, ConnectorError> {
    let text = text::open(name, Capped::new(input), settings)?;
    match format {
        Format::Csv => read_csv(name, text, settings, max),
        Format::Json => read_json(name, text, max),
        Format::JsonLines => read_json_lines(name, text, max),
    }
}

fn csv_error(name: &str, err: &csv::Error) -> ConnectorError {
    let line = |pos: &Option<csv::Position>| {
        pos.as_ref()
            .map(|p| format!("line {}: ", p.line()))
            .unwrap_or_default()
    };
    let message = match err.kind() {
        csv::ErrorKind::Io(io) => return io_error(name, io),
        csv::ErrorKind::Utf8 { pos, .. } => format!("{name}: {}not valid UTF-8", line(pos)),
        csv::ErrorKind::UnequalLengths {
            pos,
            expected_len,
            len,
        } => format!(
            "{name}: {}{len} fields where the first line has {expected_len}",
            line(pos)
        ),
        _ => format!("{name}: malformed CSV"),
    };
    ConnectorError::failed(FailureKind::Protocol, message)
}

/// Field names from the header: empty ones become `column_<n>`, repeated ones get `_2`, `_3`, …
fn field_names(header: Option<&csv::StringRecord>, width: usize) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(width);
    let mut seen = std::collections::HashSet::new();
    for i in 0..width {
        let given = header.and_then(|h| h.get(i)).map(str::trim).unwrap_or("");
        let base = if given.is_empty() {
            format!("column_{}", i + 1)
        } else {
            given.to_owned()
        };
        let mut name = base.clone();
        let mut n = 2;
        while !seen.insert(name.clone()) {
            name = format!("{base}_{n}");
            n += 1;
        }
        names.push(name);
    }
    names
}

fn read_csv<R: Read>(
    name: &str,
    text: text::Text<R>,
    settings: &FileSettings,
    max: usize,
) -> Result<Sample, ConnectorError> {
    let (mut reader, layout) = text.csv(settings);
    let header = if settings.header {
        Some(
            reader
                .headers()
                .map_err(|err| csv_error(name, &err))?
                .clone(),
        )
    } else {
        None
    };
    let mut rows = Vec::new();
    for row in reader.records().take(max.max(INFER_RECORDS)) {
        rows.push(row.map_err(|err| csv_error(name, &err))?);
    }
    let width = header
        .as_ref()
        .map(csv::StringRecord::len)
        .or_else(|| rows.first().map(csv::StringRecord::len))
        .unwrap_or(0);
    let names = field_names(header.as_ref(), width);

    let mut inference = Inference::new(Source::Csv);
    for field in &names {
        inference.declare(field);
    }
    for row in rows.iter().take(INFER_RECORDS) {
        inference.observe_csv(&names, row.iter());
    }
    let fields = inference.finish(&[]);
    let records = rows
        .iter()
        .take(max)
        .map(|row| {
            fields
                .iter()
                .zip(row.iter())
                .map(|(field, cell)| {
                    (
                        field.name.clone(),
                        infer::typed_value(cell, field.field_type),
                    )
                })
                .collect::<Record>()
        })
        .collect();
    Ok(Sample {
        fields,
        records,
        layout,
    })
}

/// The records' fields from the first [`INFER_RECORDS`] JSON records.
fn json_sample(records: Vec<Record>, max: usize, layout: FileLayout) -> Sample {
    let mut inference = Inference::new(Source::Json);
    for record in records.iter().take(INFER_RECORDS) {
        inference.observe_json(record);
    }
    let mut records = records;
    records.truncate(max);
    Sample {
        fields: inference.finish(&[]),
        records,
        layout,
    }
}

fn json_syntax(name: &str, err: &serde_json::Error) -> ConnectorError {
    if err.is_io() {
        return ConnectorError::failed(
            FailureKind::Other,
            format!("{name}: the file cannot be read"),
        );
    }
    ConnectorError::failed(
        FailureKind::Protocol,
        format!(
            "{name}: malformed JSON at line {}, column {}",
            err.line(),
            err.column()
        ),
    )
}

fn read_json<R: Read>(
    name: &str,
    text: text::Text<R>,
    max: usize,
) -> Result<Sample, ConnectorError> {
    let layout = text.layout();
    let mut bytes = Vec::new();
    let mut input = text.reader;
    input
        .read_to_end(&mut bytes)
        .map_err(|err| io_error(name, &err))?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|err| json_syntax(name, &err))?;
    let Value::Array(items) = value else {
        return Err(ConnectorError::failed(
            FailureKind::Protocol,
            format!("{name}: expected a JSON array of objects"),
        ));
    };
    let keep = max.max(INFER_RECORDS);
    let mut records = Vec::with_capacity(items.len().min(keep));
    for (i, item) in items.into_iter().take(keep).enumerate() {
        match item {
            Value::Object(record) => records.push(record),
            _ => {
                return Err(ConnectorError::failed(
                    FailureKind::Protocol,
                    format!("{name}: record {} is not a JSON object", i + 1),
                ));
            }
        }
    }
    Ok(json_sample(records, max, layout))
}

fn read_json_lines<R: Read>(
    name: &str,
    text: text::Text<R>,
    max: usize,
) -> Result<Sample, ConnectorError> {
    let layout = text.layout();
    let mut input = BufReader::new(text.reader);
    let keep = max.max(INFER_RECORDS);
    let mut records = Vec::new();
    let mut line = Vec::new();
    let mut number = 0usize;
    while records.len() < keep {
        line.clear();
        let n = input
            .read_until(b'\n', &mut line)
            .map_err(|err| io_error(name, &err))?;
        if n == 0 {
            break;
        }
        number += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let value: Value = serde_json::from_slice(&line).map_err(|err| {
            if err.is_io() {
                json_syntax(name, &err)
            } else {
                ConnectorError::failed(
                    FailureKind::Protocol,
                    format!(
                        "{name}: malformed JSON at line {number}, column {}",
                        err.column()
                    ),
                )
            }
        })?;
        match value {
            Value::Object(record) => records.push(record),
            _ => {
                return Err(ConnectorError::failed(
                    FailureKind::Protocol,
                    format!("{name}: line {number} is not a JSON object"),
                ));
            }
        }
    }
    Ok(json_sample(records, max, layout))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::FieldType;

    fn config(header: bool, delimiter: &str) -> FileSettings {
        FileSettings {
            delimiter: delimiter.bytes().next(),
            header,
            encoding: None,
        }
    }

    #[test]
    fn csv_without_header_names_columns() {
        let sample = read_format(
            "a.csv",
            Format::Csv,
            "1;x;\n2;y;true\n".as_bytes(),
            &config(false, ";"),
            10,
        )
        .unwrap();
        let names: Vec<_> = sample.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["column_1", "column_2", "column_3"]);
        assert_eq!(sample.fields[0].field_type, FieldType::Integer);
        assert_eq!(sample.records[0]["column_1"], serde_json::json!(1));
        assert_eq!(sample.records[0]["column_3"], Value::Null);
    }

    #[test]
    fn repeated_and_empty_header_names_are_made_unique() {
        let sample = read_format(
            "a.csv",
            Format::Csv,
            "id,id,\n1,2,3\n".as_bytes(),
            &config(true, ","),
            10,
        )
        .unwrap();
        let names: Vec<_> = sample.fields.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["id", "id_2", "column_3"]);
    }

    #[test]
    fn caps_what_it_reads() {
        let big = vec![b' '; usize::try_from(MAX_READ).unwrap() + 10];
        let err = read_format(
            "big.json",
            Format::Json,
            big.as_slice(),
            &config(true, ","),
            10,
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), Some(FailureKind::Protocol));
        assert!(err.to_string().contains("too large"), "{err}");
        let exact = vec![b' '; usize::try_from(MAX_READ).unwrap() - 2];
        let mut exact = exact;
        exact.extend_from_slice(b"[]");
        let sample = read_format(
            "ok.json",
            Format::Json,
            exact.as_slice(),
            &config(true, ","),
            10,
        )
        .unwrap();
        assert!(sample.records.is_empty());
    }

    #[test]
    fn json_lines_errors_name_the_line() {
        let err = read_format(
            "a.jsonl",
            Format::JsonLines,
            "{\"a\":1}\n\n{\"a\": SECRET}\n".as_bytes(),
            &config(true, ","),
            10,
        )
        .err()
        .unwrap();
        assert_eq!(err.kind(), Some(FailureKind::Protocol));
        let message = err.to_string();
        assert!(
            message.contains("line 3") && !message.contains("SECRET"),
            "{message}"
        );
    }
}
