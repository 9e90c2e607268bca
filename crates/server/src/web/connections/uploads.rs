//! Files of a `files` connection uploaded from its details page (a `multipart/form-data` form
//! whose first field is the CSRF token), and deleted there. The use cases are the API's.

use super::{Empty, connection_id, details_page, details_with_error};
use crate::AppState;
use crate::web::multipart::{Unreadable, sent_csrf};
use crate::web::page::{WebError, render_status, see_other};
use crate::web::session::{Posted, SignedIn};
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use lockstep_app::AppError;
use lockstep_domain::ConnectionId;

/// The `file` field: its name (the last path component only) and its contents. A form
/// without a chosen file answers an empty name.
async fn sent_file(form: &mut Multipart) -> Result<(String, Vec<u8>), Unreadable> {
    while let Some(field) = form.next_field().await? {
        if field.name() != Some("file") {
            continue;
        }
        let name = field
            .file_name()
            .and_then(|n| n.rsplit(['/', '\\']).next())
            .unwrap_or_default()
            .trim()
            .to_owned();
        let contents = field.bytes().await?;
        return Ok((name, contents.to_vec()));
    }
    Ok((String::new(), Vec::new()))
}

/// The details page with `message` next to the file input.
async fn upload_refused(
    state: &AppState,
    signed: &SignedIn,
    id: ConnectionId,
    status: StatusCode,
    message: String,
) -> Result<Response, WebError> {
    let mut page = details_page(state, signed, id, None).await?;
    page.upload_error = Some(message);
    Ok(render_status(status, &page))
}

/// "Upload": the CSRF check, then the API's use case (Administrators; a file of the same name
/// is replaced).
pub(super) async fn upload(
    State(state): State<AppState>,
    Path(id): Path<String>,
    signed: SignedIn,
    headers: HeaderMap,
    form: Result<Multipart, MultipartRejection>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    // A body that is not multipart has no token this handler can check.
    let mut form = form.map_err(|_| WebError::Csrf)?;
    let too_large = || format!("Files are limited to {} MiB.", lockstep_app::MAX_UPLOAD_MIB);
    let csrf = match sent_csrf(&headers, &mut form).await {
        Ok(csrf) => csrf,
        // A token field too large to read is no token.
        Err(Unreadable::TooLarge) => return Err(WebError::Csrf),
        Err(Unreadable::Broken(err)) => return Err(err),
    };
    if !signed.caller.csrf_matches(&csrf) {
        return Err(WebError::Csrf);
    }
    let (name, contents) = match sent_file(&mut form).await {
        Ok(file) => file,
        Err(Unreadable::TooLarge) => {
            let status = StatusCode::PAYLOAD_TOO_LARGE;
            return upload_refused(&state, &signed, id, status, too_large()).await;
        }
        Err(Unreadable::Broken(err)) => return Err(err),
    };
    // An empty name goes to the use case too: it asks the policy first.
    match state
        .hub
        .upload_file(&signed.caller, id, &name, &contents)
        .await
    {
        Ok(_) => Ok(see_other(&format!("/connections/{id}?notice=saved"))),
        Err(AppError::Invalid { field, reason }) => {
            let message = match field {
                "name" if name.is_empty() => "Choose a file to upload.".to_owned(),
                "name" => format!("The file name {reason}."),
                "body" => too_large(),
                "file" => format!("This file cannot be read: {reason}."),
                _ => format!("{field}: {reason}."),
            };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            upload_refused(&state, &signed, id, status, message).await
        }
        Err(err) => details_with_error(&state, &signed, id, err).await,
    }
}

/// "Delete" of one uploaded file (Administrators), by its name as the API does.
pub(super) async fn delete(
    State(state): State<AppState>,
    Path((id, name)): Path<(String, String)>,
    Posted(signed, Empty {}): Posted<Empty>,
) -> Result<Response, WebError> {
    let id = connection_id(&id)?;
    match state.hub.delete_upload(&signed.caller, id, &name).await {
        Ok(()) => Ok(see_other(&format!("/connections/{id}?notice=deleted"))),
        Err(err) => details_with_error(&state, &signed, id, err).await,
    }
}
