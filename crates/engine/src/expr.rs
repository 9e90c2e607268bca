//! CEL expressions: the one environment they compile and run in, the fields they refer to, and
//! error messages that never carry a record's values.

use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::{Env, ExecutionError, ParseErrors, Program, Value};
use std::collections::BTreeSet;
use std::sync::{Arc, LazyLock};

/// The standard library with the strings and math extensions (`'a'.upperAscii()`,
/// `math.greatest(a, b)`), shared by every plan.
static ENV: LazyLock<Arc<Env>> = LazyLock::new(|| {
    let mut env = Env::stdlib();
    // The extensions only fail when an overload is declared twice, which a fresh standard
    // environment cannot do; should it happen, expressions still get the standard library.
    if env.add_extension(cel::extensions::strings).is_err() {
        tracing::warn!("the CEL strings extension could not be added");
    }
    if env.add_extension(cel::extensions::math).is_err() {
        tracing::warn!("the CEL math extension could not be added");
    }
    Arc::new(env)
});

/// The environment every expression compiles and runs in.
pub(crate) fn env() -> Arc<Env> {
    Arc::clone(&ENV)
}

/// Identifiers CEL resolves to something other than a variable when no field of that name is
/// bound: type names and function namespaces.
const NON_FIELD_IDENTIFIERS: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "google",
    "int",
    "list",
    "map",
    "math",
    "null_type",
    "optional",
    "string",
    "strings",
    "type",
    "uint",
];

/// Whether `name` may be a type or namespace rather than a field.
pub(crate) fn is_non_field_identifier(name: &str) -> bool {
    NON_FIELD_IDENTIFIERS.contains(&name)
}

/// A compiled expression and the variables it refers to.
#[derive(Debug)]
pub(crate) struct Compiled {
    pub(crate) program: Program,
    /// The source text (for error messages that name a key of the expression).
    pub(crate) source: String,
    /// Identifiers used as variables, outside the comprehension variables they bind.
    pub(crate) variables: BTreeSet<String>,
}

/// Compiles `source`; the error says where it does not parse.
pub(crate) fn compile(source: &str) -> Result<Compiled, String> {
    if source.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    let program = ENV.compile(source).map_err(|e| describe_parse_errors(&e))?;
    let variables = free_variables(program.expression());
    Ok(Compiled {
        program,
        source: source.to_owned(),
        variables,
    })
}

/// "does not parse at line 1, column 9: mismatched input …" from the first error.
fn describe_parse_errors(errors: &ParseErrors) -> String {
    let Some(first) = errors.errors.first() else {
        return "does not parse".to_owned();
    };
    let message = first
        .msg
        .strip_prefix("Syntax error: ")
        .unwrap_or(&first.msg)
        .trim();
    let (line, column) = first.pos;
    if line >= 1 && column >= 1 {
        format!("does not parse at line {line}, column {column}: {message}")
    } else {
        format!("does not parse: {message}")
    }
}

/// The identifiers of `expr` that are not bound by a comprehension inside it.
pub(crate) fn free_variables(expr: &IdedExpr) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut bound = Vec::new();
    walk(expr, &mut bound, &mut found);
    found
}

fn walk(expr: &IdedExpr, bound: &mut Vec<String>, found: &mut BTreeSet<String>) {
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) => {}
        Expr::Ident(name) => {
            if !name.starts_with('@') && !bound.iter().any(|b| b == name) {
                found.insert(name.trim_start_matches('.').to_owned());
            }
        }
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                walk(target, bound, found);
            }
            for arg in &call.args {
                walk(arg, bound, found);
            }
        }
        Expr::Select(select) => walk(&select.operand, bound, found),
        Expr::List(list) => {
            for element in &list.elements {
                walk(element, bound, found);
            }
        }
        Expr::Map(map) => {
            for entry in &map.entries {
                walk_entry(&entry.expr, bound, found);
            }
        }
        Expr::Struct(s) => {
            for entry in &s.entries {
                walk_entry(&entry.expr, bound, found);
            }
        }
        Expr::Comprehension(comp) => {
            walk(&comp.iter_range, bound, found);
            walk(&comp.accu_init, bound, found);
            let depth = bound.len();
            bound.push(comp.iter_var.clone());
            if let Some(second) = &comp.iter_var2 {
                bound.push(second.clone());
            }
            bound.push(comp.accu_var.clone());
            walk(&comp.loop_cond, bound, found);
            walk(&comp.loop_step, bound, found);
            walk(&comp.result, bound, found);
            bound.truncate(depth);
        }
    }
}

fn walk_entry(entry: &EntryExpr, bound: &mut Vec<String>, found: &mut BTreeSet<String>) {
    match entry {
        EntryExpr::StructField(field) => walk(&field.value, bound, found),
        EntryExpr::MapEntry(entry) => {
            walk(&entry.key, bound, found);
            walk(&entry.value, bound, found);
        }
    }
}

/// Why an evaluation failed, in words that name types, functions and the expression's own
/// identifiers but never a value of the record.
pub(crate) fn describe_execution_error(error: &ExecutionError, source: &str) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => {
            if is_identifier(key) && source.contains(key.as_str()) {
                format!("no such key '{key}'")
            } else {
                "no such key".to_owned()
            }
        }
        ExecutionError::UndeclaredReference(name) => {
            format!("undeclared reference to '{name}'")
        }
        ExecutionError::NoSuchOverload(overload) => overload.to_string(),
        ExecutionError::UnexpectedType { got, want } => {
            format!("unexpected type: got '{got}', want '{want}'")
        }
        ExecutionError::InvalidArgumentCount { expected, actual } => {
            format!("expected {expected} arguments, got {actual}")
        }
        ExecutionError::NotSupportedAsMethod { method, .. } => {
            format!("'{method}' is not a method of this type")
        }
        ExecutionError::UnsupportedKeyType(value) => {
            format!("a {} cannot be a map key", value.type_of())
        }
        ExecutionError::MissingArgumentOrTarget => "missing argument or target".to_owned(),
        ExecutionError::ValuesNotComparable(a, b) => {
            format!("a {} cannot be compared to a {}", a.type_of(), b.type_of())
        }
        ExecutionError::UnsupportedBinaryOperator(op, a, b) => {
            format!(
                "operator '{op}' does not apply to {} and {}",
                a.type_of(),
                b.type_of()
            )
        }
        ExecutionError::UnsupportedIndex(index, target) => {
            format!(
                "cannot index a {} with a {}",
                target.type_of(),
                index.type_of()
            )
        }
        ExecutionError::FunctionError { function, .. } => format!("function '{function}' failed"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "remainder by zero".to_owned(),
        ExecutionError::Overflow(op, _, _) => format!("overflow in '{op}'"),
        ExecutionError::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
        ExecutionError::DuplicateKey(_) => "repeated map key".to_owned(),
        ExecutionError::UnsupportedTargetType { .. } => "unsupported value type".to_owned(),
        _ => "the expression cannot be evaluated".to_owned(),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// CEL's name for the type of a result (for messages).
pub(crate) fn type_name(value: &Value) -> String {
    value.type_of().to_string()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn vars(source: &str) -> Vec<String> {
        compile(source).unwrap().variables.into_iter().collect()
    }

    #[test]
    fn free_variables_leave_out_comprehension_variables() {
        assert_eq!(
            vars("[1, 2].map(x, x + y) == z && payload.amount > 0"),
            ["payload", "y", "z"]
        );
        assert_eq!(vars("items.all(i, i.price >= 0.0)"), ["items"]);
        assert_eq!(vars("type(a) == int"), ["a", "int"]);
    }

    #[test]
    fn parse_errors_name_line_and_column() {
        let e = compile("price >=").unwrap_err();
        assert!(e.starts_with("does not parse at line 1, column 9: "), "{e}");
        let e = compile("a &&\n  )").unwrap_err();
        assert!(e.starts_with("does not parse at line 2, column 3: "), "{e}");
    }

    #[test]
    fn the_extensions_are_available() {
        let env = env();
        let p = env
            .compile("'AbC'.lowerAscii() == 'abc' && math.greatest(1, 2) == 2")
            .unwrap();
        let ctx = cel::Context::with_env(env);
        assert_eq!(p.execute(&ctx), Ok(Value::Bool(true)));
    }
}
