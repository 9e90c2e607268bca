//! Data policies: three layers an Administrator switches on one by one, each only ever taking
//! away from what roles already allow.
//!
//! 1. **Access** — which teams may use which connections, pipelines and data sets. With it on, a
//!    member sees a connection or a pipeline only when it is granted to one of their teams (a
//!    data set: its owner always; the members it is shared with when its pipeline is visible
//!    to them and, if grants name the data set, when they are in a granted team). Anything else
//!    is "not found", exactly as a missing id. Administrators see everything.
//! 2. **Ownership** — row filters: per team and connection object, a CEL expression over the
//!    record's fields (and the member's own attributes as `member`). A member sees a record of
//!    an object that has rules only when it passes a rule of one of their teams (the union);
//!    objects without rules are not filtered. Administrators see every record (governance;
//!    "view as" shows them what a member sees).
//! 3. **Redaction** — per field (by name or by a `*` pattern, matched without regard to case),
//!    per team (or everybody), how a value is shown: `mask`, `partial` (the last N characters),
//!    `scramble` (a keyed hash under the organization's key: equal values stay equal) or `hide`
//!    (absent). The strictest rule that applies wins; Administrators are exempted only by a
//!    rule that says so.
//!
//! The documents are sealed under the organization's key (row filters name values), one per
//! layer, and every change is audited with before and after. Every read path that shows a
//! record — samples, data set records and the destination values beside them, run errors and
//! their export, and the pages built on them — goes through [`RecordPolicy`].

use crate::audit::{Event, FieldChange};
use crate::identity::Caller;
use crate::{AppError, Hub};
use lockstep_domain::{ConnectionId, OrganizationId, Role, TeamId, UserId};
use lockstep_engine::RowFilter;
use lockstep_policy::Action;
use lockstep_storage::teams::{self, StoredPolicy};
use lockstep_storage::users::UserStatus;
use lockstep_storage::{Connection, StoreError, connections, datasets, pipelines, users};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::sync::Arc;

/// At most this many grants or rules in one layer.
pub const MAX_RULES: usize = 1000;
/// The longest field pattern, in characters.
const MAX_PATTERN: usize = 100;

/// The kinds of object an access grant names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum PolicyObjectKind {
    Connection,
    Pipeline,
    Dataset,
}

/// One team's access to one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessGrant {
    #[schema(value_type = String, format = Uuid)]
    pub team_id: TeamId,
    pub object_kind: PolicyObjectKind,
    #[schema(format = Uuid)]
    pub object_id: String,
}

/// Which teams may use which connections, pipelines and data sets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccessPolicy {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub grants: Vec<AccessGrant>,
}

/// One team's row filter on one connection object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnershipRule {
    #[schema(value_type = String, format = Uuid)]
    pub team_id: TeamId,
    #[schema(value_type = String, format = Uuid)]
    pub connection_id: ConnectionId,
    /// The object as discovery names it.
    pub object: String,
    /// A CEL expression over the record's fields; `member.email`, `member.id`, `member.role`
    /// and `member.teams` are the member's own.
    pub filter: String,
}

/// Row filters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OwnershipPolicy {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub rules: Vec<OwnershipRule>,
}

/// How a redacted value is shown (the pipelines' `redact` transform uses the same kinds).
pub use lockstep_engine::RedactKind as RedactionKind;

/// One redaction rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionRule {
    /// The team it applies to; absent: every member.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub team_id: Option<TeamId>,
    /// Only this connection's records; absent: any connection.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub connection_id: Option<ConnectionId>,
    /// Only this object's records (with `connection_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The field, by its exact name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Fields whose name matches, `*` standing for any characters, without regard to case
    /// (`*ssn*`, `*salary*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    pub kind: RedactionKind,
    /// `partial`: how many characters to keep at the end (1 to 64, default 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep: Option<u32>,
    /// Administrators see the value in clear (never by default).
    #[serde(default)]
    pub exempt_administrators: bool,
}

/// Redaction rules.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RedactionPolicy {
    #[serde(default)]
    pub enabled: bool,
    #[serde(default)]
    pub rules: Vec<RedactionRule>,
}

/// Whose eyes a read is for: the caller, or with "view as" a member or a team.
#[derive(Debug, Clone)]
pub struct Viewer {
    pub user: Option<UserId>,
    /// The member's role (a team previews as an Editor: the rules, not a role, are shown).
    pub role: Role,
    pub administrator: bool,
    pub teams: BTreeSet<TeamId>,
    /// What `member` is in a row filter.
    member: serde_json::Value,
    /// "View as" is in effect (pages show a banner).
    pub preview: bool,
}

/// What an Administrator previews: `user:ID` or `team:ID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ViewAs {
    User(UserId),
    Team(TeamId),
}

impl ViewAs {
    /// Parses `user:ID` or `team:ID`.
    pub fn parse(text: &str) -> Result<ViewAs, AppError> {
        let invalid = || AppError::Invalid {
            field: "view_as",
            reason: "must be user:ID or team:ID".to_owned(),
        };
        match text.split_once(':') {
            Some(("user", id)) => Ok(ViewAs::User(id.parse().map_err(|_| invalid())?)),
            Some(("team", id)) => Ok(ViewAs::Team(id.parse().map_err(|_| invalid())?)),
            _ => Err(invalid()),
        }
    }
}

/// The record layers in force in an organization (those switched on), rules compiled.
#[derive(Debug, Default)]
pub(crate) struct Policies {
    ownership: Option<Vec<(OwnershipRule, Arc<RowFilter>)>>,
    redaction: Option<RedactionPolicy>,
}

/// The rules that apply to one viewer's records of one connection object.
pub(crate) struct RecordPolicy {
    /// `None`: every record; otherwise a record passes one of these (none: no record).
    filters: Option<Vec<Arc<RowFilter>>>,
    /// The rules that may apply to a field, strictest first.
    redactions: Vec<RedactionRule>,
    member: serde_json::Value,
    scrambler: Option<lockstep_engine::Scrambler>,
    /// Which rule applies to a field (by its names joined), found once per field rather than
    /// once per record.
    rule_cache: std::sync::Mutex<std::collections::HashMap<String, Option<usize>>>,
}

impl std::fmt::Debug for RecordPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordPolicy")
            .field("filters", &self.filters.as_ref().map(Vec::len))
            .field("redactions", &self.redactions.len())
            .finish()
    }
}

/// Runs `work` (row filters, redaction: bounded per record, but a page's worth adds up) on the
/// blocking pool, never on the threads that answer requests.
pub(crate) async fn off_request_threads<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|_| AppError::Refused("applying the data policies stopped unexpectedly"))
}

/// Whether `pattern` (`*` for any characters) matches `name`, without regard to case.
pub(crate) fn pattern_matches(pattern: &str, name: &str) -> bool {
    let pattern: Vec<char> = pattern.to_lowercase().chars().collect();
    let name: Vec<char> = name.to_lowercase().chars().collect();
    // Iterative wildcard matching with one backtrack point: linear in practice, bounded by
    // pattern × name in the worst case (both short).
    let (mut p, mut n) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        match pattern.get(p) {
            Some('*') => {
                star = Some((p, n));
                p += 1;
            }
            Some(c) if Some(c) == name.get(n) => {
                p += 1;
                n += 1;
            }
            _ => match star {
                Some((sp, sn)) => {
                    p = sp + 1;
                    n = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    pattern
        .get(p..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

fn redaction_of(rule: &RedactionRule) -> lockstep_engine::Redaction {
    lockstep_engine::Redaction {
        kind: rule.kind,
        keep: rule.keep,
    }
}

fn strictness(rule: &RedactionRule) -> u32 {
    redaction_of(rule).strictness()
}

impl RecordPolicy {
    /// A policy that withholds nothing.
    pub(crate) fn open() -> RecordPolicy {
        RecordPolicy {
            filters: None,
            redactions: Vec::new(),
            member: serde_json::Value::Null,
            scrambler: None,
            rule_cache: Default::default(),
        }
    }

    /// Whether nothing is withheld or changed.
    pub(crate) fn is_open(&self) -> bool {
        self.filters.is_none() && self.redactions.is_empty()
    }

    /// Whether the row filters let the record through.
    pub(crate) fn passes(&self, record: &serde_json::Map<String, serde_json::Value>) -> bool {
        match &self.filters {
            None => true,
            Some(filters) => filters.iter().any(|f| f.matches(record, &self.member)),
        }
    }

    /// The strictest rule for a field known by any of `names` (its name here, the source field
    /// it came from), looked up once per field.
    fn rule_for(&self, names: &[&str]) -> Option<&RedactionRule> {
        if self.redactions.is_empty() {
            return None;
        }
        let key = names.join("\u{0}");
        let cached = self
            .rule_cache
            .lock()
            .ok()
            .and_then(|cache| cache.get(&key).copied());
        let index = match cached {
            Some(index) => index,
            None => {
                let index = self.redactions.iter().position(|r| {
                    names.iter().any(|name| match (&r.field, &r.pattern) {
                        (Some(field), _) => field == name,
                        (None, Some(pattern)) => pattern_matches(pattern, name),
                        (None, None) => false,
                    })
                });
                if let Ok(mut cache) = self.rule_cache.lock() {
                    cache.insert(key, index);
                }
                index
            }
        };
        index.and_then(|i| self.redactions.get(i))
    }

    /// The record fields the row filters read (none without filters).
    pub(crate) fn filter_fields(&self) -> BTreeSet<String> {
        self.filters
            .iter()
            .flatten()
            .flat_map(|f| f.fields())
            .collect()
    }

    /// The value as the viewer may see it; `None` when the field is hidden.
    pub(crate) fn redact(
        &self,
        names: &[&str],
        value: &serde_json::Value,
    ) -> Option<serde_json::Value> {
        let Some(rule) = self.rule_for(names) else {
            return Some(value.clone());
        };
        // Without the organization's scrambler nothing can be scrambled: the value is masked.
        let unkeyed: lockstep_engine::Scrambler = Arc::new(|_: &[u8]| [0u8; 32]);
        let (redaction, scrambler) = match &self.scrambler {
            Some(scrambler) => (redaction_of(rule), scrambler),
            None if rule.kind == RedactionKind::Scramble => (
                lockstep_engine::Redaction {
                    kind: RedactionKind::Mask,
                    keep: None,
                },
                &unkeyed,
            ),
            None => (redaction_of(rule), &unkeyed),
        };
        lockstep_engine::redact_json(&redaction, value, scrambler)
    }

    /// Redacts every field of a record in place (`source_of` names the source field a field
    /// came from, for rules written on source names).
    pub(crate) fn redact_record(
        &self,
        record: &mut serde_json::Map<String, serde_json::Value>,
        source_of: &dyn Fn(&str) -> Option<String>,
    ) {
        if self.redactions.is_empty() {
            return;
        }
        let fields: Vec<String> = record.keys().cloned().collect();
        for field in fields {
            let source = source_of(&field);
            let mut names = vec![field.as_str()];
            if let Some(s) = &source {
                names.push(s.as_str());
            }
            let Some(value) = record.get(&field) else {
                continue;
            };
            match self.redact(&names, value) {
                Some(v) => {
                    record.insert(field, v);
                }
                None => {
                    record.remove(&field);
                }
            }
        }
    }

    /// Whether a field (by any of `names`) is redacted for the viewer.
    pub(crate) fn redacts(&self, names: &[&str]) -> bool {
        self.rule_for(names).is_some()
    }

    /// This policy's filters with `other`'s redactions added (the strictest of both applies):
    /// for records of one object shown beside another's.
    pub(crate) fn with_redactions_of(&self, other: &RecordPolicy) -> RecordPolicy {
        let mut redactions = self.redactions.clone();
        redactions.extend(other.redactions.iter().cloned());
        redactions.sort_by_key(|r| std::cmp::Reverse(strictness(r)));
        RecordPolicy {
            filters: self.filters.clone(),
            redactions,
            member: self.member.clone(),
            scrambler: self.scrambler.clone().or_else(|| other.scrambler.clone()),
            rule_cache: Default::default(),
        }
    }
}

impl Policies {
    /// The rules for the viewer's records of `object` of `connection`.
    pub(crate) fn for_object(
        &self,
        viewer: &Viewer,
        connection: ConnectionId,
        object: &str,
        scrambler: Option<lockstep_engine::Scrambler>,
    ) -> RecordPolicy {
        let filters = match &self.ownership {
            Some(rules) if !viewer.administrator => {
                let on_object: Vec<&(OwnershipRule, Arc<RowFilter>)> = rules
                    .iter()
                    .filter(|(r, _)| r.connection_id == connection && r.object == object)
                    .collect();
                if on_object.is_empty() {
                    None
                } else {
                    Some(
                        on_object
                            .into_iter()
                            .filter(|(r, _)| viewer.teams.contains(&r.team_id))
                            .map(|(_, f)| Arc::clone(f))
                            .collect(),
                    )
                }
            }
            _ => None,
        };
        let mut redactions: Vec<RedactionRule> = match &self.redaction {
            Some(policy) => policy
                .rules
                .iter()
                .filter(|r| r.team_id.is_none_or(|t| viewer.teams.contains(&t)))
                .filter(|r| !(viewer.administrator && r.exempt_administrators))
                .filter(|r| r.connection_id.is_none_or(|c| c == connection))
                .filter(|r| r.object.as_deref().is_none_or(|o| o == object))
                .cloned()
                .collect(),
            None => Vec::new(),
        };
        redactions.sort_by_key(|r| std::cmp::Reverse(strictness(r)));
        RecordPolicy {
            filters,
            redactions,
            member: viewer.member.clone(),
            scrambler,
            rule_cache: Default::default(),
        }
    }
}

fn layer_error(field: String, reason: impl Into<String>) -> AppError {
    AppError::InvalidConfig {
        field,
        reason: reason.into(),
    }
}

impl Hub {
    /// The viewer the caller is, or with `view_as` (Administrators; audited) the member or team
    /// they preview.
    pub async fn viewer(
        &self,
        caller: &Caller,
        view_as: Option<ViewAs>,
    ) -> Result<Viewer, AppError> {
        let org = caller.organization();
        let Some(view_as) = view_as else {
            return self
                .viewer_of_user(org, caller.user(), caller.member.role)
                .await;
        };
        self.authorize_in_organization(caller, Action::ViewAs)?;
        let mut viewer = match view_as {
            ViewAs::User(user) => {
                let mut conn = self.store.read().await?;
                let stored = users::get(&mut conn, org, user).await?;
                drop(conn);
                let stored = stored
                    .filter(|u| u.status == UserStatus::Active)
                    .ok_or_else(|| AppError::Invalid {
                        field: "view_as",
                        reason: "names no active member of this organization".to_owned(),
                    })?;
                self.viewer_of_user(org, user, stored.role).await?
            }
            ViewAs::Team(team) => {
                let mut conn = self.store.read().await?;
                let found = teams::get(&mut conn, org, team).await?;
                drop(conn);
                if found.is_none() {
                    return Err(AppError::Invalid {
                        field: "view_as",
                        reason: "names no team of this organization".to_owned(),
                    });
                }
                Viewer {
                    user: None,
                    role: Role::Editor,
                    administrator: false,
                    teams: BTreeSet::from([team]),
                    member: serde_json::json!({
                        "id": null, "email": null, "role": "viewer", "teams": [team.to_string()]
                    }),
                    preview: true,
                }
            }
        };
        viewer.preview = true;
        let (kind, id) = match view_as {
            ViewAs::User(u) => ("user", u.to_string()),
            ViewAs::Team(t) => ("team", t.to_string()),
        };
        let event = Event::new(caller.actor(), "policy.viewed_as", "organization", org).change(
            "view_as",
            FieldChange::value(None::<String>, Some(format!("{kind}:{id}"))),
        );
        self.record_read(caller, event).await?;
        Ok(viewer)
    }

    pub(crate) async fn viewer_of_user(
        &self,
        org: OrganizationId,
        user: UserId,
        role: Role,
    ) -> Result<Viewer, AppError> {
        let mut conn = self.store.read().await?;
        let team_ids = teams::teams_of(&mut conn, org, user).await?;
        let stored = users::get(&mut conn, org, user).await?;
        drop(conn);
        let email = match &stored {
            Some(u) => Some(
                self.open_text(org, "user", &user.to_string(), "email", &u.email_ciphertext)
                    .await?,
            ),
            None => None,
        };
        let teams: BTreeSet<TeamId> = team_ids.into_iter().collect();
        Ok(Viewer {
            user: Some(user),
            role,
            administrator: role == Role::Administrator,
            member: serde_json::json!({
                "id": user.to_string(),
                "email": email,
                "role": role.as_str(),
                "teams": teams.iter().map(ToString::to_string).collect::<Vec<_>>(),
            }),
            teams,
            preview: false,
        })
    }

    /// The layers switched on in `org`, rules compiled.
    pub(crate) async fn policies(&self, org: OrganizationId) -> Result<Policies, AppError> {
        let mut conn = self.store.read().await?;
        let ownership = teams::policy(&mut conn, org, "ownership").await?;
        let redaction = teams::policy(&mut conn, org, "redaction").await?;
        drop(conn);
        let mut policies = Policies::default();
        if let Some(stored) = ownership.filter(|p| p.enabled) {
            let doc: OwnershipPolicy = self.open_policy(org, "ownership", &stored).await?;
            let mut rules = Vec::with_capacity(doc.rules.len());
            for rule in doc.rules {
                // A rule saved compiled; one that no longer does withholds everything it names.
                let filter = RowFilter::compile(&rule.filter)
                    .or_else(|_| RowFilter::compile("false"))
                    .map_err(|_| AppError::Refused("a row filter cannot be compiled"))?;
                rules.push((rule, Arc::new(filter)));
            }
            policies.ownership = Some(rules);
        }
        if let Some(stored) = redaction.filter(|p| p.enabled) {
            policies.redaction = Some(self.open_policy(org, "redaction", &stored).await?);
        }
        Ok(policies)
    }

    async fn open_policy<T: for<'de> Deserialize<'de>>(
        &self,
        org: OrganizationId,
        layer: &str,
        stored: &StoredPolicy,
    ) -> Result<T, AppError> {
        let json = self
            .open_field(org, "policy", &org.to_string(), layer, &stored.document)
            .await?;
        serde_json::from_slice(&json).map_err(|_| AppError::Store(StoreError::Corrupt("policy")))
    }

    async fn read_layer<T: for<'de> Deserialize<'de> + Default>(
        &self,
        caller: &Caller,
        layer: &str,
    ) -> Result<T, AppError> {
        self.authorize_in_organization(caller, Action::ReadPolicies)?;
        let org = caller.organization();
        let mut conn = self.store.read().await?;
        let stored = teams::policy(&mut conn, org, layer).await?;
        drop(conn);
        match stored {
            Some(stored) => self.open_policy(org, layer, &stored).await,
            None => Ok(T::default()),
        }
    }

    async fn write_layer<T: Serialize + for<'de> Deserialize<'de> + Default + PartialEq>(
        &self,
        conn: &mut Connection,
        caller: &Caller,
        layer: &'static str,
        enabled: bool,
        after: &T,
    ) -> Result<(), AppError> {
        let org = caller.organization();
        let before: T = match teams::policy(conn, org, layer).await? {
            Some(stored) => self.open_policy(org, layer, &stored).await?,
            None => T::default(),
        };
        let before_json = serde_json::to_string(&before)
            .map_err(|_| AppError::Refused("the policy cannot be written"))?;
        let after_json = serde_json::to_string(after)
            .map_err(|_| AppError::Refused("the policy cannot be written"))?;
        self.store_layer(conn, org, layer, enabled, after).await?;
        let event = Event::new(caller.actor(), "policy.changed", "organization", org)
            .change("layer", FieldChange::value(None::<String>, Some(layer)))
            .change(
                layer,
                FieldChange::value(Some(before_json), Some(after_json)),
            );
        self.record(conn, org, event).await?;
        Ok(())
    }

    pub async fn access_policy(&self, caller: &Caller) -> Result<AccessPolicy, AppError> {
        self.read_layer(caller, "access").await
    }

    pub async fn ownership_policy(&self, caller: &Caller) -> Result<OwnershipPolicy, AppError> {
        self.read_layer(caller, "ownership").await
    }

    pub async fn redaction_policy(&self, caller: &Caller) -> Result<RedactionPolicy, AppError> {
        self.read_layer(caller, "redaction").await
    }

    /// Replaces the access policy (Administrators). Every team and object it names must be of
    /// the organization.
    pub async fn put_access_policy(
        &self,
        caller: &Caller,
        policy: AccessPolicy,
    ) -> Result<AccessPolicy, AppError> {
        let (org, known_teams) = self
            .policy_change(caller, policy.grants.len(), "grants")
            .await?;
        let mut tx = self.store.write().await?;
        for (i, g) in policy.grants.iter().enumerate() {
            if !known_teams.contains(&g.team_id) {
                return Err(layer_error(
                    format!("grants[{i}].team_id"),
                    "names no team of this organization",
                ));
            }
            let exists = match g.object_kind {
                PolicyObjectKind::Connection => match g.object_id.parse() {
                    Ok(id) => connections::get(&mut tx, org, id).await?.is_some(),
                    Err(_) => false,
                },
                PolicyObjectKind::Pipeline => match g.object_id.parse() {
                    Ok(id) => pipelines::get(&mut tx, org, id).await?.is_some(),
                    Err(_) => false,
                },
                PolicyObjectKind::Dataset => match g.object_id.parse() {
                    Ok(id) => datasets::get(&mut tx, org, id).await?.is_some(),
                    Err(_) => false,
                },
            };
            if !exists {
                return Err(layer_error(
                    format!("grants[{i}].object_id"),
                    "names no such object of this organization",
                ));
            }
        }
        self.write_layer(&mut tx, caller, "access", policy.enabled, &policy)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(policy)
    }

    /// Replaces the row filters (Administrators): each compiles, names a discovered object of a
    /// connection of the organization and only fields it has.
    pub async fn put_ownership_policy(
        &self,
        caller: &Caller,
        policy: OwnershipPolicy,
    ) -> Result<OwnershipPolicy, AppError> {
        let (org, known_teams) = self
            .policy_change(caller, policy.rules.len(), "rules")
            .await?;
        for (i, rule) in policy.rules.iter().enumerate() {
            if !known_teams.contains(&rule.team_id) {
                return Err(layer_error(
                    format!("rules[{i}].team_id"),
                    "names no team of this organization",
                ));
            }
            let fields = self
                .object_fields(org, rule.connection_id, &rule.object, i)
                .await?;
            let filter = RowFilter::compile(&rule.filter)
                .map_err(|reason| layer_error(format!("rules[{i}].filter"), reason))?;
            if let Some(unknown) = filter.fields().into_iter().find(|f| !fields.contains(f)) {
                return Err(layer_error(
                    format!("rules[{i}].filter"),
                    format!("names the field '{unknown}', which the object does not have"),
                ));
            }
        }
        let mut tx = self.store.write().await?;
        self.write_layer(&mut tx, caller, "ownership", policy.enabled, &policy)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(policy)
    }

    /// Replaces the redaction rules (Administrators). A rule names a field or a pattern; a field
    /// of a named object must exist; `keep` only for `partial`; a rule may not mask, cut or hide
    /// a field a pipeline of that object keys its records by (only `scramble` keeps keys
    /// distinct).
    pub async fn put_redaction_policy(
        &self,
        caller: &Caller,
        policy: RedactionPolicy,
    ) -> Result<RedactionPolicy, AppError> {
        let (org, known_teams) = self
            .policy_change(caller, policy.rules.len(), "rules")
            .await?;
        let keys = self.pipeline_keys(org).await?;
        for (i, rule) in policy.rules.iter().enumerate() {
            let at = |field: &str| format!("rules[{i}].{field}");
            if rule.team_id.is_some_and(|t| !known_teams.contains(&t)) {
                return Err(layer_error(
                    at("team_id"),
                    "names no team of this organization",
                ));
            }
            match (&rule.field, &rule.pattern) {
                (Some(_), Some(_)) => {
                    return Err(layer_error(
                        at("pattern"),
                        "give a field or a pattern, not both",
                    ));
                }
                (None, None) => {
                    return Err(layer_error(at("field"), "give a field or a pattern"));
                }
                (Some(field), None) if field.trim().is_empty() => {
                    return Err(layer_error(at("field"), "must not be empty"));
                }
                (None, Some(pattern))
                    if pattern.trim_matches('*').is_empty()
                        || pattern.chars().count() > MAX_PATTERN =>
                {
                    return Err(layer_error(
                        at("pattern"),
                        "must name some characters besides '*', at most 100",
                    ));
                }
                _ => {}
            }
            redaction_of(rule)
                .check()
                .map_err(|reason| layer_error(at("keep"), reason))?;
            if rule.object.is_some() && rule.connection_id.is_none() {
                return Err(layer_error(
                    at("connection_id"),
                    "an object needs its connection",
                ));
            }
            if let (Some(connection), Some(object)) = (rule.connection_id, &rule.object) {
                let fields = self.object_fields(org, connection, object, i).await?;
                if let Some(field) = &rule.field
                    && !fields.contains(field)
                {
                    return Err(layer_error(
                        at("field"),
                        format!("the object has no field '{field}'"),
                    ));
                }
            } else if let Some(connection) = rule.connection_id {
                let mut conn = self.store.read().await?;
                if connections::get(&mut conn, org, connection)
                    .await?
                    .is_none()
                {
                    return Err(layer_error(
                        at("connection_id"),
                        "names no connection of this organization",
                    ));
                }
            }
            if rule.kind != RedactionKind::Scramble {
                for (pipeline, connection, object, key) in &keys {
                    let applies = rule.connection_id.is_none_or(|c| c == *connection)
                        && rule.object.as_deref().is_none_or(|o| o == object);
                    let hits = key.iter().find(|k| match (&rule.field, &rule.pattern) {
                        (Some(f), _) => f == *k,
                        (None, Some(p)) => pattern_matches(p, k),
                        (None, None) => false,
                    });
                    if applies && let Some(k) = hits {
                        return Err(layer_error(
                            at("kind"),
                            format!(
                                "'{k}' is the key of pipeline {pipeline}: masking, cutting or \
                                 hiding it would leave records without identity (use scramble)"
                            ),
                        ));
                    }
                }
            }
        }
        let mut tx = self.store.write().await?;
        self.write_layer(&mut tx, caller, "redaction", policy.enabled, &policy)
            .await?;
        tx.commit().await.map_err(StoreError::from)?;
        Ok(policy)
    }

    /// What every policy change checks first: the caller may change policies, the layer has
    /// at most [`MAX_RULES`] entries; answers the organization and its teams.
    async fn policy_change(
        &self,
        caller: &Caller,
        rules: usize,
        field: &'static str,
    ) -> Result<(OrganizationId, BTreeSet<TeamId>), AppError> {
        self.authorize_in_organization(caller, Action::ManagePolicies)?;
        let org = caller.organization();
        if rules > MAX_RULES {
            return Err(layer_error(
                field.to_owned(),
                format!("at most {MAX_RULES} {field}"),
            ));
        }
        let mut conn = self.store.read().await?;
        let known_teams = self.team_ids(&mut conn, org).await?;
        drop(conn);
        Ok((org, known_teams))
    }

    async fn team_ids(
        &self,
        conn: &mut Connection,
        org: OrganizationId,
    ) -> Result<BTreeSet<TeamId>, AppError> {
        Ok(teams::list(conn, org)
            .await?
            .into_iter()
            .map(|t| t.id)
            .collect())
    }

    /// The discovered fields of `object` of `connection`; errors name `rules[i]`.
    async fn object_fields(
        &self,
        org: OrganizationId,
        connection: ConnectionId,
        object: &str,
        i: usize,
    ) -> Result<BTreeSet<String>, AppError> {
        let mut conn = self.store.read().await?;
        let stored = connections::get(&mut conn, org, connection).await?;
        drop(conn);
        let stored = stored.ok_or_else(|| {
            layer_error(
                format!("rules[{i}].connection_id"),
                "names no connection of this organization",
            )
        })?;
        let discovery = self.stored_objects(&stored).await?;
        let found = discovery
            .objects
            .into_iter()
            .find(|o| o.name == object)
            .ok_or_else(|| {
                layer_error(
                    format!("rules[{i}].object"),
                    "names no discovered object of the connection (discover it first)",
                )
            })?;
        Ok(found.fields.into_iter().map(|f| f.name).collect())
    }

    /// Every pipeline's key as (pipeline, connection, object, key fields) for its source (the
    /// key's source fields) and its destination.
    async fn pipeline_keys(
        &self,
        org: OrganizationId,
    ) -> Result<Vec<(String, ConnectionId, String, Vec<String>)>, AppError> {
        let mut conn = self.store.read().await?;
        let list = pipelines::list(&mut conn, org).await?;
        drop(conn);
        let mut keys = Vec::new();
        for p in list {
            let spec = self.open_spec(&p).await?;
            if spec.key.is_empty() {
                continue;
            }
            let sources: Vec<String> = spec
                .key
                .iter()
                .map(|k| {
                    spec.mappings
                        .iter()
                        .find(|m| &m.destination == k)
                        .map_or_else(|| k.clone(), |m| m.source.clone())
                })
                .collect();
            let id = p.id.to_string();
            keys.push((
                id.clone(),
                p.source_connection_id,
                spec.source.object.clone(),
                sources,
            ));
            keys.push((
                id,
                p.destination_connection_id,
                spec.destination.object.clone(),
                spec.key.clone(),
            ));
        }
        Ok(keys)
    }

    /// Removes a team from every policy (in the caller's transaction); answers how many grants
    /// and rules went.
    pub(crate) async fn forget_team_in_policies(
        &self,
        conn: &mut Connection,
        org: OrganizationId,
        team: TeamId,
    ) -> Result<usize, AppError> {
        let mut removed = 0;
        if let Some(stored) = teams::policy(conn, org, "access").await? {
            let mut doc: AccessPolicy = self.open_policy(org, "access", &stored).await?;
            let before = doc.grants.len();
            doc.grants.retain(|g| g.team_id != team);
            removed += before - doc.grants.len();
            self.store_layer(conn, org, "access", stored.enabled, &doc)
                .await?;
        }
        if let Some(stored) = teams::policy(conn, org, "ownership").await? {
            let mut doc: OwnershipPolicy = self.open_policy(org, "ownership", &stored).await?;
            let before = doc.rules.len();
            doc.rules.retain(|r| r.team_id != team);
            removed += before - doc.rules.len();
            self.store_layer(conn, org, "ownership", stored.enabled, &doc)
                .await?;
        }
        if let Some(stored) = teams::policy(conn, org, "redaction").await? {
            let mut doc: RedactionPolicy = self.open_policy(org, "redaction", &stored).await?;
            let before = doc.rules.len();
            doc.rules.retain(|r| r.team_id != Some(team));
            removed += before - doc.rules.len();
            self.store_layer(conn, org, "redaction", stored.enabled, &doc)
                .await?;
        }
        Ok(removed)
    }

    async fn store_layer<T: Serialize>(
        &self,
        conn: &mut Connection,
        org: OrganizationId,
        layer: &str,
        enabled: bool,
        doc: &T,
    ) -> Result<(), AppError> {
        let json = serde_json::to_vec(doc)
            .map_err(|_| AppError::Refused("the policy cannot be written"))?;
        let document = self
            .seal_field(org, "policy", &org.to_string(), layer, &json)
            .await?;
        teams::put_policy(
            conn,
            org,
            layer,
            &StoredPolicy {
                enabled,
                document,
                updated_at: self.clock.now(),
            },
        )
        .await?;
        Ok(())
    }

    /// The policy for the viewer's records of an object, with the organization's scrambler
    /// when a rule needs it (the one pipelines' `redact` transforms use: equal hashes).
    pub(crate) async fn record_policy(
        &self,
        org: OrganizationId,
        policies: &Policies,
        viewer: &Viewer,
        connection: ConnectionId,
        object: &str,
    ) -> Result<RecordPolicy, AppError> {
        let mut policy = policies.for_object(viewer, connection, object, None);
        if policy
            .redactions
            .iter()
            .any(|r| r.kind == RedactionKind::Scramble)
        {
            policy.scrambler = Some(self.scrambler(org).await?);
        }
        Ok(policy)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_without_regard_to_case() {
        assert!(pattern_matches("*ssn*", "employee_SSN"));
        assert!(pattern_matches("*salary*", "salary"));
        assert!(pattern_matches("sal*", "Salary_2024"));
        assert!(!pattern_matches("sal*", "base_salary"));
        assert!(pattern_matches("*_id", "customer_id"));
        assert!(!pattern_matches("*_id", "customer_idx"));
        assert!(pattern_matches("a*b*c", "axxbyyc"));
        assert!(!pattern_matches("a*b*c", "axxbyy"));
    }

    fn rule(kind: RedactionKind, keep: Option<u32>) -> RedactionRule {
        RedactionRule {
            team_id: None,
            connection_id: None,
            object: None,
            field: Some("f".to_owned()),
            pattern: None,
            kind,
            keep,
            exempt_administrators: false,
        }
    }

    #[test]
    fn the_strictest_rule_wins() {
        let mut rules = [
            rule(RedactionKind::Partial, Some(4)),
            rule(RedactionKind::Partial, Some(2)),
            rule(RedactionKind::Scramble, None),
        ];
        rules.sort_by_key(|r| std::cmp::Reverse(strictness(r)));
        assert_eq!(rules.first().map(|r| r.kind), Some(RedactionKind::Scramble));
        let policy = RecordPolicy {
            filters: None,
            redactions: vec![rule(RedactionKind::Partial, Some(2))],
            member: serde_json::Value::Null,
            scrambler: None,
            rule_cache: Default::default(),
        };
        assert_eq!(
            policy.redact(&["f"], &serde_json::json!("123456")),
            Some(serde_json::json!("••••56"))
        );
        assert_eq!(
            policy.redact(&["f"], &serde_json::json!("12")),
            Some(serde_json::json!("••••"))
        );
        assert_eq!(
            policy.redact(&["g"], &serde_json::json!("12")),
            Some(serde_json::json!("12"))
        );
    }
}

/// What the access policy lets one member see (built once per request).
#[derive(Debug, Clone)]
pub(crate) struct Access {
    /// `None`: everything (the layer is off, or an Administrator asks).
    grants: Option<Vec<AccessGrant>>,
    teams: BTreeSet<TeamId>,
}

impl Access {
    /// Whether a connection or a pipeline is visible.
    pub(crate) fn sees(&self, kind: PolicyObjectKind, id: &str) -> bool {
        match &self.grants {
            None => true,
            Some(grants) => grants.iter().any(|g| {
                g.object_kind == kind && g.object_id == id && self.teams.contains(&g.team_id)
            }),
        }
    }

    /// Whether a data set the member owns or is shared with is visible: their own always;
    /// another's when its pipeline is visible and, if grants name the data set, when one of
    /// the member's teams is granted it.
    pub(crate) fn sees_dataset(
        &self,
        owner: bool,
        pipeline: lockstep_domain::PipelineId,
        dataset: lockstep_domain::DatasetId,
    ) -> bool {
        let Some(grants) = &self.grants else {
            return true;
        };
        if owner {
            return true;
        }
        let id = dataset.to_string();
        let named = grants
            .iter()
            .any(|g| g.object_kind == PolicyObjectKind::Dataset && g.object_id == id);
        self.sees(PolicyObjectKind::Pipeline, &pipeline.to_string())
            && (!named || self.sees(PolicyObjectKind::Dataset, &id))
    }
}

impl Hub {
    /// The access policy's grants, `None` while the layer is off.
    async fn access_grants(
        &self,
        org: OrganizationId,
    ) -> Result<Option<Vec<AccessGrant>>, AppError> {
        let mut conn = self.store.read().await?;
        let stored = teams::policy(&mut conn, org, "access").await?;
        drop(conn);
        match stored.filter(|p| p.enabled) {
            Some(stored) => {
                let doc: AccessPolicy = self.open_policy(org, "access", &stored).await?;
                Ok(Some(doc.grants))
            }
            None => Ok(None),
        }
    }

    /// The access policy as it applies to `viewer`.
    pub(crate) async fn access_for(
        &self,
        org: OrganizationId,
        viewer: &Viewer,
    ) -> Result<Access, AppError> {
        let grants = if viewer.administrator {
            None
        } else {
            self.access_grants(org).await?
        };
        Ok(Access {
            grants,
            teams: viewer.teams.clone(),
        })
    }

    /// A pipeline the caller pulls through must be visible to them: else it is "no such
    /// pipeline", as for a missing one.
    pub(crate) async fn check_pipeline_access(
        &self,
        caller: &Caller,
        pipeline: lockstep_domain::PipelineId,
    ) -> Result<(), AppError> {
        if self
            .access(caller)
            .await?
            .sees(PolicyObjectKind::Pipeline, &pipeline.to_string())
        {
            Ok(())
        } else {
            Err(AppError::Invalid {
                field: "pipeline_id",
                reason: "no such pipeline".to_owned(),
            })
        }
    }

    /// The access policy as it applies to the caller (their teams read only while it is on).
    pub(crate) async fn access(&self, caller: &Caller) -> Result<Access, AppError> {
        let org = caller.organization();
        let grants = if caller.member.role == Role::Administrator {
            None
        } else {
            self.access_grants(org).await?
        };
        let teams = match grants {
            Some(_) => {
                let mut conn = self.store.read().await?;
                teams::teams_of(&mut conn, org, caller.user()).await?
            }
            None => Vec::new(),
        };
        Ok(Access {
            grants,
            teams: teams.into_iter().collect(),
        })
    }
}

/// The rules for a data set's records as one viewer sees them: its source object's row filters
/// decide which records show (a `destination_only` record: the destination object's), the
/// destination object's decide whether the destination's values beside a record show, and the
/// strictest redaction of either object applies to every value (by the record's field name or
/// the source field it came from).
pub(crate) struct DatasetPolicy {
    source: RecordPolicy,
    destination: RecordPolicy,
    shown: RecordPolicy,
    /// Record field → the source field it is mapped from.
    sources: std::collections::BTreeMap<String, String>,
}

impl DatasetPolicy {
    pub(crate) fn is_open(&self) -> bool {
        self.source.is_open() && self.destination.is_open()
    }

    /// Whether the source object's records are filtered (pages then read each record's
    /// source values).
    pub(crate) fn filters_source(&self) -> bool {
        self.source.filters.is_some()
    }

    /// The source fields the row filters read: only these are turned into JSON per record.
    pub(crate) fn source_filter_fields(&self) -> BTreeSet<String> {
        self.source.filter_fields()
    }

    fn source_of(&self, field: &str) -> Option<String> {
        self.sources.get(field).cloned()
    }

    /// Applies the policy to a record as a page shows it; false when the viewer may not see
    /// it at all. `source` is the record's source values (absent for `destination_only`).
    pub(crate) fn apply(
        &self,
        view: &mut crate::datasets::RecordView,
        source: Option<&serde_json::Map<String, serde_json::Value>>,
    ) -> bool {
        let visible = match (view.status, source) {
            (crate::datasets::RecordStatus::DestinationOnly, _) => {
                self.destination.passes(&view.values)
            }
            (_, Some(source)) => self.source.passes(source),
            // Values of a record whose source is unknown show only without row filters.
            (_, None) => self.source.filters.is_none(),
        };
        if !visible {
            return false;
        }
        self.redact_view(view);
        true
    }

    /// Redacts a record the viewer may see: its values, key and changes, and the destination's
    /// values beside it unless the destination object's row filters withhold that record.
    pub(crate) fn redact_view(&self, view: &mut crate::datasets::RecordView) {
        if !view.changes.is_empty() && self.destination.filters.is_some() {
            let mut destination = view.values.clone();
            for change in &view.changes {
                destination.insert(change.field.clone(), change.destination.clone());
            }
            if !self.destination.passes(&destination) {
                // The destination's record is not the viewer's to see: no values of it.
                view.changes.clear();
            }
        }
        let source_of = |f: &str| self.source_of(f);
        self.shown.redact_record(&mut view.values, &source_of);
        self.shown.redact_record(&mut view.key, &source_of);
        view.changes.retain_mut(|change| {
            let source = self.source_of(&change.field);
            let mut names = vec![change.field.as_str()];
            if let Some(s) = &source {
                names.push(s.as_str());
            }
            match (
                self.shown.redact(&names, &change.value),
                self.shown.redact(&names, &change.destination),
            ) {
                (Some(value), Some(destination)) => {
                    change.value = value;
                    change.destination = destination;
                    true
                }
                _ => false,
            }
        });
    }

    /// A text value of a record field as the viewer may see it (`None` when hidden or absent).
    pub(crate) fn redact_text(&self, field: &str, value: Option<&str>) -> Option<String> {
        let value = value?;
        let source = self.source_of(field);
        let mut names = vec![field];
        if let Some(s) = &source {
            names.push(s.as_str());
        }
        match self
            .shown
            .redact(&names, &serde_json::Value::String(value.to_owned()))?
        {
            serde_json::Value::String(s) => Some(s),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// Whether the viewer sees this record field redacted (it may then not be edited).
    pub(crate) fn redacts(&self, field: &str) -> bool {
        let source = self.source_of(field);
        let mut names = vec![field];
        if let Some(s) = &source {
            names.push(s.as_str());
        }
        self.shown.redacts(&names)
    }
}

impl Hub {
    /// The policy for the records of a data set pulled through `spec`, as `viewer` sees them.
    pub(crate) async fn dataset_policy(
        &self,
        org: OrganizationId,
        viewer: &Viewer,
        spec: &lockstep_engine::PipelineSpec,
    ) -> Result<DatasetPolicy, AppError> {
        let policies = self.policies(org).await?;
        let endpoint = |e: &lockstep_engine::Endpoint| -> Option<ConnectionId> {
            e.connection_id.parse().ok()
        };
        let source = match endpoint(&spec.source) {
            Some(c) => {
                self.record_policy(org, &policies, viewer, c, &spec.source.object)
                    .await?
            }
            None => RecordPolicy::open(),
        };
        let destination = match endpoint(&spec.destination) {
            Some(c) => {
                self.record_policy(org, &policies, viewer, c, &spec.destination.object)
                    .await?
            }
            None => RecordPolicy::open(),
        };
        let shown = source.with_redactions_of(&destination);
        let sources = spec
            .mappings
            .iter()
            .map(|m| (m.destination.clone(), m.source.clone()))
            .collect();
        Ok(DatasetPolicy {
            source,
            destination,
            shown,
            sources,
        })
    }
}

impl DatasetPolicy {
    /// [`DatasetPolicy::apply_to_run_errors`] off the threads that answer requests.
    pub(crate) async fn run_errors_off_thread(
        self: &Arc<Self>,
        mut views: Vec<crate::RunErrorView>,
    ) -> Result<Vec<crate::RunErrorView>, AppError> {
        if self.is_open() {
            return Ok(views);
        }
        let policy = Arc::clone(self);
        off_request_threads(move || {
            policy.apply_to_run_errors(&mut views);
            views
        })
        .await
    }

    /// Leaves out the rejected records the viewer's row filters withhold (a rejected record's
    /// values are its source values) and redacts the rest.
    pub(crate) fn apply_to_run_errors(&self, views: &mut Vec<crate::RunErrorView>) {
        if self.is_open() {
            return;
        }
        views.retain(|v| self.source.passes(&v.values));
        let source_of = |f: &str| self.source_of(f);
        for view in views.iter_mut() {
            self.shown.redact_record(&mut view.values, &source_of);
            if let serde_json::Value::Object(key) = &mut view.key {
                self.shown.redact_record(key, &source_of);
            }
        }
    }
}

impl Hub {
    /// The policy for a pipeline's rejected records as the caller (or, with `view_as`, a
    /// member or a team, who must see the pipeline) sees them.
    pub(crate) async fn run_policy(
        &self,
        caller: &Caller,
        pipeline: lockstep_domain::PipelineId,
        view_as: Option<ViewAs>,
    ) -> Result<DatasetPolicy, AppError> {
        let org = caller.organization();
        let viewer = self.viewer(caller, view_as).await?;
        if viewer.preview
            && !self
                .access_for(org, &viewer)
                .await?
                .sees(PolicyObjectKind::Pipeline, &pipeline.to_string())
        {
            return Err(AppError::NotFound("pipeline"));
        }
        viewer.may_read_records(Role::Editor)?;
        let mut conn = self.store.read().await?;
        let stored = pipelines::get(&mut conn, org, pipeline)
            .await?
            .ok_or(AppError::NotFound("pipeline"))?;
        drop(conn);
        let spec = self.open_spec(&stored).await?;
        self.dataset_policy(org, &viewer, &spec).await
    }
}

impl DatasetPolicy {
    /// The source records of `batch` the source object's row filters let through, and how many
    /// they withheld (blocking work: one record's values at a time are turned into JSON only
    /// when filters apply).
    pub(crate) fn keep_source_rows(
        &self,
        batch: &arrow_array::RecordBatch,
    ) -> Result<(arrow_array::RecordBatch, u64), AppError> {
        if self.source.filters.is_none() {
            return Ok((batch.clone(), 0));
        }
        let schema = batch.schema();
        let names: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
        let cells = lockstep_engine::records::Cells::new(batch);
        let mut keep = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let record: serde_json::Map<String, serde_json::Value> = names
                .iter()
                .map(|n| (*n).clone())
                .zip(cells.row(row))
                .collect();
            if self.source.passes(&record) {
                keep.push(row);
            }
        }
        let withheld = (batch.num_rows() - keep.len()) as u64;
        if withheld == 0 {
            return Ok((batch.clone(), 0));
        }
        let kept = lockstep_engine::records::take(batch, &keep)
            .map_err(|_| AppError::Refused("the records could not be filtered"))?;
        Ok((kept, withheld))
    }
}

impl Viewer {
    /// A preview of a member whose role may not read these records at all is refused as that
    /// member would be.
    pub(crate) fn may_read_records(&self, needs: Role) -> Result<(), AppError> {
        if self.preview && self.role < needs {
            return Err(AppError::Forbidden { needs });
        }
        Ok(())
    }
}
