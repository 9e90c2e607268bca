//! Values shown or moved redacted: masked (`••••`), partly kept (`••••1234`), scrambled (a keyed
//! hash: equal values stay equal, so they still join and compare) or hidden (absent).
//!
//! The engine has no keys: scrambling takes a [`Scrambler`] (the app's HMAC under the
//! organization's key). A JSON value ([`redact_json`]) and the same value in an Arrow column
//! ([`redact_array`]) redact to the same text: both read a value through the
//! [`crate::records::comparable`] text and the connectors' `Record` conventions.

use crate::convert::{Cell, ColumnView, cell_to_json};
use crate::records::{comparable, write_comparable};
use arrow_array::builder::StringBuilder;
use arrow_array::{Array, ArrayRef};
use lockstep_connectors::FieldType;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// What a masked value shows.
pub const MASK: &str = "••••";
/// What a scrambled value starts with.
pub const SCRAMBLE_PREFIX: &str = "scr_";
/// How many characters a partial redaction keeps when it says none.
pub const DEFAULT_KEEP: u32 = 4;
/// The most characters a partial redaction may keep.
pub const MAX_KEEP: u32 = 64;
/// How many bytes of the keyed hash a scrambled value shows (as hex).
const SCRAMBLE_BYTES: usize = 12;

/// How a value is redacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RedactKind {
    /// Shown as `••••`.
    Mask,
    /// Only the last `keep` characters shown: `••••1234`.
    Partial,
    /// A keyed hash under the organization's key (`scr_…`): equal values give equal texts, and
    /// without the key it says nothing of the value.
    Scramble,
    /// The field is absent.
    Hide,
}

impl RedactKind {
    /// The name as written in a definition (`scramble`).
    pub fn name(self) -> &'static str {
        match self {
            RedactKind::Mask => "mask",
            RedactKind::Partial => "partial",
            RedactKind::Scramble => "scramble",
            RedactKind::Hide => "hide",
        }
    }
}

/// A redaction: its kind, and for `partial` how many trailing characters stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Redaction {
    /// How the value is redacted.
    pub kind: RedactKind,
    /// `partial` only: the characters kept at the end (1 to 64; default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
}

impl Redaction {
    /// A redaction of `kind` (a partial one keeps the default 4 characters).
    pub fn new(kind: RedactKind) -> Redaction {
        Redaction { kind, keep: None }
    }

    /// A partial redaction keeping the last `keep` characters.
    pub fn partial(keep: u32) -> Redaction {
        Redaction {
            kind: RedactKind::Partial,
            keep: Some(keep),
        }
    }

    /// Whether it is well formed: `keep` only for `partial`, from 1 to 64. The reason names
    /// `keep`, never a value.
    pub fn check(&self) -> Result<(), String> {
        match (self.kind, self.keep) {
            (RedactKind::Partial, Some(k)) if !(1..=MAX_KEEP).contains(&k) => Err(format!(
                "keep must be from 1 to {MAX_KEEP} characters (it is {k})"
            )),
            (RedactKind::Partial, _) | (_, None) => Ok(()),
            (kind, Some(_)) => Err(format!(
                "keep is only for a partial redaction, not {}",
                kind.name()
            )),
        }
    }

    /// The characters a partial redaction keeps (the default when it says none, within 1 to
    /// 64); 0 for the other kinds.
    pub fn kept(&self) -> usize {
        match self.kind {
            RedactKind::Partial => self.keep.unwrap_or(DEFAULT_KEEP).clamp(1, MAX_KEEP) as usize,
            _ => 0,
        }
    }

    /// How much it withholds, to pick the strictest of several redactions (the greatest wins):
    /// hide > mask > scramble > partial, and a partial keeping fewer characters is stricter.
    pub fn strictness(&self) -> u32 {
        match self.kind {
            RedactKind::Hide => 400,
            RedactKind::Mask => 300,
            RedactKind::Scramble => 200,
            // 36 (keeps 64) to 99 (keeps 1).
            RedactKind::Partial => 100 - self.kept() as u32,
        }
    }
}

/// A keyed hash of a value's bytes: HMAC-SHA256 under the organization's key, given by the app
/// (the engine has no keys).
pub type Scrambler = Arc<dyn Fn(&[u8]) -> [u8; 32] + Send + Sync>;

/// Why a column could not be redacted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the redaction is not valid: {0}")]
pub struct RedactError(String);

/// `value` redacted; `None` when it is hidden (the field is absent). A null stays null (unless
/// hidden).
pub fn redact_json(
    r: &Redaction,
    value: &serde_json::Value,
    scrambler: &Scrambler,
) -> Option<serde_json::Value> {
    if r.kind == RedactKind::Hide {
        return None;
    }
    if value.is_null() {
        return Some(serde_json::Value::Null);
    }
    let text = match r.kind {
        RedactKind::Hide => return None,
        RedactKind::Mask => MASK.to_owned(),
        RedactKind::Partial => partial(&shown(value), r.kept()),
        RedactKind::Scramble => scrambled(&comparable(value), scrambler),
    };
    Some(serde_json::Value::String(text))
}

/// The column `array` (whose values are of `field_type`) redacted, as a text (Utf8) column:
/// each value as [`redact_json`] redacts its `Record` JSON value, nulls null; hidden, a column
/// of nulls.
pub fn redact_array(
    r: &Redaction,
    array: &ArrayRef,
    field_type: FieldType,
    scrambler: &Scrambler,
) -> Result<ArrayRef, RedactError> {
    r.check().map_err(RedactError)?;
    let rows = array.len();
    if r.kind == RedactKind::Hide {
        return Ok(arrow_array::new_null_array(
            &arrow_schema::DataType::Utf8,
            rows,
        ));
    }
    let view = ColumnView::new(array, field_type);
    let mut builder = StringBuilder::with_capacity(rows, rows * 8);
    let mut text = String::new();
    for row in 0..rows {
        let cell = view.cell(row);
        if cell == Cell::Null {
            builder.append_null();
            continue;
        }
        match r.kind {
            RedactKind::Hide => builder.append_null(),
            RedactKind::Mask => builder.append_value(MASK),
            RedactKind::Partial => {
                builder.append_value(partial(&shown(&cell_to_json(&cell)), r.kept()));
            }
            RedactKind::Scramble => {
                text.clear();
                write_comparable(&cell, &mut text);
                builder.append_value(scrambled(&text, scrambler));
            }
        }
    }
    Ok(Arc::new(builder.finish()))
}

/// The text a value shows: a string itself, anything else its JSON text.
fn shown(value: &serde_json::Value) -> std::borrow::Cow<'_, str> {
    match value {
        serde_json::Value::String(s) => std::borrow::Cow::Borrowed(s),
        other => std::borrow::Cow::Owned(other.to_string()),
    }
}

/// `••••` and the last `keep` characters of `text`; only `••••` when it has no more than `keep`.
fn partial(text: &str, keep: usize) -> String {
    let count = text.chars().count();
    if count <= keep {
        return MASK.to_owned();
    }
    let tail: String = text.chars().skip(count - keep).collect();
    format!("{MASK}{tail}")
}

/// `scr_` and the first 12 bytes of the keyed hash of `comparable`, in lowercase hex.
fn scrambled(comparable: &str, scrambler: &Scrambler) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let hash = scrambler(comparable.as_bytes());
    let mut out = String::with_capacity(SCRAMBLE_PREFIX.len() + SCRAMBLE_BYTES * 2);
    out.push_str(SCRAMBLE_PREFIX);
    for b in hash.iter().take(SCRAMBLE_BYTES) {
        for nibble in [b >> 4, b & 0x0f] {
            out.push(char::from(
                HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
            ));
        }
    }
    out
}

#[cfg(test)]
#[path = "redact_tests.rs"]
mod tests;
