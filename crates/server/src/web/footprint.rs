//! The Administrators' page "What is stored about us" (`/settings/footprint`): every kind of
//! thing the hub holds for the organization with its count, oldest and retention rule, the
//! organization's key versions and which version its ciphertexts use, and who has access. The
//! use case is the API's (`GET /api/v1/organization/footprint`).

use super::page::{Shell, WebError, render, role_label, when};
use super::session::SignedIn;
use crate::AppState;
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use lockstep_app::Footprint;

pub(crate) fn routes() -> Router<AppState> {
    Router::new().route("/settings/footprint", get(footprint))
}

struct KindRow {
    label: &'static str,
    kind: &'static str,
    count: u64,
    oldest: Option<String>,
    retention: String,
}

struct KeyRow {
    version: u32,
    keyring_version: u32,
    created: String,
}

struct CiphertextRow {
    label: &'static str,
    /// "v1: 12, v2: 3".
    versions: String,
}

struct RoleRow {
    role: &'static str,
    active: u64,
    deactivated: u64,
    names: Vec<String>,
}

struct TokenRow {
    owner: String,
    name: String,
    scope: String,
    expires: String,
    last_used: Option<String>,
}

#[derive(Template)]
#[template(path = "settings/footprint.html")]
struct FootprintPage {
    shell: Shell,
    taken: String,
    kinds: Vec<KindRow>,
    current_version: u32,
    keys: Vec<KeyRow>,
    ciphertexts: Vec<CiphertextRow>,
    roles: Vec<RoleRow>,
    tokens: Vec<TokenRow>,
    /// Support access in force: who, which role, until when.
    support: Vec<(String, &'static str, String)>,
}

fn page(shell: Shell, f: Footprint, zone: lockstep_app::TimeZone) -> FootprintPage {
    FootprintPage {
        shell,
        taken: when(zone, f.taken_at),
        kinds: f
            .stored
            .iter()
            .map(|k| KindRow {
                label: k.label,
                kind: k.kind,
                count: k.count,
                oldest: k.oldest.map(|t| when(zone, t)),
                retention: k.retention.describe(),
            })
            .collect(),
        current_version: f.encryption.current_version,
        keys: f
            .encryption
            .keys
            .iter()
            .map(|k| KeyRow {
                version: k.version,
                keyring_version: k.keyring_version,
                created: when(zone, k.created_at),
            })
            .collect(),
        ciphertexts: f
            .encryption
            .ciphertexts
            .iter()
            .filter(|c| !c.by_version.is_empty())
            .map(|c| CiphertextRow {
                label: c.label,
                versions: c
                    .by_version
                    .iter()
                    .map(|(v, n)| {
                        if *v == 0 {
                            format!("other format: {n}")
                        } else {
                            format!("version {v}: {n}")
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
            })
            .collect(),
        roles: f
            .access
            .members_by_role
            .iter()
            .map(|r| RoleRow {
                role: role_label(r.role),
                active: r.active,
                deactivated: r.deactivated,
                names: r
                    .names
                    .iter()
                    .flatten()
                    .map(|(_, name)| name.clone())
                    .collect(),
            })
            .collect(),
        support: f
            .access
            .support_grants
            .iter()
            .map(|g| {
                (
                    g.support_email.clone(),
                    role_label(g.role),
                    when(zone, g.expires_at),
                )
            })
            .collect(),
        tokens: f
            .access
            .api_tokens
            .iter()
            .flat_map(|owner| {
                owner.tokens.iter().map(|t| TokenRow {
                    owner: owner.display_name.clone(),
                    name: t.name.clone(),
                    scope: t.scope.to_string(),
                    expires: when(zone, t.expires_at),
                    last_used: t.last_used_at.map(|at| when(zone, at)),
                })
            })
            .collect(),
    }
}

async fn footprint(State(state): State<AppState>, signed: SignedIn) -> Result<Response, WebError> {
    let f = state.hub.organization_footprint(&signed.caller).await?;
    let shell = signed.shell("What is stored about us", "settings");
    Ok(render(&page(shell, f, signed.nav.time_zone)))
}
