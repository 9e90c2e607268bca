//! What a pipeline is: where it reads, where it writes, how fields map, the rules records go
//! through, and how the destination changes. [`PipelineSpec::validate`] checks it without any IO
//! (when it is saved); [`PipelineSpec::validate_against`] checks it against the fields discovery
//! found.

use crate::expr::{self, Compiled};
use crate::redact::{RedactKind, Redaction};
pub use crate::transform::Transform;
use crate::typecheck::{Scope, Type, infer};
use lockstep_connectors::batch::WriteMode;
use lockstep_connectors::{FieldMeta, FieldType};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap, HashSet};

/// A pipeline definition as users write it.
///
/// Records go through these steps, in this order:
///
/// 1. `filter` (on source field names): records for which it is false are skipped;
/// 2. import rules (on source field names, in the order written): each derives or transforms the
///    field named by its `target`;
/// 3. validation rules (on source field names, including fields import rules added): a false
///    `error` rule rejects the record, a false `warning` rule is counted;
/// 4. `mappings`: each destination field takes a source field, optionally through a `transform`
///    and a `cast`; with no mappings every field is copied under its own name, and fields no
///    mapping names are not copied;
/// 5. export rules (on destination field names, in the order written): each transforms or adds
///    the destination field named by its `target`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Where records are read.
    pub source: Endpoint,
    /// Where records are written.
    pub destination: Endpoint,
    /// Destination fields and where each comes from (empty: every field under its own name).
    #[serde(default)]
    pub mappings: Vec<Mapping>,
    /// Import, validation and export rules.
    #[serde(default)]
    pub rules: Vec<Rule>,
    /// Records for which this CEL expression is false are skipped (not rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// How the destination changes.
    pub mode: Mode,
    /// The fields that identify a record, as destination field names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key: Vec<String>,
    /// Incremental pipelines: the source field whose values only grow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// When to run, as a cron expression (5 fields, or 6 with seconds first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// The run fails, and commits nothing, when more than this percentage of the records read
    /// are rejected (0 to 100; default [`DEFAULT_MAX_REJECTED_PERCENT`]). 0: any rejected
    /// record fails the run; 100: never.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_rejected_percent: Option<f64>,
    /// How bills of materials uploaded through this pipeline are read and matched (set by
    /// Administrators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bom: Option<BomSettings>,
}

/// How a pipeline reads the bills of materials uploaded through it and matches their parts in
/// the destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BomSettings {
    /// The import profile (file format, header row, column roles, hierarchy) every upload is
    /// read with; none: detected for each file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub profile: Option<serde_json::Value>,
    /// A part whose code the destination does not have is matched by its name (description)
    /// when exactly one product has it. Parts are always matched by code first.
    #[serde(default = "match_by_name_default")]
    pub match_by_name: bool,
}

fn match_by_name_default() -> bool {
    true
}

impl Default for BomSettings {
    fn default() -> Self {
        BomSettings {
            profile: None,
            match_by_name: true,
        }
    }
}

/// The rejection threshold of a pipeline that sets none: a run that rejects more than 5% of the
/// records it read fails.
pub const DEFAULT_MAX_REJECTED_PERCENT: f64 = 5.0;

/// An object of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The connection's id.
    #[schema(format = Uuid)]
    pub connection_id: String,
    /// The object as discovery names it (`schema.table`, a file's path, …).
    #[schema(min_length = 1)]
    pub object: String,
}

/// One destination field and where it comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Mapping {
    /// The source field (or a field an import rule adds).
    pub source: String,
    /// The destination field.
    pub destination: String,
    /// How the destination value is computed: a CEL expression (`value` is the source value,
    /// and the record's fields are variables too; its result is stored as the destination
    /// field's type), or a redaction (`{"redact": "scramble"}`, `{"redact": "partial", "keep":
    /// 4}`, `mask`, `hide`) whose result is text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transform: Option<Transform>,
    /// Converts the value (after `transform`) to this type; text is parsed (`"42"` to an
    /// integer), and a value that does not convert rejects the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cast: Option<FieldType>,
}

/// A rule records go through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// When it runs and what it does.
    pub kind: RuleKind,
    /// A CEL expression over the record's fields: a boolean for validation rules, the new value
    /// of `target` for import and export rules.
    pub expression: String,
    /// Import and export rules: the field the rule sets (an existing field, or a new one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Import and export rules: the type of the target (default: an existing target keeps its
    /// type, a new one is a string).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub field_type: Option<FieldType>,
    /// Validation rules: whether a false result rejects the record (`error`, the default) or
    /// is only counted (`warning`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<Level>,
    /// Validation rules: what a false result means, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Validation rules: the result when the rule fails on a null field (`price >= 0.0` with
    /// `price` null): `fail` (the default: a comparison with null is false) or `pass`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_null: Option<OnNull>,
}

/// What a validation rule says when it fails on a null field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnNull {
    /// The rule is false (its message is the record's reason).
    #[default]
    Fail,
    /// The rule passes.
    Pass,
}

/// When a rule runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    /// Before mapping, on source field names: derives or transforms a value.
    Import,
    /// After import rules: accepts the record, or warns, or rejects it.
    Validation,
    /// After mapping, on destination field names: transforms a value on the way out.
    Export,
}

/// How serious a failed validation rule is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// The record is written; the warning is counted (also when the rule cannot be evaluated).
    Warning,
    /// The record is rejected.
    #[default]
    Error,
}

/// How a run changes the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The destination object is replaced by the records read, atomically.
    FullRefresh,
    /// The records read are added.
    Append,
    /// Only records whose cursor is greater than the last run's are read; they are written as
    /// upserts by `key`.
    Incremental,
    /// Records are inserted or update the record with the same `key`.
    Upsert,
}

/// What is wrong with a pipeline definition: `field` is the path of the offending part
/// (`rules[1].expression`, `mappings[0].transform`, `key`, `cursor`, `schedule`, `filter`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct SpecError {
    /// The path of the offending part of the definition.
    pub field: String,
    /// What is wrong, in words a user can act on.
    pub reason: String,
}

impl SpecError {
    pub(crate) fn new(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
        SpecError {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// The name `value`: a transform's source value.
pub(crate) const VALUE_VARIABLE: &str = "value";

impl PipelineSpec {
    /// Static checks, without any IO:
    ///
    /// - every CEL expression compiles (the reason says the line and column of the error);
    /// - import and export rules have a `target`, validation rules have none; `level` and
    ///   `message` are only on validation rules, `type` only on import and export rules;
    /// - destination field names are unique and not empty;
    /// - `upsert` needs `key`; `incremental` needs a `cursor` and a `key`, because the engine
    ///   writes incremental runs as upserts, so that a rerun after a crash (which reads again
    ///   from the last committed cursor) cannot duplicate records; `full_refresh` and `append`
    ///   have no cursor;
    /// - `schedule` is a cron expression of 5 fields (or 6, seconds first).
    pub fn validate(&self) -> Result<(), SpecError> {
        self.compile().map(|_| ())
    }

    /// Checks the definition against the fields discovery found in the source object (after
    /// [`PipelineSpec::validate`]'s checks): mapping sources and the cursor exist, every field
    /// an expression refers to exists where the expression runs (source fields and the fields
    /// earlier import rules add; destination fields for export rules; `value` in transforms),
    /// and the `key` fields are destination fields.
    pub fn validate_against(&self, source: &[FieldMeta]) -> Result<(), SpecError> {
        let compiled = self.compile()?;
        let names: Vec<String> = source.iter().map(|f| f.name.clone()).collect();
        let stages = Stages::new(self, &names);
        stages.check(self, &compiled)?;
        self.check_types(&compiled, source)
    }

    /// Every expression types against the discovered fields: validation rules and the filter
    /// give booleans, import and export rules and transforms give values their fields can
    /// hold, and every operator applies to the types it is given.
    fn check_types(&self, compiled: &CompiledSpec, source: &[FieldMeta]) -> Result<(), SpecError> {
        let mut fields: HashMap<String, FieldType> = source
            .iter()
            .map(|f| (f.name.clone(), f.field_type))
            .collect();
        let scope_of = |fields: &HashMap<String, FieldType>| -> Scope {
            fields
                .iter()
                .map(|(n, t)| (n.clone(), Type::of_field(*t)))
                .collect()
        };
        let type_of = |field: &str, c: &Compiled, scope: &Scope| -> Result<Type, SpecError> {
            infer(&c.written, scope).map_err(|(id, reason)| {
                SpecError::new(field, format!("{}{reason}", c.position(id)))
            })
        };
        let boolean = |field: &str, c: &Compiled, scope: &Scope, what: &str| {
            let t = type_of(field, c, scope)?;
            if matches!(t, Type::Bool | Type::Dyn) {
                Ok(())
            } else {
                Err(SpecError::new(
                    field,
                    format!("must give a boolean ({what}), but gives {}", t.name()),
                ))
            }
        };
        let stores = |field: &str, t: Type, target: &str, target_type: FieldType| {
            if t.stores_as(target_type) {
                Ok(())
            } else {
                Err(SpecError::new(
                    field,
                    format!(
                        "gives {}, which cannot be stored in '{target}' ({})",
                        t.name(),
                        lockstep_connectors::batch::field_type_name(target_type)
                    ),
                ))
            }
        };

        if let Some(filter) = &compiled.filter {
            boolean(
                "filter",
                filter,
                &scope_of(&fields),
                "true keeps the record",
            )?;
        }
        let rules = || self.rules.iter().zip(&compiled.rules).enumerate();
        // Import and export rules, in order, each over the fields before it; a target keeps
        // the type it is given, or its field's, or becomes a string.
        let set_rules = |kind: RuleKind, fields: &mut HashMap<String, FieldType>| {
            for (i, (rule, c)) in rules() {
                if rule.kind != kind {
                    continue;
                }
                let path = format!("rules[{i}].expression");
                let t = type_of(&path, c, &scope_of(fields))?;
                let target = rule.target.clone().unwrap_or_default();
                let target_type = rule
                    .field_type
                    .or_else(|| fields.get(&target).copied())
                    .unwrap_or(FieldType::String);
                stores(&path, t, &target, target_type)?;
                fields.insert(target, target_type);
            }
            Ok::<(), SpecError>(())
        };
        set_rules(RuleKind::Import, &mut fields)?;
        let after_import = scope_of(&fields);
        for (i, (rule, c)) in rules() {
            if rule.kind == RuleKind::Validation {
                boolean(
                    &format!("rules[{i}].expression"),
                    c,
                    &after_import,
                    "true accepts the record",
                )?;
            }
        }
        let mut destination: HashMap<String, FieldType> = if self.mappings.is_empty() {
            fields.clone()
        } else {
            HashMap::new()
        };
        for (i, (m, t)) in self.mappings.iter().zip(&compiled.transforms).enumerate() {
            let source_type = fields.get(&m.source).copied().unwrap_or(FieldType::String);
            let redacted = m
                .transform
                .as_ref()
                .and_then(Transform::redaction)
                .is_some();
            // A redaction gives text: the destination is a string unless it is cast.
            let target_type = match (m.cast, redacted) {
                (Some(t), _) => t,
                (None, true) => FieldType::String,
                (None, false) => source_type,
            };
            if redacted {
                let path = format!("mappings[{i}].transform");
                stores(&path, Type::String, &m.destination, target_type)?;
            }
            if let Some(t) = t {
                let path = format!("mappings[{i}].transform");
                let mut scope = after_import.clone();
                scope.insert(VALUE_VARIABLE.to_owned(), Type::of_field(source_type));
                let result = type_of(&path, t, &scope)?;
                stores(&path, result, &m.destination, target_type)?;
            }
            destination.insert(m.destination.clone(), target_type);
        }
        set_rules(RuleKind::Export, &mut destination)?;
        Ok(())
    }

    /// Whether a mapping scrambles its value: a plan of this pipeline then needs the
    /// organization's [`crate::Scrambler`] ([`crate::Plan::with_scrambler`]).
    pub fn uses_scramble(&self) -> bool {
        self.mappings.iter().any(|m| {
            m.transform
                .as_ref()
                .and_then(Transform::redaction)
                .is_some_and(|r| r.kind == RedactKind::Scramble)
        })
    }

    /// The rejection threshold in force, in percent of the records read.
    pub fn rejection_threshold(&self) -> f64 {
        self.max_rejected_percent
            .unwrap_or(DEFAULT_MAX_REJECTED_PERCENT)
    }

    /// The write mode of this pipeline: full refresh replaces, append appends, upsert and
    /// incremental upsert by `key`.
    pub fn write_mode(&self) -> WriteMode {
        match self.mode {
            Mode::FullRefresh => WriteMode::Replace,
            Mode::Append => WriteMode::Append,
            Mode::Upsert | Mode::Incremental => WriteMode::Upsert {
                key: self.key.clone(),
            },
        }
    }

    /// The source fields a run needs to read, when they can be told from the definition alone:
    /// the mapped fields, the fields expressions refer to, and the cursor. `None` (read every
    /// field) when there are no mappings (every field is copied), when there are import rules
    /// (a target may or may not be a source field), or when an expression uses a name that may
    /// be a type rather than a field (`int`, `type`, …).
    pub fn read_fields(&self) -> Option<Vec<String>> {
        if self.mappings.is_empty() || self.rules.iter().any(|r| r.kind == RuleKind::Import) {
            return None;
        }
        let mut fields: Vec<String> = Vec::new();
        let add = |name: &str, fields: &mut Vec<String>| {
            if !fields.iter().any(|f| f == name) {
                fields.push(name.to_owned());
            }
        };
        for m in &self.mappings {
            add(&m.source, &mut fields);
        }
        let mut expressions: Vec<(&str, bool)> = Vec::new();
        if let Some(filter) = &self.filter {
            expressions.push((filter, false));
        }
        for rule in &self.rules {
            if rule.kind == RuleKind::Validation {
                expressions.push((&rule.expression, false));
            }
        }
        for m in &self.mappings {
            if let Some(t) = m.transform.as_ref().and_then(Transform::expression) {
                expressions.push((t, true));
            }
        }
        for (source, is_transform) in expressions {
            let compiled = expr::compile(source).ok()?;
            for v in &compiled.variables {
                if is_transform && v == VALUE_VARIABLE {
                    continue;
                }
                if expr::is_non_field_identifier(v) {
                    return None;
                }
                add(v, &mut fields);
            }
        }
        if let Some(cursor) = &self.cursor {
            add(cursor, &mut fields);
        }
        Some(fields)
    }

    /// Every check of [`PipelineSpec::validate`], answering the compiled expressions.
    pub(crate) fn compile(&self) -> Result<CompiledSpec, SpecError> {
        let mut transforms = Vec::with_capacity(self.mappings.len());
        let mut destinations: HashMap<&str, usize> = HashMap::new();
        for (i, m) in self.mappings.iter().enumerate() {
            if m.source.is_empty() {
                return Err(SpecError::new(
                    format!("mappings[{i}].source"),
                    "must not be empty",
                ));
            }
            if m.destination.is_empty() {
                return Err(SpecError::new(
                    format!("mappings[{i}].destination"),
                    "must not be empty",
                ));
            }
            if let Some(j) = destinations.insert(&m.destination, i) {
                return Err(SpecError::new(
                    format!("mappings[{i}].destination"),
                    format!(
                        "'{}' is already the destination of mappings[{j}]",
                        m.destination
                    ),
                ));
            }
            let path = || format!("mappings[{i}].transform");
            let transform = match &m.transform {
                None => None,
                Some(Transform::Expression(t)) => {
                    Some(expr::compile(t).map_err(|r| SpecError::new(path(), r))?)
                }
                Some(Transform::Redact { redact, keep }) => {
                    let r = Redaction {
                        kind: *redact,
                        keep: *keep,
                    };
                    r.check().map_err(|reason| SpecError::new(path(), reason))?;
                    if let Some(cast) = m.cast
                        && r.kind != RedactKind::Hide
                        && !matches!(cast, FieldType::String | FieldType::Other)
                    {
                        return Err(SpecError::new(
                            path(),
                            format!(
                                "a redaction gives text ({}), which cannot be cast to {}: cast to \
                                 string, or leave the cast out",
                                if r.kind == RedactKind::Scramble {
                                    "scr_…"
                                } else {
                                    "••••…"
                                },
                                lockstep_connectors::batch::field_type_name(cast)
                            ),
                        ));
                    }
                    if r.kind != RedactKind::Scramble && self.key.contains(&m.destination) {
                        return Err(SpecError::new(
                            path(),
                            format!(
                                "'{}' is a key field and {} would make equal keys of different \
                                 records; the key must stay unique: only scramble keeps it",
                                m.destination,
                                r.kind.name()
                            ),
                        ));
                    }
                    None
                }
            };
            transforms.push(transform);
        }

        let mut rules = Vec::with_capacity(self.rules.len());
        for (i, rule) in self.rules.iter().enumerate() {
            let path = |part: &str| format!("rules[{i}].{part}");
            let compiled = expr::compile(&rule.expression)
                .map_err(|r| SpecError::new(path("expression"), r))?;
            match rule.kind {
                RuleKind::Import | RuleKind::Export => {
                    let kind = if rule.kind == RuleKind::Import {
                        "an import"
                    } else {
                        "an export"
                    };
                    match rule.target.as_deref() {
                        None => {
                            return Err(SpecError::new(
                                path("target"),
                                format!("{kind} rule needs a target: the field it sets"),
                            ));
                        }
                        Some("") => {
                            return Err(SpecError::new(path("target"), "must not be empty"));
                        }
                        Some(_) => {}
                    }
                    if rule.level.is_some() {
                        return Err(SpecError::new(
                            path("level"),
                            "only validation rules have a level",
                        ));
                    }
                    if rule.message.is_some() {
                        return Err(SpecError::new(
                            path("message"),
                            "only validation rules have a message",
                        ));
                    }
                    if rule.on_null.is_some() {
                        return Err(SpecError::new(
                            path("on_null"),
                            "only validation rules have an on_null",
                        ));
                    }
                }
                RuleKind::Validation => {
                    if rule.target.is_some() {
                        return Err(SpecError::new(
                            path("target"),
                            "a validation rule sets no field: it accepts or rejects the record",
                        ));
                    }
                    if rule.field_type.is_some() {
                        return Err(SpecError::new(
                            path("type"),
                            "only import and export rules set a field of a type",
                        ));
                    }
                }
            }
            rules.push(compiled);
        }

        let filter = match &self.filter {
            None => None,
            Some(f) => Some(expr::compile(f).map_err(|r| SpecError::new("filter", r))?),
        };

        self.check_mode()?;
        self.check_key_statically()?;
        if let Some(p) = self.max_rejected_percent
            && !(0.0..=100.0).contains(&p)
        {
            return Err(SpecError::new(
                "max_rejected_percent",
                "must be a percentage from 0 to 100",
            ));
        }
        if let Some(schedule) = &self.schedule {
            check_schedule(schedule).map_err(|r| SpecError::new("schedule", r))?;
        }
        Ok(CompiledSpec {
            transforms,
            rules,
            filter,
        })
    }

    fn check_mode(&self) -> Result<(), SpecError> {
        match self.mode {
            Mode::Upsert => {
                if self.key.is_empty() {
                    return Err(SpecError::new(
                        "key",
                        "an upsert needs the key fields that identify a record",
                    ));
                }
                if self.cursor.is_some() {
                    return Err(SpecError::new(
                        "cursor",
                        "only incremental pipelines have a cursor",
                    ));
                }
            }
            Mode::Incremental => {
                match self.cursor.as_deref() {
                    None => {
                        return Err(SpecError::new(
                            "cursor",
                            "an incremental pipeline needs a cursor: the source field whose \
                             values only grow",
                        ));
                    }
                    Some("") => return Err(SpecError::new("cursor", "must not be empty")),
                    Some(_) => {}
                }
                if self.key.is_empty() {
                    return Err(SpecError::new(
                        "key",
                        "an incremental pipeline needs the key fields that identify a record: \
                         its runs are written as upserts, so that a rerun cannot duplicate records",
                    ));
                }
            }
            Mode::FullRefresh | Mode::Append => {
                if self.cursor.is_some() {
                    return Err(SpecError::new(
                        "cursor",
                        "only incremental pipelines have a cursor",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Key fields are named once, not empty, and (with mappings) destination fields.
    fn check_key_statically(&self) -> Result<(), SpecError> {
        let mut seen = HashSet::new();
        for k in &self.key {
            if k.is_empty() {
                return Err(SpecError::new("key", "a key field must not be empty"));
            }
            if !seen.insert(k.as_str()) {
                return Err(SpecError::new("key", format!("'{k}' is listed twice")));
            }
        }
        if !self.mappings.is_empty() {
            for k in &self.key {
                let mapped = self.mappings.iter().any(|m| &m.destination == k);
                let exported = self
                    .rules
                    .iter()
                    .any(|r| r.kind == RuleKind::Export && r.target.as_ref() == Some(k));
                if !mapped && !exported {
                    return Err(SpecError::new(
                        "key",
                        format!("'{k}' is not a destination field"),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The expressions of a valid definition, compiled.
#[derive(Debug)]
pub(crate) struct CompiledSpec {
    /// One per mapping.
    pub(crate) transforms: Vec<Option<Compiled>>,
    /// One per rule.
    pub(crate) rules: Vec<Compiled>,
    pub(crate) filter: Option<Compiled>,
}

/// The field names available at each step, given the source field names.
pub(crate) struct Stages {
    /// Source fields.
    source: Vec<String>,
    /// Source fields plus the fields import rules add, in order.
    after_import: Vec<String>,
    /// Destination fields (before export rules add any).
    destination: Vec<String>,
}

impl Stages {
    pub(crate) fn new(spec: &PipelineSpec, source: &[String]) -> Stages {
        let mut after_import = source.to_vec();
        for rule in &spec.rules {
            if rule.kind == RuleKind::Import
                && let Some(t) = &rule.target
                && !after_import.contains(t)
            {
                after_import.push(t.clone());
            }
        }
        let destination = if spec.mappings.is_empty() {
            after_import.clone()
        } else {
            spec.mappings
                .iter()
                .map(|m| m.destination.clone())
                .collect()
        };
        Stages {
            source: source.to_vec(),
            after_import,
            destination,
        }
    }

    /// The checks of [`PipelineSpec::validate_against`].
    pub(crate) fn check(
        &self,
        spec: &PipelineSpec,
        compiled: &CompiledSpec,
    ) -> Result<(), SpecError> {
        let missing = |vars: &std::collections::BTreeSet<String>,
                       known: &dyn Fn(&str) -> bool|
         -> Option<String> {
            vars.iter()
                .find(|v| !known(v) && !expr::is_non_field_identifier(v))
                .cloned()
        };
        let no_field = |name: &str| format!("no field '{name}' where this expression runs");

        if let Some(filter) = &compiled.filter
            && let Some(v) = missing(&filter.variables, &|n| self.source.iter().any(|s| s == n))
        {
            return Err(SpecError::new("filter", no_field(&v)));
        }

        // Import rules see the source fields and the targets of the import rules before them.
        let mut available: BTreeSet<&str> = self.source.iter().map(String::as_str).collect();
        for (i, (rule, c)) in spec.rules.iter().zip(&compiled.rules).enumerate() {
            if rule.kind != RuleKind::Import {
                continue;
            }
            if let Some(v) = missing(&c.variables, &|n| available.contains(n)) {
                return Err(SpecError::new(
                    format!("rules[{i}].expression"),
                    no_field(&v),
                ));
            }
            if let Some(t) = &rule.target {
                available.insert(t);
            }
        }
        let after_import = |n: &str| self.after_import.iter().any(|s| s == n);
        for (i, (rule, c)) in spec.rules.iter().zip(&compiled.rules).enumerate() {
            if rule.kind == RuleKind::Validation
                && let Some(v) = missing(&c.variables, &after_import)
            {
                return Err(SpecError::new(
                    format!("rules[{i}].expression"),
                    no_field(&v),
                ));
            }
        }
        for (i, (m, t)) in spec.mappings.iter().zip(&compiled.transforms).enumerate() {
            if !after_import(&m.source) {
                return Err(SpecError::new(
                    format!("mappings[{i}].source"),
                    format!("no field '{}' in the source", m.source),
                ));
            }
            if let Some(t) = t
                && let Some(v) = missing(&t.variables, &|n| n == VALUE_VARIABLE || after_import(n))
            {
                return Err(SpecError::new(
                    format!("mappings[{i}].transform"),
                    no_field(&v),
                ));
            }
        }
        let mut output: BTreeSet<&str> = self.destination.iter().map(String::as_str).collect();
        for (i, (rule, c)) in spec.rules.iter().zip(&compiled.rules).enumerate() {
            if rule.kind != RuleKind::Export {
                continue;
            }
            if let Some(v) = missing(&c.variables, &|n| output.contains(n)) {
                return Err(SpecError::new(
                    format!("rules[{i}].expression"),
                    no_field(&v),
                ));
            }
            if let Some(t) = &rule.target {
                output.insert(t);
            }
        }
        if let Some(cursor) = &spec.cursor
            && !self.source.contains(cursor)
        {
            return Err(SpecError::new(
                "cursor",
                format!("no field '{cursor}' in the source"),
            ));
        }
        for k in &spec.key {
            if !output.contains(k.as_str()) {
                return Err(SpecError::new(
                    "key",
                    format!("'{k}' is not a destination field"),
                ));
            }
        }
        Ok(())
    }
}

/// A cron expression of 5 fields (minute hour day-of-month month day-of-week), or 6 with
/// seconds first, or a nickname (`@daily`).
fn check_schedule(schedule: &str) -> Result<(), String> {
    let trimmed = schedule.trim();
    if trimmed.is_empty() {
        return Err("must not be empty".to_owned());
    }
    if !trimmed.starts_with('@') {
        let fields = trimmed.split_whitespace().count();
        if fields != 5 && fields != 6 {
            return Err(format!(
                "a cron expression has 5 fields (minute hour day-of-month month day-of-week), \
                 or 6 with seconds first; this one has {fields}"
            ));
        }
    }
    let parser = croner::parser::CronParser::builder()
        .year(croner::parser::Year::Disallowed)
        .build();
    parser
        .parse(trimmed)
        .map(|_| ())
        .map_err(|e| format!("is not a valid cron expression: {e}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert!(check_schedule("*/5 * * * *").is_ok());
        assert!(check_schedule("0 */5 * * * *").is_ok());
        assert!(check_schedule("@daily").is_ok());
        assert!(
            check_schedule("* * * *")
                .unwrap_err()
                .contains("this one has 4")
        );
        assert!(
            check_schedule("0 0 * * * * 2030")
                .unwrap_err()
                .contains("has 7")
        );
        assert!(check_schedule("61 * * * *").is_err());
    }
}
