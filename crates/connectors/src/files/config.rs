use crate::config::check_relative_path;
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};

/// `kind: "files"`: CSV (`.csv`), JSON (`.json`, an array of objects) and JSON Lines (`.jsonl`,
/// `.ndjson`) files in a folder inside the operator's files directory, and files uploaded through
/// the API (kept encrypted). No secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// A folder relative to the files directory; `None` for a connection of uploaded files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(default)]
    pub csv: CsvOptions,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// One ASCII character.
    #[serde(default = "default_delimiter")]
    pub delimiter: String,
    /// The first line names the fields (else they are `column_1`, `column_2`, …).
    #[serde(default = "default_true")]
    pub header: bool,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: default_delimiter(),
            header: true,
        }
    }
}

fn default_delimiter() -> String {
    ",".to_owned()
}

fn default_true() -> bool {
    true
}

pub const SECRET_FIELDS: &[&str] = &[];

impl FilesConfig {
    pub fn validate(&self, _secrets: &Secrets) -> Result<(), ConnectorError> {
        if let Some(dir) = &self.directory {
            check_relative_path("config.directory", dir)?;
        }
        let d = self.csv.delimiter.as_bytes();
        if d.len() != 1 || !d.iter().all(|b| b.is_ascii() && *b != b'"' && *b != b'\n') {
            return Err(ConnectorError::config(
                "config.csv.delimiter",
                "must be one ASCII character other than a quote or a line break",
            ));
        }
        Ok(())
    }

    /// The delimiter byte (validated).
    pub fn delimiter(&self) -> u8 {
        self.csv.delimiter.bytes().next().unwrap_or(b',')
    }
}
