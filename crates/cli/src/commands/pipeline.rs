//! `lockstep pipeline list|run`: pipelines through the API, with a progress bar.

use crate::args::{Format, PipelineCommand, TokenClientArgs};
use crate::client::ApiClient;
use crate::commands::{EXIT_REJECTIONS, ExitWith};
use anyhow::{Context, bail};
use serde::Deserialize;
use serde_json::Value;
use std::time::Duration;

#[derive(Debug, Deserialize)]
struct PipelineList {
    pipelines: Vec<Pipeline>,
}

#[derive(Debug, Deserialize)]
struct Pipeline {
    id: String,
    name: String,
    mode: String,
    #[serde(default)]
    last_run: Option<Run>,
}

#[derive(Debug, Deserialize, serde::Serialize)]
struct Run {
    id: String,
    state: String,
    records_read: u64,
    records_written: u64,
    records_rejected: u64,
    #[serde(default)]
    records_skipped: u64,
    #[serde(default)]
    records_held_back: u64,
    #[serde(default)]
    rate: Option<f64>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    duration_seconds: Option<f64>,
}

pub(crate) fn client(auth: &TokenClientArgs) -> anyhow::Result<ApiClient> {
    let token = match auth.token.clone() {
        Some(token) if !token.trim().is_empty() => token.trim().to_owned(),
        _ => super::read_secret("Session or API token: ")?,
    };
    ApiClient::new(&auth.client, Some(token))
}

pub async fn run(command: PipelineCommand) -> anyhow::Result<()> {
    match command {
        PipelineCommand::List { auth } => {
            let api = client(&auth)?;
            let value: Value = api.get("/api/v1/pipelines").await?;
            if auth.client.format == Format::Json {
                println!("{value}");
                return Ok(());
            }
            let list: PipelineList = serde_json::from_value(value)
                .context("the hub answered an unexpected pipeline list")?;
            if list.pipelines.is_empty() {
                println!("No pipelines yet.");
            }
            for p in list.pipelines {
                let last = p.last_run.map_or("never run".to_owned(), |r| {
                    format!("last run {}: {} written", r.state, r.records_written)
                });
                println!("{}  {}  ({}; {last})", p.id, p.name, p.mode);
            }
            Ok(())
        }
        PipelineCommand::Run {
            auth,
            name,
            no_wait,
        } => {
            let api = client(&auth)?;
            let list: PipelineList = api.get("/api/v1/pipelines").await?;
            let Some(pipeline) = list.pipelines.into_iter().find(|p| p.name == name) else {
                bail!("there is no pipeline named {name:?} (see `lockstep pipeline list`)");
            };
            let started: Value = api
                .post(
                    &format!("/api/v1/pipelines/{}/runs", pipeline.id),
                    &serde_json::json!({}),
                )
                .await?;
            let run_id = started
                .get("id")
                .and_then(Value::as_str)
                .context("the hub answered no run id")?
                .to_owned();
            if no_wait {
                println!("{run_id}");
                return Ok(());
            }
            // The hub answers as soon as the run ends, or after a second with its progress.
            let path = format!("/api/v1/pipelines/{}/runs/{run_id}?wait=1", pipeline.id);
            let json = auth.client.format == Format::Json;
            let bar = if json {
                indicatif::ProgressBar::hidden()
            } else {
                indicatif::ProgressBar::new_spinner()
            };
            bar.set_style(
                indicatif::ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            let run: Run = loop {
                let run: Run = api.get(&path).await?;
                bar.set_message(format!(
                    "{}: {} read, {} written, {} rejected{}",
                    run.state,
                    run.records_read,
                    run.records_written,
                    run.records_rejected,
                    run.rate
                        .map(|r| format!(" ({r:.0} records/s)"))
                        .unwrap_or_default()
                ));
                if matches!(
                    run.state.as_str(),
                    "succeeded" | "succeeded_with_rejections" | "failed" | "cancelled"
                ) {
                    break run;
                }
            };
            bar.finish_and_clear();
            if json {
                println!("{}", serde_json::to_string(&run)?);
            } else {
                let mut also = String::new();
                if run.records_skipped > 0 {
                    also.push_str(&format!(", {} filtered out", run.records_skipped));
                }
                if run.records_held_back > 0 {
                    also.push_str(&format!(
                        ", {} held back for the next run",
                        run.records_held_back
                    ));
                }
                println!(
                    "Run {} of {:?} {}: {} read, {} written, {} rejected{also} in {:.1} s.",
                    run.id,
                    pipeline.name,
                    run.state,
                    run.records_read,
                    run.records_written,
                    run.records_rejected,
                    run.duration_seconds.unwrap_or(0.0)
                );
                if let Some(message) = &run.message {
                    println!("{message}");
                }
                if run.records_rejected > 0 {
                    println!(
                        "Rejected records: GET /api/v1/pipelines/{}/runs/{}/errors",
                        pipeline.id, run.id
                    );
                }
            }
            match run.state.as_str() {
                "succeeded" => Ok(()),
                "succeeded_with_rejections" => Err(anyhow::Error::new(ExitWith {
                    code: EXIT_REJECTIONS,
                    message: format!(
                        "the run committed, but {} records were rejected",
                        run.records_rejected
                    ),
                })),
                other => bail!("the run {other}"),
            }
        }
    }
}
