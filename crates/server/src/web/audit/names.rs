//! What the audit pages show in place of ids: names (ids only on hover, in `title`), and the
//! options of the person and action pickers.

use super::{encode_query, path_segment};
use lockstep_app::{AUDIT_ACTIONS, AuditNames};
use std::collections::HashMap;

/// Something an event names, as the page shows it: a name (or a word when it has none), its
/// id on hover, and where it leads.
pub(super) struct Shown {
    pub(super) text: String,
    /// The id, in the `title` attribute only.
    pub(super) title: Option<String>,
    pub(super) href: Option<String>,
}

impl Shown {
    pub(super) fn text(text: impl Into<String>) -> Shown {
        Shown {
            text: text.into(),
            title: None,
            href: None,
        }
    }
}

/// The names of the organization's members, connections and pipelines by id.
#[derive(Default)]
pub(super) struct Names {
    members: HashMap<String, String>,
    connections: HashMap<String, String>,
    pipelines: HashMap<String, String>,
    /// The organization's own name (the object of its settings events).
    organization: String,
}

impl Names {
    pub(super) fn new(names: AuditNames, organization: String) -> Names {
        Names {
            members: names
                .members
                .into_iter()
                .map(|(id, name)| (id.to_string(), name))
                .collect(),
            connections: names
                .connections
                .into_iter()
                .map(|(id, name)| (id.to_string(), name))
                .collect(),
            pipelines: names
                .pipelines
                .into_iter()
                .map(|(id, name)| (id.to_string(), name))
                .collect(),
            organization,
        }
    }

    /// The name and page of a member, connection or pipeline with this id.
    fn named(&self, id: &str) -> Option<(String, String)> {
        let segment = path_segment(id);
        if let Some(name) = self.members.get(id) {
            return Some((name.clone(), format!("/users/{segment}")));
        }
        if let Some(name) = self.connections.get(id) {
            return Some((name.clone(), format!("/connections/{segment}")));
        }
        self.pipelines
            .get(id)
            .map(|name| (name.clone(), format!("/pipelines/{segment}")))
    }

    /// An event's actor.
    pub(super) fn actor(&self, kind: &str, id: Option<&str>) -> Shown {
        let events_of = |id: &str| format!("/audit?{}", encode_query(&[("actor", id)]));
        match (kind, id) {
            ("user", Some(id)) => Shown {
                text: self
                    .members
                    .get(id)
                    .cloned()
                    .unwrap_or_else(|| "a former member".to_owned()),
                title: Some(format!("user {id}")),
                href: Some(events_of(id)),
            },
            (kind, Some(id)) => Shown {
                text: kind_words(kind).to_owned(),
                title: Some(format!("{kind} {id}")),
                href: Some(events_of(id)),
            },
            (kind, None) => Shown::text(kind_words(kind)),
        }
    }

    /// An event's object: named where it has a name; a run by its pipeline when the event
    /// says which.
    pub(super) fn object(&self, kind: &str, id: &str, changes: &[super::ChangeRow]) -> Shown {
        let title = Some(format!("{kind} {id}"));
        if matches!(kind, "user" | "connection" | "pipeline")
            && let Some((name, href)) = self.named(id)
        {
            return Shown {
                text: name,
                title,
                href: Some(href),
            };
        }
        if kind == "organization" && !self.organization.is_empty() {
            return Shown {
                text: self.organization.clone(),
                title,
                href: None,
            };
        }
        if kind == "run"
            && let Some(pipeline) = changes.iter().find(|c| c.field == "pipeline")
            && let Some(href) = &pipeline.after.href
        {
            return Shown {
                text: format!("a run of {}", pipeline.after.text),
                title,
                href: Some(format!("{href}/runs/{}", path_segment(id))),
            };
        }
        let text = match kind {
            "user" => "a former member".to_owned(),
            "connection" | "pipeline" => format!("a deleted {kind}"),
            _ => format!("this {}", kind_words(kind).to_lowercase()),
        };
        Shown {
            text,
            title,
            href: None,
        }
    }

    /// A changed value: a name where it is an id the organization names.
    pub(super) fn value(&self, value: Option<String>) -> Shown {
        match value {
            None => Shown::text("—"),
            Some(value) => match self.named(&value) {
                Some((name, href)) => Shown {
                    text: name,
                    title: Some(value),
                    href: Some(href),
                },
                None => Shown::text(value),
            },
        }
    }
}

/// An object or actor kind in words.
pub(super) fn kind_words(kind: &str) -> &str {
    match kind {
        "user" => "Member",
        "connection" => "Connection",
        "pipeline" => "Pipeline",
        "run" => "Run",
        "invitation" => "Invitation",
        "api_token" => "API token",
        "session" => "Session",
        "organization" => "Organization",
        "operator" => "Operator",
        "scheduler" => "Scheduler",
        "anonymous" => "Someone not signed in",
        other => other,
    }
}

/// An option of the person or action picker.
pub(super) struct PickOption {
    pub(super) value: String,
    pub(super) label: String,
    pub(super) selected: bool,
}

/// The person picker: anyone, then the members by name; an actor searched for who is no
/// member (the operator, a deleted member) stays selectable.
pub(super) fn member_options(names: &AuditNames, actor: &str) -> Vec<PickOption> {
    let mut options = vec![PickOption {
        value: String::new(),
        label: "Anyone".to_owned(),
        selected: actor.is_empty(),
    }];
    options.extend(names.members.iter().map(|(id, name)| {
        let value = id.to_string();
        PickOption {
            selected: value == actor,
            value,
            label: name.clone(),
        }
    }));
    if !actor.is_empty() && !options.iter().any(|o| o.selected) {
        options.push(PickOption {
            value: actor.to_owned(),
            label: "Someone who is no member (the operator or a former member)".to_owned(),
            selected: true,
        });
    }
    options
}

/// The action picker: any action, then every action events are recorded under.
pub(super) fn action_options(action: &str) -> Vec<PickOption> {
    let mut options = vec![PickOption {
        value: String::new(),
        label: "Any action".to_owned(),
        selected: action.is_empty(),
    }];
    options.extend(AUDIT_ACTIONS.iter().map(|a| PickOption {
        value: (*a).to_owned(),
        label: (*a).to_owned(),
        selected: *a == action,
    }));
    if !action.is_empty() && !AUDIT_ACTIONS.contains(&action) {
        options.push(PickOption {
            value: action.to_owned(),
            label: action.to_owned(),
            selected: true,
        });
    }
    options
}
