//! A pipeline applied to batches: the [`Plan`] is built once per run from the definition and
//! the schema the source answers, and [`Plan::apply`] turns each source batch into the batch to
//! write, the records rejected and the counts.
//!
//! Without rules, filter, transforms or casts, applying a batch only renames its columns (the
//! arrays are reused as they are). Otherwise each expression is compiled once, evaluated row by
//! row against the columns it refers to (and no others), and the columns rules set are built
//! with Arrow builders; unchanged columns are reused, and filtered when records drop out.

use crate::convert::{self, Cell, ColumnBuilder, ColumnView};
use crate::expr::EvalError;
use crate::expr::{self, Compiled};
use crate::redact::{RedactKind, Redaction, Scrambler, redact_array};
use crate::run::EngineError;
use crate::spec::{
    Level, Mode, OnNull, PipelineSpec, RuleKind, SpecError, Transform, VALUE_VARIABLE,
};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow_schema::{Field, FieldRef, Schema, SchemaRef};
use arrow_select::filter::FilterBuilder;
use cel::common::value::CowVal;
use cel::context::VariableResolver;
use cel::{Context, ExecutionError, Value};
use lockstep_connectors::FieldType;
use lockstep_connectors::batch::{arrow_type, field_meta, field_type_name, keys};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// What [`Plan::apply`] made of one batch.
#[derive(Debug, Clone)]
pub struct Applied {
    /// The accepted records, in the plan's output schema.
    pub batch: RecordBatch,
    /// The records rejected by a rule, a cast or a failed evaluation, in input order.
    pub rejected: Vec<Rejected>,
    /// How many warning-level validation rules failed (a record may count more than once).
    pub warnings: u64,
    /// `warnings` per rule (`rules[3]` → count), for the rules that failed at least once.
    pub warnings_by_rule: BTreeMap<String, u64>,
    /// How many records the filter skipped.
    pub skipped: u64,
    /// For each row of `batch`, the index of the input row it came from.
    pub accepted_rows: Vec<usize>,
    /// A review plan ([`Plan::for_review`]) only: what is wrong with the records of `batch`,
    /// in order of `row` (a row of `batch`). Empty for a plan that rejects.
    pub issues: Vec<Issue>,
}

/// What is wrong with one field of a record under review: a failed validation rule (at its
/// level), or a value that could not be computed or converted (an error).
#[derive(Debug, Clone, PartialEq)]
pub struct Issue {
    /// The record's row in the applied batch's output.
    pub row: usize,
    /// The destination field the issue is about (the source field's name when it maps to no
    /// destination field under its own value), or empty when it names none.
    pub field: String,
    /// `warning` or `error`.
    pub level: Level,
    /// In words that name the rule and fields, never a value.
    pub message: String,
    /// What found it: `rules[2]`, `mappings[1]`, `filter`.
    pub rule: String,
}

/// A record that was not written, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejected {
    /// The record's row in the batch given to [`Plan::apply`] ([`crate::execute`] makes it the
    /// record's position in the run, counting from 0).
    pub row: usize,
    /// The record's key, an object of source field name → value: the `key` fields of the
    /// definition, mapped back to the source fields they come from, or else the source's primary
    /// key; `null` when there is none.
    pub key: serde_json::Value,
    /// Why, in words that name the rule (by its message), mapping or filter and field names,
    /// never a value of the record: `price must be positive` (a validation rule's own message),
    /// `the rule 'price >= 0.0' could not be evaluated: no such key 'x'`,
    /// `cannot cast 'qty' to integer`.
    pub reason: String,
    /// What rejected it: `rules[2]`, `mappings[1]`, `filter`.
    pub rule: String,
    /// A rule's verdict, or a failure to evaluate or convert.
    pub kind: RejectionKind,
    /// The fields the rule, mapping or filter refers to (the offending fields, shown first),
    /// in the order the expression names them.
    pub fields: Vec<String>,
    /// The source record, as JSON in the connectors' `Record` conventions (decimals as strings,
    /// timestamps RFC 3339, binary base64).
    pub values: serde_json::Map<String, serde_json::Value>,
}

/// Why a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectionKind {
    /// A validation rule said no (its result was false, or it failed on a null field).
    Rule,
    /// An expression could not be evaluated, or its result, a transform's or a cast's could not
    /// be stored in the destination field.
    Error,
}

/// Why one record was rejected, before its values are attached.
#[derive(Debug, Clone)]
struct Reason {
    rule: String,
    kind: RejectionKind,
    text: String,
    fields: Vec<String>,
    /// The destination field a mapping or export rule failed to compute.
    target: Option<String>,
}

impl Reason {
    fn rule(rule: &str, fields: &[String], text: String) -> Reason {
        Reason {
            rule: rule.to_owned(),
            kind: RejectionKind::Rule,
            text,
            fields: fields.to_vec(),
            target: None,
        }
    }

    fn error(rule: &str, fields: &[String], text: String) -> Reason {
        Reason {
            rule: rule.to_owned(),
            kind: RejectionKind::Error,
            text,
            fields: fields.to_vec(),
            target: None,
        }
    }

    fn on(mut self, target: &str) -> Reason {
        self.target = Some(target.to_owned());
        self
    }
}

/// What one evaluation gave.
enum Outcome {
    /// The row is no longer going (skipped or rejected earlier).
    Gone,
    /// A value.
    Value(Value),
    /// The evaluation failed while a field it refers to is null: a comparison or a computation
    /// with null. Validation rules and the filter count it as false, import and export rules
    /// and transforms as a null result.
    OnNull,
    /// The evaluation failed.
    Failed(ExecutionError),
}

/// An expression and the columns its variables are bound to.
#[derive(Debug)]
struct Bound {
    compiled: Compiled,
    vars: Vec<(String, Var)>,
    /// The field names the expression refers to (a transform's `value` is not one).
    fields: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
enum Var {
    /// A column of the namespace the expression runs in, with its field type.
    Slot(usize, FieldType),
    /// A transform's `value`.
    Value,
}

/// An import or export rule.
#[derive(Debug)]
struct SetRule {
    label: String,
    expr: Bound,
    slot: usize,
    field: FieldRef,
}

/// A validation rule.
#[derive(Debug)]
struct CheckRule {
    label: String,
    expr: Bound,
    level: Level,
    /// The message, or else the expression.
    what: String,
    /// Whether failing on a null field passes the rule.
    null_passes: bool,
}

/// A destination field from a source (or import-rule) field.
#[derive(Debug)]
struct Output {
    label: String,
    slot: usize,
    source_name: String,
    source_type: FieldType,
    transform: Option<Bound>,
    /// A redact transform (then `transform` is none).
    redact: Option<Redaction>,
    cast: Option<FieldType>,
    field: FieldRef,
    /// The source field, then the fields its transform refers to.
    fields: Vec<String>,
}

impl Output {
    fn is_plain(&self) -> bool {
        self.transform.is_none() && self.redact.is_none() && self.cast.is_none()
    }
}

/// The organization's scrambler, when the plan was given one. `Debug` says only whether.
#[derive(Clone, Default)]
struct ScramblerSlot(Option<Scrambler>);

impl std::fmt::Debug for ScramblerSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Scrambler(..)"
        } else {
            "None"
        })
    }
}

/// A pipeline definition compiled for one source schema.
#[derive(Debug)]
pub struct Plan {
    source_schema: SchemaRef,
    output_schema: SchemaRef,
    filter: Option<Bound>,
    imports: Vec<SetRule>,
    validations: Vec<CheckRule>,
    outputs: Vec<Output>,
    exports: Vec<SetRule>,
    /// No rule, filter, transform or cast: batches are only renamed.
    fast: bool,
    /// (source name, source column) of the fields that identify a record.
    key_columns: Vec<(String, usize)>,
    read_fields: Vec<String>,
    cursor_column: Option<usize>,
    /// Set to stop evaluations between two iterations (cancellation).
    interrupt: Arc<AtomicBool>,
    /// A review plan keeps every record the filter lets through and reports what is wrong with
    /// it as [`Issue`]s instead of rejecting it.
    review: bool,
    /// What scramble transforms hash with ([`Plan::with_scrambler`]).
    scrambler: ScramblerSlot,
}

fn spec_error(field: impl Into<String>, reason: impl Into<String>) -> SpecError {
    SpecError {
        field: field.into(),
        reason: reason.into(),
    }
}

/// `field` under `name`, of `field_type`: the Arrow type of that type, the type in the metadata,
/// the native type (which no longer applies) removed.
fn typed_field(base: &Field, name: &str, field_type: FieldType) -> Field {
    let mut metadata = base.metadata().clone();
    metadata.remove(keys::NATIVE);
    metadata.remove(keys::SOURCE);
    metadata.insert(
        keys::TYPE.to_owned(),
        field_type_name(field_type).to_owned(),
    );
    Field::new(name, arrow_type(field_type, ""), base.is_nullable()).with_metadata(metadata)
}

/// A new field of `field_type` (nullable).
fn new_field(name: &str, field_type: FieldType) -> Field {
    let metadata = HashMap::from([(
        keys::TYPE.to_owned(),
        field_type_name(field_type).to_owned(),
    )]);
    Field::new(name, arrow_type(field_type, ""), true).with_metadata(metadata)
}

/// `field` under `name` with the Arrow type the batch contract gives its field type, for
/// columns the engine builds.
fn built_field(base: &Field, name: &str) -> Field {
    let meta = field_meta(base);
    let data_type = arrow_type(meta.field_type, &meta.native);
    base.clone().with_name(name).with_data_type(data_type)
}

fn field_type_of(field: &Field) -> FieldType {
    field_meta(field).field_type
}

fn bind(compiled: Compiled, names: &[(String, usize, FieldType)], with_value: bool) -> Bound {
    let mut vars = Vec::new();
    for v in &compiled.variables {
        if with_value && v == VALUE_VARIABLE {
            vars.push((v.clone(), Var::Value));
        } else if let Some((_, slot, t)) = names.iter().find(|(n, ..)| n == v) {
            vars.push((v.clone(), Var::Slot(*slot, *t)));
        }
    }
    let fields = vars
        .iter()
        .filter(|(_, var)| matches!(var, Var::Slot(..)))
        .map(|(name, _)| name.clone())
        .collect();
    Bound {
        compiled,
        vars,
        fields,
    }
}

impl Plan {
    /// Compiles `spec` for batches of `source_schema` (the schema the source answered). Fails
    /// like [`PipelineSpec::validate`], and when a mapped field, the cursor or a key field does
    /// not exist.
    pub fn new(spec: &PipelineSpec, source_schema: SchemaRef) -> Result<Plan, SpecError> {
        let compiled = spec.compile()?;
        let mut rules: Vec<Option<Compiled>> = compiled.rules.into_iter().map(Some).collect();
        let mut transforms = compiled.transforms;
        let source_len = source_schema.fields().len();
        let mut stage_fields: Vec<FieldRef> = source_schema.fields().iter().cloned().collect();
        let names_of = |fields: &[FieldRef], defined: &[bool]| -> Vec<(String, usize, FieldType)> {
            fields
                .iter()
                .enumerate()
                .filter(|(i, _)| defined.get(*i).copied().unwrap_or(false))
                .map(|(i, f)| (f.name().clone(), i, field_type_of(f)))
                .collect()
        };
        let mut defined = vec![true; source_len];
        let source_names = names_of(&stage_fields, &defined);

        let filter = compiled.filter.map(|f| bind(f, &source_names, false));

        // Import rules, in order: each sees the source fields and earlier targets.
        let mut imports = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            if rule.kind != RuleKind::Import {
                continue;
            }
            let Some(c) = rules.get_mut(i).and_then(Option::take) else {
                continue;
            };
            let target = rule.target.clone().unwrap_or_default();
            let names = names_of(&stage_fields, &defined);
            let bound = bind(c, &names, false);
            let existing = stage_fields.iter().position(|f| f.name() == &target);
            let (slot, field) = match existing {
                Some(slot) => {
                    let base = stage_fields
                        .get(slot)
                        .cloned()
                        .ok_or_else(|| spec_error(format!("rules[{i}].target"), "no such field"))?;
                    let field = match rule.field_type {
                        Some(t) => typed_field(&base, &target, t),
                        None => built_field(&base, &target),
                    };
                    (slot, Arc::new(field))
                }
                None => {
                    let field = Arc::new(new_field(
                        &target,
                        rule.field_type.unwrap_or(FieldType::String),
                    ));
                    stage_fields.push(Arc::clone(&field));
                    defined.push(false);
                    (stage_fields.len() - 1, field)
                }
            };
            if let Some(f) = stage_fields.get_mut(slot) {
                *f = Arc::clone(&field);
            }
            if let Some(d) = defined.get_mut(slot) {
                *d = true;
            }
            imports.push(SetRule {
                label: format!("rules[{i}]"),
                expr: bound,
                slot,
                field,
            });
        }
        let stage_names = names_of(&stage_fields, &defined);

        let mut validations = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            if rule.kind != RuleKind::Validation {
                continue;
            }
            let Some(c) = rules.get_mut(i).and_then(Option::take) else {
                continue;
            };
            validations.push(CheckRule {
                label: format!("rules[{i}]"),
                expr: bind(c, &stage_names, false),
                level: rule.level.unwrap_or_default(),
                what: rule.message.clone().unwrap_or_else(|| {
                    format!("the rule '{}' is false", expr::abbreviate(&rule.expression))
                }),
                null_passes: rule.on_null == Some(OnNull::Pass),
            });
        }

        let mut outputs = Vec::new();
        if spec.mappings.is_empty() {
            for (slot, field) in stage_fields.iter().enumerate() {
                outputs.push(Output {
                    label: String::new(),
                    slot,
                    source_name: field.name().clone(),
                    source_type: field_type_of(field),
                    transform: None,
                    redact: None,
                    cast: None,
                    field: Arc::clone(field),
                    fields: vec![field.name().clone()],
                });
            }
        } else {
            for (i, m) in spec.mappings.iter().enumerate() {
                let Some((slot, base)) = stage_fields
                    .iter()
                    .enumerate()
                    .find(|(_, f)| f.name() == &m.source)
                else {
                    return Err(spec_error(
                        format!("mappings[{i}].source"),
                        format!("no field '{}' in the source", m.source),
                    ));
                };
                let transform = transforms
                    .get_mut(i)
                    .and_then(Option::take)
                    .map(|c| bind(c, &stage_names, true));
                let redact = m.transform.as_ref().and_then(Transform::redaction);
                let field = match (m.cast, &transform, redact) {
                    (Some(t), ..) => typed_field(base, &m.destination, t),
                    // A redaction gives text.
                    (None, _, Some(_)) => typed_field(base, &m.destination, FieldType::String),
                    (None, Some(_), None) => built_field(base, &m.destination),
                    (None, None, None) => base.as_ref().clone().with_name(&m.destination),
                };
                // Hidden values are nulls.
                let field = match redact {
                    Some(r) if r.kind == RedactKind::Hide => field.with_nullable(true),
                    _ => field,
                };
                let mut fields = vec![m.source.clone()];
                for f in transform.iter().flat_map(|t| &t.fields) {
                    if !fields.contains(f) {
                        fields.push(f.clone());
                    }
                }
                outputs.push(Output {
                    label: format!("mappings[{i}]"),
                    slot,
                    source_name: m.source.clone(),
                    source_type: field_type_of(base),
                    transform,
                    redact,
                    cast: m.cast,
                    field: Arc::new(field),
                    fields,
                });
            }
        }

        // Export rules, in order, on destination fields.
        let mut output_fields: Vec<FieldRef> =
            outputs.iter().map(|o| Arc::clone(&o.field)).collect();
        let mut out_defined = vec![true; output_fields.len()];
        let mut exports = Vec::new();
        for (i, rule) in spec.rules.iter().enumerate() {
            if rule.kind != RuleKind::Export {
                continue;
            }
            let Some(c) = rules.get_mut(i).and_then(Option::take) else {
                continue;
            };
            let target = rule.target.clone().unwrap_or_default();
            let names = names_of(&output_fields, &out_defined);
            let bound = bind(c, &names, false);
            let (slot, field) = match output_fields.iter().position(|f| f.name() == &target) {
                Some(slot) => {
                    let base = output_fields
                        .get(slot)
                        .cloned()
                        .ok_or_else(|| spec_error(format!("rules[{i}].target"), "no such field"))?;
                    let field = match rule.field_type {
                        Some(t) => typed_field(&base, &target, t),
                        None => built_field(&base, &target),
                    };
                    (slot, Arc::new(field))
                }
                None => {
                    let field = Arc::new(new_field(
                        &target,
                        rule.field_type.unwrap_or(FieldType::String),
                    ));
                    output_fields.push(Arc::clone(&field));
                    out_defined.push(false);
                    (output_fields.len() - 1, field)
                }
            };
            if let Some(f) = output_fields.get_mut(slot) {
                *f = Arc::clone(&field);
            }
            if let Some(d) = out_defined.get_mut(slot) {
                *d = true;
            }
            exports.push(SetRule {
                label: format!("rules[{i}]"),
                expr: bound,
                slot,
                field,
            });
        }

        for k in &spec.key {
            if !output_fields.iter().any(|f| f.name() == k) {
                return Err(spec_error(
                    "key",
                    format!("'{k}' is not a destination field"),
                ));
            }
        }
        // The primary key of the output: the definition's key when it has one.
        let final_fields: Vec<Field> = output_fields
            .iter()
            .map(|f| {
                if spec.key.is_empty() {
                    return f.as_ref().clone();
                }
                let mut metadata = f.metadata().clone();
                if spec.key.iter().any(|k| k == f.name()) {
                    metadata.insert(keys::PRIMARY_KEY.to_owned(), "true".to_owned());
                } else {
                    metadata.remove(keys::PRIMARY_KEY);
                }
                f.as_ref().clone().with_metadata(metadata)
            })
            .collect();
        let output_schema = Arc::new(Schema::new(final_fields));

        let cursor_column = match &spec.cursor {
            None => None,
            Some(cursor) => Some(
                source_schema
                    .fields()
                    .iter()
                    .position(|f| f.name() == cursor)
                    .ok_or_else(|| {
                        spec_error("cursor", format!("no field '{cursor}' in the source"))
                    })?,
            ),
        };
        if spec.mode == Mode::Incremental && cursor_column.is_none() {
            return Err(spec_error(
                "cursor",
                "an incremental pipeline needs a cursor",
            ));
        }

        // The source fields that identify a rejected record.
        let mut key_columns = Vec::new();
        if spec.key.is_empty() {
            for (i, f) in source_schema.fields().iter().enumerate() {
                if field_meta(f).primary_key {
                    key_columns.push((f.name().clone(), i));
                }
            }
        } else {
            for k in &spec.key {
                if let Some(o) = outputs.iter().find(|o| o.field.name() == k)
                    && o.slot < source_len
                {
                    key_columns.push((o.source_name.clone(), o.slot));
                }
            }
        }

        let fast = filter.is_none()
            && imports.is_empty()
            && validations.is_empty()
            && exports.is_empty()
            && outputs.iter().all(Output::is_plain);

        let mut needed = vec![false; source_len];
        let mut mark = |slot: usize| {
            if let Some(n) = needed.get_mut(slot) {
                *n = true;
            }
        };
        for o in &outputs {
            mark(o.slot);
        }
        let exprs = filter
            .iter()
            .chain(imports.iter().map(|r| &r.expr))
            .chain(validations.iter().map(|r| &r.expr))
            .chain(outputs.iter().filter_map(|o| o.transform.as_ref()));
        for e in exprs {
            for (_, v) in &e.vars {
                if let Var::Slot(slot, _) = v {
                    mark(*slot);
                }
            }
        }
        if let Some(c) = cursor_column {
            mark(c);
        }
        for (_, c) in &key_columns {
            mark(*c);
        }
        let read_fields = source_schema
            .fields()
            .iter()
            .zip(&needed)
            .filter(|(_, n)| **n)
            .map(|(f, _)| f.name().clone())
            .collect();

        Ok(Plan {
            source_schema,
            output_schema,
            filter,
            imports,
            validations,
            outputs,
            exports,
            fast,
            key_columns,
            read_fields,
            cursor_column,
            interrupt: Arc::new(AtomicBool::new(false)),
            review: false,
            scrambler: ScramblerSlot::default(),
        })
    }

    /// The plan, its scramble transforms hashing with `scrambler` (the organization's keyed
    /// hash). A plan that scrambles and was given none fails to apply ([`Plan::check_scrambler`]).
    pub fn with_scrambler(mut self, scrambler: Scrambler) -> Plan {
        self.scrambler = ScramblerSlot(Some(scrambler));
        self
    }

    /// Fails, naming the mapping, when a mapping scrambles and the plan was given no scrambler:
    /// values are never passed in clear instead.
    pub fn check_scrambler(&self) -> Result<(), EngineError> {
        match self.outputs.iter().find(|o| {
            o.redact.is_some_and(|r| r.kind == RedactKind::Scramble) && self.scrambler.0.is_none()
        }) {
            Some(o) => Err(no_scrambler(&o.label)),
            None => Ok(()),
        }
    }

    /// A plan for records a person reviews before they are written (a data set): no record is
    /// rejected — failed validation rules (warnings too) and values that cannot be computed are
    /// [`Applied::issues`] on their fields, a value that cannot be computed is null — so every
    /// output field is nullable. Only the filter drops records.
    pub fn for_review(spec: &PipelineSpec, source_schema: SchemaRef) -> Result<Plan, SpecError> {
        let mut plan = Plan::new(spec, source_schema)?;
        plan.review = true;
        let fields: Vec<Field> = plan
            .output_schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        plan.output_schema = Arc::new(Schema::new_with_metadata(
            fields,
            plan.output_schema.metadata().clone(),
        ));
        for o in &mut plan.outputs {
            o.field = Arc::new(o.field.as_ref().clone().with_nullable(true));
        }
        for r in &mut plan.exports {
            r.field = Arc::new(r.field.as_ref().clone().with_nullable(true));
        }
        Ok(plan)
    }

    /// The destination field a source field reaches unchanged (a mapping without transform or
    /// cast), if any.
    fn destination_of(&self, source: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|o| o.is_plain() && o.source_name == source)
            .map(|o| o.field.name().as_str())
    }

    /// The source field a destination field takes unchanged or through a cast only, if any:
    /// where an edit of that destination field goes.
    pub fn source_of(&self, destination: &str) -> Option<&str> {
        self.outputs
            .iter()
            .find(|o| o.transform.is_none() && o.redact.is_none() && o.field.name() == destination)
            .filter(|_| !self.exports.iter().any(|r| r.field.name() == destination))
            .map(|o| o.source_name.as_str())
    }

    /// For each source column, the output column that holds its values unchanged (a plain
    /// mapping of a field no import rule sets, to a field no export rule sets), if any: where a
    /// data set need not keep a record's source value beside the record's own.
    pub fn passthrough(&self) -> Vec<Option<usize>> {
        let source_len = self.source_schema.fields().len();
        (0..source_len)
            .map(|column| {
                if self.imports.iter().any(|r| r.slot == column) {
                    return None;
                }
                self.outputs.iter().enumerate().find_map(|(j, o)| {
                    (o.is_plain() && o.slot == column && !self.exports.iter().any(|r| r.slot == j))
                        .then_some(j)
                })
            })
            .collect()
    }

    /// The schema of the batches [`Plan::apply`] answers: destination field names, with the
    /// metadata of the source fields they come from (so types, nullability and keys survive),
    /// a cast's type, a rule's type for the fields rules add, and the primary key from the
    /// definition's `key` when it has one.
    pub fn output_schema(&self) -> SchemaRef {
        Arc::clone(&self.output_schema)
    }

    /// The schema the plan reads.
    pub fn source_schema(&self) -> SchemaRef {
        Arc::clone(&self.source_schema)
    }

    /// The source fields the plan uses: mapped fields, fields expressions refer to, the cursor
    /// and the key, in source order.
    pub fn read_fields(&self) -> Vec<String> {
        self.read_fields.clone()
    }

    /// A flag that, once set, stops every evaluation of this plan between two iterations of a
    /// comprehension ([`Plan::apply`] then fails with [`EngineError::Limit`]).
    pub fn interrupter(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.interrupt)
    }

    /// Whether applying the plan only renames columns (no expression, no cast).
    pub(crate) fn is_trivial(&self) -> bool {
        self.fast
    }

    /// The source column of the cursor.
    pub(crate) fn cursor_column(&self) -> Option<usize> {
        self.cursor_column
    }

    /// Runs a batch of the source schema through the plan.
    pub fn apply(&self, batch: &RecordBatch) -> Result<Applied, EngineError> {
        let n = batch.num_rows();
        let columns = batch.columns();
        if columns.len() != self.source_schema.fields().len() {
            return Err(EngineError::Rule(format!(
                "the batch has {} fields, the source schema {}",
                columns.len(),
                self.source_schema.fields().len()
            )));
        }
        if self.fast {
            let out = self
                .outputs
                .iter()
                .map(|o| column(columns, o.slot))
                .collect::<Result<Vec<_>, _>>()?;
            let batch = make_batch(&self.output_schema, out, n)?;
            return Ok(Applied {
                batch,
                rejected: Vec::new(),
                warnings: 0,
                warnings_by_rule: BTreeMap::new(),
                skipped: 0,
                accepted_rows: (0..n).collect(),
                issues: Vec::new(),
            });
        }

        let mut rows = RowStates::new(n, self.review);
        let mut slots: Vec<ArrayRef> = columns.to_vec();

        if let Some(filter) = &self.filter {
            let mut skip = Vec::new();
            let mut fail = Vec::new();
            self.evaluate(
                filter,
                "filter",
                &slots,
                None,
                &rows.alive,
                |row, result| match result {
                    Outcome::Gone | Outcome::Value(Value::Bool(true)) => {}
                    Outcome::Value(Value::Bool(false) | Value::Null) | Outcome::OnNull => {
                        skip.push(row)
                    }
                    Outcome::Value(other) => fail.push((
                        row,
                        Reason::error(
                            "filter",
                            &filter.fields,
                            format!(
                                "the filter's result is a {}, not a boolean",
                                expr::type_name(&other)
                            ),
                        ),
                    )),
                    Outcome::Failed(e) => fail.push((
                        row,
                        Reason::error(
                            "filter",
                            &filter.fields,
                            format!(
                                "the filter could not be evaluated: {}",
                                expr::describe_execution_error(&e, &filter.compiled.source)
                            ),
                        ),
                    )),
                },
            )?;
            for row in skip {
                rows.skip(row);
            }
            rows.reject_all(fail);
        }

        for rule in &self.imports {
            let col = self.set_column(rule, &slots, &mut rows)?;
            if rule.slot < slots.len() {
                if let Some(s) = slots.get_mut(rule.slot) {
                    *s = col;
                }
            } else {
                slots.push(col);
            }
        }

        for rule in &self.validations {
            let mut fail = Vec::new();
            let mut warned = Vec::new();
            let mut warnings = 0u64;
            let label = &rule.label;
            self.evaluate(
                &rule.expr,
                label,
                &slots,
                None,
                &rows.alive,
                |row, result| {
                    let problem = match result {
                        Outcome::Gone | Outcome::Value(Value::Bool(true)) => return,
                        Outcome::OnNull if rule.null_passes => return,
                        Outcome::Value(Value::Bool(false) | Value::Null) | Outcome::OnNull => {
                            Reason::rule(label, &rule.expr.fields, rule.what.clone())
                        }
                        Outcome::Value(other) => Reason::error(
                            label,
                            &rule.expr.fields,
                            format!(
                                "'{}': the result is a {}, not a boolean",
                                rule.what,
                                expr::type_name(&other)
                            ),
                        ),
                        Outcome::Failed(e) => Reason::error(
                            label,
                            &rule.expr.fields,
                            format!(
                                "'{}' could not be evaluated: {}",
                                rule.what,
                                expr::describe_execution_error(&e, &rule.expr.compiled.source)
                            ),
                        ),
                    };
                    match rule.level {
                        Level::Warning => {
                            warnings += 1;
                            if self.review {
                                warned.push((row, problem));
                            }
                        }
                        Level::Error => fail.push((row, problem)),
                    }
                },
            )?;
            rows.warnings += warnings;
            if warnings > 0 {
                *rows.warnings_by_rule.entry(label.clone()).or_default() += warnings;
            }
            rows.reject_all(fail);
            rows.issues
                .extend(warned.into_iter().map(|(row, r)| (row, Level::Warning, r)));
        }

        let mut out: Vec<ArrayRef> = Vec::with_capacity(self.outputs.len());
        for o in &self.outputs {
            let source = column(&slots, o.slot)?;
            let col = if o.is_plain() {
                source
            } else {
                self.output_column(o, &slots, &source, &mut rows)?
            };
            out.push(col);
        }

        for rule in &self.exports {
            let col = self.set_column(rule, &out, &mut rows)?;
            if rule.slot < out.len() {
                if let Some(s) = out.get_mut(rule.slot) {
                    *s = col;
                }
            } else {
                out.push(col);
            }
        }

        let accepted_rows: Vec<usize> = rows
            .alive
            .iter()
            .enumerate()
            .filter(|(_, a)| **a)
            .map(|(i, _)| i)
            .collect();
        let out = if accepted_rows.len() == n {
            out
        } else {
            let mask = BooleanArray::from(rows.alive.clone());
            let filter = FilterBuilder::new(&mask).optimize().build();
            out.iter()
                .map(|c| filter.filter(c))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| EngineError::Rule(format!("filtering the batch failed: {e}")))?
        };
        let out_batch = make_batch(&self.output_schema, out, accepted_rows.len())?;

        let mut rejected_rows = std::mem::take(&mut rows.rejected);
        rejected_rows.sort_by_key(|(row, _)| *row);
        let rejected = if rejected_rows.is_empty() {
            Vec::new()
        } else {
            let views: Vec<(&str, ColumnView<'_>)> = self
                .source_schema
                .fields()
                .iter()
                .zip(columns)
                .map(|(f, c)| (f.name().as_str(), ColumnView::new(c, field_type_of(f))))
                .collect();
            rejected_rows
                .into_iter()
                .map(|(row, reason)| self.rejected(&views, row, reason))
                .collect()
        };

        let issues = if rows.issues.is_empty() {
            Vec::new()
        } else {
            let mut position = vec![usize::MAX; n];
            for (out_row, input_row) in accepted_rows.iter().enumerate() {
                if let Some(p) = position.get_mut(*input_row) {
                    *p = out_row;
                }
            }
            let mut issues: Vec<Issue> = std::mem::take(&mut rows.issues)
                .into_iter()
                .filter_map(|(row, level, reason)| {
                    let out_row = *position.get(row)?;
                    (out_row != usize::MAX).then(|| self.issue(out_row, level, reason))
                })
                .collect();
            issues.sort_by_key(|i| i.row);
            issues
        };

        Ok(Applied {
            batch: out_batch,
            rejected,
            warnings: rows.warnings,
            warnings_by_rule: std::mem::take(&mut rows.warnings_by_rule),
            skipped: rows.skipped,
            accepted_rows,
            issues,
        })
    }

    /// The issue a reason makes on the output record at `row`.
    fn issue(&self, row: usize, level: Level, reason: Reason) -> Issue {
        let field = match reason.target {
            Some(target) => target,
            None => reason
                .fields
                .first()
                .map(|f| self.destination_of(f).unwrap_or(f).to_owned())
                .unwrap_or_default(),
        };
        Issue {
            row,
            field,
            level,
            message: reason.text,
            rule: reason.rule,
        }
    }

    /// The rejected record at `row`: its key and values from the input batch.
    fn rejected(&self, views: &[(&str, ColumnView<'_>)], row: usize, reason: Reason) -> Rejected {
        let values: serde_json::Map<String, serde_json::Value> = views
            .iter()
            .map(|(name, v)| ((*name).to_owned(), convert::cell_to_json(&v.cell(row))))
            .collect();
        let key = if self.key_columns.is_empty() {
            serde_json::Value::Null
        } else {
            let mut key = serde_json::Map::new();
            for (name, _) in &self.key_columns {
                let value = values.get(name).cloned().unwrap_or(serde_json::Value::Null);
                key.insert(name.clone(), value);
            }
            serde_json::Value::Object(key)
        };
        Rejected {
            row,
            key,
            reason: reason.text,
            rule: reason.rule,
            kind: reason.kind,
            fields: reason.fields,
            values,
        }
    }

    /// Evaluates `bound` on every row; `each` gets [`Outcome::Gone`] for rows no longer alive.
    /// Fails with [`EngineError::Limit`], naming `label`, when an evaluation reaches a limit.
    fn evaluate(
        &self,
        bound: &Bound,
        label: &str,
        columns: &[ArrayRef],
        value: Option<(&ArrayRef, FieldType)>,
        alive: &[bool],
        mut each: impl FnMut(usize, Outcome),
    ) -> Result<(), EngineError> {
        let mut vars = Vec::with_capacity(bound.vars.len());
        for (name, var) in &bound.vars {
            match var {
                Var::Slot(slot, t) => {
                    if let Some(c) = columns.get(*slot) {
                        vars.push((name.as_str(), ColumnView::new(c, *t)));
                    }
                }
                Var::Value => {
                    if let Some((c, t)) = value {
                        vars.push((name.as_str(), ColumnView::new(c, t)));
                    }
                }
            }
        }
        let resolver = RowVariables {
            vars,
            row: AtomicUsize::new(0),
        };
        let mut context = Context::with_env(expr::env());
        context.set_variable_resolver(&resolver);
        let interrupt = bound.compiled.has_loops().then_some(&self.interrupt);
        for (row, live) in alive.iter().enumerate() {
            if !*live {
                each(row, Outcome::Gone);
                continue;
            }
            resolver.row.store(row, Ordering::Relaxed);
            let outcome = match bound.compiled.execute(&context, interrupt) {
                Ok(value) => Outcome::Value(value),
                Err(EvalError::Failed(_)) if resolver.any_null() => Outcome::OnNull,
                Err(EvalError::Failed(e)) => Outcome::Failed(e),
                Err(EvalError::Limit(reason)) => {
                    return Err(EngineError::Limit {
                        rule: label.to_owned(),
                        reason: reason.to_owned(),
                    });
                }
            };
            each(row, outcome);
        }
        Ok(())
    }

    /// The column an import or export rule sets.
    fn set_column(
        &self,
        rule: &SetRule,
        columns: &[ArrayRef],
        rows: &mut RowStates,
    ) -> Result<ArrayRef, EngineError> {
        let target = rule.field.name();
        let target_type = field_type_of(&rule.field);
        let nullable = rule.field.is_nullable();
        let mut builder = builder_for(&rule.field, rows.alive.len(), &rule.label)?;
        let mut fail = Vec::new();
        let label = &rule.label;
        self.evaluate(&rule.expr, label, columns, None, &rows.alive, |row, result| {
            let problem = match result {
                Outcome::Gone => {
                    builder.append_null();
                    return;
                }
                Outcome::OnNull if nullable => {
                    builder.append_null();
                    return;
                }
                Outcome::OnNull => format!(
                    "the rule setting '{target}' gives null (a field it uses is null) but \
                     '{target}' cannot be null"
                ),
                Outcome::Value(value) => match store(&mut builder, value, nullable) {
                    Ok(()) => return,
                    Err(Stored::Null) => {
                        format!("the rule setting '{target}' gives null but '{target}' cannot be null")
                    }
                    Err(Stored::Type(t)) => format!(
                        "the rule setting '{target}' gives a {t}, which cannot be stored as {}",
                        field_type_name(target_type)
                    ),
                },
                Outcome::Failed(e) => format!(
                    "the rule setting '{target}' could not be evaluated: {}",
                    expr::describe_execution_error(&e, &rule.expr.compiled.source)
                ),
            };
            builder.append_null();
            fail.push((row, Reason::error(label, &rule.expr.fields, problem).on(target)));
        })?;
        rows.reject_all(fail);
        Ok(builder.finish())
    }

    /// A mapped column with a transform or a cast.
    fn output_column(
        &self,
        o: &Output,
        slots: &[ArrayRef],
        source: &ArrayRef,
        rows: &mut RowStates,
    ) -> Result<ArrayRef, EngineError> {
        // A redaction first: its text is the column, or what the cast converts.
        let redacted;
        let (source, source_type) = match o.redact {
            Some(r) => {
                let fallback;
                let scrambler = match (&self.scrambler.0, r.kind) {
                    (Some(s), _) => s,
                    (None, RedactKind::Scramble) => return Err(no_scrambler(&o.label)),
                    (None, _) => {
                        fallback = unused_scrambler();
                        &fallback
                    }
                };
                redacted = redact_array(&r, source, o.source_type, scrambler)
                    .map_err(|e| EngineError::Rule(format!("{}: {e}", o.label)))?;
                if o.cast.is_none() {
                    return Ok(redacted);
                }
                (&redacted, FieldType::String)
            }
            None => (source, o.source_type),
        };
        let dest = o.field.name();
        let dest_type = field_type_name(field_type_of(&o.field));
        let nullable = o.field.is_nullable();
        let mut builder = builder_for(&o.field, rows.alive.len(), &o.label)?;
        let mut fail = Vec::new();
        match &o.transform {
            Some(transform) => {
                let value = Some((source, source_type));
                let label = &o.label;
                self.evaluate(transform, label, slots, value, &rows.alive, |row, result| {
                    let problem = match result {
                        Outcome::Gone => {
                            builder.append_null();
                            return;
                        }
                        Outcome::OnNull if nullable => {
                            builder.append_null();
                            return;
                        }
                        Outcome::OnNull => format!(
                            "the transform of '{dest}' gives null (a field it uses is null) but \
                             '{dest}' cannot be null"
                        ),
                        Outcome::Value(v) => match store(&mut builder, v, nullable) {
                            Ok(()) => return,
                            Err(Stored::Null) => format!(
                                "the transform of '{dest}' gives null but '{dest}' cannot be null"
                            ),
                            Err(Stored::Type(t)) => format!(
                                "the transform of '{dest}' gives a {t}, which cannot be stored \
                                 as {dest_type}"
                            ),
                        },
                        Outcome::Failed(e) => format!(
                            "the transform of '{dest}' could not be evaluated: {}",
                            expr::describe_execution_error(&e, &transform.compiled.source)
                        ),
                    };
                    builder.append_null();
                    fail.push((row, Reason::error(label, &o.fields, problem).on(dest)));
                })?;
            }
            None => {
                let view = ColumnView::new(source, source_type);
                for (row, live) in rows.alive.iter().enumerate() {
                    if !*live {
                        builder.append_null();
                        continue;
                    }
                    let cell = view.cell(row);
                    let ok = if cell == Cell::Null && !nullable {
                        false
                    } else {
                        builder.append(cell).is_ok()
                    };
                    if !ok {
                        builder.append_null();
                        fail.push((
                            row,
                            Reason::error(
                                &o.label,
                                &o.fields,
                                format!("cannot cast '{}' to {dest_type}", o.source_name),
                            )
                            .on(dest),
                        ));
                    }
                }
            }
        }
        rows.reject_all(fail);
        Ok(builder.finish())
    }
}

/// Why a plan that scrambles cannot apply without a scrambler.
fn no_scrambler(label: &str) -> EngineError {
    EngineError::Rule(format!(
        "{label}: a scramble transform needs the organization's key, and the plan was given \
         none: nothing is written in clear instead"
    ))
}

/// A scrambler for the redactions that never call one (mask, partial, hide).
fn unused_scrambler() -> Scrambler {
    Arc::new(|_: &[u8]| [0u8; 32])
}

fn builder_for(field: &Field, capacity: usize, label: &str) -> Result<ColumnBuilder, EngineError> {
    ColumnBuilder::new(field.data_type(), field_type_of(field), capacity).ok_or_else(|| {
        EngineError::Rule(format!(
            "{label}: cannot build a column of type {}",
            field.data_type()
        ))
    })
}

enum Stored {
    /// Null for a field that cannot be null.
    Null,
    /// A result of this CEL type does not convert.
    Type(String),
}

fn store(builder: &mut ColumnBuilder, value: Value, nullable: bool) -> Result<(), Stored> {
    let type_name = expr::type_name(&value);
    match convert::cel_to_cell(value) {
        Some(Cell::Null) if !nullable => Err(Stored::Null),
        Some(cell) => builder.append(cell).map_err(|_| Stored::Type(type_name)),
        None => Err(Stored::Type(type_name)),
    }
}

fn column(columns: &[ArrayRef], slot: usize) -> Result<ArrayRef, EngineError> {
    columns
        .get(slot)
        .cloned()
        .ok_or_else(|| EngineError::Rule(format!("no column {slot} in the batch")))
}

fn make_batch(
    schema: &SchemaRef,
    columns: Vec<ArrayRef>,
    rows: usize,
) -> Result<RecordBatch, EngineError> {
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| EngineError::Rule(format!("the output batch does not match its schema: {e}")))
}

/// Which rows are still going, and what happened to the others.
struct RowStates {
    alive: Vec<bool>,
    rejected: Vec<(usize, Reason)>,
    /// Review plans: what is wrong with each row, which stays alive.
    review: bool,
    issues: Vec<(usize, Level, Reason)>,
    skipped: u64,
    warnings: u64,
    warnings_by_rule: BTreeMap<String, u64>,
}

impl RowStates {
    fn new(n: usize, review: bool) -> RowStates {
        RowStates {
            alive: vec![true; n],
            rejected: Vec::new(),
            review,
            issues: Vec::new(),
            skipped: 0,
            warnings: 0,
            warnings_by_rule: BTreeMap::new(),
        }
    }

    fn skip(&mut self, row: usize) {
        if let Some(a) = self.alive.get_mut(row)
            && *a
        {
            *a = false;
            self.skipped += 1;
        }
    }

    fn reject_all(&mut self, rows: Vec<(usize, Reason)>) {
        if self.review {
            self.issues
                .extend(rows.into_iter().map(|(row, r)| (row, Level::Error, r)));
            return;
        }
        for (row, reason) in rows {
            if let Some(a) = self.alive.get_mut(row)
                && *a
            {
                *a = false;
                self.rejected.push((row, reason));
            }
        }
    }
}

/// The variables of one expression: the columns it refers to, read at the current row.
struct RowVariables<'a> {
    vars: Vec<(&'a str, ColumnView<'a>)>,
    row: AtomicUsize,
}

impl RowVariables<'_> {
    /// Whether a variable the expression refers to is null at the current row.
    fn any_null(&self) -> bool {
        let row = self.row.load(Ordering::Relaxed);
        self.vars
            .iter()
            .any(|(_, view)| view.cell(row) == Cell::Null)
    }
}

impl VariableResolver for RowVariables<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        let row = self.row.load(Ordering::Relaxed);
        self.vars
            .iter()
            .find(|(name, _)| *name == variable)
            .map(|(_, view)| view.cel(row))
    }
}
