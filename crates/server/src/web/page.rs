//! What every page shares: the layout's context ([`Shell`]), rendering, form errors, redirects,
//! and the error page.

use crate::problem::ApiError;
use askama::Template;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use lockstep_app::{AppError, TimeZone};
use lockstep_domain::Role;
use lockstep_policy::{Action, Decision, Resource, Subject, decide};

/// The signed-in member as the navigation shows them.
#[derive(Debug, Clone)]
pub(crate) struct MemberNav {
    /// The member's organization's name, in the header of every page.
    pub organization: String,
    pub display_name: String,
    pub email: String,
    pub role: Role,
    pub member: lockstep_policy::Member,
    /// The organization's time zone: every time a page shows is in it.
    pub time_zone: TimeZone,
    /// "Support has access until …": when a support access grant is in force, its end (the
    /// latest), for the banner every member sees.
    pub support_until: Option<String>,
    /// When the organization will be deleted, if an Administrator asked for that: every page
    /// says so in a banner.
    pub deletion_due: Option<String>,
}

impl MemberNav {
    /// Whether the policy lets this member do `action` in their own organization: pages show
    /// only what the policy allows (and the use case asks the policy again).
    pub fn can(&self, action: Action) -> bool {
        matches!(
            decide(
                &Subject::Member(self.member),
                action,
                &Resource::organization(self.member.organization),
            ),
            Decision::Allow
        )
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Administrator
    }

    /// A support person working here under a grant (not a member).
    pub fn is_support(&self) -> bool {
        self.member.support
    }

    /// May create and edit pipelines and run them (Editors and Administrators).
    pub fn can_edit(&self) -> bool {
        self.can(Action::ManagePipelines)
    }

    pub fn role_label(&self) -> &'static str {
        role_label(self.role)
    }

    /// Sees the teams page (Administrators).
    pub fn can_read_teams(&self) -> bool {
        self.can(Action::ReadTeams)
    }

    /// Sees the data policies page (Administrators).
    pub fn can_read_policies(&self) -> bool {
        self.can(Action::ReadPolicies)
    }

    /// May look at records as another member or a team would see them (Administrators).
    pub fn can_view_as(&self) -> bool {
        self.can(Action::ViewAs)
    }

    /// May ask for the organization's deletion and cancel it (Administrators, not support).
    pub fn can_delete_organization(&self) -> bool {
        self.can(Action::DeleteOrganization)
    }

    /// May end members' sessions and tokens after an incident (Administrators, not support).
    pub fn can_respond_to_incident(&self) -> bool {
        self.can(Action::RespondToIncident)
    }
}

pub(crate) fn role_label(role: Role) -> &'static str {
    match role {
        Role::Administrator => "Administrator",
        Role::Editor => "Editor",
        Role::Viewer => "Viewer",
    }
}

/// Who the page is for.
#[derive(Debug, Clone)]
pub(crate) enum Who {
    Anonymous,
    Operator,
    Member(Box<MemberNav>),
}

/// The layout's context: every page template has a `shell` field and extends `base.html`.
#[derive(Debug, Clone)]
pub(crate) struct Shell {
    /// The page's title (the `<title>` and the `<h1>`).
    pub title: String,
    /// Which navigation entry is current: "connections", "pipelines", "datasets", "users",
    /// "teams", "policies", "settings", "audit", "account", "organizations", or "" for none.
    pub section: &'static str,
    /// The CSRF token every form of the page carries as `csrf` (and htmx sends as
    /// `X-CSRF-Token`).
    pub csrf: String,
    pub who: Who,
    /// A one-line confirmation shown above the page ("Saved.").
    pub notice: Option<&'static str>,
}

impl Shell {
    pub fn member(&self) -> Option<&MemberNav> {
        match &self.who {
            Who::Member(m) => Some(m),
            _ => None,
        }
    }

    pub fn is_operator(&self) -> bool {
        matches!(self.who, Who::Operator)
    }

    /// The `hx-headers` attribute value of `<body>`: htmx requests carry the CSRF token.
    pub fn hx_headers(&self) -> String {
        serde_json::json!({ "X-CSRF-Token": self.csrf }).to_string()
    }

    pub fn with_notice(mut self, notice: Option<&'static str>) -> Shell {
        self.notice = notice;
        self
    }
}

/// The texts of `?notice=` codes, so a redirect after a change can say what happened without
/// putting any text of the user's into the URL.
pub(crate) fn notice_text(code: Option<&str>) -> Option<&'static str> {
    Some(match code? {
        "saved" => "Saved.",
        "created" => "Created.",
        "deleted" => "Deleted.",
        "invited" => "Invitation sent.",
        "password" => "Your password was changed. Your other sessions were signed out.",
        "totp-on" => "Two-factor sign-in is on.",
        "totp-off" => "Two-factor sign-in is off.",
        "signed-out-all" => "Every other session was signed out.",
        "session-ended" => "The session was signed out.",
        "revoked" => "The token was revoked.",
        "passkey-added" => "The passkey was added: use it to sign in.",
        "passkey-removed" => "The passkey was removed: it no longer signs in.",
        "invitation-revoked" => "The invitation was revoked: its link no longer works.",
        "totp-reset" => {
            "The second factor was reset: they were signed out and must enrol again to use one."
        }
        "discovered" => "Discovery finished.",
        "connected" => "Connected: the provider granted access.",
        "disconnected" => "Disconnected: the tokens were revoked and deleted.",
        "started" => "The run was started.",
        "cancelled" => "Cancellation was requested.",
        "history-deleted" => {
            "Run history deleted: finished runs started before that day are gone with their \
             rejected records."
        }
        "reset-sent" => {
            "If the address has an account, a link to reset its password is on its way."
        }
        "reset-done" => "Your password was reset. Sign in with the new one.",
        "accepted" => "Your account is ready. Sign in.",
        "signed-out" => "You are signed out.",
        "deletion-requested" => {
            "The organization's deletion was requested: every Administrator was mailed."
        }
        "deletion-cancelled" => "The deletion was cancelled: nothing will be deleted.",
        "organization-deleted" => "The organization was deleted with everything it held.",
        "incident" => {
            "Every session and API token of the member was ended; they must reset their password."
        }
        "incident-self" => {
            "Every session and API token of yours was ended: reset your password (Forgot \
             password) to sign in again."
        }
        "incident-all" => {
            "Every session and API token of the organization was ended, yours included: reset \
             your password (Forgot password) to sign in again."
        }
        "unsealed" => "The hub is unsealed.",
        "sealed" => "The hub is sealed.",
        _ => return None,
    })
}

/// The query of pages that show a notice after a redirect.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct NoticeQuery {
    pub notice: Option<String>,
}

impl NoticeQuery {
    pub fn text(&self) -> Option<&'static str> {
        notice_text(self.notice.as_deref())
    }
}

/// Renders a template into an HTML response (200).
pub(crate) fn render<T: Template>(page: &T) -> Response {
    render_status(StatusCode::OK, page)
}

/// Renders a template with a status (a form shown again with its errors is a 422).
pub(crate) fn render_status<T: Template>(status: StatusCode, page: &T) -> Response {
    match page.render() {
        Ok(html) => (status, Html(html)).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "a page failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>The page failed to render.</p>"),
            )
                .into_response()
        }
    }
}

/// A 303 to `path` (after a form was handled: the browser then GETs `path`).
pub(crate) fn see_other(path: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(path) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response
}

/// The errors of a form: one message per field, and one for the form as a whole.
#[derive(Debug, Clone, Default)]
pub(crate) struct FormErrors {
    fields: Vec<(String, String)>,
    /// Inputs whose id is not the field's name (`expires_in_days` is `token-days`).
    anchors: Vec<(String, String)>,
    /// A message about the whole form (shown at its top).
    pub general: Option<String>,
}

impl FormErrors {
    pub fn none() -> FormErrors {
        FormErrors::default()
    }

    /// The message for `field`, if any (templates: `errors.get("name")`).
    pub fn get(&self, field: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, m)| m.as_str())
    }

    /// The field errors for the summary at the top of a long form: the id of the input (the
    /// API's field with `[`, `]` and `.` as `-`, or the one given with [`FormErrors::anchored`]),
    /// the field in words, and the message.
    pub fn summary(&self) -> Vec<(String, String, String)> {
        self.fields
            .iter()
            .map(|(field, message)| {
                let id = self
                    .anchors
                    .iter()
                    .find(|(f, _)| f == field)
                    .map_or_else(|| input_id(field), |(_, id)| id.clone());
                (id, field_in_words(field), message.clone())
            })
            .collect()
    }

    /// Every field error as (field, message), in the order they were added.
    pub fn fields(&self) -> &[(String, String)] {
        &self.fields
    }

    /// Says that the input of `field` has the id `id` (for the summary's links).
    pub fn anchored(mut self, field: &str, id: &str) -> FormErrors {
        self.anchors.push((field.to_owned(), id.to_owned()));
        self
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty() && self.general.is_none()
    }

    pub fn field(mut self, field: &str, message: impl Into<String>) -> FormErrors {
        self.fields.push((field.to_owned(), message.into()));
        self
    }

    pub fn general(message: impl Into<String>) -> FormErrors {
        FormErrors {
            fields: Vec::new(),
            anchors: Vec::new(),
            general: Some(message.into()),
        }
    }

    /// The form errors of a use case's error: an invalid field goes next to that field (under
    /// the API's field name, e.g. `config.port`, `rules[0].expression`); anything else is the
    /// form's general message.
    pub fn from_app(err: AppError) -> FormErrors {
        FormErrors::from_api(&ApiError::from(err))
    }

    pub fn from_api(err: &ApiError) -> FormErrors {
        match &err.field {
            Some(field) => {
                let detail = err.detail.clone().unwrap_or_else(|| err.title.clone());
                let message = detail
                    .strip_prefix(&format!("{field}: "))
                    .map_or(detail.clone(), str::to_owned);
                FormErrors::none().field(field, capitalize(&message))
            }
            None => FormErrors::general(match &err.detail {
                Some(detail) => format!("{}. {}", err.title, capitalize(detail)),
                None => format!("{}.", err.title),
            }),
        }
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// What a page handler fails with: the sign-in page for a missing or ended session, the unseal
/// page while sealed, otherwise the error page with the API's status and words.
#[derive(Debug)]
pub(crate) enum WebError {
    SignIn,
    OperatorSignIn,
    Sealed,
    /// The form's CSRF token was missing or wrong.
    Csrf,
    /// The organization requires TOTP and this member has not enrolled: the account page,
    /// where they can.
    EnrolTotp,
    Page(ApiError),
}

impl From<AppError> for WebError {
    fn from(err: AppError) -> WebError {
        match err {
            AppError::Unauthenticated => WebError::SignIn,
            AppError::Sealed => WebError::Sealed,
            AppError::TotpEnrolmentRequired => WebError::EnrolTotp,
            other => WebError::Page(ApiError::from(other)),
        }
    }
}

impl From<ApiError> for WebError {
    fn from(err: ApiError) -> WebError {
        WebError::Page(err)
    }
}

impl WebError {
    pub fn not_found(what: &str) -> WebError {
        WebError::Page(ApiError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("No such {what}"),
        ))
    }

    pub fn bad_request(detail: impl Into<String>) -> WebError {
        WebError::Page(
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad-request",
                "The form is invalid",
            )
            .detail(detail),
        )
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    shell: Shell,
    status: u16,
    heading: String,
    detail: Option<String>,
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let err = match self {
            WebError::SignIn => return see_other("/login"),
            WebError::OperatorSignIn => return see_other("/operator"),
            WebError::Sealed => return see_other("/"),
            WebError::EnrolTotp => return see_other("/account#must-enrol-totp"),
            WebError::Csrf => ApiError::new(StatusCode::FORBIDDEN, "csrf", "This form has expired")
                .detail("Go back, reload the page and send the form again."),
            WebError::Page(err) => err,
        };
        error_page(&err)
    }
}

/// The error page for an API error (status, title, detail).
/// The id of the input for the API's `field`: `rules[1].expression` → `rules-1-expression`.
fn input_id(field: &str) -> String {
    field
        .replace("].", "-")
        .replace(['[', '.'], "-")
        .replace(']', "")
}

/// `rules[1].expression` → "Rule 2: expression"; `source.object` → "source object".
fn field_in_words(field: &str) -> String {
    for (list, noun) in [
        ("rules[", "Rule"),
        ("mappings[", "Mapping"),
        ("grants[", "Grant"),
    ] {
        if let Some(rest) = field.strip_prefix(list)
            && let Some((index, part)) = rest.split_once("].")
            && let Ok(i) = index.parse::<usize>()
        {
            return format!("{noun} {}: {}", i + 1, part.replace('_', " "));
        }
    }
    let words = field.replace(['.', '_'], " ");
    let mut chars = words.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

pub(crate) fn error_page(err: &ApiError) -> Response {
    let shell = Shell {
        title: err.title.clone(),
        section: "",
        csrf: String::new(),
        who: Who::Anonymous,
        notice: None,
    };
    let mut response = error_page_in(shell, err);
    // Marked, so `member_error_pages` can show it again inside the member's own layout.
    response.extensions_mut().insert(PageError(err.clone()));
    response
}

/// The error page inside a given layout.
pub(crate) fn error_page_in(shell: Shell, err: &ApiError) -> Response {
    let page = ErrorPage {
        shell,
        status: err.status.as_u16(),
        heading: err.title.clone(),
        detail: err.detail.clone(),
    };
    render_status(err.status, &page)
}

/// The error an error page shows (a response extension).
#[derive(Debug, Clone)]
pub(crate) struct PageError(pub ApiError);

/// The HTML 404 for paths outside `/api/`.
pub(crate) fn not_found_page() -> Response {
    error_page(&ApiError::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "This page does not exist",
    ))
}

/// A time for people, in the organization's time zone and naming it:
/// `2026-12-06 22:04 Europe/Berlin`, `2026-11-22 14:03 UTC`. Every time a page prints goes
/// through here.
pub(crate) fn when(zone: TimeZone, t: time::OffsetDateTime) -> String {
    let t = zone.local(t);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} {}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        zone.name()
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn times_show_in_the_zone_and_name_it() {
        let t = datetime!(2026-12-06 21:04:59 UTC);
        assert_eq!(when(TimeZone::UTC, t), "2026-12-06 21:04 UTC");
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        assert_eq!(when(berlin, t), "2026-12-06 22:04 Europe/Berlin");
    }

    #[test]
    fn the_summary_links_to_the_inputs_id() {
        let errors = FormErrors::none()
            .field("rules[1].expression", "Bad.")
            .field("expires_in_days", "Too many.")
            .anchored("expires_in_days", "token-days");
        let ids: Vec<String> = errors.summary().into_iter().map(|(id, _, _)| id).collect();
        assert_eq!(ids, ["rules-1-expression", "token-days"]);
    }
}
