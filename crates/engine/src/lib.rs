//! Lockstep's sync engine: pipeline definitions ([`PipelineSpec`]), CEL rules and mappings
//! applied to Arrow batches ([`Plan`]), and the run loop from a source to a destination
//! ([`execute`]).
//!
//! The engine does no IO of its own: sources and destinations are the connectors' batch
//! traits, and progress, rejected records and cancellation go through a [`RunObserver`].
//!
//! Expressions are CEL (the standard library, with the strings and math extensions). A record's
//! fields are its variables, as these CEL values:
//!
//! | field type | CEL |
//! | --- | --- |
//! | boolean | `bool` |
//! | integer | `int` |
//! | float | `double` |
//! | decimal (any precision, `numeric` without one too) | `double`, for arithmetic and comparison (a decimal is only written back through a double when a rule targets it; copied fields keep their exact value) |
//! | string, other | `string` |
//! | json | the parsed value: `map`, `list`, `string`, `int`, `double`, `bool` or `null` |
//! | binary | `bytes` |
//! | date | `string`, `YYYY-MM-DD` |
//! | time | `string`, `HH:MM:SS` with the fraction of a second when there is one |
//! | timestamp, timestamp_tz | `google.protobuf.Timestamp` (a timestamp without a zone as UTC) |
//! | uuid | `string`, hyphenated lower case |
//!
//! A null is `null`. An expression that fails on a null field (`price >= 0.0`, `price * 1.1` with
//! `price` null) is false for a validation rule (the record is rejected with the rule's message;
//! `"on_null": "pass"` makes it pass, and `price == null || price >= 0.0` says so in the rule)
//! and for the filter (the record is skipped), and null for import and export rules and
//! transforms — as in SQL. Other evaluation failures reject the record as errors, apart from a
//! rule's verdict ([`RejectionKind`]).
//!
//! Expressions are type-checked when the pipeline is saved against the discovered fields, and
//! bounded in size, nesting and cost; evaluation is bounded per record and runs on blocking
//! threads (see the `expr` module). A rule's result is converted to its target's
//! type: numbers between each other (an integer only from a whole number, a decimal rounded to
//! its scale), text parsed (`"42"` to an integer, RFC 3339 to a timestamp), maps and lists to
//! JSON text; a result that does not convert rejects the record.
//!
//! A mapping's transform may instead redact the value (`{"redact": "scramble"}`, see
//! [`redact`]): the destination then gets text, and scrambling needs the organization's
//! [`Scrambler`], given to the plan ([`Plan::with_scrambler`]) or the run
//! ([`RunInput::scrambler`]).

mod convert;
mod expr;
pub mod plan;
pub mod records;
pub mod redact;
pub mod row_filter;
pub mod run;
pub mod spec;
mod transform;
mod typecheck;

pub use plan::{Applied, Issue, Plan, Rejected, RejectionKind};
pub use redact::{RedactError, RedactKind, Redaction, Scrambler, redact_array, redact_json};
pub use row_filter::RowFilter;
pub use run::{EngineError, Progress, RunInput, RunObserver, RunOutcome, execute};
pub use spec::{
    BomSettings, DEFAULT_MAX_REJECTED_PERCENT, Endpoint, Level, Mapping, Mode, OnNull,
    PipelineSpec, Rule, RuleKind, SpecError, Transform,
};
