//! Bulk reads: a CSV, JSON or JSON Lines file as a stream of Arrow batches.
//!
//! The file is found as discovery finds it (a file of the folder, resolved through the files
//! directory again, or an upload) and typed as discovery types it: the first
//! [`INFER_RECORDS`] records decide each field's type and nullability. Those records are held;
//! the rest is streamed — CSV through `csv::Reader`, JSON Lines line by line — in a blocking task
//! that hands over batches of `ReadSpec::batch_rows` records through a channel of two batches.
//! A JSON array is read whole, within [`MAX_READ`] bytes.
//!
//! Arrow types: integer → Int64, float → Float64, boolean → Boolean, date → Date32, timestamp with
//! an offset → Timestamp(µs, UTC); strings, JSON values (as JSON text) and decimals (JSON integers
//! beyond i64: exact text; no precision is known) → Utf8. Every field carries `lockstep.source` =
//! `files` and `lockstep.native` = `csv` or `json`.
//!
//! A record after the inference window that does not fit a field's type (a word in an integer
//! field, an empty cell in a field the first records always filled) ends the stream with an error
//! naming the file, the line (the record in a JSON array) and the field — never the value. A
//! field that appears only after the window is not part of the schema and is left out.
//!
//! The file's text is decoded as discovery decodes it (`text.rs`: the encoding and the CSV
//! delimiter set for the file, or detected from its first bytes), so a `;`-separated
//! Windows-1252 export with a byte order mark reads as it was discovered.
//!
//! Files have no order to resume from: a read with a cursor is a configuration error.

use super::config::FileSettings;
use super::infer::{self, INFER_RECORDS, Inference, Source};
use super::text;
use super::{
    Capped, FileObject, Format, Location, MAX_READ, Reader, csv_error, field_names, io_error,
    json_syntax,
};
use crate::batch::{BatchSource, BatchStream, ReadSpec, arrow_field};
use crate::{ConnectionKind, ConnectorError, FailureKind, FieldMeta, FieldType, Record};
use arrow_array::builder::{
    ArrayBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef, TimeUnit};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use tokio::sync::{mpsc, oneshot};

type Batches = mpsc::Sender<Result<RecordBatch, ConnectorError>>;
type Ready = oneshot::Sender<Result<SchemaRef, ConnectorError>>;

/// Days from 4713 BC (the Julian day number) to 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i32 = 2_440_588;

impl BatchSource for super::FilesConnector {
    async fn read(&self, spec: ReadSpec) -> Result<(SchemaRef, BatchStream), ConnectorError> {
        if spec.cursor.is_some() {
            return Err(ConnectorError::config(
                "cursor",
                "files cannot be read incrementally (a file has no order to resume from)",
            ));
        }
        let reader = Reader {
            config: Arc::clone(&self.config),
            uploads: Arc::clone(&self.uploads),
            root: self.ctx.files_root.clone(),
        };
        let (tx, rx) = mpsc::channel(2);
        let (ready_tx, ready_rx) = oneshot::channel();
        tokio::task::spawn_blocking(move || {
            let mut ready = Some(ready_tx);
            if let Err(err) = stream_file(&reader, &spec, &mut ready, &tx) {
                match ready.take() {
                    Some(ready) => {
                        let _ = ready.send(Err(err));
                    }
                    None => {
                        let _ = tx.blocking_send(Err(err));
                    }
                }
            }
        });
        let schema = ready_rx.await.map_err(|_| {
            ConnectorError::failed(FailureKind::Other, "reading the file was interrupted")
        })??;
        let stream = futures_util::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|item| (item, rx))
        });
        Ok((schema, Box::pin(stream)))
    }
}

/// Finds the object and streams it; errors before the schema is known go to `ready`.
fn stream_file(
    reader: &Reader,
    spec: &ReadSpec,
    ready: &mut Option<Ready>,
    tx: &Batches,
) -> Result<(), ConnectorError> {
    let object = reader
        .objects()?
        .into_iter()
        .find(|o| o.name == spec.object)
        .ok_or_else(|| {
            ConnectorError::failed(
                FailureKind::NotFound,
                format!("{}: no such file", spec.object),
            )
        })?;
    match object.location {
        Location::Upload(i) => {
            let contents = reader
                .uploads
                .get(i)
                .map(|u| u.contents.as_slice())
                .unwrap_or_default();
            stream_format(reader, &object, contents, spec, ready, tx)
        }
        Location::Directory => {
            let path = reader.file_path(&object.name)?;
            let file = std::fs::File::open(&path).map_err(|_| {
                ConnectorError::failed(
                    FailureKind::Other,
                    format!("{}: cannot be opened", object.name),
                )
            })?;
            stream_format(reader, &object, file, spec, ready, tx)
        }
    }
}

/// Reads the file's text as discovery does (the same encoding and delimiter, set or detected).
fn stream_format<R: Read>(
    reader: &Reader,
    object: &FileObject,
    input: R,
    spec: &ReadSpec,
    ready: &mut Option<Ready>,
    tx: &Batches,
) -> Result<(), ConnectorError> {
    let name = object.name.as_str();
    let settings = reader.settings(object);
    let text = text::open(name, input, &settings)?;
    match object.format {
        Format::Csv => stream_csv(name, text, &settings, spec, ready, tx),
        Format::JsonLines => stream_json_lines(name, text.reader, spec, ready, tx),
        Format::Json => stream_json(name, text.reader, spec, ready, tx),
    }
}

/// The fields read: every inferred field, or those asked for in that order.
struct Projection {
    /// (index among the inferred fields, field) for each output column.
    columns: Vec<(usize, FieldMeta)>,
    schema: SchemaRef,
}

impl Projection {
    fn new(
        object: &str,
        fields: &[FieldMeta],
        wanted: Option<&[String]>,
    ) -> Result<Projection, ConnectorError> {
        let columns: Vec<(usize, FieldMeta)> = match wanted {
            None => fields.iter().cloned().enumerate().collect(),
            Some([]) => return Err(ConnectorError::config("fields", "name at least one field")),
            Some(wanted) => {
                let mut columns: Vec<(usize, FieldMeta)> = Vec::with_capacity(wanted.len());
                for name in wanted {
                    if columns.iter().any(|(_, f)| &f.name == name) {
                        return Err(ConnectorError::config(
                            "fields",
                            format!("{name} is named twice"),
                        ));
                    }
                    let (i, field) = fields
                        .iter()
                        .enumerate()
                        .find(|(_, f)| &f.name == name)
                        .ok_or_else(|| {
                            ConnectorError::config(
                                "fields",
                                format!("{object} has no field named {name}"),
                            )
                        })?;
                    columns.push((i, field.clone()));
                }
                columns
            }
        };
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(_, f)| arrow_field(f, ConnectionKind::Files))
                .collect::<Vec<_>>(),
        ));
        Ok(Projection { columns, schema })
    }

    /// Sends the schema: the read has started.
    fn announce(&self, ready: &mut Option<Ready>) -> bool {
        match ready.take() {
            Some(ready) => ready.send(Ok(Arc::clone(&self.schema))).is_ok(),
            None => true,
        }
    }
}

/// Where a record is, for messages.
#[derive(Debug, Clone, Copy)]
enum At {
    Line(u64),
    Record(usize),
}

impl std::fmt::Display for At {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            At::Line(n) => write!(f, "line {n}"),
            At::Record(n) => write!(f, "record {n}"),
        }
    }
}

/// The builders of one batch and where the batches go.
struct Batcher<'a> {
    name: &'a str,
    projection: Projection,
    columns: Vec<FileColumn>,
    rows: usize,
    batch_rows: usize,
    tx: &'a Batches,
}

impl<'a> Batcher<'a> {
    fn new(
        name: &'a str,
        projection: Projection,
        batch_rows: usize,
        tx: &'a Batches,
    ) -> Result<Batcher<'a>, ConnectorError> {
        let batch_rows = batch_rows.max(1);
        let columns = Self::builders(name, &projection, batch_rows)?;
        Ok(Batcher {
            name,
            projection,
            columns,
            rows: 0,
            batch_rows,
            tx,
        })
    }

    fn builders(
        name: &str,
        projection: &Projection,
        batch_rows: usize,
    ) -> Result<Vec<FileColumn>, ConnectorError> {
        let capacity = batch_rows.min(crate::batch::DEFAULT_BATCH_ROWS);
        projection
            .schema
            .fields()
            .iter()
            .map(|f| FileColumn::new(f.data_type(), capacity))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                ConnectorError::failed(
                    FailureKind::Other,
                    format!("{name}: an Arrow column cannot be built"),
                )
            })
    }

    fn error(&self, at: At, field: &FieldMeta, why: &str) -> ConnectorError {
        ConnectorError::failed(
            FailureKind::Protocol,
            format!("{}: {at}, field {}: {why}", self.name, field.name),
        )
    }

    /// One CSV record (cells in the inferred fields' order). `Ok(false)`: the reader went away.
    fn push_csv(&mut self, record: &csv::StringRecord, at: At) -> Result<bool, ConnectorError> {
        for (k, (i, field)) in self.projection.columns.iter().enumerate() {
            let cell = record.get(*i).unwrap_or("");
            let column = self.columns.get_mut(k).ok_or_else(|| internal(self.name))?;
            if cell.is_empty() && !field.nullable {
                return Err(self.error(at, field, NOT_NULLABLE));
            }
            column
                .append_text(cell, field.field_type)
                .map_err(|why| self.error(at, field, why))?;
        }
        self.row_done()
    }

    /// One JSON record. `Ok(false)`: the reader went away.
    fn push_json(&mut self, record: &Record, at: At) -> Result<bool, ConnectorError> {
        for (k, (_, field)) in self.projection.columns.iter().enumerate() {
            let value = record.get(&field.name).unwrap_or(&Value::Null);
            let column = self.columns.get_mut(k).ok_or_else(|| internal(self.name))?;
            if value.is_null() && !field.nullable {
                return Err(self.error(at, field, NOT_NULLABLE));
            }
            column
                .append_json(value, field.field_type)
                .map_err(|why| self.error(at, field, why))?;
        }
        self.row_done()
    }

    fn row_done(&mut self) -> Result<bool, ConnectorError> {
        self.rows += 1;
        if self.rows >= self.batch_rows {
            return self.flush();
        }
        Ok(true)
    }

    /// Sends the rows built so far. `Ok(false)`: the reader went away.
    fn flush(&mut self) -> Result<bool, ConnectorError> {
        if self.rows == 0 {
            return Ok(true);
        }
        let arrays: Vec<ArrayRef> = self.columns.iter_mut().map(FileColumn::finish).collect();
        self.rows = 0;
        let batch = RecordBatch::try_new(Arc::clone(&self.projection.schema), arrays)
            .map_err(|_| internal(self.name))?;
        Ok(self.tx.blocking_send(Ok(batch)).is_ok())
    }
}

const NOT_NULLABLE: &str =
    "an empty or missing value where the first records (which decided the type) had none";

fn internal(name: &str) -> ConnectorError {
    ConnectorError::failed(
        FailureKind::Other,
        format!("{name}: the records do not fit the Arrow schema"),
    )
}

fn stream_csv<R: Read>(
    name: &str,
    text: text::Text<R>,
    settings: &FileSettings,
    spec: &ReadSpec,
    ready: &mut Option<Ready>,
    tx: &Batches,
) -> Result<(), ConnectorError> {
    let (mut csv, _) = text.csv(settings);
    let header = if settings.header {
        Some(csv.headers().map_err(|err| csv_error(name, &err))?.clone())
    } else {
        None
    };
    let mut records = csv.records();
    // The records that decide the types, as discovery reads them.
    let mut first = Vec::new();
    for record in records.by_ref().take(INFER_RECORDS) {
        first.push(record.map_err(|err| csv_error(name, &err))?);
    }
    let width = header
        .as_ref()
        .map(csv::StringRecord::len)
        .or_else(|| first.first().map(csv::StringRecord::len))
        .unwrap_or(0);
    let names = field_names(header.as_ref(), width);
    let mut inference = Inference::new(Source::Csv);
    for field in &names {
        inference.declare(field);
    }
    for record in &first {
        inference.observe_csv(&names, record.iter());
    }
    let fields = inference.finish(&[]);
    let projection = Projection::new(name, &fields, spec.fields.as_deref())?;
    if !projection.announce(ready) {
        return Ok(());
    }
    let mut batcher = Batcher::new(name, projection, spec.batch_rows, tx)?;
    let line =
        |record: &csv::StringRecord| At::Line(record.position().map_or(0, csv::Position::line));
    for record in first {
        if !batcher.push_csv(&record, line(&record))? {
            return Ok(());
        }
    }
    for record in records {
        let record = record.map_err(|err| csv_error(name, &err))?;
        if !batcher.push_csv(&record, line(&record))? {
            return Ok(());
        }
    }
    batcher.flush()?;
    Ok(())
}

/// A line of JSON Lines as a record (`None`: a blank line).
fn json_line(name: &str, line: &[u8], number: u64) -> Result<Option<Record>, ConnectorError> {
    if line.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let value: Value = serde_json::from_slice(line).map_err(|err| {
        ConnectorError::failed(
            FailureKind::Protocol,
            format!(
                "{name}: malformed JSON at line {number}, column {}",
                err.column()
            ),
        )
    })?;
    match value {
        Value::Object(record) => Ok(Some(record)),
        _ => Err(ConnectorError::failed(
            FailureKind::Protocol,
            format!("{name}: line {number} is not a JSON object"),
        )),
    }
}

fn stream_json_lines<R: Read>(
    name: &str,
    input: R,
    spec: &ReadSpec,
    ready: &mut Option<Ready>,
    tx: &Batches,
) -> Result<(), ConnectorError> {
    let mut input = BufReader::new(input);
    let mut line = Vec::new();
    let mut number = 0_u64;
    let mut next = |line: &mut Vec<u8>| -> Result<Option<(Record, u64)>, ConnectorError> {
        loop {
            line.clear();
            let n = input
                .read_until(b'\n', line)
                .map_err(|err| io_error(name, &err))?;
            if n == 0 {
                return Ok(None);
            }
            number += 1;
            if let Some(record) = json_line(name, line, number)? {
                return Ok(Some((record, number)));
            }
        }
    };
    let mut first = Vec::new();
    while first.len() < INFER_RECORDS {
        match next(&mut line)? {
            Some(record) => first.push(record),
            None => break,
        }
    }
    let mut inference = Inference::new(Source::Json);
    for (record, _) in &first {
        inference.observe_json(record);
    }
    let fields = inference.finish(&[]);
    let projection = Projection::new(name, &fields, spec.fields.as_deref())?;
    if !projection.announce(ready) {
        return Ok(());
    }
    let mut batcher = Batcher::new(name, projection, spec.batch_rows, tx)?;
    for (record, number) in first {
        if !batcher.push_json(&record, At::Line(number))? {
            return Ok(());
        }
    }
    while let Some((record, number)) = next(&mut line)? {
        if !batcher.push_json(&record, At::Line(number))? {
            return Ok(());
        }
    }
    batcher.flush()?;
    Ok(())
}

fn stream_json<R: Read>(
    name: &str,
    input: R,
    spec: &ReadSpec,
    ready: &mut Option<Ready>,
    tx: &Batches,
) -> Result<(), ConnectorError> {
    let mut bytes = Vec::new();
    Capped::new(input)
        .read_to_end(&mut bytes)
        .map_err(|err| io_error(name, &err))
        .map_err(|err| match err {
            ConnectorError::Failed {
                kind: FailureKind::Protocol,
                ..
            } => ConnectorError::failed(
                FailureKind::Protocol,
                format!(
                    "{name}: a JSON array larger than {} MiB cannot be read (JSON Lines can)",
                    MAX_READ / 1024 / 1024
                ),
            ),
            other => other,
        })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|err| json_syntax(name, &err))?;
    drop(bytes);
    let Value::Array(items) = value else {
        return Err(ConnectorError::failed(
            FailureKind::Protocol,
            format!("{name}: expected a JSON array of objects"),
        ));
    };
    let record = |(i, item): (usize, Value)| match item {
        Value::Object(record) => Ok((record, i + 1)),
        _ => Err(ConnectorError::failed(
            FailureKind::Protocol,
            format!("{name}: record {} is not a JSON object", i + 1),
        )),
    };
    let mut items = items.into_iter().enumerate();
    let first = items
        .by_ref()
        .take(INFER_RECORDS)
        .map(record)
        .collect::<Result<Vec<_>, _>>()?;
    let mut inference = Inference::new(Source::Json);
    for (record, _) in &first {
        inference.observe_json(record);
    }
    let fields = inference.finish(&[]);
    let projection = Projection::new(name, &fields, spec.fields.as_deref())?;
    if !projection.announce(ready) {
        return Ok(());
    }
    let mut batcher = Batcher::new(name, projection, spec.batch_rows, tx)?;
    for item in first.into_iter().map(Ok).chain(items.map(record)) {
        let (record, number) = item?;
        if !batcher.push_json(&record, At::Record(number))? {
            return Ok(());
        }
    }
    batcher.flush()?;
    Ok(())
}

/// One Arrow column being built from text cells or JSON values.
enum FileColumn {
    Boolean(BooleanBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Utf8(StringBuilder),
    Date32(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
}

impl FileColumn {
    fn new(data_type: &DataType, capacity: usize) -> Option<FileColumn> {
        Some(match data_type {
            DataType::Boolean => FileColumn::Boolean(BooleanBuilder::with_capacity(capacity)),
            DataType::Int64 => FileColumn::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Float64 => FileColumn::Float64(Float64Builder::with_capacity(capacity)),
            DataType::Utf8 => FileColumn::Utf8(StringBuilder::with_capacity(capacity, 1024)),
            DataType::Date32 => FileColumn::Date32(Date32Builder::with_capacity(capacity)),
            DataType::Timestamp(TimeUnit::Microsecond, zone) => FileColumn::Timestamp(
                TimestampMicrosecondBuilder::with_capacity(capacity)
                    .with_timezone_opt(zone.clone()),
            ),
            _ => return None,
        })
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            FileColumn::Boolean(b) => ArrayBuilder::finish(b),
            FileColumn::Int64(b) => ArrayBuilder::finish(b),
            FileColumn::Float64(b) => ArrayBuilder::finish(b),
            FileColumn::Utf8(b) => ArrayBuilder::finish(b),
            FileColumn::Date32(b) => ArrayBuilder::finish(b),
            FileColumn::Timestamp(b) => ArrayBuilder::finish(b),
        }
    }

    fn append_null(&mut self) {
        match self {
            FileColumn::Boolean(b) => b.append_null(),
            FileColumn::Int64(b) => b.append_null(),
            FileColumn::Float64(b) => b.append_null(),
            FileColumn::Utf8(b) => b.append_null(),
            FileColumn::Date32(b) => b.append_null(),
            FileColumn::Timestamp(b) => b.append_null(),
        }
    }

    /// A CSV cell, typed as inference typed its field (empty: null).
    fn append_text(&mut self, cell: &str, field_type: FieldType) -> Result<(), &'static str> {
        if cell.is_empty() {
            self.append_null();
            return Ok(());
        }
        let looks = infer::classify_text(cell);
        match self {
            FileColumn::Boolean(b) => {
                if looks != Some(FieldType::Boolean) {
                    return Err(not_fitting(field_type));
                }
                b.append_value(cell.eq_ignore_ascii_case("true"));
            }
            FileColumn::Int64(b) => {
                let n = cell
                    .parse::<i64>()
                    .ok()
                    .filter(|_| looks == Some(FieldType::Integer))
                    .ok_or(not_fitting(field_type))?;
                b.append_value(n);
            }
            FileColumn::Float64(b) => {
                let f = cell
                    .parse::<f64>()
                    .ok()
                    .filter(|_| matches!(looks, Some(FieldType::Integer | FieldType::Float)))
                    .ok_or(not_fitting(field_type))?;
                b.append_value(f);
            }
            FileColumn::Utf8(b) => b.append_value(cell),
            FileColumn::Date32(b) => {
                let format = time::macros::format_description!("[year]-[month]-[day]");
                let date = time::Date::parse(cell, &format).map_err(|_| not_fitting(field_type))?;
                b.append_value(date.to_julian_day() - UNIX_EPOCH_JULIAN_DAY);
            }
            FileColumn::Timestamp(b) => {
                let instant = time::OffsetDateTime::parse(cell, &Rfc3339)
                    .map_err(|_| not_fitting(field_type))?;
                let micros = i64::try_from(instant.unix_timestamp_nanos() / 1000)
                    .map_err(|_| not_fitting(field_type))?;
                b.append_value(micros);
            }
        }
        Ok(())
    }

    /// A JSON value, typed as inference typed its field.
    fn append_json(&mut self, value: &Value, field_type: FieldType) -> Result<(), &'static str> {
        if value.is_null() {
            self.append_null();
            return Ok(());
        }
        match self {
            FileColumn::Boolean(b) => {
                b.append_value(value.as_bool().ok_or(not_fitting(field_type))?);
            }
            FileColumn::Int64(b) => b.append_value(value.as_i64().ok_or(not_fitting(field_type))?),
            FileColumn::Float64(b) => {
                b.append_value(value.as_f64().ok_or(not_fitting(field_type))?);
            }
            FileColumn::Utf8(b) => match (field_type, value) {
                (FieldType::Json, value) => b.append_value(value.to_string()),
                (FieldType::Decimal, Value::Number(n)) => b.append_value(n.to_string()),
                (FieldType::Decimal, _) => return Err(not_fitting(field_type)),
                (_, Value::String(s)) => b.append_value(s),
                // Strings hold what else shows up in them, as JSON text.
                (_, value) => b.append_value(value.to_string()),
            },
            FileColumn::Date32(_) | FileColumn::Timestamp(_) => {
                return Err(not_fitting(field_type));
            }
        }
        Ok(())
    }
}

fn not_fitting(field_type: FieldType) -> &'static str {
    match field_type {
        FieldType::Integer => "a value that is not an integer, the type the first records decided",
        FieldType::Float => "a value that is not a number, the type the first records decided",
        FieldType::Boolean => {
            "a value that is not true or false, the type the first records decided"
        }
        FieldType::Date => "a value that is not a date, the type the first records decided",
        FieldType::TimestampTz => {
            "a value that is not an RFC 3339 timestamp, the type the first records decided"
        }
        FieldType::Decimal => "a value that is not a number, the type the first records decided",
        _ => "a value that does not fit the type the first records decided",
    }
}
