use crate::config::check_relative_path;
use crate::{ConnectorError, Secrets};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `kind: "files"`: CSV (`.csv`), JSON (`.json`, an array of objects) and JSON Lines (`.jsonl`,
/// `.ndjson`) files in a folder inside the operator's files directory, and files uploaded through
/// the API (kept encrypted). No secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FilesConfig {
    /// A folder relative to the files directory; `None` for a connection of uploaded files only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<String>,
    #[serde(default)]
    pub csv: CsvOptions,
}

/// How CSV files are read. Without settings, each file's encoding and delimiter are detected on
/// their own (see `files::text`); the settings here apply to every file, and `files` overrides
/// them for one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvOptions {
    /// One ASCII character; `None` to detect it per file (`,` `;` tab or `|`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// The first line names the fields (else they are `column_1`, `column_2`, …).
    #[serde(default = "default_true")]
    pub header: bool,
    /// An encoding label (`utf-8`, `utf-16le`, `windows-1252`, …; the WHATWG labels); `None` to
    /// detect it per file (a byte order mark, else UTF-8, else Windows-1252). Applies to JSON
    /// and JSON Lines files too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
    /// Settings of single files, by the name discovery lists (`uploads/<name>` for an uploaded
    /// file; its bare name works too).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub files: BTreeMap<String, FileOptions>,
}

/// The settings of one file; those not set come from [`CsvOptions`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FileOptions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding: Option<String>,
}

impl Default for CsvOptions {
    fn default() -> Self {
        CsvOptions {
            delimiter: None,
            header: true,
            encoding: None,
            files: BTreeMap::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

pub const SECRET_FIELDS: &[&str] = &[];

/// How one file is to be read: what is set for it, the rest detected.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FileSettings {
    pub(crate) delimiter: Option<u8>,
    pub(crate) header: bool,
    pub(crate) encoding: Option<&'static encoding_rs::Encoding>,
}

/// A delimiter setting: one ASCII character other than a quote or a line break.
fn delimiter_byte(field: &str, delimiter: &str) -> Result<u8, ConnectorError> {
    match delimiter.as_bytes() {
        [d] if d.is_ascii() && !matches!(d, b'"' | b'\n' | b'\r') => Ok(*d),
        _ => Err(ConnectorError::config(
            field,
            "must be one ASCII character other than a quote or a line break",
        )),
    }
}

/// An encoding setting: a WHATWG label that names an encoding that can be decoded.
fn encoding_of(field: &str, label: &str) -> Result<&'static encoding_rs::Encoding, ConnectorError> {
    encoding_rs::Encoding::for_label(label.trim().as_bytes())
        .filter(|e| *e != encoding_rs::REPLACEMENT)
        .ok_or_else(|| {
            ConnectorError::config(
                field,
                "must name a text encoding, such as utf-8, utf-16le, utf-16be or windows-1252",
            )
        })
}

impl FilesConfig {
    pub fn validate(&self, _secrets: &Secrets) -> Result<(), ConnectorError> {
        if let Some(dir) = &self.directory {
            check_relative_path("config.directory", dir)?;
        }
        if let Some(d) = &self.csv.delimiter {
            delimiter_byte("config.csv.delimiter", d)?;
        }
        if let Some(e) = &self.csv.encoding {
            encoding_of("config.csv.encoding", e)?;
        }
        for (name, options) in &self.csv.files {
            let field = |what: &str| format!("config.csv.files[{name:?}]{what}");
            if super::check_file_name(name.strip_prefix(super::UPLOADS).unwrap_or(name)).is_err() {
                return Err(ConnectorError::config(
                    field(""),
                    "must be a file's name as discovery lists it (no folders)",
                ));
            }
            if let Some(d) = &options.delimiter {
                delimiter_byte(&field(".delimiter"), d)?;
            }
            if let Some(e) = &options.encoding {
                encoding_of(&field(".encoding"), e)?;
            }
        }
        Ok(())
    }

    /// How the object `name` is read (`upload` is an uploaded file's bare name). Settings are
    /// validated before a connector is built; one that is not valid counts as not set.
    pub(crate) fn settings(&self, name: &str, upload: Option<&str>) -> FileSettings {
        let own = self
            .csv
            .files
            .get(name)
            .or_else(|| upload.and_then(|bare| self.csv.files.get(bare)));
        let delimiter = own
            .and_then(|o| o.delimiter.as_deref())
            .or(self.csv.delimiter.as_deref())
            .and_then(|d| delimiter_byte("", d).ok());
        let encoding = own
            .and_then(|o| o.encoding.as_deref())
            .or(self.csv.encoding.as_deref())
            .and_then(|e| encoding_of("", e).ok());
        FileSettings {
            delimiter,
            header: own.and_then(|o| o.header).unwrap_or(self.csv.header),
            encoding,
        }
    }
}
