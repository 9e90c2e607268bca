//! Pages of Administrators: the audit events (a search over the organization's events, an
//! object's last events) and the status of the long-term ledger, whose latest checkpoint is
//! verified here against the hub's verifier key. The use cases are the API's
//! (`api/v1/audit.rs`); they refuse every other role.
//!
//! Events show people, connections and pipelines by name (ids only on hover), times in the
//! organization's time zone; the search picks a member and an action from lists.

mod names;

use super::page::{FormErrors, Shell, WebError, render, render_status, when};
use super::session::SignedIn;
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use base64::Engine as _;
use lockstep_app::{AppError, AuditEvent, AuditSearch, FieldChange, TimeZone};
use lockstep_domain::OrganizationId;
use lockstep_ledger::{Checkpoint, VerifyingKey};
use names::{Names, PickOption, Shown, action_options, kind_words, member_options};
use serde::Deserialize;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/audit", get(search))
        .route("/audit/objects/{kind}/{id}", get(object_events))
}

/// The page sizes the search offers (the API allows 1..=500).
const LIMITS: [u32; 5] = [25, 50, 100, 200, 500];
const DEFAULT_LIMIT: u32 = 100;

/// One changed field as the API renders it: a value's before and after (a name where the value
/// is the id of a member, connection or pipeline), or only "changed" for a secret.
struct ChangeRow {
    field: String,
    secret: bool,
    before: Shown,
    after: Shown,
}

struct EventRow {
    at: String,
    at_rfc3339: String,
    /// Who acted: a member by name (leading to their events), the operator, the scheduler.
    actor: Shown,
    action: String,
    /// The object's kind in words.
    object_kind: String,
    /// The object: its name where it has one, leading to its own page.
    object: Shown,
    /// `/audit/objects/{kind}/{id}`.
    object_href: String,
    success: bool,
    outcome: String,
    changes: Vec<ChangeRow>,
}

fn event_row(e: AuditEvent, names: &Names, zone: TimeZone) -> EventRow {
    let changes: Vec<ChangeRow> = e
        .changes
        .into_iter()
        .map(|(field, change)| match change {
            FieldChange::Secret { .. } => ChangeRow {
                field,
                secret: true,
                before: Shown::text(""),
                after: Shown::text(""),
            },
            FieldChange::Value { before, after } => ChangeRow {
                field,
                secret: false,
                before: names.value(before),
                after: names.value(after),
            },
        })
        .collect();
    EventRow {
        at: when(zone, e.at),
        at_rfc3339: e.at.format(&Rfc3339).unwrap_or_default(),
        actor: names.actor(&e.actor_kind, e.actor_id.as_deref()),
        object: names.object(&e.object_kind, &e.object_id, &changes),
        object_href: format!(
            "/audit/objects/{}/{}",
            path_segment(&e.object_kind),
            path_segment(&e.object_id)
        ),
        action: e.action,
        object_kind: kind_words(&e.object_kind).to_owned(),
        success: e.outcome == "success",
        outcome: e.outcome,
        changes,
    }
}

/// `text` as one percent-encoded path segment.
fn path_segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn encode_query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default()
}

/// The search form, as the browser sends it (GET): ids and action names only. Empty fields are
/// no filter.
#[derive(Debug, Default, Deserialize)]
struct SearchForm {
    actor: Option<String>,
    object_kind: Option<String>,
    object_id: Option<String>,
    action: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<String>,
    offset: Option<String>,
}

fn filled(value: &Option<String>) -> Option<String> {
    value
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

/// A time of the form: RFC 3339 (as the API takes it), or the `datetime-local` input's
/// `2026-11-22T14:03` (with or without seconds), read in the organization's time zone.
fn parse_time(text: &str, zone: TimeZone) -> Option<OffsetDateTime> {
    if let Ok(t) = OffsetDateTime::parse(text, &Rfc3339) {
        return Some(t);
    }
    let minutes = format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let seconds = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    time::PrimitiveDateTime::parse(text, &minutes)
        .or_else(|_| time::PrimitiveDateTime::parse(text, &seconds))
        .ok()
        .and_then(|local| zone.from_local(local))
}

/// A time as the `datetime-local` input shows it (in the organization's time zone).
fn local_input(t: OffsetDateTime, zone: TimeZone) -> String {
    let t = zone.local(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// The form's values as the page shows them again.
#[derive(Default)]
struct Filters {
    actor: String,
    object_kind: String,
    object_id: String,
    action: String,
    from: String,
    to: String,
    limit: u32,
}

impl Filters {
    /// The query string of this search at `offset` (for the paging links).
    fn query(&self, offset: u32) -> String {
        let limit = self.limit.to_string();
        let offset = offset.to_string();
        let mut pairs: Vec<(&str, &str)> = [
            ("actor", self.actor.as_str()),
            ("object_kind", self.object_kind.as_str()),
            ("object_id", self.object_id.as_str()),
            ("action", self.action.as_str()),
            ("from", self.from.as_str()),
            ("to", self.to.as_str()),
        ]
        .into_iter()
        .filter(|(_, v)| !v.is_empty())
        .collect();
        pairs.push(("limit", &limit));
        if offset != "0" {
            pairs.push(("offset", &offset));
        }
        encode_query(&pairs)
    }
}

/// Reads the form into the use case's search, exactly as the API's search handler maps its
/// query; a field that cannot be read goes back next to that field.
fn read_search(form: &SearchForm, zone: TimeZone) -> (Filters, Result<AuditSearch, FormErrors>) {
    let mut errors = FormErrors::none();
    let mut time_field = |name: &str, value: &Option<String>| -> (String, Option<OffsetDateTime>) {
        match filled(value) {
            None => (String::new(), None),
            Some(text) => match parse_time(&text, zone) {
                Some(t) => (local_input(t, zone), Some(t)),
                None => {
                    errors = std::mem::take(&mut errors).field(
                        name,
                        format!(
                            "Enter a date and time such as 2026-11-22T14:03 ({}) that the clocks \
                             show there.",
                            zone.name()
                        ),
                    );
                    (text, None)
                }
            },
        }
    };
    let (from_text, from) = time_field("from", &form.from);
    let (to_text, to) = time_field("to", &form.to);
    let limit = match filled(&form.limit) {
        None => DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(limit) if (1..=500).contains(&limit) => limit,
            _ => {
                errors = errors.field("limit", "Must be between 1 and 500.");
                DEFAULT_LIMIT
            }
        },
    };
    let offset = filled(&form.offset)
        .and_then(|o| o.parse::<u32>().ok())
        .unwrap_or(0);
    let filters = Filters {
        actor: filled(&form.actor).unwrap_or_default(),
        object_kind: filled(&form.object_kind).unwrap_or_default(),
        object_id: filled(&form.object_id).unwrap_or_default(),
        action: filled(&form.action).unwrap_or_default(),
        from: from_text,
        to: to_text,
        limit,
    };
    if !errors.is_empty() {
        return (filters, Err(errors));
    }
    let search = AuditSearch {
        actor_id: filled(&form.actor),
        object_kind: filled(&form.object_kind),
        object_id: filled(&form.object_id),
        action: filled(&form.action),
        from,
        to,
        limit,
        offset,
    };
    (filters, Ok(search))
}

/// The ledger card: the latest checkpoint, and whether its signature verifies.
struct LedgerCard {
    /// The ledger has no entry yet.
    empty: bool,
    /// The checkpoint's signature verified with the hub's verifier key, and its origin is this
    /// organization's ledger.
    verified: bool,
    /// Why it did not verify.
    problem: Option<String>,
    origin: String,
    size: String,
    root: String,
    /// Whether new events are appended (the organization's setting).
    long_term_audit: bool,
}

/// Verifies `note` (a signed checkpoint) with `vkey` and checks that it is `org`'s ledger.
fn verify_checkpoint(note: &str, vkey: &str, org: OrganizationId) -> Result<Checkpoint, String> {
    let (name, key) = VerifyingKey::parse_vkey(vkey).map_err(|e| e.to_string())?;
    if name != lockstep_app::LEDGER_KEY_NAME {
        return Err("the verifier key is not the hub's ledger key".to_owned());
    }
    let checkpoint = key.verify_note(&name, note).map_err(|e| e.to_string())?;
    if checkpoint.origin != lockstep_app::ledger_origin(org) {
        return Err("the checkpoint is of another ledger".to_owned());
    }
    Ok(checkpoint)
}

/// The checkpoint's body read without its signature (to show what a failing note claims).
fn unverified_body(note: &str) -> Option<Checkpoint> {
    let end = note.find("\n\n")?;
    Checkpoint::parse_body(note.get(..=end)?).ok()
}

async fn ledger_card(state: &AppState, signed: &SignedIn) -> Result<LedgerCard, WebError> {
    let long_term_audit = state
        .hub
        .organization_settings(&signed.caller)
        .await?
        .long_term_audit;
    let mut card = LedgerCard {
        empty: false,
        verified: false,
        problem: None,
        origin: String::new(),
        size: String::new(),
        root: String::new(),
        long_term_audit,
    };
    let note = match state.hub.latest_checkpoint(&signed.caller).await {
        Ok(note) => note,
        Err(AppError::NotFound(_)) => {
            card.empty = true;
            return Ok(card);
        }
        Err(err) => return Err(err.into()),
    };
    let vkey = state.hub.ledger_vkey()?;
    let shown = match verify_checkpoint(&note, &vkey, signed.caller.organization()) {
        Ok(checkpoint) => {
            card.verified = true;
            Some(checkpoint)
        }
        Err(problem) => {
            card.problem = Some(problem);
            unverified_body(&note)
        }
    };
    if let Some(checkpoint) = shown {
        card.origin = checkpoint.origin;
        card.size = checkpoint.size.to_string();
        card.root = base64::engine::general_purpose::STANDARD.encode(checkpoint.root);
    }
    Ok(card)
}

struct LimitOption {
    value: u32,
    selected: bool,
}

#[derive(Template)]
#[template(path = "audit/search.html")]
struct SearchPage {
    shell: Shell,
    filters: Filters,
    limits: Vec<LimitOption>,
    members: Vec<PickOption>,
    actions: Vec<PickOption>,
    /// The organization's time zone, in which the form's times are read.
    time_zone: &'static str,
    errors: FormErrors,
    events: Vec<EventRow>,
    /// Whether a filter is set (the empty state says so).
    filtered: bool,
    newer: Option<String>,
    older: Option<String>,
    ledger: LedgerCard,
}

async fn search(
    State(state): State<AppState>,
    signed: SignedIn,
    query: Result<Query<SearchForm>, QueryRejection>,
) -> Result<Response, WebError> {
    let Query(form) = query.map_err(|_| {
        WebError::bad_request("Use actor, object_kind, object_id, action, from, to and limit.")
    })?;
    let zone = signed.nav.time_zone;
    let (filters, search) = read_search(&form, zone);
    let (events, errors, paging) = match search {
        Ok(search) => {
            let (limit, offset) = (search.limit, search.offset);
            let events = state.hub.search_events(&signed.caller, search).await?;
            let full = u32::try_from(events.len()).is_ok_and(|n| n >= limit);
            (events, FormErrors::none(), Some((limit, offset, full)))
        }
        Err(errors) => {
            // Asked anyway, so that a lower role gets the error page and not a form.
            let probe = AuditSearch {
                actor_id: None,
                object_kind: None,
                object_id: None,
                action: None,
                from: None,
                to: None,
                limit: 1,
                offset: 0,
            };
            state.hub.search_events(&signed.caller, probe).await?;
            (Vec::new(), errors, None)
        }
    };
    let (newer, older) = match paging {
        Some((limit, offset, full)) => (
            (offset > 0).then(|| format!("/audit?{}", filters.query(offset.saturating_sub(limit)))),
            full.then(|| format!("/audit?{}", filters.query(offset.saturating_add(limit)))),
        ),
        None => (None, None),
    };
    let audit_names = state.hub.audit_names(&signed.caller).await?;
    let names = Names::new(audit_names.clone(), signed.nav.organization.clone());
    let page = SearchPage {
        shell: signed.shell("Audit", "audit"),
        members: member_options(&audit_names, &filters.actor),
        actions: action_options(&filters.action),
        time_zone: zone.name(),
        limits: LIMITS
            .into_iter()
            .map(|value| LimitOption {
                value,
                selected: value == filters.limit,
            })
            .collect(),
        filtered: !(filters.actor.is_empty()
            && filters.object_kind.is_empty()
            && filters.object_id.is_empty()
            && filters.action.is_empty()
            && filters.from.is_empty()
            && filters.to.is_empty()),
        filters,
        events: events
            .into_iter()
            .map(|e| event_row(e, &names, zone))
            .collect(),
        newer,
        older,
        ledger: ledger_card(&state, &signed).await?,
        errors,
    };
    let status = if page.errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok(render_status(status, &page))
}

#[derive(Template)]
#[template(path = "audit/object.html")]
struct ObjectPage {
    shell: Shell,
    /// The object's kind in words.
    kind: String,
    /// The object, by name where it has one.
    object: Shown,
    events: Vec<EventRow>,
}

async fn object_events(
    State(state): State<AppState>,
    signed: SignedIn,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let events = state.hub.object_events(&signed.caller, &kind, &id).await?;
    let names = Names::new(
        state.hub.audit_names(&signed.caller).await?,
        signed.nav.organization.clone(),
    );
    let zone = signed.nav.time_zone;
    let rows: Vec<EventRow> = events
        .into_iter()
        .map(|e| event_row(e, &names, zone))
        .collect();
    let no_changes = Vec::new();
    let object = names.object(
        &kind,
        &id,
        rows.iter()
            .map(|r| &r.changes)
            .find(|c| c.iter().any(|c| c.field == "pipeline"))
            .unwrap_or(&no_changes),
    );
    let page = ObjectPage {
        shell: signed.shell(
            format!(
                "Events of {} {}",
                kind_words(&kind).to_lowercase(),
                object.text
            ),
            "audit",
        ),
        kind: kind_words(&kind).to_owned(),
        object,
        events: rows,
    };
    Ok(render(&page))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use lockstep_ledger::SigningKey;

    fn signed(org: OrganizationId, key: &SigningKey) -> String {
        let checkpoint = Checkpoint {
            origin: lockstep_app::ledger_origin(org),
            size: 7,
            root: [3; 32],
        };
        key.sign(lockstep_app::LEDGER_KEY_NAME, &checkpoint)
            .unwrap()
    }

    #[test]
    fn only_a_checkpoint_signed_by_the_hub_for_this_ledger_verifies() {
        let org = OrganizationId::from_uuid(uuid::Uuid::now_v7());
        let key = SigningKey::from_bytes(&[1; 32]);
        let vkey = key
            .verifying_key()
            .to_vkey(lockstep_app::LEDGER_KEY_NAME)
            .unwrap();
        let note = signed(org, &key);
        let checkpoint = verify_checkpoint(&note, &vkey, org).unwrap();
        assert_eq!((checkpoint.size, checkpoint.root), (7, [3; 32]));

        let tampered = note.replacen("\n7\n", "\n8\n", 1);
        assert!(verify_checkpoint(&tampered, &vkey, org).is_err());
        assert_eq!(unverified_body(&tampered).unwrap().size, 8);
        let other_key = signed(org, &SigningKey::from_bytes(&[2; 32]));
        assert!(verify_checkpoint(&other_key, &vkey, org).is_err());
        let other_org = OrganizationId::from_uuid(uuid::Uuid::now_v7());
        assert!(verify_checkpoint(&signed(other_org, &key), &vkey, org).is_err());
    }

    #[test]
    fn form_times_are_rfc3339_or_the_datetime_input_in_the_organizations_zone() {
        let utc = TimeZone::UTC;
        let t = parse_time("2026-11-22T14:03", utc).unwrap();
        assert_eq!(local_input(t, utc), "2026-11-22T14:03:00");
        assert_eq!(
            parse_time("2026-11-22T14:03:09", utc)
                .map(|t| local_input(t, utc))
                .unwrap(),
            "2026-11-22T14:03:09"
        );
        assert_eq!(
            parse_time("2026-11-22T15:03:00+01:00", utc)
                .map(|t| local_input(t, utc))
                .unwrap(),
            "2026-11-22T14:03:00"
        );
        let berlin = TimeZone::parse("Europe/Berlin").unwrap();
        let t = parse_time("2026-11-22T15:03", berlin).unwrap();
        assert_eq!(local_input(t, utc), "2026-11-22T14:03:00");
        assert_eq!(local_input(t, berlin), "2026-11-22T15:03:00");
        assert!(parse_time("2026-03-29T02:30", berlin).is_none(), "skipped");
        assert!(parse_time("yesterday", utc).is_none());
        assert_eq!(path_segment("a b/ü"), "a%20b%2F%C3%BC");
    }
}
