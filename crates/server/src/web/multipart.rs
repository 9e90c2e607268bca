//! Forms that carry a file (`multipart/form-data`): the CSRF token comes first — htmx's header,
//! or else the form's first field, which must be `csrf` — so nothing else of the body is read
//! for a request that may not be the member's own.

use super::page::WebError;
use super::session::SignedIn;
use axum::extract::multipart::{Multipart, MultipartError, MultipartRejection};
use axum::http::{HeaderMap, StatusCode};
use std::collections::BTreeMap;

/// A form that could not be read: too large (413 on the page) or broken (the error page).
pub(crate) enum Unreadable {
    TooLarge,
    Broken(WebError),
}

impl From<MultipartError> for Unreadable {
    fn from(err: MultipartError) -> Unreadable {
        if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
            Unreadable::TooLarge
        } else {
            tracing::debug!(
                status = err.status().as_u16(),
                "an upload form could not be read"
            );
            Unreadable::Broken(WebError::bad_request("The upload could not be read."))
        }
    }
}

/// The CSRF token: htmx's header, or else the form's first field, which must be `csrf`.
pub(crate) async fn sent_csrf(
    headers: &HeaderMap,
    form: &mut Multipart,
) -> Result<String, Unreadable> {
    if let Some(token) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return Ok(token.to_owned());
    }
    match form.next_field().await? {
        Some(field) if field.name() == Some("csrf") => Ok(field.text().await?),
        _ => Ok(String::new()),
    }
}

/// The form once its CSRF token matched the session's; a body that is not multipart, or a
/// token that is missing, wrong or too large to read, is refused as a forged form.
pub(crate) async fn checked(
    signed: &SignedIn,
    headers: &HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Multipart, WebError> {
    let mut form = form.map_err(|_| WebError::Csrf)?;
    let csrf = match sent_csrf(headers, &mut form).await {
        Ok(csrf) => csrf,
        Err(Unreadable::TooLarge) => return Err(WebError::Csrf),
        Err(Unreadable::Broken(err)) => return Err(err),
    };
    if !signed.caller.csrf_matches(&csrf) {
        return Err(WebError::Csrf);
    }
    Ok(form)
}

/// The rest of a form with one file: its text fields by name, and the `file` field's name (the
/// last path component only; empty when no file was chosen) and contents.
#[derive(Default)]
pub(crate) struct FileForm {
    pub fields: BTreeMap<String, String>,
    pub file_name: String,
    pub file: Vec<u8>,
}

impl FileForm {
    /// A text field, trimmed; `None` when missing or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.fields
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
    }
}

/// Reads the fields after the CSRF token.
pub(crate) async fn file_form(form: &mut Multipart) -> Result<FileForm, Unreadable> {
    let mut out = FileForm::default();
    while let Some(field) = form.next_field().await? {
        let Some(name) = field.name().map(str::to_owned) else {
            continue;
        };
        if name == "file" {
            out.file_name = field
                .file_name()
                .and_then(|n| n.rsplit(['/', '\\']).next())
                .unwrap_or_default()
                .trim()
                .to_owned();
            out.file = field.bytes().await?.to_vec();
        } else {
            let value = field.text().await?;
            out.fields.insert(name, value);
        }
    }
    Ok(out)
}
