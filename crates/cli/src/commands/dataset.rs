//! `lockstep dataset pull|list|show|submit|delete`: data sets through the API, with progress
//! bars. Records are reviewed, edited and ticked in the web UI; the command line pulls, lists
//! and submits.

use crate::args::{DatasetCommand, Format, TokenClientArgs};
use crate::client::{ApiClient, ApiProblem};
use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use std::fmt::Write as _;
use std::time::Duration;

/// How often a pull or a submit is polled.
const POLL: Duration = Duration::from_millis(250);

#[derive(Debug, Deserialize)]
struct PipelineList {
    pipelines: Vec<Pipeline>,
}

#[derive(Debug, Deserialize)]
struct Pipeline {
    id: String,
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct Counts {
    records: u64,
    create: u64,
    update: u64,
    unchanged: u64,
    destination_only: u64,
    errors: u64,
    warnings: u64,
    ticked: u64,
    ticked_with_errors: u64,
    submitted: u64,
    failed: u64,
    read: u64,
    skipped: u64,
    written: u64,
}

#[derive(Debug, Clone, Deserialize)]
struct Dataset {
    id: String,
    name: String,
    #[serde(default)]
    pipeline_id: String,
    #[serde(default)]
    owner: String,
    state: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    counts: Counts,
    #[serde(default)]
    fields: Vec<String>,
    #[serde(default)]
    key: Vec<String>,
    #[serde(default)]
    shared_with: Vec<String>,
    #[serde(default)]
    expires_at: Option<String>,
}

pub async fn run(command: DatasetCommand) -> anyhow::Result<()> {
    match command {
        DatasetCommand::Pull {
            auth,
            pipeline,
            name,
            filter,
            no_wait,
        } => pull(&auth, &pipeline, name, filter, no_wait).await,
        DatasetCommand::List { auth, all } => list(&auth, all).await,
        DatasetCommand::Show { auth, dataset } => {
            let api = super::pipeline::client(&auth)?;
            let id = resolve(&api, &dataset).await?;
            let value: Value = api.get(&format!("/api/v1/datasets/{id}")).await?;
            if auth.client.format == Format::Json {
                println!("{value}");
                return Ok(());
            }
            let dataset = parse(value)?;
            print!("{}", describe(&dataset));
            Ok(())
        }
        DatasetCommand::Submit {
            auth,
            dataset,
            no_wait,
        } => submit(&auth, &dataset, no_wait).await,
        DatasetCommand::Delete { auth, dataset } => {
            let api = super::pipeline::client(&auth)?;
            let id = resolve(&api, &dataset).await?;
            api.delete(&format!("/api/v1/datasets/{id}")).await?;
            if auth.client.format == Format::Json {
                println!("{}", serde_json::json!({ "deleted": id }));
            } else {
                println!("Deleted data set {id}.");
            }
            Ok(())
        }
    }
}

fn parse(value: Value) -> anyhow::Result<Dataset> {
    serde_json::from_value(value).context("the hub answered an unexpected data set")
}

async fn pull(
    auth: &TokenClientArgs,
    pipeline: &str,
    name: Option<String>,
    filter: Option<String>,
    no_wait: bool,
) -> anyhow::Result<()> {
    let api = super::pipeline::client(auth)?;
    let list: PipelineList = api.get("/api/v1/pipelines").await?;
    let found = list
        .pipelines
        .iter()
        .find(|p| p.id == pipeline)
        .or_else(|| list.pipelines.iter().find(|p| p.name == pipeline));
    let Some(found) = found else {
        bail!("there is no pipeline named {pipeline:?} (see `lockstep pipeline list`)");
    };
    let mut body = serde_json::Map::new();
    body.insert("pipeline_id".to_owned(), Value::String(found.id.clone()));
    if let Some(name) = name {
        body.insert("name".to_owned(), Value::String(name));
    }
    if let Some(filter) = filter {
        body.insert("filter".to_owned(), Value::String(filter));
    }
    let started: Value = api.post("/api/v1/datasets", &body).await?;
    let started = parse(started)?;
    if no_wait {
        println!("{}", started.id);
        return Ok(());
    }
    let json = auth.client.format == Format::Json;
    let bar = spinner(json);
    let path = format!("/api/v1/datasets/{}", started.id);
    let (value, dataset) = loop {
        let value: Value = api.get(&path).await?;
        let dataset = parse(value.clone())?;
        bar.set_message(format!(
            "pulling {:?}: {} source records read",
            dataset.name, dataset.counts.read
        ));
        if dataset.state != "pulling" {
            break (value, dataset);
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();
    if json {
        println!("{value}");
    } else {
        print!("{}", describe(&dataset));
    }
    match dataset.state.as_str() {
        "failed" => bail!(
            "the pull failed: {}",
            dataset
                .message
                .as_deref()
                .unwrap_or("the hub gave no reason")
        ),
        _ => Ok(()),
    }
}

async fn list(auth: &TokenClientArgs, all: bool) -> anyhow::Result<()> {
    let api = super::pipeline::client(auth)?;
    let path = if all {
        "/api/v1/datasets?all=true"
    } else {
        "/api/v1/datasets"
    };
    let value: Value = api.get(path).await?;
    if auth.client.format == Format::Json {
        println!("{value}");
        return Ok(());
    }
    let datasets = datasets_of(value)?;
    if datasets.is_empty() {
        println!("No data sets yet (pull one with `lockstep dataset pull PIPELINE`).");
        return Ok(());
    }
    print!("{}", table(&datasets));
    Ok(())
}

/// The data sets of a list answer: `{"datasets": […]}` or a bare array.
fn datasets_of(value: Value) -> anyhow::Result<Vec<Dataset>> {
    let items = match value {
        Value::Array(items) => Value::Array(items),
        Value::Object(mut map) => map.remove("datasets").unwrap_or(Value::Null),
        _ => Value::Null,
    };
    serde_json::from_value(items).context("the hub answered an unexpected data set list")
}

/// The data sets as a table: id, name, owner, state, records, expiry.
fn table(datasets: &[Dataset]) -> String {
    let header = ["ID", "NAME", "OWNER", "STATE", "RECORDS", "EXPIRES"];
    let rows: Vec<[String; 6]> = datasets
        .iter()
        .map(|d| {
            [
                d.id.clone(),
                one_line(&d.name),
                d.owner.clone(),
                d.state.clone(),
                d.counts.records.to_string(),
                d.expires_at.as_deref().map(short_time).unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i == 4 {
                let _ = write!(text, "{cell:>w$}  ");
            } else {
                let _ = write!(text, "{cell:<w$}  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(str::to_owned));
    for row in &rows {
        line(row);
    }
    out
}

/// A name on one line: control characters (a newline in a name) shown as spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `2026-12-11T23:58:30.123Z` → `2026-12-11 23:58Z`; anything else as it is.
fn short_time(text: &str) -> String {
    match (text.get(..10), text.get(11..16)) {
        (Some(day), Some(time)) if text.get(10..11) == Some("T") => format!("{day} {time}Z"),
        _ => text.to_owned(),
    }
}

/// A data set in a few lines: its name and state, its counts per status, what to do next.
fn describe(d: &Dataset) -> String {
    let c = &d.counts;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Data set {} {:?}: {}",
        d.id,
        one_line(&d.name),
        d.state
    );
    if let Some(message) = &d.message {
        let _ = writeln!(out, "  {message}");
    }
    match d.state.as_str() {
        "pulling" => {
            let _ = writeln!(out, "  {} source records read so far", c.read);
        }
        "failed" => {}
        _ => {
            let mut read = format!(
                "  {} {} read from the source",
                c.read,
                crate::plural(c.read, "record", "records")
            );
            if c.skipped > 0 {
                let _ = write!(read, " ({} filtered out)", c.skipped);
            }
            let _ = writeln!(out, "{read}");
            let lines = [
                ("create", c.create, "new: a submit inserts them"),
                ("update", c.update, "differ from the destination"),
                ("unchanged", c.unchanged, "as in the destination"),
                (
                    "destination_only",
                    c.destination_only,
                    "only in the destination: never written",
                ),
            ];
            for (status, n, what) in lines {
                let _ = writeln!(out, "  {status:<17}{n:>10}  {what}");
            }
            let _ = writeln!(out, "  {:<17}{:>10}", "with errors", c.errors);
            let _ = writeln!(out, "  {:<17}{:>10}", "with warnings", c.warnings);
            let _ = writeln!(
                out,
                "  {:<17}{:>10}  {}",
                "ticked",
                c.ticked,
                if c.ticked_with_errors > 0 {
                    format!(
                        "{} with errors: fix or untick them before submitting",
                        c.ticked_with_errors
                    )
                } else {
                    "a submit writes them".to_owned()
                }
            );
            if c.submitted > 0 || c.failed > 0 {
                let _ = writeln!(
                    out,
                    "  last submit: {} written, {} failed",
                    c.submitted, c.failed
                );
            }
        }
    }
    if !d.key.is_empty() {
        let _ = writeln!(out, "  key: {}", d.key.join(", "));
    }
    if !d.fields.is_empty() {
        let _ = writeln!(out, "  fields: {}", d.fields.join(", "));
    }
    if !d.pipeline_id.is_empty() {
        let _ = writeln!(out, "  pipeline: {}", d.pipeline_id);
    }
    if !d.owner.is_empty() {
        let _ = writeln!(out, "  owner: {}", d.owner);
    }
    if !d.shared_with.is_empty() {
        let _ = writeln!(out, "  shared with: {}", d.shared_with.join(", "));
    }
    if let Some(expires) = &d.expires_at {
        let _ = writeln!(
            out,
            "  expires {} unless it is opened again",
            short_time(expires)
        );
    }
    out
}

/// A data set's id from its id or its name (when exactly one visible data set has it).
async fn resolve(api: &ApiClient, given: &str) -> anyhow::Result<String> {
    if uuid::Uuid::parse_str(given).is_ok() {
        return Ok(given.to_owned());
    }
    let value: Value = api.get("/api/v1/datasets").await?;
    let named: Vec<Dataset> = datasets_of(value)?
        .into_iter()
        .filter(|d| d.name == given)
        .collect();
    match named.as_slice() {
        [] => bail!("there is no data set named {given:?} (see `lockstep dataset list`)"),
        [one] => Ok(one.id.clone()),
        many => bail!(
            "{} data sets are named {given:?}: give the id of one ({})",
            many.len(),
            many.iter()
                .map(|d| d.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

async fn submit(auth: &TokenClientArgs, given: &str, no_wait: bool) -> anyhow::Result<()> {
    let api = super::pipeline::client(auth)?;
    let id = resolve(&api, given).await?;
    let path = format!("/api/v1/datasets/{id}");
    let started: Result<Value, anyhow::Error> = api
        .post(&format!("{path}/submit"), &serde_json::json!({}))
        .await;
    let started = match started {
        Ok(value) => parse(value)?,
        Err(err) => return Err(refused(err)),
    };
    if no_wait {
        println!("{}", started.id);
        return Ok(());
    }
    let json = auth.client.format == Format::Json;
    let bar = if json {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(started.counts.ticked)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} {elapsed_precise} [{bar:30}] {pos}/{len} records written {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    let (value, dataset) = loop {
        let value: Value = api.get(&path).await?;
        let dataset = parse(value.clone())?;
        bar.set_position(dataset.counts.written);
        if dataset.state != "submitting" {
            break (value, dataset);
        }
        tokio::time::sleep(POLL).await;
    };
    bar.finish_and_clear();
    let ok = dataset.state == "submitted";
    if json {
        println!("{value}");
    } else if ok {
        println!(
            "Data set {} {:?} submitted: {} {} written to the destination.",
            dataset.id,
            one_line(&dataset.name),
            dataset.counts.written,
            crate::plural(dataset.counts.written, "record", "records")
        );
    }
    if ok {
        return Ok(());
    }
    bail!(
        "the submit of data set {} did not complete: {}",
        dataset.id,
        dataset
            .message
            .as_deref()
            .unwrap_or("the hub gave no reason (see `lockstep dataset show`)")
    )
}

/// A refused submit's error, with the records in its way and their errors, one per line.
fn refused(err: anyhow::Error) -> anyhow::Error {
    let Some(problem) = err.downcast_ref::<ApiProblem>() else {
        return err;
    };
    if problem.rows.is_empty() {
        return err;
    }
    let mut message = format!("the submit was refused: {problem}\n");
    for row in &problem.rows {
        let _ = writeln!(
            message,
            "  row {}: {}",
            row.row,
            if row.issues.is_empty() {
                "has an error".to_owned()
            } else {
                row.issues.join("; ")
            }
        );
    }
    message.push_str(
        "Fix these records or untick them (in the web UI), then submit again; nothing was \
         written.",
    );
    anyhow::anyhow!(message)
}

fn spinner(hidden: bool) -> indicatif::ProgressBar {
    let bar = if hidden {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new_spinner()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn dataset(name: &str, records: u64) -> Dataset {
        Dataset {
            id: "0193a000-0000-7000-8000-000000000001".to_owned(),
            name: name.to_owned(),
            pipeline_id: String::new(),
            owner: "u1".to_owned(),
            state: "ready".to_owned(),
            message: None,
            counts: Counts {
                records,
                ..Counts::default()
            },
            fields: Vec::new(),
            key: Vec::new(),
            shared_with: Vec::new(),
            expires_at: Some("2026-12-11T23:58:30.5Z".to_owned()),
        }
    }

    #[test]
    fn the_list_is_a_table_whose_columns_line_up() {
        let text = table(&[dataset("north\nregion", 12), dataset("all", 1_000_000)]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("ID "), "{text}");
        assert!(lines[1].contains("north region"), "{text}");
        assert!(lines[1].contains("2026-12-11 23:58Z"), "{text}");
        let at = |line: &str, word: &str| line.find(word).unwrap();
        assert_eq!(at(lines[0], "STATE"), at(lines[1], "ready"));
        // Records are right-aligned under their header.
        let end = at(lines[0], "RECORDS") + "RECORDS".len();
        assert_eq!(at(lines[1], "12") + 2, end, "{text}");
        assert_eq!(at(lines[2], "1000000") + 7, end, "{text}");
    }

    #[test]
    fn a_list_answer_is_an_object_or_an_array() {
        let one = serde_json::json!({"id": "x", "name": "n", "state": "ready"});
        assert_eq!(
            datasets_of(serde_json::json!({ "datasets": [one.clone()] }))
                .unwrap()
                .len(),
            1
        );
        assert_eq!(datasets_of(serde_json::json!([one])).unwrap().len(), 1);
        assert!(datasets_of(serde_json::json!({"other": 1})).is_err());
    }
}
