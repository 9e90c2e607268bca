//! Types of CEL expressions, checked when a pipeline is saved against the fields discovery found:
//! a validation rule or the filter must give a boolean, an import or export rule a value its
//! target can hold, and no operator may be applied to types it has no overload for
//! (`full_name > 5`, `credit_limit + 'x'`). What cannot be told before the run (JSON values,
//! comprehension variables, functions we do not model) is `dyn` and passes.

use cel::common::ast::{EntryExpr, Expr, IdedExpr, LiteralValue};
use lockstep_connectors::FieldType;
use std::collections::HashMap;

/// A CEL type, as far as it can be told before the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Type {
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Null,
    Timestamp,
    Duration,
    List,
    Map,
    /// Not known before the run.
    Dyn,
}

impl Type {
    /// The CEL type a field of `field_type` is bound as (see the crate's documentation).
    pub(crate) fn of_field(field_type: FieldType) -> Type {
        match field_type {
            FieldType::Boolean => Type::Bool,
            FieldType::Integer => Type::Int,
            FieldType::Float | FieldType::Decimal => Type::Double,
            FieldType::String
            | FieldType::Other
            | FieldType::Date
            | FieldType::Time
            | FieldType::Uuid => Type::String,
            FieldType::Binary => Type::Bytes,
            FieldType::Timestamp | FieldType::TimestampTz => Type::Timestamp,
            FieldType::Json => Type::Dyn,
        }
    }

    /// CEL's name, for messages.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Type::Bool => "a bool",
            Type::Int => "an int",
            Type::Uint => "a uint",
            Type::Double => "a double",
            Type::String => "a string",
            Type::Bytes => "bytes",
            Type::Null => "null",
            Type::Timestamp => "a timestamp",
            Type::Duration => "a duration",
            Type::List => "a list",
            Type::Map => "a map",
            Type::Dyn => "a value",
        }
    }

    fn is_number(self) -> bool {
        matches!(self, Type::Int | Type::Uint | Type::Double)
    }

    fn known(self) -> bool {
        !matches!(self, Type::Dyn)
    }

    /// Whether a result of this type can be stored in a field of `target` (the engine converts
    /// numbers between each other, parses text, and writes maps and lists as JSON text).
    pub(crate) fn stores_as(self, target: FieldType) -> bool {
        use Type as T;
        if matches!(self, T::Dyn | T::Null) {
            return true;
        }
        match target {
            FieldType::Boolean => matches!(self, T::Bool | T::String),
            FieldType::Integer | FieldType::Float | FieldType::Decimal => {
                self.is_number() || self == T::String
            }
            FieldType::String | FieldType::Other | FieldType::Json => true,
            FieldType::Binary => matches!(self, T::Bytes | T::String),
            FieldType::Date | FieldType::Time | FieldType::Uuid => self == T::String,
            FieldType::Timestamp | FieldType::TimestampTz => {
                matches!(self, T::Timestamp | T::String)
            }
        }
    }
}

/// The variables an expression sees, and their types.
pub(crate) type Scope = HashMap<String, Type>;

/// Why an expression does not type: the node that does not, and the words.
pub(crate) type TypeError = (u64, String);

/// The type of `expr` in `scope`, or why an operator does not apply (naming types, never
/// values), with the id of the offending node.
pub(crate) fn infer(expr: &IdedExpr, scope: &Scope) -> Result<Type, TypeError> {
    let mut locals: Vec<(String, Type)> = Vec::new();
    infer_in(expr, scope, &mut locals)
}

fn lookup(name: &str, scope: &Scope, locals: &[(String, Type)]) -> Type {
    locals
        .iter()
        .rev()
        .find(|(n, _)| n == name)
        .map(|(_, t)| *t)
        .or_else(|| scope.get(name).copied())
        .unwrap_or(Type::Dyn)
}

fn infer_in(
    expr: &IdedExpr,
    scope: &Scope,
    locals: &mut Vec<(String, Type)>,
) -> Result<Type, TypeError> {
    Ok(match &expr.expr {
        Expr::Unspecified => Type::Dyn,
        Expr::Literal(literal) => match literal {
            LiteralValue::Boolean(_) => Type::Bool,
            LiteralValue::Bytes(_) => Type::Bytes,
            LiteralValue::Double(_) => Type::Double,
            LiteralValue::Int(_) => Type::Int,
            LiteralValue::Null => Type::Null,
            LiteralValue::String(_) => Type::String,
            LiteralValue::UInt(_) => Type::Uint,
        },
        Expr::Ident(name) => lookup(name, scope, locals),
        Expr::Select(select) => {
            let operand = infer_in(&select.operand, scope, locals)?;
            if select.test {
                Type::Bool
            } else {
                if operand.known() && !matches!(operand, Type::Map | Type::Null) {
                    return Err((
                        expr.id,
                        format!(
                            "'.{}' selects a field, but the value is {}",
                            select.field,
                            operand.name()
                        ),
                    ));
                }
                Type::Dyn
            }
        }
        Expr::List(list) => {
            for e in &list.elements {
                infer_in(e, scope, locals)?;
            }
            Type::List
        }
        Expr::Map(map) => {
            for e in &map.entries {
                entry(&e.expr, scope, locals)?;
            }
            Type::Map
        }
        Expr::Struct(s) => {
            for e in &s.entries {
                entry(&e.expr, scope, locals)?;
            }
            Type::Dyn
        }
        Expr::Comprehension(c) => {
            infer_in(&c.iter_range, scope, locals)?;
            let accu = infer_in(&c.accu_init, scope, locals)?;
            let depth = locals.len();
            locals.push((c.iter_var.clone(), Type::Dyn));
            if let Some(second) = &c.iter_var2 {
                locals.push((second.clone(), Type::Dyn));
            }
            locals.push((c.accu_var.clone(), accu));
            let checked = (|| {
                infer_in(&c.loop_cond, scope, locals)?;
                infer_in(&c.loop_step, scope, locals)?;
                infer_in(&c.result, scope, locals)
            })();
            locals.truncate(depth);
            checked?
        }
        Expr::Call(call) => {
            let target = match &call.target {
                Some(t) => Some(infer_in(t, scope, locals)?),
                None => None,
            };
            let args = call
                .args
                .iter()
                .map(|a| infer_in(a, scope, locals))
                .collect::<Result<Vec<_>, _>>()?;
            call_type(&call.func_name, target, &args).map_err(|m| (expr.id, m))?
        }
    })
}

fn entry(e: &EntryExpr, scope: &Scope, locals: &mut Vec<(String, Type)>) -> Result<(), TypeError> {
    match e {
        EntryExpr::StructField(field) => infer_in(&field.value, scope, locals).map(|_| ()),
        EntryExpr::MapEntry(entry) => {
            infer_in(&entry.key, scope, locals)?;
            infer_in(&entry.value, scope, locals).map(|_| ())
        }
    }
}

/// The operator as people write it.
fn symbol(function: &str) -> &str {
    match function {
        "_+_" => "+",
        "_-_" => "-",
        "_*_" => "*",
        "_/_" => "/",
        "_%_" => "%",
        "_<_" => "<",
        "_<=_" => "<=",
        "_>_" => ">",
        "_>=_" => ">=",
        "_==_" => "==",
        "_!=_" => "!=",
        "_&&_" => "&&",
        "_||_" => "||",
        "!_" => "!",
        "-_" => "-",
        other => other,
    }
}

fn no_overload(function: &str, args: &[Type]) -> String {
    match args {
        [a, b] => format!(
            "'{}' does not apply to {} and {}",
            symbol(function),
            a.name(),
            b.name()
        ),
        [a] => format!("'{}' does not apply to {}", symbol(function), a.name()),
        _ => format!("'{}' does not apply to these values", symbol(function)),
    }
}

fn call_type(function: &str, target: Option<Type>, args: &[Type]) -> Result<Type, String> {
    use Type as T;
    let any_dyn = args.iter().any(|a| !a.known()) || target.is_some_and(|t| !t.known());
    let fail = || Err(no_overload(function, args));
    Ok(match (function, args) {
        ("_+_", [a, b]) => match (a, b) {
            _ if any_dyn => T::Dyn,
            (T::Null, _) | (_, T::Null) => return fail(),
            (T::Int, T::Int) => T::Int,
            (T::Uint, T::Uint) => T::Uint,
            (T::Double, T::Double) => T::Double,
            (T::String, T::String) => T::String,
            (T::Bytes, T::Bytes) => T::Bytes,
            (T::List, T::List) => T::List,
            (T::Timestamp, T::Duration) | (T::Duration, T::Timestamp) => T::Timestamp,
            (T::Duration, T::Duration) => T::Duration,
            _ => return fail(),
        },
        ("_-_", [a, b]) => match (a, b) {
            _ if any_dyn => T::Dyn,
            (T::Int, T::Int) => T::Int,
            (T::Uint, T::Uint) => T::Uint,
            (T::Double, T::Double) => T::Double,
            (T::Timestamp, T::Timestamp) => T::Duration,
            (T::Timestamp, T::Duration) => T::Timestamp,
            (T::Duration, T::Duration) => T::Duration,
            _ => return fail(),
        },
        ("_*_" | "_/_", [a, b]) => match (a, b) {
            _ if any_dyn => T::Dyn,
            (x, y) if x == y && x.is_number() => *x,
            _ => return fail(),
        },
        ("_%_", [a, b]) => match (a, b) {
            _ if any_dyn => T::Dyn,
            (T::Int, T::Int) => T::Int,
            (T::Uint, T::Uint) => T::Uint,
            _ => return fail(),
        },
        ("-_", [a]) => match a {
            _ if any_dyn => T::Dyn,
            T::Int | T::Double | T::Duration => *a,
            _ => return fail(),
        },
        ("!_", [a]) => match a {
            T::Bool | T::Dyn => T::Bool,
            _ => return fail(),
        },
        ("_<_" | "_<=_" | "_>_" | "_>=_", [a, b]) => {
            let comparable = any_dyn
                || (a.is_number() && b.is_number())
                || (a == b
                    && matches!(
                        a,
                        T::String | T::Bytes | T::Bool | T::Timestamp | T::Duration
                    ));
            if !comparable {
                return fail();
            }
            T::Bool
        }
        ("_==_" | "_!=_", [a, b]) => {
            let scalar = |t: &T| !matches!(t, T::Dyn | T::Null | T::List | T::Map);
            if scalar(a) && scalar(b) && a != b && !(a.is_number() && b.is_number()) {
                return Err(format!(
                    "'{}' compares {} with {}: they are never equal",
                    symbol(function),
                    a.name(),
                    b.name()
                ));
            }
            T::Bool
        }
        ("_&&_" | "_||_", [a, b]) => {
            for t in [a, b] {
                if !matches!(t, T::Bool | T::Dyn) {
                    return Err(format!(
                        "'{}' needs booleans on both sides, not {}",
                        symbol(function),
                        t.name()
                    ));
                }
            }
            T::Bool
        }
        ("_?_:_", [c, a, b]) => {
            if !matches!(c, T::Bool | T::Dyn) {
                return Err(format!(
                    "the condition before '?' must be a boolean, not {}",
                    c.name()
                ));
            }
            match (a, b) {
                (x, y) if x == y => *x,
                (T::Null, y) => *y,
                (x, T::Null) => *x,
                (x, y) if x.is_number() && y.is_number() => T::Dyn,
                _ => T::Dyn,
            }
        }
        ("@in" | "@not_strictly_false", _) => T::Bool,
        ("_[_]", _) => T::Dyn,
        ("size", _) => T::Int,
        ("int", _) => T::Int,
        ("uint", _) => T::Uint,
        ("double", _) => T::Double,
        ("string", _) => T::String,
        ("bytes", _) => T::Bytes,
        ("bool", _) => T::Bool,
        ("timestamp", _) => T::Timestamp,
        ("duration", _) => T::Duration,
        ("contains" | "startsWith" | "endsWith" | "matches", _) => {
            if let Some(t) = target
                && t.known()
                && t != T::String
            {
                return Err(format!(
                    "'{function}' applies to a string, not {}",
                    t.name()
                ));
            }
            T::Bool
        }
        (
            "lowerAscii" | "upperAscii" | "trim" | "replace" | "substring" | "charAt" | "format"
            | "reverse" | "join" | "strings.quote",
            _,
        ) => T::String,
        ("split", _) => T::List,
        ("indexOf" | "lastIndexOf", _) => T::Int,
        (
            "getFullYear" | "getMonth" | "getDayOfYear" | "getDayOfMonth" | "getDate"
            | "getDayOfWeek" | "getHours" | "getMinutes" | "getSeconds" | "getMilliseconds",
            _,
        ) => T::Int,
        _ => T::Dyn,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]
mod tests {
    use super::*;

    fn scope() -> Scope {
        [
            ("full_name", Type::String),
            ("credit_limit", Type::Double),
            ("qty", Type::Int),
            ("active", Type::Bool),
            ("payload", Type::Dyn),
            ("created", Type::Timestamp),
        ]
        .into_iter()
        .map(|(n, t)| (n.to_owned(), t))
        .collect()
    }

    fn type_of(source: &str) -> Result<Type, String> {
        let parsed = cel::Env::stdlib().parser().parse(source).unwrap();
        infer(&parsed, &scope()).map_err(|(_, m)| m)
    }

    #[test]
    fn results_have_the_types_people_expect() {
        for (source, expected) in [
            ("credit_limit + 1.0", Type::Double),
            ("credit_limit >= 0.0", Type::Bool),
            ("qty > 0 && active", Type::Bool),
            ("qty > 2.5", Type::Bool),
            ("full_name.size() > 3 || full_name == null", Type::Bool),
            ("full_name.upperAscii()", Type::String),
            ("payload.amount > 5", Type::Bool),
            ("payload.items.all(i, i.price > 0)", Type::Bool),
            ("[1, 2].map(x, x * 2)", Type::List),
            ("active ? qty : null", Type::Int),
            ("created + duration('1h')", Type::Timestamp),
            ("has(payload.x)", Type::Bool),
        ] {
            assert_eq!(type_of(source), Ok(expected), "{source}");
        }
    }

    #[test]
    fn operators_without_an_overload_are_named() {
        for (source, reason) in [
            ("full_name > 5", "'>' does not apply to a string and an int"),
            (
                "credit_limit + 'x'",
                "'+' does not apply to a double and a string",
            ),
            ("qty + 1.0", "'+' does not apply to an int and a double"),
            ("!qty", "'!' does not apply to an int"),
            (
                "qty && active",
                "'&&' needs booleans on both sides, not an int",
            ),
            (
                "full_name == 5",
                "'==' compares a string with an int: they are never equal",
            ),
            (
                "qty.x == 1",
                "'.x' selects a field, but the value is an int",
            ),
            (
                "[1].all(x, x > 0) && qty.contains('a')",
                "'contains' applies to a string, not an int",
            ),
        ] {
            assert_eq!(type_of(source), Err(reason.to_owned()), "{source}");
        }
    }
}
