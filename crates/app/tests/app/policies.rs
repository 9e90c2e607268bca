//! Data policies end to end on a real PostgreSQL source: teams, access (objects hidden as if
//! missing), ownership (row filters) and redaction on every read path, "view as", and the
//! property that no path shows a member what the policies withhold.

use lockstep_app::{
    AccessGrant, AccessPolicy, AppError, Caller, Hub, NewConnection, OwnershipPolicy,
    OwnershipRule, Password, PolicyObjectKind, RecordQuery, RedactionKind, RedactionPolicy,
    RedactionRule, ViewAs,
};
use lockstep_domain::{ConnectionId, Role, TeamId};
use lockstep_storage::testing::TestStore;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

const PASSWORD: &str = "correct horse battery staple";

fn pw() -> Password {
    Password::new(PASSWORD.to_owned())
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}",
        &uuid::Uuid::now_v7().simple().to_string()[16..]
    )
}

async fn pg() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &lockstep_storage::testing::postgres_admin_url(),
        tokio_postgres::NoTls,
    )
    .await
    .unwrap();
    tokio::spawn(connection);
    client
}

fn pg_config() -> Value {
    let url: tokio_postgres::Config = lockstep_storage::testing::postgres_admin_url()
        .parse()
        .unwrap();
    let host = match &url.get_hosts()[0] {
        tokio_postgres::config::Host::Tcp(h) => h.clone(),
        #[allow(unreachable_patterns)]
        _ => "127.0.0.1".to_owned(),
    };
    json!({
        "host": host,
        "port": url.get_ports().first().copied().unwrap_or(5432),
        "database": url.get_dbname().unwrap_or("postgres"),
        "user": url.get_user().unwrap_or("postgres"),
        "tls": "disable",
    })
}

async fn member(hub: &Hub, admin: &Caller, email: &str, role: Role) -> Caller {
    let inv = hub.invite_user(admin, email, role).await.unwrap();
    hub.accept_invitation(inv.token.expose(), &pw(), "M")
        .await
        .unwrap();
    let done = hub.login(email, &pw(), None).await.unwrap();
    hub.authenticate(done.session_token.expose()).await.unwrap()
}

async fn hub_with_org(
    t: &TestStore,
    org_name: &str,
    admin_email: &str,
) -> (Arc<Hub>, Caller, lockstep_app::SecretToken) {
    let (hub, creds) = Hub::initialize(t.store.clone(), Arc::new(lockstep_app::SystemClock), 1, 1)
        .await
        .unwrap();
    let hub = Arc::new(hub.with_options(lockstep_app::HubOptions {
        password_permits: 2,
        connectors: lockstep_app::connectors::Context::new(
            lockstep_app::connectors::EgressPolicy::parse("loopback,private").unwrap(),
            None,
        ),
        ..lockstep_app::HubOptions::default()
    }));
    let admin = org_admin(&hub, &creds.operator_token, org_name, admin_email).await;
    (hub, admin, creds.operator_token)
}

async fn org_admin(
    hub: &Hub,
    operator_token: &lockstep_app::SecretToken,
    org_name: &str,
    admin_email: &str,
) -> Caller {
    let op = hub.authenticate_operator(operator_token).await.unwrap();
    let org = hub
        .create_organization(&op, org_name, admin_email)
        .await
        .unwrap();
    hub.accept_invitation(org.invitation_token.expose(), &pw(), "Ada")
        .await
        .unwrap();
    let done = hub.login(admin_email, &pw(), None).await.unwrap();
    hub.authenticate(done.session_token.expose()).await.unwrap()
}

async fn warehouse(hub: &Hub, admin: &Caller) -> ConnectionId {
    let c = hub
        .create_connection(
            admin,
            NewConnection {
                name: "warehouse".into(),
                kind: "postgres".into(),
                config: pg_config(),
                secrets: Default::default(),
            },
        )
        .await
        .unwrap();
    hub.discover_connection(admin, c.id).await.unwrap();
    c.id
}

/// A small deterministic generator (xorshift), seeded from `LOCKSTEP_POLICY_SEED` or fixed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// One source record, and how the test itself decides what a member may see of it.
#[derive(Debug, Clone)]
struct Rec {
    id: i64,
    region: &'static str,
    cost_center: &'static str,
    owner_email: String,
    ssn: String,
    salary: i64,
    name: String,
}

impl Rec {
    fn field(&self, f: &str) -> Value {
        match f {
            "id" => json!(self.id),
            "region" => json!(self.region),
            "cost_center" => json!(self.cost_center),
            "owner_email" => json!(self.owner_email),
            "ssn" => json!(self.ssn),
            "salary" => json!(self.salary),
            "name" => json!(self.name),
            _ => Value::Null,
        }
    }
}

const FIELDS: [&str; 7] = [
    "id",
    "region",
    "cost_center",
    "owner_email",
    "ssn",
    "salary",
    "name",
];

/// The row filters the generator picks from: the CEL text and the same predicate in Rust.
type Predicate = fn(&Rec, &str) -> bool;
const FILTERS: [(&str, Predicate); 4] = [
    ("region == 'EU'", |r, _| r.region == "EU"),
    ("owner_email == member.email", |r, email| {
        r.owner_email == email
    }),
    ("cost_center in ['4711', '4712']", |r, _| {
        r.cost_center == "4711" || r.cost_center == "4712"
    }),
    ("salary > 5000", |r, _| r.salary > 5000),
];

struct Person {
    caller: Caller,
    email: String,
    administrator: bool,
    teams: BTreeSet<TeamId>,
}

/// What the model says a person sees of one field: absent, in clear, or redacted this way.
#[derive(Debug, Clone, PartialEq)]
enum Shown {
    Hidden,
    Clear,
    Mask,
    Partial(u32),
    Scramble,
}

fn strictness(kind: RedactionKind, keep: Option<u32>) -> (u8, u32) {
    match kind {
        RedactionKind::Hide => (4, 0),
        RedactionKind::Mask => (3, 0),
        RedactionKind::Scramble => (2, 0),
        RedactionKind::Partial => (1, 100 - keep.unwrap_or(4)),
    }
}

fn glob(pattern: &str, name: &str) -> bool {
    let p = pattern.to_lowercase();
    let n = name.to_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    let mut at = 0usize;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        if i == 0 {
            if !n.starts_with(part) {
                return false;
            }
            at = part.len();
        } else if let Some(found) = n[at..].find(part) {
            at += found + part.len();
        } else {
            return false;
        }
    }
    p.ends_with('*') || parts.last().is_none_or(|last| n.ends_with(last))
}

fn shown(person: &Person, rules: &[RedactionRule], field: &str) -> Shown {
    let strictest = rules
        .iter()
        .filter(|r| r.team_id.is_none_or(|t| person.teams.contains(&t)))
        .filter(|r| !(person.administrator && r.exempt_administrators))
        .filter(|r| match (&r.field, &r.pattern) {
            (Some(f), _) => f == field,
            (None, Some(p)) => glob(p, field),
            _ => false,
        })
        .max_by_key(|r| strictness(r.kind, r.keep));
    match strictest {
        None => Shown::Clear,
        Some(r) => match r.kind {
            RedactionKind::Hide => Shown::Hidden,
            RedactionKind::Mask => Shown::Mask,
            RedactionKind::Partial => Shown::Partial(r.keep.unwrap_or(4)),
            RedactionKind::Scramble => Shown::Scramble,
        },
    }
}

fn visible(person: &Person, rules: &[(TeamId, usize)], rec: &Rec) -> bool {
    if person.administrator || rules.is_empty() {
        return true;
    }
    rules
        .iter()
        .any(|(team, f)| person.teams.contains(team) && (FILTERS[*f].1)(rec, &person.email))
}

/// Checks one answer (records as JSON maps, by id) against the model; `path` names the read
/// path in messages.
fn check_answer(
    path: &str,
    person: &Person,
    records: &[Rec],
    ownership: &[(TeamId, usize)],
    redaction: &[RedactionRule],
    answer: &[serde_json::Map<String, Value>],
    whole: &str,
) {
    let expected: BTreeSet<i64> = records
        .iter()
        .filter(|r| visible(person, ownership, r))
        .map(|r| r.id)
        .collect();
    // The key is never hidden or cut (the policy refuses that), so records are known by id.
    let got: BTreeSet<i64> = answer
        .iter()
        .map(|r| r["id"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(
        got,
        expected,
        "{path}: the records {} may see (teams {:?}; rules {:?}; redaction {:?})",
        person.email,
        person.teams,
        ownership
            .iter()
            .map(|(t, f)| (t, FILTERS[*f].0))
            .collect::<Vec<_>>(),
        redaction
    );
    for rec in records {
        if !expected.contains(&rec.id) {
            assert!(
                !whole.contains(&rec.ssn),
                "{path}: a withheld record's value reached {}",
                person.email
            );
            continue;
        }
        let Some(row) = answer.iter().find(|r| r["id"].as_i64() == Some(rec.id)) else {
            continue;
        };
        for field in FIELDS {
            let clear = rec.field(field);
            let value = row.get(field);
            match shown(person, redaction, field) {
                Shown::Clear => assert_eq!(value, Some(&clear), "{path} {field}"),
                Shown::Hidden => assert!(value.is_none(), "{path}: {field} is hidden"),
                Shown::Mask => assert_eq!(value, Some(&json!("••••")), "{path} {field}"),
                Shown::Partial(keep) => {
                    let text = match &clear {
                        Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    let count = text.chars().count();
                    let want = if count <= keep as usize {
                        "••••".to_owned()
                    } else {
                        let tail: String = text.chars().skip(count - keep as usize).collect();
                        format!("••••{tail}")
                    };
                    assert_eq!(value, Some(&json!(want)), "{path} {field}");
                }
                Shown::Scramble => {
                    let s = value.and_then(Value::as_str).unwrap_or_default();
                    assert!(s.starts_with("scr_"), "{path} {field}: {s}");
                }
            }
            if field == "ssn" && shown(person, redaction, field) != Shown::Clear {
                assert!(
                    !whole.contains(&rec.ssn),
                    "{path}: a redacted value reached {}",
                    person.email
                );
            }
        }
    }
}

async fn settled(hub: &Hub, who: &Caller, id: lockstep_domain::DatasetId) {
    for _ in 0..400 {
        let view = hub.get_dataset(who, id).await.unwrap();
        if !view.state.is_busy() {
            assert_eq!(view.state.as_str(), "ready", "{:?}", view.message);
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the data set stayed busy");
}

lockstep_storage::on_both_stores!(no_read_path_shows_what_the_policies_withhold);
async fn no_read_path_shows_what_the_policies_withhold(t: TestStore) {
    let seed = std::env::var("LOCKSTEP_POLICY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_1234_u64);
    let mut rng = Rng(seed);
    let (hub, admin, _) = hub_with_org(&t, "Acme", "ada@acme.io").await;
    let emails: Vec<String> = (1..=4).map(|i| format!("m{i}@acme.io")).collect();
    let mut people = vec![Person {
        caller: admin,
        email: "ada@acme.io".to_owned(),
        administrator: true,
        teams: BTreeSet::new(),
    }];
    for email in &emails {
        people.push(Person {
            caller: member(&hub, &admin, email, Role::Editor).await,
            email: email.clone(),
            administrator: false,
            teams: BTreeSet::new(),
        });
    }
    let mut team_ids = Vec::new();
    for name in ["north", "south", "contractors"] {
        team_ids.push(hub.create_team(&admin, name).await.unwrap().id);
    }
    for person in people.iter_mut().skip(1) {
        for team in &team_ids {
            if rng.chance(45) {
                hub.add_team_member(&admin, *team, person.caller.user())
                    .await
                    .unwrap();
                person.teams.insert(*team);
            }
        }
    }

    let regions = ["EU", "US", "APAC"];
    let centers = ["4711", "4712", "9000"];
    let records: Vec<Rec> = (1..=24)
        .map(|id| Rec {
            id,
            region: regions[rng.below(3)],
            cost_center: centers[rng.below(3)],
            owner_email: emails[rng.below(emails.len())].clone(),
            ssn: format!("SSN{:06}X{id}", rng.below(1_000_000)),
            salary: 1000 * (1 + rng.below(9) as i64),
            name: format!("part-{id}"),
        })
        .collect();
    let source = unique("pol_src");
    let destination = unique("pol_dst");
    let client = pg().await;
    let columns = "id integer PRIMARY KEY, region text, cost_center text, owner_email text, \
                   ssn text, salary integer, name text";
    let mut sql = format!(
        "CREATE TABLE {source} ({columns}); CREATE TABLE {destination} ({columns}); \
         INSERT INTO {source} VALUES "
    );
    let values: Vec<String> = records
        .iter()
        .map(|r| {
            format!(
                "({}, '{}', '{}', '{}', '{}', {}, '{}')",
                r.id, r.region, r.cost_center, r.owner_email, r.ssn, r.salary, r.name
            )
        })
        .collect();
    sql.push_str(&values.join(", "));
    client.batch_execute(&sql).await.unwrap();

    let conn = warehouse(&hub, &admin).await;
    let c = conn.to_string();
    let object = format!("public.{source}");
    let pipeline = hub
        .create_pipeline(
            &admin,
            "people",
            json!({
                "source": {"connection_id": c, "object": object},
                "destination": {"connection_id": c, "object": format!("public.{destination}")},
                "mode": "upsert",
                "key": ["id"],
            }),
        )
        .await
        .unwrap();
    // A run whose every record is rejected: its errors hold every source record's values.
    let rejecting = hub
        .create_pipeline(
            &admin,
            "rejecting",
            json!({
                "source": {"connection_id": c, "object": object},
                "destination": {"connection_id": c, "object": format!("public.{destination}")},
                "mode": "upsert",
                "key": ["id"],
                "max_rejected_percent": 100.0,
                "rules": [{"kind": "validation", "expression": "id < 0",
                           "message": "never passes"}],
            }),
        )
        .await
        .unwrap();
    let run = hub.start_run(&admin, rejecting.id).await.unwrap();
    let shutdown = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let worker = tokio::spawn(Arc::clone(&hub).work("w".into(), Arc::clone(&shutdown)));
    for _ in 0..400 {
        if hub
            .get_run(&admin, rejecting.id, run.id)
            .await
            .unwrap()
            .state
            .is_finished()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    shutdown.store(true, std::sync::atomic::Ordering::Relaxed);
    worker.abort();

    for round in 0..3 {
        // Random row filters and redaction rules.
        let mut ownership = Vec::new();
        for _ in 0..rng.below(4) {
            ownership.push((
                team_ids[rng.below(team_ids.len())],
                rng.below(FILTERS.len()),
            ));
        }
        let mut redaction = Vec::new();
        for _ in 0..rng.below(4) {
            let kinds = [
                RedactionKind::Mask,
                RedactionKind::Partial,
                RedactionKind::Scramble,
                RedactionKind::Hide,
            ];
            let kind = kinds[rng.below(4)];
            let (field, pattern) = match rng.below(6) {
                0 => (Some("ssn"), None),
                1 => (Some("salary"), None),
                2 => (Some("name"), None),
                3 => (Some("region"), None),
                4 => (None, Some("*SS*")),
                _ => (None, Some("sal*")),
            };
            redaction.push(RedactionRule {
                team_id: rng.chance(60).then(|| team_ids[rng.below(team_ids.len())]),
                connection_id: rng.chance(50).then_some(conn),
                object: None,
                field: field.map(str::to_owned),
                pattern: pattern.map(str::to_owned),
                kind,
                keep: (kind == RedactionKind::Partial).then(|| 1 + rng.below(6) as u32),
                exempt_administrators: rng.chance(30),
            });
        }
        hub.put_ownership_policy(
            &admin,
            OwnershipPolicy {
                enabled: true,
                rules: ownership
                    .iter()
                    .map(|(team, f)| OwnershipRule {
                        team_id: *team,
                        connection_id: conn,
                        object: object.clone(),
                        filter: FILTERS[*f].0.to_owned(),
                    })
                    .collect(),
            },
        )
        .await
        .unwrap();
        hub.put_redaction_policy(
            &admin,
            RedactionPolicy {
                enabled: true,
                rules: redaction.clone(),
            },
        )
        .await
        .unwrap();

        let mut scrambled: BTreeMap<String, String> = BTreeMap::new();
        for person in &people {
            let who = &person.caller;
            let path = |p: &str| format!("round {round} (seed {seed}): {p}");
            // Samples, as the member and as an Administrator viewing as them.
            let sample = hub.sample_records(who, conn, &object, 100).await.unwrap();
            let whole = serde_json::to_string(&sample).unwrap();
            check_answer(
                &path("sample"),
                person,
                &records,
                &ownership,
                &redaction,
                &sample,
                &whole,
            );
            let preview = hub
                .sample_records_as(&admin, conn, &object, 100, Some(ViewAs::User(who.user())))
                .await
                .unwrap();
            assert_eq!(
                preview,
                sample,
                "{}",
                path("view as = the member's own sample")
            );
            // Equal values scramble alike, for everybody in the organization.
            for row in &sample {
                if let (Some(Value::String(region)), Some(rec)) = (
                    row.get("region"),
                    records.iter().find(|r| row["id"].as_i64() == Some(r.id)),
                ) && region.starts_with("scr_")
                {
                    let before = scrambled.insert(rec.region.to_owned(), region.clone());
                    assert!(
                        before.is_none_or(|b| &b == region),
                        "{}",
                        path("stable scramble")
                    );
                }
            }

            // A data set the member pulls, read by them and by an Administrator as them.
            let ds = hub
                .pull_dataset(who, pipeline.id, Some(&format!("r{round}")), None)
                .await
                .unwrap();
            settled(&hub, who, ds.id).await;
            let query = RecordQuery {
                limit: 500,
                ..RecordQuery::default()
            };
            let page = hub.dataset_records(who, ds.id, query).await.unwrap();
            let values: Vec<_> = page.records.iter().map(|r| r.values.clone()).collect();
            let whole = format!("{:?}", page.records);
            check_answer(
                &path("data set"),
                person,
                &records,
                &ownership,
                &redaction,
                &values,
                &whole,
            );
            let preview = hub
                .dataset_records_as(&admin, ds.id, query, Some(ViewAs::User(who.user())))
                .await
                .unwrap();
            let preview_values: Vec<_> = preview.records.iter().map(|r| r.values.clone()).collect();
            assert_eq!(
                preview_values,
                values,
                "{}",
                path("view as = the member's own page")
            );
            hub.delete_dataset(who, ds.id).await.unwrap();

            // A run's rejected records, on the page and in the export.
            let errors = hub
                .run_errors(who, rejecting.id, run.id, None, 1000, 0)
                .await
                .unwrap();
            let values: Vec<_> = errors.iter().map(|e| e.values.clone()).collect();
            let whole = format!("{errors:?}");
            check_answer(
                &path("run errors"),
                person,
                &records,
                &ownership,
                &redaction,
                &values,
                &whole,
            );
            let exported = hub
                .export_run_errors(who, rejecting.id, run.id)
                .await
                .unwrap();
            let values: Vec<_> = exported.iter().map(|e| e.values.clone()).collect();
            let whole = format!("{exported:?}");
            check_answer(
                &path("export"),
                person,
                &records,
                &ownership,
                &redaction,
                &values,
                &whole,
            );
        }
    }
}

lockstep_storage::on_both_stores!(the_access_policy_hides_objects_as_if_they_did_not_exist);
async fn the_access_policy_hides_objects_as_if_they_did_not_exist(t: TestStore) {
    let (hub, admin, _) = hub_with_org(&t, "Acme", "ada@acme.io").await;
    let granted = member(&hub, &admin, "g@acme.io", Role::Editor).await;
    let other = member(&hub, &admin, "o@acme.io", Role::Editor).await;
    let source = unique("acc_src");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE {source} (id integer PRIMARY KEY, name text); \
             INSERT INTO {source} VALUES (1, 'a');"
        ))
        .await
        .unwrap();
    let conn = warehouse(&hub, &admin).await;
    let c = conn.to_string();
    let object = format!("public.{source}");
    let pipeline = hub
        .create_pipeline(
            &admin,
            "p",
            json!({
                "source": {"connection_id": c, "object": object},
                "destination": {"connection_id": c, "object": format!("public.{source}_copy")},
                "mode": "full_refresh",
            }),
        )
        .await
        .unwrap();
    let team = hub.create_team(&admin, "ops").await.unwrap().id;
    hub.add_team_member(&admin, team, granted.user())
        .await
        .unwrap();
    // Off by default: everybody sees everything.
    assert_eq!(hub.list_pipelines(&other).await.unwrap().len(), 1);
    hub.put_access_policy(
        &admin,
        AccessPolicy {
            enabled: true,
            grants: vec![
                AccessGrant {
                    team_id: team,
                    object_kind: PolicyObjectKind::Connection,
                    object_id: c.clone(),
                },
                AccessGrant {
                    team_id: team,
                    object_kind: PolicyObjectKind::Pipeline,
                    object_id: pipeline.id.to_string(),
                },
            ],
        },
    )
    .await
    .unwrap();
    assert_eq!(hub.list_pipelines(&granted).await.unwrap().len(), 1);
    assert_eq!(hub.list_connections(&granted).await.unwrap().len(), 1);
    assert!(hub.list_pipelines(&other).await.unwrap().is_empty());
    assert!(hub.list_connections(&other).await.unwrap().is_empty());
    assert!(matches!(
        hub.get_pipeline(&other, pipeline.id).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        hub.get_connection(&other, conn).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        hub.sample_records(&other, conn, &object, 5).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        hub.start_run(&other, pipeline.id).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        hub.list_runs(&other, pipeline.id, 10).await,
        Err(AppError::NotFound(_))
    ));
    assert!(matches!(
        hub.pull_dataset(&other, pipeline.id, None, None).await,
        Err(AppError::Invalid {
            field: "pipeline_id",
            ..
        })
    ));
    // The granted member works; a data set they share with the other is hidden from them too.
    let ds = hub
        .pull_dataset(&granted, pipeline.id, None, None)
        .await
        .unwrap();
    settled(&hub, &granted, ds.id).await;
    hub.share_dataset(&granted, ds.id, other.user())
        .await
        .unwrap();
    assert!(matches!(
        hub.get_dataset(&other, ds.id).await,
        Err(AppError::NotFound(_))
    ));
    assert!(hub.list_datasets(&other, false).await.unwrap().is_empty());
    // Administrators see everything, for governance; "view as" shows them the member's view.
    assert_eq!(hub.list_pipelines(&admin).await.unwrap().len(), 1);
    assert!(matches!(
        hub.sample_records_as(&admin, conn, &object, 5, Some(ViewAs::User(other.user())))
            .await,
        Err(AppError::NotFound(_))
    ));
    assert_eq!(
        hub.sample_records_as(&admin, conn, &object, 5, Some(ViewAs::Team(team)))
            .await
            .unwrap()
            .len(),
        1
    );
    // Only Administrators may view as someone else.
    assert!(matches!(
        hub.sample_records_as(&granted, conn, &object, 5, Some(ViewAs::User(other.user())))
            .await,
        Err(AppError::Forbidden { .. })
    ));
}

lockstep_storage::on_both_stores!(bad_policies_and_teams_are_refused_naming_the_field);
async fn bad_policies_and_teams_are_refused_naming_the_field(t: TestStore) {
    let (hub, admin, operator) = hub_with_org(&t, "Acme", "ada@acme.io").await;
    let editor = member(&hub, &admin, "ed@acme.io", Role::Editor).await;
    let source = unique("bad_src");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE {source} (id integer PRIMARY KEY, region text, ssn text);"
        ))
        .await
        .unwrap();
    let conn = warehouse(&hub, &admin).await;
    let object = format!("public.{source}");
    hub.create_pipeline(
        &admin,
        "p",
        json!({
            "source": {"connection_id": conn.to_string(), "object": object},
            "destination": {"connection_id": conn.to_string(), "object": format!("public.{source}_c")},
            "mode": "upsert",
            "key": ["id"],
        }),
    )
    .await
    .unwrap();
    let team = hub.create_team(&admin, "north").await.unwrap();
    // Teams: a duplicate name, an empty name, a member of another organization.
    assert!(matches!(
        hub.create_team(&admin, "north").await,
        Err(AppError::Conflict(_))
    ));
    assert!(matches!(
        hub.create_team(&admin, "  ").await,
        Err(AppError::Invalid { field: "name", .. })
    ));
    // A member of another organization.
    let stranger = org_admin(&hub, &operator, "Globex", "gus@globex.io").await;
    assert!(matches!(
        hub.add_team_member(&admin, team.id, stranger.user()).await,
        Err(AppError::Invalid {
            field: "user_id",
            ..
        })
    ));
    assert!(matches!(
        hub.create_team(&editor, "mine").await,
        Err(AppError::Forbidden { .. })
    ));

    let rule = |filter: &str| OwnershipPolicy {
        enabled: true,
        rules: vec![OwnershipRule {
            team_id: team.id,
            connection_id: conn,
            object: object.clone(),
            filter: filter.to_owned(),
        }],
    };
    hub.put_ownership_policy(&admin, rule("region == 'EU'"))
        .await
        .unwrap();
    let field_of = |err: AppError| match err {
        AppError::InvalidConfig { field, reason } => (field, reason),
        other => panic!("{other:?}"),
    };
    let (field, reason) = field_of(
        hub.put_ownership_policy(&admin, rule("region == "))
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "rules[0].filter");
    assert!(reason.contains("line 1"), "{reason}");
    let (field, reason) = field_of(
        hub.put_ownership_policy(&admin, rule("country == 'DE'"))
            .await
            .unwrap_err(),
    );
    assert_eq!(field, "rules[0].filter");
    assert!(reason.contains("country"), "{reason}");
    // Nothing changed.
    assert_eq!(
        hub.ownership_policy(&admin).await.unwrap(),
        rule("region == 'EU'")
    );

    let redact = |field: &str, kind: RedactionKind, keep: Option<u32>| RedactionPolicy {
        enabled: true,
        rules: vec![RedactionRule {
            team_id: None,
            connection_id: Some(conn),
            object: Some(object.clone()),
            field: Some(field.to_owned()),
            pattern: None,
            kind,
            keep,
            exempt_administrators: false,
        }],
    };
    let cases = [
        (
            redact("salary", RedactionKind::Mask, None),
            "rules[0].field",
        ),
        (redact("ssn", RedactionKind::Mask, Some(3)), "rules[0].keep"),
        (
            redact("ssn", RedactionKind::Partial, Some(0)),
            "rules[0].keep",
        ),
        // Hiding the key a pipeline needs.
        (redact("id", RedactionKind::Hide, None), "rules[0].kind"),
    ];
    for (policy, want) in cases {
        let (field, _) = field_of(hub.put_redaction_policy(&admin, policy).await.unwrap_err());
        assert_eq!(field, want);
    }
    assert_eq!(
        hub.redaction_policy(&admin).await.unwrap(),
        RedactionPolicy::default()
    );
    hub.put_redaction_policy(&admin, redact("id", RedactionKind::Scramble, None))
        .await
        .unwrap();
    // Access grants must name the organization's teams and objects.
    let (field, _) = field_of(
        hub.put_access_policy(
            &admin,
            AccessPolicy {
                enabled: true,
                grants: vec![AccessGrant {
                    team_id: team.id,
                    object_kind: PolicyObjectKind::Pipeline,
                    object_id: uuid::Uuid::now_v7().to_string(),
                }],
            },
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(field, "grants[0].object_id");
    // Deleting a team takes its rules with it.
    hub.delete_team(&admin, team.id).await.unwrap();
    assert!(hub.ownership_policy(&admin).await.unwrap().rules.is_empty());
}

lockstep_storage::on_both_stores!(scramble_is_stable_in_an_organization_and_differs_between_them);
async fn scramble_is_stable_in_an_organization_and_differs_between_them(t: TestStore) {
    let (hub, creds_admin, operator) = hub_with_org(&t, "Acme", "ada@acme.io").await;
    let source = unique("scr_src");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE {source} (id integer PRIMARY KEY, email text); \
             INSERT INTO {source} VALUES (1, 'same@example.com'), (2, 'same@example.com'), \
             (3, 'other@example.com');"
        ))
        .await
        .unwrap();
    let object = format!("public.{source}");
    let mut hashes = Vec::new();
    // The second organization on the same hub: invited by the operator like the first.
    let second = org_admin(&hub, &operator, "Globex", "gus@globex.io").await;
    for admin in [&creds_admin, &second] {
        let conn = warehouse(&hub, admin).await;
        hub.put_redaction_policy(
            admin,
            RedactionPolicy {
                enabled: true,
                rules: vec![RedactionRule {
                    team_id: None,
                    connection_id: None,
                    object: None,
                    field: Some("email".to_owned()),
                    pattern: None,
                    kind: RedactionKind::Scramble,
                    keep: None,
                    exempt_administrators: false,
                }],
            },
        )
        .await
        .unwrap();
        let sample = hub.sample_records(admin, conn, &object, 10).await.unwrap();
        let by_id = |id: i64| {
            sample
                .iter()
                .find(|r| r["id"] == json!(id))
                .map(|r| r["email"].as_str().unwrap().to_owned())
                .unwrap()
        };
        assert_eq!(by_id(1), by_id(2), "equal values scramble alike");
        assert_ne!(by_id(1), by_id(3));
        assert!(!format!("{sample:?}").contains("example.com"));
        hashes.push(by_id(1));
    }
    assert_ne!(
        hashes[0], hashes[1],
        "another organization's key, another hash"
    );
}

lockstep_storage::on_both_stores!(view_as_shows_no_more_than_the_member_could_open);
async fn view_as_shows_no_more_than_the_member_could_open(t: TestStore) {
    let (hub, admin, _) = hub_with_org(&t, "Acme", "ada@acme.io").await;
    let editor = member(&hub, &admin, "ed@acme.io", Role::Editor).await;
    let viewer = member(&hub, &admin, "vi@acme.io", Role::Viewer).await;
    let source = unique("va_src");
    pg().await
        .batch_execute(&format!(
            "CREATE TABLE {source} (id integer PRIMARY KEY, name text); \
             INSERT INTO {source} VALUES (1, 'a');"
        ))
        .await
        .unwrap();
    let conn = warehouse(&hub, &admin).await;
    let object = format!("public.{source}");
    let pipeline = hub
        .create_pipeline(
            &admin,
            "p",
            json!({
                "source": {"connection_id": conn.to_string(), "object": object},
                "destination": {"connection_id": conn.to_string(), "object": format!("public.{source}_c")},
                "mode": "full_refresh",
            }),
        )
        .await
        .unwrap();
    let ds = hub
        .pull_dataset(&editor, pipeline.id, None, None)
        .await
        .unwrap();
    settled(&hub, &editor, ds.id).await;
    let as_viewer = Some(ViewAs::User(viewer.user()));
    // Not shared with the Viewer: as them, the data set does not exist.
    assert!(matches!(
        hub.dataset_records_as(&admin, ds.id, RecordQuery::default(), as_viewer)
            .await,
        Err(AppError::NotFound(_))
    ));
    hub.share_dataset(&editor, ds.id, viewer.user())
        .await
        .unwrap();
    let page = hub
        .dataset_records_as(&admin, ds.id, RecordQuery::default(), as_viewer)
        .await
        .unwrap();
    assert_eq!(page.records.len(), 1);
    // A Viewer may not sample: neither may a preview of them.
    assert!(matches!(
        hub.sample_records_as(&admin, conn, &object, 5, as_viewer)
            .await,
        Err(AppError::Forbidden { .. })
    ));
    assert_eq!(
        hub.sample_records_as(&admin, conn, &object, 5, Some(ViewAs::User(editor.user())))
            .await
            .unwrap()
            .len(),
        1
    );
}
