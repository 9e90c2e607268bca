//! The error answers every operation shares, added to the OpenAPI document from what the
//! operation is (who may call it, whether it has path or query parameters or a JSON body, where it
//! lives), so no operation forgets one. Each is the one `Problem` response (problem+json).
//!
//! Answers that depend on the use case (409 refused or taken, 502 a connection failed, a 401 of
//! sign-in) stay in the operation's own annotation; this module turns them into the shared
//! `Problem` response too, keeping their description.

use crate::middleware::SEALED_ALLOWED_PATHS;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::Ref;
use utoipa::openapi::{Content, OpenApi, RefOr, Response, ResponseBuilder};

/// The name of the shared problem+json response in `components.responses`.
const PROBLEM: &str = "Problem";
const PROBLEM_JSON: &str = "application/problem+json";

/// Who may call an operation, read from its `security`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// `security: [{}]`: no credentials needed.
    Public,
    /// The operator token.
    Operator,
    /// A member's session or API token (the document's default).
    Member,
}

fn access(operation: &Operation) -> Access {
    let Some(requirements) = &operation.security else {
        return Access::Member;
    };
    let names: Vec<String> = requirements
        .iter()
        .filter_map(|r| serde_json::to_value(r).ok())
        .filter_map(|v| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .flatten()
        .collect();
    if names.iter().any(|n| n == "operator_token") {
        Access::Operator
    } else if names.is_empty() {
        Access::Public
    } else {
        Access::Member
    }
}

/// Adds the `Problem` response and each operation's common error answers.
pub(crate) struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.responses.insert(
            PROBLEM.to_owned(),
            RefOr::T(
                ResponseBuilder::new()
                    .description("A problem (RFC 9457): `type` names it, `detail` says more.")
                    .content(
                        PROBLEM_JSON,
                        Content::new(Some(Ref::from_schema_name("ApiError"))),
                    )
                    .build(),
            ),
        );
        for (path, item) in &mut openapi.paths.paths {
            let operations = [
                ("GET", &mut item.get),
                ("PUT", &mut item.put),
                ("POST", &mut item.post),
                ("DELETE", &mut item.delete),
                ("PATCH", &mut item.patch),
            ];
            for (method, operation) in operations {
                if let Some(operation) = operation {
                    document(path, method, operation);
                }
            }
        }
    }
}

/// The common answers of one operation.
fn document(path: &str, method: &str, operation: &mut Operation) {
    let access = access(operation);
    let safe = method == "GET";
    let parameters = operation.parameters.clone().unwrap_or_default();
    let has_in = |place: ParameterIn| {
        parameters
            .iter()
            .any(|p| matches!(p, RefOr::T(p) if p.parameter_in == place))
    };
    let body_types: Vec<String> = match &operation.request_body {
        Some(RefOr::T(body)) => body.content.keys().cloned().collect(),
        _ => Vec::new(),
    };
    let json_body = body_types.iter().any(|t| t == "application/json");

    let mut add = |status: &str, description: &str| {
        operation
            .responses
            .responses
            .entry(status.to_owned())
            .or_insert_with(|| problem(description));
    };
    if json_body {
        add("400", "The body is not valid JSON.");
        add("415", "The body is not sent as `application/json`.");
        add(
            "422",
            "A field is missing, unknown or invalid (`field` names it).",
        );
    }
    if !body_types.is_empty() {
        add("413", "The body is too large.");
    }
    if has_in(ParameterIn::Query) {
        add(
            "422",
            "A query parameter is unknown or invalid (`field` names it).",
        );
    }
    if has_in(ParameterIn::Path) {
        add("404", "No such object here (or not visible to the caller).");
        add("422", "A path parameter is malformed (`field` names it).");
    }
    match access {
        Access::Public => {}
        Access::Operator => add("401", "Not the operator token."),
        Access::Member => {
            add(
                "401",
                "No valid session or API token (missing, unknown, expired or revoked).",
            );
            // Everything outside a member's own account needs a role (and TOTP enrolment when
            // the organization requires it); a change signed in by cookie needs the CSRF token.
            let own = path.starts_with("/api/v1/me") || path.starts_with("/api/v1/auth/");
            if !own || !safe {
                add(
                    "403",
                    "Not allowed: the role does not allow it, TOTP enrolment is required first, \
                     or (cookie sign-in) the CSRF token is missing.",
                );
            }
        }
    }
    if path.starts_with("/api/v1/auth/") {
        add(
            "429",
            "Too many sign-in requests from this address; see `Retry-After`.",
        );
    }
    if !SEALED_ALLOWED_PATHS.contains(&path) {
        add("503", "The hub is sealed.");
    }

    // Every problem answer is the shared response, with the operation's own description.
    for response in operation.responses.responses.values_mut() {
        if let RefOr::T(r) = response
            && r.content.contains_key(PROBLEM_JSON)
        {
            let shared = problem(&r.description);
            *response = shared;
        }
    }
}

fn problem(description: &str) -> RefOr<Response> {
    let mut reference = Ref::new(format!("#/components/responses/{PROBLEM}"));
    reference.description = description.to_owned();
    RefOr::Ref(reference)
}
