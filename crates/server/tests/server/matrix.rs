//! The cross-tenant matrix: every documented route x anonymous, the operator and each role of
//! organization A x objects of A, of another member of A, and of organization B. Routes come from
//! the router's own OpenAPI document, so a new route is in the matrix without editing this file.
//!
//! Rules checked:
//! - anonymous callers get 401 on every non-public route;
//! - an object of another organization is 404 for every role, exactly like a missing id, and the
//!   store is unchanged afterwards;
//! - another member's private objects (sessions, tokens) are 404 too;
//! - members below a route's role get 403 (Editors and Viewers on Administrator routes, Viewers
//!   on Editor routes), and the store is unchanged;
//! - members get 401 on operator routes, the operator gets 401 on member routes;
//! - allowed reads answer 200.

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use lockstep_app::{Hub, HubOptions, Password, SystemClock};
use lockstep_domain::Role;
use lockstep_storage::Backend;
use lockstep_storage::testing::{TestStore, snapshot};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Debug)]
struct Member {
    token: String,
    user_id: String,
    session_id: String,
    api_token_id: String,
    /// A connection of the member's organization (shared by its members).
    connection_id: String,
    /// A pipeline of the member's organization and a (queued) run of it.
    pipeline_id: String,
    run_id: String,
    /// A pending invitation of the member's organization (shared by its members).
    invitation_id: String,
    /// A data set of the member's own (visible to them and to Administrators only).
    dataset_id: String,
    /// A team of the member's organization (shared by its members).
    team_id: String,
    /// A support access grant of the member's organization.
    support_grant_id: String,
    /// A passkey of the member's own (registered with a software authenticator when the hub
    /// has a host name; else an id nobody has).
    passkey_id: String,
}

/// The public URL of the matrix's hub: a host name, so that passkeys work.
const PUBLIC_URL: &str = "https://localhost:8443";

/// Registers a passkey for `caller` with webauthn-authenticator-rs's software authenticator.
async fn register_passkey(hub: &Hub, caller: &lockstep_app::Caller) -> String {
    use webauthn_authenticator_rs::WebauthnAuthenticator as _;
    if !hub.passkeys_available() {
        return uuid::Uuid::now_v7().to_string();
    }
    let challenge = hub.start_passkey_registration(caller, "key").await.unwrap();
    let mut options = challenge.options;
    // The software authenticator keeps no discoverable credentials.
    options["publicKey"]["authenticatorSelection"]["requireResidentKey"] = Value::Bool(false);
    let answer = webauthn_authenticator_rs::softpasskey::SoftPasskey::new(true)
        .do_registration(
            url::Url::parse(PUBLIC_URL).unwrap(),
            serde_json::from_value(options).unwrap(),
        )
        .unwrap();
    hub.finish_passkey_registration(
        caller,
        challenge.ceremony.expose(),
        serde_json::to_value(answer).unwrap(),
    )
    .await
    .unwrap()
    .id
    .to_string()
}

struct Org {
    admin: Member,
    editor: Member,
    viewer: Member,
}

async fn member(
    hub: &Hub,
    admin: Option<&lockstep_app::Caller>,
    invitation: Option<String>,
    email: &str,
    role: Role,
) -> Member {
    let token = match invitation {
        Some(token) => token,
        None => hub
            .invite_user(admin.unwrap(), email, role)
            .await
            .unwrap()
            .token
            .expose()
            .to_owned(),
    };
    let pw = Password::new(PASSWORD.to_owned());
    let user = hub.accept_invitation(&token, &pw, "Someone").await.unwrap();
    let session = hub
        .login(email, &pw, None)
        .await
        .unwrap()
        .session_token
        .expose()
        .to_owned();
    let caller = hub.authenticate(&session).await.unwrap();
    let sessions = hub.list_sessions(&caller).await.unwrap();
    let api = hub
        .create_api_token(
            &caller,
            "ci",
            lockstep_domain::TokenScope::Manage,
            lockstep_app::TokenExpiry::Days(30),
        )
        .await
        .unwrap();
    let passkey_id = register_passkey(hub, &caller).await;
    Member {
        passkey_id,
        token: session,
        user_id: user.to_string(),
        session_id: sessions[0].id.to_string(),
        api_token_id: api.view.id.to_string(),
        connection_id: String::new(),
        pipeline_id: String::new(),
        run_id: String::new(),
        invitation_id: String::new(),
        dataset_id: String::new(),
        team_id: String::new(),
        support_grant_id: String::new(),
    }
}

async fn org(hub: &Arc<Hub>, op: &lockstep_app::Operator, name: &str) -> Org {
    let created = hub
        .create_organization(op, name, &format!("admin@{name}.io"))
        .await
        .unwrap();
    let admin = member(
        hub,
        None,
        Some(created.invitation_token.expose().to_owned()),
        &format!("admin@{name}.io"),
        Role::Administrator,
    )
    .await;
    let admin_caller = hub.authenticate(&admin.token).await.unwrap();
    // A support account, set up, with a grant of this organization.
    let support = hub
        .add_support_user(op, &format!("support@{name}.example"))
        .await
        .unwrap();
    let enrolment = hub
        .begin_support_setup(
            support.setup_token.expose(),
            &Password::new(PASSWORD.to_owned()),
        )
        .await
        .unwrap();
    let secret = lockstep_auth::TotpSecret::from_otpauth_uri(&enrolment.otpauth_uri).unwrap();
    let code = secret.code_at(time::OffsetDateTime::now_utc()).unwrap();
    hub.confirm_support_setup(support.setup_token.expose(), &code)
        .await
        .unwrap();
    let grant = hub
        .grant_support_access(&admin_caller, support.account.id, Role::Viewer, 1, "matrix")
        .await
        .unwrap()
        .id;
    let editor = member(
        hub,
        Some(&admin_caller),
        None,
        &format!("editor@{name}.io"),
        Role::Editor,
    )
    .await;
    let viewer = member(
        hub,
        Some(&admin_caller),
        None,
        &format!("viewer@{name}.io"),
        Role::Viewer,
    )
    .await;
    // A files connection with one uploaded, discovered file: every connection route has an
    // object to act on, and samples answer.
    let connection = hub
        .create_connection(
            &admin_caller,
            lockstep_app::NewConnection {
                name: format!("{name} files"),
                kind: "files".to_owned(),
                config: json!({}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    hub.upload_file(&admin_caller, connection.id, "x.csv", b"id,name\n1,a\n")
        .await
        .unwrap();
    hub.discover_connection(&admin_caller, connection.id)
        .await
        .unwrap();
    // A pipeline from that file into a PostgreSQL connection (never run here: no worker), and
    // a queued run of it.
    let destination = hub
        .create_connection(
            &admin_caller,
            lockstep_app::NewConnection {
                name: format!("{name} warehouse"),
                kind: "postgres".to_owned(),
                config: json!({"host": "127.0.0.1", "database": "x", "user": "x"}),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    let pipeline = hub
        .create_pipeline(
            &admin_caller,
            &format!("{name} import"),
            json!({
                "source": {"connection_id": connection.id.to_string(), "object": "uploads/x.csv"},
                "destination": {"connection_id": destination.id.to_string(), "object": "public.x"},
                "mode": "full_refresh"
            }),
        )
        .await
        .unwrap();
    let run = hub.start_run(&admin_caller, pipeline.id).await.unwrap();
    let team = hub
        .create_team(&admin_caller, &format!("{name} team"))
        .await
        .unwrap();
    let invitation = hub
        .invite_user(&admin_caller, &format!("pending@{name}.io"), Role::Viewer)
        .await
        .unwrap();
    // A data set of each member's own, pulled through that pipeline (it fails: the
    // destination is out of reach), settled before the walk so nothing changes under it.
    let mut members = Vec::new();
    for m in [admin, editor, viewer] {
        let caller = hub.authenticate(&m.token).await.unwrap();
        let pulled = hub
            .pull_dataset(&caller, pipeline.id, None, None)
            .await
            .unwrap();
        for _ in 0..600 {
            if !hub
                .get_dataset(&caller, pulled.id)
                .await
                .unwrap()
                .state
                .is_busy()
            {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        assert!(
            !hub.get_dataset(&caller, pulled.id)
                .await
                .unwrap()
                .state
                .is_busy(),
            "the pull did not end"
        );
        members.push(Member {
            connection_id: connection.id.to_string(),
            pipeline_id: pipeline.id.to_string(),
            run_id: run.id.to_string(),
            invitation_id: invitation.id.to_string(),
            dataset_id: pulled.id.to_string(),
            team_id: team.id.to_string(),
            support_grant_id: grant.to_string(),
            ..m
        });
    }
    let [admin, editor, viewer] = <[Member; 3]>::try_from(members).unwrap();
    Org {
        admin,
        editor,
        viewer,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Public,
    Operator,
    /// One's own account: another member's objects are 404.
    Member,
    /// The organization's objects, for members with at least this role.
    Role(Role),
    /// A data set: its owner's (with at least this role) and Administrators'; another
    /// member's is 404.
    Dataset(Role),
}

fn class(method: &Method, path: &str) -> Class {
    match path {
        "/healthz" | "/api/v1/sys/seal-status" | "/api/v1/sys/unseal" => Class::Public,
        // The OAuth provider's redirect: the single-use state is the credential.
        "/api/v1/oauth/callback" => Class::Public,
        // Single sign-on through the identity provider: the single-use request bound to the
        // browser is the credential; the SP metadata is public.
        p if p.starts_with("/api/v1/sso/") => Class::Public,
        p if p.starts_with("/api/v1/connections") && *method == Method::GET => {
            if p.ends_with("/sample") {
                Class::Role(Role::Editor)
            } else {
                Class::Role(Role::Viewer)
            }
        }
        p if p.starts_with("/api/v1/connections") => Class::Role(Role::Administrator),
        p if p.starts_with("/api/v1/pipelines") && *method == Method::GET => {
            if p.ends_with("/errors") || p.ends_with("/errors.csv") {
                Class::Role(Role::Editor)
            } else {
                Class::Role(Role::Viewer)
            }
        }
        // How bills of materials are read is the Administrators' to say.
        p if p.starts_with("/api/v1/pipelines") && p.ends_with("/bom") => {
            Class::Role(Role::Administrator)
        }
        // Deleting run history before its time, of one pipeline or all.
        p if p.starts_with("/api/v1/pipelines")
            && p.ends_with("/runs")
            && *method == Method::DELETE =>
        {
            Class::Role(Role::Administrator)
        }
        "/api/v1/runs" => Class::Role(Role::Administrator),
        p if p.starts_with("/api/v1/pipelines") => Class::Role(Role::Editor),
        // Making a data set of a bill of materials, as pulling one.
        "/api/v1/datasets/upload" => Class::Role(Role::Viewer),
        p if p.starts_with("/api/v1/datasets/")
            && (p.contains("/records/")
                || p.ends_with("/process")
                || p.ends_with("/refresh")
                || p.ends_with("/submit")
                || p.ends_with("/compare")
                || (p.ends_with("/files") && *method == Method::POST)) =>
        {
            Class::Dataset(Role::Editor)
        }
        p if p.starts_with("/api/v1/datasets/") => Class::Dataset(Role::Viewer),
        // Pulling and listing one's own data sets.
        "/api/v1/datasets" => Class::Role(Role::Viewer),
        "/api/v1/auth/logout" => Class::Member,
        p if p.starts_with("/api/v1/auth/") => Class::Public,
        p if p.starts_with("/api/v1/sys/") => Class::Operator,
        p if p.starts_with("/api/v1/me") => Class::Member,
        p if p.starts_with("/api/v1/users")
            || p.starts_with("/api/v1/teams")
            || p.starts_with("/api/v1/policies/")
            || p.starts_with("/api/v1/organization/")
            || p.starts_with("/api/v1/audit/") =>
        {
            Class::Role(Role::Administrator)
        }
        other => panic!("{other} is in no class: add it to the matrix's rules"),
    }
}

/// The id to put in a path template for an object of `owner`.
fn object_id(template: &str, owner: &Member, org_id: &str) -> String {
    let id = if template.starts_with("/api/v1/me/sessions/") {
        &owner.session_id
    } else if template.starts_with("/api/v1/me/tokens/") {
        &owner.api_token_id
    } else if template.starts_with("/api/v1/me/passkeys/") {
        &owner.passkey_id
    } else if template.starts_with("/api/v1/users/invitations/") {
        &owner.invitation_id
    } else if template.starts_with("/api/v1/users/")
        || template.starts_with("/api/v1/audit/objects/")
    {
        &owner.user_id
    } else if template.starts_with("/api/v1/sys/organizations/") {
        org_id
    } else if template.starts_with("/api/v1/connections/") {
        &owner.connection_id
    } else if template.starts_with("/api/v1/pipelines/") {
        &owner.pipeline_id
    } else if template.starts_with("/api/v1/datasets/") {
        &owner.dataset_id
    } else if template.starts_with("/api/v1/teams/") {
        &owner.team_id
    } else if template.starts_with("/api/v1/organization/support-access/") {
        &owner.support_grant_id
    } else if template.starts_with("/api/v1/sys/support-users/") {
        // The operator's route; every other caller is refused before the id is read.
        "01900000-0000-7000-8000-000000000000"
    } else {
        panic!("{template}: which object does its id name? add it to the matrix")
    };
    let name = if template.contains("/objects/") {
        "uploads%2Fx.csv"
    } else {
        "x.csv"
    };
    template
        .replace("{kind}", "user")
        .replace("{id}", id)
        .replace("{run}", &owner.run_id)
        .replace("{name}", name)
        .replace("{row}", "0")
        .replace("{user_id}", &owner.user_id)
}

/// A well-formed body for the routes that take one, so that authorization — not validation — is
/// what the matrix sees. A new route with a body needs a line here (the matrix fails with 422).
fn body_for(method: &Method, path: &str) -> Value {
    let template = path.rsplit_once('/').map_or(
        path,
        |(head, tail)| {
            if tail.len() == 36 { head } else { path }
        },
    );
    if let Some(rest) = path.strip_prefix("/api/v1/datasets/") {
        let user = json!({"user_id": "01900000-0000-7000-8000-000000000009"});
        return match method.as_str() {
            "POST" if rest.ends_with("/shares") || rest.ends_with("/transfer") => user,
            "POST" if rest.ends_with("/process") => json!({"status": "create", "process": false}),
            "PATCH" => json!({"process": false}),
            _ => json!({}),
        };
    }
    match (method.as_str(), template) {
        ("POST", "/api/v1/datasets") => {
            json!({"pipeline_id": "01900000-0000-7000-8000-000000000009"})
        }
        ("PUT", "/api/v1/me/settings") => json!({"dataset_removal_notice": true}),
        ("POST", "/api/v1/users/invitations") => json!({"email": "new@alpha.io", "role": "viewer"}),
        ("PATCH", "/api/v1/users") => json!({"role": "viewer"}),
        ("PATCH", "/api/v1/organization/settings") => json!({"require_totp": false}),
        ("POST", "/api/v1/organization/support-access") => {
            json!({"support_user_id": "01900000-0000-7000-8000-000000000000", "role": "viewer", "hours": 1, "reason": "x"})
        }
        ("POST", "/api/v1/organization/deletion") => {
            json!({"password": PASSWORD, "confirm_name": "alpha"})
        }
        ("PUT", "/api/v1/organization/sso") => {
            json!({"kind": "saml", "saml": {"idp_metadata_xml": "<x/>"}})
        }
        ("POST", "/api/v1/me/password") => json!({"current_password": "x", "new_password": "y"}),
        ("POST", "/api/v1/me/totp/confirm") | ("DELETE", "/api/v1/me/totp") => {
            json!({"code": "000000"})
        }
        ("POST", "/api/v1/me/passkeys/register/begin") | ("PATCH", "/api/v1/me/passkeys") => {
            json!({"name": "x"})
        }
        ("POST", "/api/v1/me/passkeys/register/finish") => {
            json!({"ceremony": "x", "credential": {}})
        }
        ("POST", "/api/v1/me/tokens") => {
            json!({"name": "x", "scope": "read", "expires_in_days": 1})
        }
        ("POST", "/api/v1/connections") => json!({"name": "x", "kind": "files", "config": {}}),
        ("PATCH", "/api/v1/connections") => json!({"name": "renamed"}),
        ("POST", "/api/v1/pipelines") => json!({"name": "x", "mode": "append"}),
        ("PATCH", "/api/v1/pipelines") => json!({"name": "renamed"}),
        ("POST", "/api/v1/teams") | ("PATCH", "/api/v1/teams") => json!({"name": "ops"}),
        ("PUT", p) if p.starts_with("/api/v1/policies/") => json!({"enabled": false}),
        ("POST", "/api/v1/sys/organizations") => {
            json!({"name": "Gamma", "admin_email": "a@gamma.io"})
        }
        _ => json!({}),
    }
}

/// A well-formed query for the routes that need one (a new one fails the matrix with 422).
fn query_for(path: &str) -> &'static str {
    match path {
        "/api/v1/audit/ledger/proofs/inclusion" => "?index=0&size=1",
        "/api/v1/audit/ledger/proofs/consistency" => "?from=1&to=1",
        p if p.ends_with("/sample") => "?limit=5",
        _ => "",
    }
}

async fn call(
    app: &Router,
    method: &Method,
    path: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let uri = format!("{path}{}", query_for(path));
    let mut request = Request::builder().method(method.clone()).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = if method == Method::GET {
        Body::empty()
    } else {
        Body::from(body_for(method, path).to_string())
    };
    let request = request
        .header(header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn routes() -> Vec<(Method, String)> {
    let doc = serde_json::to_value(lockstep_server::openapi()).unwrap();
    let mut routes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if let Ok(method) = method.to_uppercase().parse::<Method>() {
                routes.push((method, path.clone()));
            }
        }
    }
    routes
}

async fn cross_tenant_matrix(backend: Backend) {
    let t = TestStore::new(backend).await.unwrap();
    let (hub, creds) = Hub::initialize(t.store.clone(), Arc::new(SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = Arc::new(hub.with_options(HubOptions {
        password_permits: 2,
        public_url: PUBLIC_URL.to_owned(),
        ..HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let a = org(&hub, &op, "alpha").await;
    let b = org(&hub, &op, "beta").await;
    let orgs = hub.list_organizations(&op).await.unwrap();
    let (a_id, b_id) = (orgs[0].id.to_string(), orgs[1].id.to_string());
    let app = lockstep_server::router_with(
        Arc::clone(&hub),
        lockstep_server::RouterOptions {
            auth_requests_per_minute: 100_000,
        },
    );
    let operator = creds.operator_token.expose().to_owned();
    let roles = [
        ("administrator", &a.admin),
        ("editor", &a.editor),
        ("viewer", &a.viewer),
    ];

    let routes = routes();
    assert!(
        routes.len() >= 25,
        "the matrix found only {} routes",
        routes.len()
    );
    let mut checked = 0;
    for (method, template) in &routes {
        let class = class(method, template);
        let has_id = template.contains("{id}");
        let own_path = if has_id {
            object_id(template, &a.admin, &a_id)
        } else {
            template.clone()
        };

        // Anonymous.
        if class != Class::Public {
            let before = snapshot(&t.store).await.unwrap();
            let (status, _) = call(&app, method, &own_path, None).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "anonymous {method} {own_path}"
            );
            assert_eq!(
                snapshot(&t.store).await.unwrap(),
                before,
                "anonymous {method} {own_path} changed the store"
            );
            checked += 1;
        }
        // The operator on member routes, members on operator routes.
        if matches!(class, Class::Member | Class::Role(_) | Class::Dataset(_)) {
            let (status, _) = call(&app, method, &own_path, Some(&operator)).await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "operator {method} {own_path}"
            );
            checked += 1;
        }
        if class == Class::Operator {
            for (role, who) in roles {
                let before = snapshot(&t.store).await.unwrap();
                let (status, _) = call(&app, method, &own_path, Some(&who.token)).await;
                assert_eq!(
                    status,
                    StatusCode::UNAUTHORIZED,
                    "{role} {method} {own_path}"
                );
                assert_eq!(snapshot(&t.store).await.unwrap(), before);
                checked += 1;
            }
        }
        if !matches!(class, Class::Member | Class::Role(_) | Class::Dataset(_)) {
            continue;
        }
        for (role, who) in roles {
            let rank = match role {
                "administrator" => Role::Administrator,
                "editor" => Role::Editor,
                _ => Role::Viewer,
            };
            // Objects of organization B: 404 for every role, nothing changed.
            if has_id {
                for foreign in [&b.admin, &b.editor, &b.viewer] {
                    let path = object_id(template, foreign, &b_id);
                    let before = snapshot(&t.store).await.unwrap();
                    let (status, body) = call(&app, method, &path, Some(&who.token)).await;
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{role} of A: {method} {path} (B's object): {body}"
                    );
                    assert_eq!(
                        snapshot(&t.store).await.unwrap(),
                        before,
                        "{role} {method} {path} changed the store"
                    );
                    checked += 1;
                }
            }
            // Another member's private objects (sessions, tokens) in the same organization: 404.
            if has_id && class == Class::Member {
                let other = if std::ptr::eq(who, &a.editor) {
                    &a.viewer
                } else {
                    &a.editor
                };
                let path = object_id(template, other, &a_id);
                let before = snapshot(&t.store).await.unwrap();
                let (status, _) = call(&app, method, &path, Some(&who.token)).await;
                assert_eq!(
                    status,
                    StatusCode::NOT_FOUND,
                    "{role}: {method} {path} (another member's)"
                );
                assert_eq!(snapshot(&t.store).await.unwrap(), before);
                checked += 1;
            }
            // Another member's data set: 404 but for Administrators, nothing changed; the own
            // data set's routes above the member's role: 403, nothing changed.
            if let Class::Dataset(needs) = class {
                if rank != Role::Administrator {
                    let path = object_id(template, &a.admin, &a_id);
                    let before = snapshot(&t.store).await.unwrap();
                    let (status, body) = call(&app, method, &path, Some(&who.token)).await;
                    assert_eq!(
                        status,
                        StatusCode::NOT_FOUND,
                        "{role}: {method} {path} (the Administrator's data set): {body}"
                    );
                    assert_eq!(snapshot(&t.store).await.unwrap(), before);
                    checked += 1;
                }
                if rank < needs {
                    let path = object_id(template, who, &a_id);
                    let before = snapshot(&t.store).await.unwrap();
                    let (status, body) = call(&app, method, &path, Some(&who.token)).await;
                    assert_eq!(
                        status,
                        StatusCode::FORBIDDEN,
                        "{role}: {method} {path} (their own data set): {body}"
                    );
                    assert_eq!(snapshot(&t.store).await.unwrap(), before);
                    checked += 1;
                }
                // The matrix's data set is a flat one: the routes of a bill of materials answer
                // it 409 (or 404 for a part's file); tests/server/boms.rs shows their 200s.
                let bom_only = template.ends_with("/tree")
                    || template.ends_with("/parts")
                    || template.contains("/files/");
                if *method == Method::GET && !bom_only {
                    for owner in [who, &a.viewer] {
                        if rank != Role::Administrator && !std::ptr::eq(owner, who) {
                            continue;
                        }
                        let path = object_id(template, owner, &a_id);
                        let (status, body) = call(&app, method, &path, Some(&who.token)).await;
                        assert_eq!(status, StatusCode::OK, "{role}: {method} {path}: {body}");
                        checked += 1;
                    }
                }
                continue;
            }
            // Routes above the member's role: 403, nothing changed.
            if matches!(class, Class::Role(needs) if rank < needs) {
                let path = if has_id {
                    object_id(template, &a.viewer, &a_id)
                } else {
                    template.clone()
                };
                let before = snapshot(&t.store).await.unwrap();
                let (status, body) = call(&app, method, &path, Some(&who.token)).await;
                assert_eq!(
                    status,
                    StatusCode::FORBIDDEN,
                    "{role}: {method} {path}: {body}"
                );
                assert_eq!(
                    snapshot(&t.store).await.unwrap(),
                    before,
                    "{role} {method} {path} changed the store"
                );
                checked += 1;
            }
            // Allowed reads answer 200.
            let allowed = match class {
                Class::Member => true,
                Class::Role(needs) => rank >= needs,
                _ => false,
            };
            if *method == Method::GET && allowed {
                let owner = if class == Class::Member {
                    who
                } else {
                    &a.viewer
                };
                let path = if has_id {
                    object_id(template, owner, &a_id)
                } else {
                    template.clone()
                };
                let (status, body) = call(&app, method, &path, Some(&who.token)).await;
                // A singleton the organization has not configured yet is 404 for whoever may
                // read it.
                let expected = if template == "/api/v1/organization/sso"
                    || template == "/api/v1/organization/deletion"
                {
                    StatusCode::NOT_FOUND
                } else {
                    StatusCode::OK
                };
                assert_eq!(status, expected, "{role}: {method} {path}: {body}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 120, "only {checked} cases were checked");
}

#[tokio::test]
async fn cross_tenant_matrix_on_sqlite() {
    cross_tenant_matrix(Backend::Sqlite).await;
}

#[tokio::test]
async fn cross_tenant_matrix_on_postgres() {
    cross_tenant_matrix(Backend::Postgres).await;
}

#[tokio::test]
async fn every_documented_route_exists_in_the_router() {
    let t = TestStore::new(Backend::Sqlite).await.unwrap();
    let (hub, _) = Hub::initialize(t.store.clone(), Arc::new(SystemClock), 1, 1)
        .await
        .unwrap();
    let app = lockstep_server::router(Arc::new(hub));
    for (method, template) in routes() {
        let path = template
            .replace("{id}", "01900000-0000-7000-8000-000000000001")
            .replace("{run}", "01900000-0000-7000-8000-000000000002")
            .replace("{name}", "x.csv")
            .replace("{row}", "0")
            .replace("{user_id}", "01900000-0000-7000-8000-000000000003");
        let (status, body) = call(&app, &method, &path, None).await;
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path} is documented but not routed"
        );
        assert_ne!(
            body["title"], "No such route",
            "{method} {path} is documented but not routed"
        );
    }
}

/// With the access policy on, every route that names a connection or a pipeline answers a
/// member outside the granted teams 404, exactly as for a missing id, and changes nothing; the
/// granted member and Administrators still reach them.
async fn access_policy_matrix(backend: Backend) {
    let t = TestStore::new(backend).await.unwrap();
    let (hub, creds) = Hub::initialize(t.store.clone(), Arc::new(SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = Arc::new(hub.with_options(HubOptions {
        password_permits: 2,
        ..HubOptions::default()
    }));
    let op = hub
        .authenticate_operator(&creds.operator_token)
        .await
        .unwrap();
    let a = org(&hub, &op, "alpha").await;
    let orgs = hub.list_organizations(&op).await.unwrap();
    let a_id = orgs[0].id.to_string();
    let app = lockstep_server::router_with(
        Arc::clone(&hub),
        lockstep_server::RouterOptions {
            auth_requests_per_minute: 100_000,
        },
    );
    let admin = hub.authenticate(&a.admin.token).await.unwrap();
    let editor = hub.authenticate(&a.editor.token).await.unwrap();
    let team = hub.create_team(&admin, "granted").await.unwrap().id;
    hub.add_team_member(&admin, team, editor.user())
        .await
        .unwrap();
    let grants = |kind: lockstep_app::PolicyObjectKind, id: &str| lockstep_app::AccessGrant {
        team_id: team,
        object_kind: kind,
        object_id: id.to_owned(),
    };
    hub.put_access_policy(
        &admin,
        lockstep_app::AccessPolicy {
            enabled: true,
            grants: vec![
                grants(
                    lockstep_app::PolicyObjectKind::Connection,
                    &a.admin.connection_id,
                ),
                grants(
                    lockstep_app::PolicyObjectKind::Pipeline,
                    &a.admin.pipeline_id,
                ),
            ],
        },
    )
    .await
    .unwrap();
    let mut checked = 0;
    for (method, template) in routes() {
        let named = template.starts_with("/api/v1/connections/{id}")
            || template.starts_with("/api/v1/pipelines/{id}");
        if !named {
            continue;
        }
        let path = object_id(&template, &a.admin, &a_id);
        // The Viewer is in no granted team: as if the object did not exist.
        let before = snapshot(&t.store).await.unwrap();
        let (status, body) = call(&app, &method, &path, Some(&a.viewer.token)).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "viewer outside the granted team: {method} {path}: {body}"
        );
        assert_eq!(
            snapshot(&t.store).await.unwrap(),
            before,
            "{method} {path} changed the store"
        );
        checked += 1;
        // The granted Editor and the Administrator read it.
        if method == Method::GET && !template.ends_with("/sample") {
            for who in [&a.editor, &a.admin] {
                let (status, body) = call(&app, &method, &path, Some(&who.token)).await;
                assert_eq!(status, StatusCode::OK, "{method} {path}: {body}");
            }
        }
    }
    assert!(checked >= 15, "only {checked} routes were checked");
    // Lists leave the objects out.
    let (_, list) = call(
        &app,
        &Method::GET,
        "/api/v1/pipelines",
        Some(&a.viewer.token),
    )
    .await;
    assert_eq!(list["pipelines"], json!([]), "{list}");
    let (_, list) = call(
        &app,
        &Method::GET,
        "/api/v1/pipelines",
        Some(&a.editor.token),
    )
    .await;
    assert_eq!(
        list["pipelines"].as_array().map(Vec::len),
        Some(1),
        "{list}"
    );
}

#[tokio::test]
async fn access_policy_matrix_on_sqlite() {
    access_policy_matrix(Backend::Sqlite).await;
}

#[tokio::test]
async fn access_policy_matrix_on_postgres() {
    access_policy_matrix(Backend::Postgres).await;
}
