//! JSON request bodies the hub parses into its own types: the first byte picks which (a pipeline
//! specification, or a connection's configuration of one kind), the rest is the body. Each is
//! parsed and validated as the hub does when it is saved.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lockstep_connectors::{ConnectionConfig, ConnectionKind, FieldMeta, FieldType, Secrets};
use lockstep_engine::PipelineSpec;
use std::sync::LazyLock;

static FIELDS: LazyLock<Vec<FieldMeta>> = LazyLock::new(|| {
    [
        ("id", FieldType::Integer),
        ("name", FieldType::String),
        ("updated", FieldType::TimestampTz),
        ("price", FieldType::Decimal),
    ]
    .into_iter()
    .map(|(name, field_type)| FieldMeta {
        name: name.to_owned(),
        field_type,
        native: String::new(),
        nullable: true,
        primary_key: name == "id",
    })
    .collect()
});

fuzz_target!(|data: &[u8]| {
    let Some((&pick, body)) = data.split_first() else {
        return;
    };
    let kinds = ConnectionKind::ALL;
    match usize::from(pick) % (kinds.len() + 1) {
        0 => {
            if let Ok(spec) = serde_json::from_slice::<PipelineSpec>(body) {
                if spec.validate().is_ok() {
                    let _ = spec.validate_against(&FIELDS);
                    let _ = (
                        spec.read_fields(),
                        spec.write_mode(),
                        spec.rejection_threshold(),
                    );
                }
            }
        }
        n => {
            let Some(kind) = kinds.get(n - 1).copied() else {
                return;
            };
            if let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) {
                if let Ok(config) = ConnectionConfig::parse(kind, value) {
                    let _ = config.validate(&Secrets::new());
                }
            }
        }
    }
});
