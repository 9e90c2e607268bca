//! A file uploaded to a `files` connection: the first byte picks the file's extension and the
//! connection's CSV options, the rest is the file. It goes through the upload check, discovery
//! (encoding and delimiter detection, type inference), a sample, and a batch read, as the hub
//! does with an upload.
#![no_main]

use futures_util::StreamExt as _;
use libfuzzer_sys::fuzz_target;
use lockstep_connectors::batch::{BatchSource as _, ReadSpec};
use lockstep_connectors::files::{FilesConfig, FilesConnector};
use lockstep_connectors::{Connector as _, Context, EgressPolicy, UploadedFile};
use std::sync::LazyLock;

static RUNTIME: LazyLock<Option<tokio::runtime::Runtime>> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .max_blocking_threads(1)
        .build()
        .ok()
});

const NAMES: [&str; 4] = ["data.csv", "data.json", "data.jsonl", "data.ndjson"];

fn config(pick: u8) -> Option<FilesConfig> {
    let delimiter = match (pick >> 2) & 3 {
        0 => serde_json::Value::Null,
        1 => ";".into(),
        2 => "\t".into(),
        _ => "|".into(),
    };
    let encoding = match (pick >> 5) & 3 {
        0 => serde_json::Value::Null,
        1 => "utf-8".into(),
        2 => "windows-1252".into(),
        _ => "utf-16le".into(),
    };
    let mut csv = serde_json::json!({ "header": pick & 0x10 == 0 });
    if !delimiter.is_null() {
        csv["delimiter"] = delimiter;
    }
    if !encoding.is_null() {
        csv["encoding"] = encoding;
    }
    serde_json::from_value(serde_json::json!({ "csv": csv })).ok()
}

fuzz_target!(|data: &[u8]| {
    let Some(runtime) = RUNTIME.as_ref() else {
        return;
    };
    let Some((&pick, contents)) = data.split_first() else {
        return;
    };
    let name = NAMES[usize::from(pick & 3)];
    let Some(config) = config(pick) else {
        return;
    };
    let _ = lockstep_connectors::files::check_upload(&config, name, contents);
    let upload = UploadedFile {
        name: name.to_owned(),
        contents: contents.to_vec().into(),
    };
    let connector = FilesConnector::new(
        config,
        vec![upload],
        Context::new(EgressPolicy::default(), None),
    );
    runtime.block_on(async {
        let Ok(objects) = connector.discover().await else {
            return;
        };
        for object in objects {
            let _ = connector.sample(&object.name, 10).await;
            let spec = ReadSpec {
                object: object.name.clone(),
                fields: None,
                cursor: None,
                batch_rows: 7,
            };
            if let Ok((_, mut batches)) = connector.read(spec).await {
                while let Some(batch) = batches.next().await {
                    if batch.is_err() {
                        break;
                    }
                }
            }
        }
    });
});
