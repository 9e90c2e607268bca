//! Uploaded files: the names a `files` connection takes, and the check an upload passes before
//! it is stored (read from start to end as the connection would read it).

use super::{Capped, FilesConfig, Format, UPLOADS, csv_error, read_json, read_json_lines, text};
use crate::{ConnectorError, FailureKind};

/// The extensions of the files read, in the words of errors.
const EXTENSIONS: &str = ".csv, .json, .jsonl or .ndjson";

/// Why `name` is not a file name a `files` connection takes (uploads and files of the folder
/// alike): any letters of any script, digits, spaces and punctuation, ending in a known
/// extension; never a path (a slash, a backslash or `..`), a control or invisible formatting
/// character, a leading dot, or leading or trailing spaces.
pub fn check_file_name(name: &str) -> Result<(), String> {
    let invisible = |c: char| {
        matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
    };
    let problem = if name.is_empty() {
        "must not be empty"
    } else if name.len() > 255 {
        "must be at most 255 bytes long"
    } else if name.contains(['/', '\\']) || name.contains("..") {
        "must be a file name, not a path (no '/', '\\' or '..')"
    } else if name.starts_with('.') {
        "must not start with a dot"
    } else if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        "must not start or end with a space"
    } else if name.chars().any(|c| c.is_control() || invisible(c)) {
        "must not hold control or invisible formatting characters"
    } else if Format::of(name).is_none() {
        return Err(format!("must be a file name ending in {EXTENSIONS}"));
    } else {
        return Ok(());
    };
    Err(problem.to_owned())
}

/// Checks an uploaded file before it is stored: its name, and that it can be read from start
/// to end as the connection would read it (encoding, CSV quoting and field counts, JSON syntax).
/// Values are not typed. The error names the file and the problem, never its content.
pub fn check_upload(
    config: &FilesConfig,
    name: &str,
    contents: &[u8],
) -> Result<(), ConnectorError> {
    check_file_name(name).map_err(|why| ConnectorError::config("name", why))?;
    let object = format!("{UPLOADS}{name}");
    let format = Format::of(name).unwrap_or(Format::Csv);
    if contents.is_empty() {
        return Err(ConnectorError::failed(
            FailureKind::Protocol,
            format!("{name}: the file is empty"),
        ));
    }
    let settings = config.settings(&object, Some(name));
    let text = text::open(name, Capped::new(contents), &settings)?;
    match format {
        Format::Csv => {
            let (mut reader, _) = text.csv(&settings);
            let mut record = csv::ByteRecord::new();
            while reader
                .read_byte_record(&mut record)
                .map_err(|err| csv_error(name, &err))?
            {}
            Ok(())
        }
        Format::Json => read_json(name, text, usize::MAX).map(|_| ()),
        Format::JsonLines => read_json_lines(name, text, usize::MAX).map(|_| ()),
    }
}
