//! Row filters of data policies: a CEL expression over one record's fields (and the member's own
//! attributes as `member`) that says whether the member may see the record.
//!
//! Compiled with the same limits as a pipeline's rules ([`crate::expr`]); evaluated with the
//! same per-record budget. A filter fails closed: anything but `true` — `false`, null, an error,
//! a limit reached — withholds the record.

use crate::convert::json_to_cel;
use crate::expr::{self, Compiled};
use cel::Context;
use cel::common::types::CelNull;
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use std::collections::BTreeSet;

/// The variable that holds the member's attributes (`member.email`, `member.id`, `member.role`,
/// `member.teams`).
pub const MEMBER_VARIABLE: &str = "member";

/// A compiled row filter.
#[derive(Debug)]
pub struct RowFilter {
    compiled: Compiled,
}

impl RowFilter {
    /// Compiles `source`; the error says why, with the position where it does not parse.
    pub fn compile(source: &str) -> Result<RowFilter, String> {
        Ok(RowFilter {
            compiled: expr::compile(source)?,
        })
    }

    /// The record fields the filter refers to (`member` and CEL's own names left out).
    pub fn fields(&self) -> BTreeSet<String> {
        self.compiled
            .variables
            .iter()
            .filter(|v| v.as_str() != MEMBER_VARIABLE && !expr::is_non_field_identifier(v))
            .cloned()
            .collect()
    }

    /// Whether the record passes: only a `true` result does.
    pub fn matches(
        &self,
        record: &serde_json::Map<String, serde_json::Value>,
        member: &serde_json::Value,
    ) -> bool {
        let resolver = JsonVariables { record, member };
        let mut context = Context::with_env(expr::env());
        context.set_variable_resolver(&resolver);
        matches!(
            self.compiled.execute(&context, None),
            Ok(cel::Value::Bool(true))
        )
    }
}

struct JsonVariables<'a> {
    record: &'a serde_json::Map<String, serde_json::Value>,
    member: &'a serde_json::Value,
}

impl VariableResolver for JsonVariables<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        // Only the record's own fields and `member`: CEL asks for qualified names first
        // (`member.email` as one variable) and must not get a null for them.
        let value = if variable == MEMBER_VARIABLE {
            self.member.clone()
        } else {
            self.record.get(variable)?.clone()
        };
        match Box::<dyn Val>::try_from(json_to_cel(value)) {
            Ok(boxed) => Some(CowVal::Owned(boxed)),
            Err(_) => Some(CowVal::owned(CelNull)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn a_filter_sees_the_record_and_the_member() {
        let member = json!({"email": "ana@example.com", "teams": ["t1"]});
        let f = RowFilter::compile("region == 'EU'").unwrap();
        assert!(f.matches(&record(json!({"region": "EU"})), &member));
        assert!(!f.matches(&record(json!({"region": "US"})), &member));
        let f = RowFilter::compile("owner_email == member.email").unwrap();
        assert!(f.matches(&record(json!({"owner_email": "ana@example.com"})), &member));
        assert!(!f.matches(&record(json!({"owner_email": "bo@example.com"})), &member));
        let f = RowFilter::compile("cost_center in ['4711', '4712']").unwrap();
        assert!(f.matches(&record(json!({"cost_center": "4712"})), &member));
        assert_eq!(
            f.fields().into_iter().collect::<Vec<_>>(),
            vec!["cost_center".to_owned()]
        );
    }

    #[test]
    fn anything_but_true_withholds_the_record() {
        let member = json!({});
        for source in ["amount > 10", "missing_field", "1 / zero == 1", "'x'"] {
            let f = RowFilter::compile(source).unwrap();
            assert!(
                !f.matches(&record(json!({"amount": null, "zero": 0})), &member),
                "{source}"
            );
        }
    }

    #[test]
    fn a_filter_that_does_not_compile_says_where() {
        let err = RowFilter::compile("region == ").unwrap_err();
        assert!(err.contains("line 1"), "{err}");
        assert!(RowFilter::compile("").is_err());
    }
}
