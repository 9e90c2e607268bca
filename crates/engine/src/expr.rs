//! CEL expressions: the one environment they compile and run in, the limits that keep a
//! hostile expression from taking the hub down, the fields they refer to, and error messages that
//! never carry a record's values.
//!
//! Every expression is bounded twice:
//!
//! - **When it is saved** ([`compile`]): at most [`MAX_SOURCE_BYTES`] of text, at most
//!   [`MAX_OPERATORS`] operators (counted on the text, before the parser runs: the parser and the
//!   interpreter both recurse once per operator of a chain), at most [`MAX_DEPTH`] levels of
//!   nesting, and an estimated cost per record of at most [`MAX_COST`] (a comprehension over a
//!   literal list costs its length times its body; over anything else [`ASSUMED_ELEMENTS`] times).
//! - **When it runs** ([`Compiled::execute`]): every iteration of every comprehension (`all`,
//!   `exists`, `map`, `filter`, …) takes a step from a budget of [`MAX_STEPS`] per record, checks
//!   the per-record deadline ([`MAX_RECORD_TIME`]) and the run's interrupt flag; `replace` refuses
//!   to build a string over [`MAX_STRING_BYTES`]. An exhausted budget is an [`EvalError::Limit`],
//!   which fails the run (it is not a verdict on the record).
//!
//! The checks are injected into the parsed expression (calls to `@step` and `@replace`, names no
//! CEL source can write), so the interpreter itself stops, between any two iterations.

use cel::common::ast::{CallExpr, EntryExpr, Expr, IdedExpr, ListExpr, SourceInfo};
use cel::common::types::{CelInt, CelString, DYN_TYPE};
use cel::common::value::CowVal;
use cel::{Context, Env, ExecutionError, ParseErrors, Value};
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// The longest expression, in bytes.
pub const MAX_SOURCE_BYTES: usize = 4096;
/// The most operators (`+ - * / % ! < > = & | ? .` and opening brackets) an expression may hold.
pub const MAX_OPERATORS: usize = 256;
/// The deepest nesting of an expression's syntax tree.
pub const MAX_DEPTH: usize = 64;
/// The highest estimated cost of evaluating an expression on one record.
pub const MAX_COST: u64 = 100_000;
/// How many elements a comprehension is assumed to iterate over when its range is not a literal.
pub const ASSUMED_ELEMENTS: u64 = 100;
/// Comprehension iterations allowed per record and expression.
pub const MAX_STEPS: u64 = 1_000_000;
/// The longest one expression may run on one record.
pub const MAX_RECORD_TIME: Duration = Duration::from_secs(1);
/// The longest string `replace` may build.
pub const MAX_STRING_BYTES: usize = 1 << 20;

/// The name of the injected step check.
const STEP: &str = "@step";
/// The name of the injected, size-checked `replace`.
const REPLACE: &str = "@replace";

/// The standard library with the strings and math extensions (`'a'.upperAscii()`,
/// `math.greatest(a, b)`), and the injected checks, shared by every plan.
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
    let checks = [
        env.add_overload(STEP, "lockstep_step", vec![DYN_TYPE], step),
        cel::add_overload!(env, fn guarded_replace: (CelString, CelString, CelString) -> Result<CelString>, name = REPLACE),
        cel::add_overload!(env, fn guarded_replace_n: (CelString, CelString, CelString, CelInt) -> Result<CelString>, name = REPLACE),
    ];
    if checks.iter().any(Result::is_err) {
        // Without them an expression with a comprehension fails to evaluate (no overload),
        // which fails its run: closed, not open.
        tracing::error!("the CEL evaluation limits could not be registered");
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
    /// The syntax tree, with the limits injected.
    expression: IdedExpr,
    /// The source text (for error messages that name a key of the expression).
    pub(crate) source: String,
    /// Identifiers used as variables, outside the comprehension variables they bind.
    pub(crate) variables: BTreeSet<String>,
    /// The syntax tree as written (for type checks).
    pub(crate) written: IdedExpr,
    /// Where each node of `written` is in the source.
    source_info: SourceInfo,
    /// Whether evaluation needs the budget (it has a comprehension or a `replace`).
    loops: bool,
}

/// Why an evaluation did not give a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum EvalError {
    /// The expression fails on this record (a missing key, no overload for these values, …).
    Failed(ExecutionError),
    /// A limit stopped it: the step budget, the per-record deadline, the size of a string, or
    /// the run's interruption. The words say which.
    Limit(&'static str),
}

impl Compiled {
    /// Evaluates the expression in `context`, within the per-record limits; `interrupt` (when
    /// set) stops it between two iterations.
    pub(crate) fn execute(
        &self,
        context: &Context<'_, '_>,
        interrupt: Option<&Arc<AtomicBool>>,
    ) -> Result<Value, EvalError> {
        if !self.loops {
            return Value::resolve(&self.expression, context).map_err(EvalError::Failed);
        }
        BUDGET.with(|b| b.start(interrupt));
        let result = Value::resolve(&self.expression, context);
        let exceeded = BUDGET.with(Budget::finish);
        match (exceeded, result) {
            (Some(limit), _) => Err(EvalError::Limit(limit)),
            (None, result) => result.map_err(EvalError::Failed),
        }
    }

    /// "at line 1, column 14: " for the node `id` of `written`, or nothing when unknown.
    pub(crate) fn position(&self, id: u64) -> String {
        let Some((start, _)) = self.source_info.offset_for(id) else {
            return String::new();
        };
        let start = usize::try_from(start).unwrap_or(usize::MAX);
        let Some(before) = self.source.get(..start) else {
            return String::new();
        };
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("at line {line}, column {column}: ")
    }

    /// Whether the expression has a comprehension or a `replace` (and so needs the budget).
    pub(crate) fn has_loops(&self) -> bool {
        self.loops
    }
}

/// The per-record budget of the evaluation running on this thread.
struct Budget {
    steps_left: Cell<u64>,
    deadline: Cell<Option<Instant>>,
    interrupt: RefCell<Option<Arc<AtomicBool>>>,
    exceeded: Cell<Option<&'static str>>,
}

thread_local! {
    static BUDGET: Budget = const {
        Budget {
            steps_left: Cell::new(0),
            deadline: Cell::new(None),
            interrupt: RefCell::new(None),
            exceeded: Cell::new(None),
        }
    };
}

/// How often (in steps) the clock and the interrupt flag are read.
const CHECK_EVERY: u64 = 256;

impl Budget {
    fn start(&self, interrupt: Option<&Arc<AtomicBool>>) {
        self.steps_left.set(MAX_STEPS);
        self.deadline
            .set(Instant::now().checked_add(MAX_RECORD_TIME));
        self.exceeded.set(None);
        *self.interrupt.borrow_mut() = interrupt.cloned();
    }

    fn finish(&self) -> Option<&'static str> {
        // A step taken outside `start`..`finish` fails: closed, not open.
        self.steps_left.set(0);
        self.deadline.set(None);
        *self.interrupt.borrow_mut() = None;
        self.exceeded.take()
    }

    fn take_step(&self) -> Result<(), &'static str> {
        if let Some(limit) = self.exceeded.get() {
            return Err(limit);
        }
        let left = self.steps_left.get();
        let problem = if left == 0 {
            Some("it took more than 1,000,000 steps on one record")
        } else if left.is_multiple_of(CHECK_EVERY) {
            if self
                .interrupt
                .borrow()
                .as_ref()
                .is_some_and(|i| i.load(Ordering::Relaxed))
            {
                Some("the run was stopped")
            } else if self
                .deadline
                .get()
                .is_none_or(|deadline| Instant::now() > deadline)
            {
                Some("it ran longer than 1 second on one record")
            } else {
                None
            }
        } else {
            None
        };
        if let Some(limit) = problem {
            self.exceeded.set(Some(limit));
            return Err(limit);
        }
        self.steps_left.set(left - 1);
        Ok(())
    }
}

/// `@step(x)`: takes a step from this thread's budget and answers `x`.
fn step<'b, 'v>(mut args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    BUDGET
        .with(Budget::take_step)
        .map_err(|limit| ExecutionError::function_error(STEP, limit))?;
    args.pop()
        .ok_or_else(|| ExecutionError::invalid_argument_count(1, 0))
}

/// `s.replace(from, to)`, refusing to build a string over [`MAX_STRING_BYTES`].
fn guarded_replace(
    this: &CelString<'_>,
    from: &CelString<'_>,
    to: &CelString<'_>,
) -> Result<CelString<'static>, ExecutionError> {
    replace_at_most(this.inner(), from.inner(), to.inner(), usize::MAX)
}

/// `s.replace(from, to, n)`: the first `n` occurrences, all of them when `n` is negative.
fn guarded_replace_n(
    this: &CelString<'_>,
    from: &CelString<'_>,
    to: &CelString<'_>,
    n: &CelInt,
) -> Result<CelString<'static>, ExecutionError> {
    let n = usize::try_from(*n.inner()).unwrap_or(usize::MAX);
    replace_at_most(this.inner(), from.inner(), to.inner(), n)
}

fn replace_at_most(
    this: &str,
    from: &str,
    to: &str,
    n: usize,
) -> Result<CelString<'static>, ExecutionError> {
    // An empty `from` matches before every character and at the end.
    let occurrences = if from.is_empty() {
        this.chars().count().saturating_add(1)
    } else {
        this.matches(from).count()
    }
    .min(n);
    let size = this
        .len()
        .saturating_add(occurrences.saturating_mul(to.len()))
        .saturating_sub(occurrences.saturating_mul(from.len()));
    if size > MAX_STRING_BYTES {
        let limit = "the result of 'replace' would be longer than 1 MiB";
        BUDGET.with(|b| b.exceeded.set(Some(limit)));
        return Err(ExecutionError::function_error("replace", limit));
    }
    Ok(this.replacen(from, to, n).into())
}

/// Checks `source` against the limits, parses it, and injects the run-time checks.
/// Compiles `source`; the error says where it does not parse.
pub(crate) fn compile(source: &str) -> Result<Compiled, String> {
    if source.trim().is_empty() {
        return Err("must not be empty".to_owned());
    }
    if source.len() > MAX_SOURCE_BYTES {
        return Err(format!(
            "is too long: {} bytes, at most {MAX_SOURCE_BYTES}",
            source.len()
        ));
    }
    let operators = count_operators(source);
    if operators > MAX_OPERATORS {
        return Err(format!(
            "is too complex: {operators} operators, at most {MAX_OPERATORS}"
        ));
    }
    let (written, source_info) = ENV
        .parser()
        .parse_with_source_info(source)
        .map_err(|e| describe_parse_errors(&e))?;
    let depth = depth(&written);
    if depth > MAX_DEPTH {
        return Err(format!(
            "is nested too deeply: {depth} levels, at most {MAX_DEPTH}"
        ));
    }
    let cost = cost(&written);
    if cost > MAX_COST {
        return Err(format!(
            "may cost too much to evaluate: about {cost} steps per record, at most {MAX_COST} \
             (each nested 'all', 'exists', 'map' or 'filter' multiplies the cost by the size of \
             its list, assumed {ASSUMED_ELEMENTS} when it is not written out)"
        ));
    }
    let variables = free_variables(&written);
    let mut expression = written.clone();
    let loops = inject_checks(&mut expression);
    Ok(Compiled {
        expression,
        source: source.to_owned(),
        variables,
        written,
        source_info,
        loops,
    })
}

/// An upper bound of the nesting the parser meets: the operators and opening brackets outside
/// string literals (each binary operator of a chain, each `.` of a method chain, each bracket
/// adds at most one level).
fn count_operators(source: &str) -> usize {
    let bytes = source.as_bytes();
    let mut count = 0usize;
    let mut i = 0usize;
    while let Some(&c) = bytes.get(i) {
        match c {
            b'\'' | b'"' => {
                let raw = i > 0
                    && matches!(bytes.get(i - 1), Some(b'r' | b'R'))
                    && !bytes
                        .get(i.wrapping_sub(2))
                        .is_some_and(|p| p.is_ascii_alphanumeric() || *p == b'_');
                let triple = bytes.get(i + 1) == Some(&c) && bytes.get(i + 2) == Some(&c);
                i = skip_string(bytes, i, c, triple, raw);
                continue;
            }
            b'+' | b'-' | b'*' | b'/' | b'%' | b'!' | b'<' | b'>' | b'=' | b'&' | b'|' | b'?'
            | b'.' | b'(' | b'[' | b'{' => count += 1,
            _ => {}
        }
        i += 1;
    }
    count
}

/// The index after the string literal opening at `start`.
fn skip_string(bytes: &[u8], start: usize, quote: u8, triple: bool, raw: bool) -> usize {
    let mut i = start + if triple { 3 } else { 1 };
    while let Some(&c) = bytes.get(i) {
        if c == b'\\' && !raw {
            i += 2;
            continue;
        }
        if c == quote {
            if !triple {
                return i + 1;
            }
            if bytes.get(i + 1) == Some(&quote) && bytes.get(i + 2) == Some(&quote) {
                return i + 3;
            }
        }
        if c == b'\n' && !triple {
            return i + 1;
        }
        i += 1;
    }
    i
}

/// The children of a node, in evaluation order.
fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => Vec::new(),
        Expr::Call(call) => call
            .target
            .as_deref()
            .into_iter()
            .chain(call.args.iter())
            .collect(),
        Expr::Select(select) => vec![&*select.operand],
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => map.entries.iter().flat_map(|e| entry(&e.expr)).collect(),
        Expr::Struct(s) => s.entries.iter().flat_map(|e| entry(&e.expr)).collect(),
        Expr::Comprehension(c) => vec![
            &c.iter_range,
            &c.accu_init,
            &c.loop_cond,
            &c.loop_step,
            &c.result,
        ],
    }
}

fn entry(entry: &EntryExpr) -> Vec<&IdedExpr> {
    match entry {
        EntryExpr::StructField(field) => vec![&field.value],
        EntryExpr::MapEntry(entry) => vec![&entry.key, &entry.value],
    }
}

/// The depth of the syntax tree (a leaf is 1).
fn depth(expr: &IdedExpr) -> usize {
    1 + children(expr).into_iter().map(depth).max().unwrap_or(0)
}

/// The estimated steps of one evaluation: one per node, and for a comprehension the size of its
/// range times its condition and step.
fn cost(expr: &IdedExpr) -> u64 {
    match &expr.expr {
        Expr::Comprehension(c) => {
            let elements = match &c.iter_range.expr {
                Expr::List(list) => u64::try_from(list.elements.len()).unwrap_or(u64::MAX),
                Expr::Map(map) => u64::try_from(map.entries.len()).unwrap_or(u64::MAX),
                _ => ASSUMED_ELEMENTS,
            };
            let body = cost(&c.loop_cond).saturating_add(cost(&c.loop_step));
            cost(&c.iter_range)
                .saturating_add(cost(&c.accu_init))
                .saturating_add(elements.saturating_mul(body.saturating_add(1)))
                .saturating_add(cost(&c.result))
        }
        _ => children(expr)
            .into_iter()
            .map(cost)
            .fold(1u64, u64::saturating_add),
    }
}

/// Rewrites `expr` so that every comprehension iteration calls `@step` and every `replace` is
/// the size-checked `@replace`. Answers whether there was either (then evaluation needs the
/// budget).
fn inject_checks(expr: &mut IdedExpr) -> bool {
    let mut loops = false;
    match &mut expr.expr {
        Expr::Comprehension(c) => {
            loops = true;
            for child in [
                &mut c.iter_range,
                &mut c.accu_init,
                &mut c.loop_cond,
                &mut c.loop_step,
                &mut c.result,
            ] {
                inject_checks(child);
            }
            let accu = c.accu_var.clone();
            let is_accu = |e: &IdedExpr| matches!(&e.expr, Expr::Ident(n) if *n == accu);
            let appends = |e: &IdedExpr| {
                matches!(&e.expr, Expr::Call(call)
                    if call.func_name == "_+_" && call.target.is_none()
                        && matches!(call.args.as_slice(),
                            [l, r] if is_accu(l) && matches!(r.expr, Expr::List(_))))
            };
            // `map` and `filter` keep the shape the interpreter builds in place (a literal
            // condition, `@result + [x]` or `g ? @result + [x] : @result`): the check goes
            // around the guard or the appended element.
            let fast = is_accu(&c.result) && matches!(c.loop_cond.expr, Expr::Literal(_));
            let guarded = fast
                && matches!(&c.loop_step.expr, Expr::Call(call)
                    if call.func_name == "_?_:_" && call.target.is_none()
                        && matches!(call.args.as_slice(), [_, s, o] if appends(s) && is_accu(o)));
            if guarded {
                if let Expr::Call(call) = &mut c.loop_step.expr
                    && let Some(guard) = call.args.first_mut()
                {
                    wrap_in_step(guard);
                }
            } else if fast && appends(&c.loop_step) {
                if let Expr::Call(call) = &mut c.loop_step.expr
                    && let Some(IdedExpr {
                        expr: Expr::List(ListExpr { elements, .. }),
                        ..
                    }) = call.args.get_mut(1)
                    && let Some(element) = elements.first_mut()
                {
                    wrap_in_step(element);
                }
            } else {
                wrap_in_step(&mut c.loop_cond);
            }
        }
        Expr::Call(call) => {
            if let Some(target) = call.target.as_deref_mut() {
                loops |= inject_checks(target);
            }
            for arg in &mut call.args {
                loops |= inject_checks(arg);
            }
            if call.func_name == "replace"
                && let Some(target) = call.target.take()
            {
                call.func_name = REPLACE.to_owned();
                call.args.insert(0, *target);
                loops = true;
            }
        }
        Expr::Select(select) => loops |= inject_checks(&mut select.operand),
        Expr::List(list) => {
            for element in &mut list.elements {
                loops |= inject_checks(element);
            }
        }
        Expr::Map(map) => {
            for e in &mut map.entries {
                loops |= inject_entry(&mut e.expr);
            }
        }
        Expr::Struct(s) => {
            for e in &mut s.entries {
                loops |= inject_entry(&mut e.expr);
            }
        }
        Expr::Unspecified | Expr::Literal(_) | Expr::Ident(_) => {}
    }
    loops
}

fn inject_entry(entry: &mut EntryExpr) -> bool {
    match entry {
        EntryExpr::StructField(field) => inject_checks(&mut field.value),
        EntryExpr::MapEntry(entry) => {
            let key = inject_checks(&mut entry.key);
            inject_checks(&mut entry.value) || key
        }
    }
}

/// `expr` becomes `@step(expr)` (the same id, so positions still point at the source).
fn wrap_in_step(expr: &mut IdedExpr) {
    let inner = std::mem::take(expr);
    expr.id = inner.id;
    expr.expr = Expr::Call(CallExpr {
        func_name: STEP.to_owned(),
        target: None,
        args: vec![inner],
    });
}

/// "does not parse at line 1, column 9: the expression ends too early" from the first error,
/// in words rather than the parser's list of tokens.
fn describe_parse_errors(errors: &ParseErrors) -> String {
    let Some(first) = errors.errors.first() else {
        return "does not parse".to_owned();
    };
    let message = first
        .msg
        .strip_prefix("Syntax error: ")
        .unwrap_or(&first.msg)
        .trim();
    let message = readable_parse_message(message);
    let (line, column) = first.pos;
    if line >= 1 && column >= 1 {
        format!("does not parse at line {line}, column {column}: {message}")
    } else {
        format!("does not parse: {message}")
    }
}

/// The parser's "mismatched input 'x' expecting {…}" as a sentence.
fn readable_parse_message(message: &str) -> String {
    let token = |rest: &str| -> Option<String> {
        let rest = rest.strip_prefix('\'')?;
        let end = rest.find("' ").or_else(|| rest.rfind('\''))?;
        rest.get(..end).map(str::to_owned)
    };
    for prefix in [
        "mismatched input ",
        "extraneous input ",
        "no viable alternative at input ",
    ] {
        if let Some(rest) = message.strip_prefix(prefix) {
            return match token(rest) {
                Some(t) if t == "<EOF>" || t.ends_with("<EOF>") => {
                    "the expression ends too early (an operand or a closing bracket is missing)"
                        .to_owned()
                }
                Some(t) => format!("'{t}' is not expected here"),
                None => "a part of the expression is not expected here".to_owned(),
            };
        }
    }
    if let Some(rest) = message.strip_prefix("token recognition error at: ") {
        return format!("{} is not a valid character here", rest.trim());
    }
    message.to_owned()
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
        ExecutionError::NoSuchOverload(overload) => overload
            .to_string()
            .replace(REPLACE, "replace")
            .replace(STEP, "a comprehension step"),
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

/// `source` on one line and at most 60 characters, for messages that name a rule without a
/// message by its expression.
pub(crate) fn abbreviate(source: &str) -> String {
    let one_line = source.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= 60 {
        return one_line;
    }
    let mut short: String = one_line.chars().take(59).collect();
    short.push('…');
    short
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

    /// Runs `f` on a thread with the 2 MiB stack of the hub's runtime threads, so a test that
    /// overflows it aborts instead of passing on a larger test-thread stack.
    fn on_small_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
        std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(f)
            .unwrap()
            .join()
            .unwrap()
    }

    fn chain(term: &str, op: &str, n: usize) -> String {
        vec![term; n].join(op)
    }

    /// The hostile expressions of the security test, and their kin: each is refused with a
    /// reason, and none overflows the stack.
    fn hostile() -> Vec<String> {
        let list: String = (0..100)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let l = format!("[{list}]");
        vec![
            format!("{} > 0", chain("1", "+", 6000)),
            format!("{} > 0", chain("1", "+", 4000)),
            format!("{} > 0", chain("1", "-", 8000)),
            format!("{} > 0", chain("2", "*", 8000)),
            format!("{} != ''", chain("'a'", "+", 8000)),
            format!("'a'{} == 'a'", ".lowerAscii()".repeat(8000)),
            format!("a{} == 1", ".b".repeat(8000)),
            chain("1 < 2", " && ", 8000),
            chain("a == 1", " || ", 300),
            format!("{}1{}", "(".repeat(5000), ")".repeat(5000)),
            format!("{}1{}", "[".repeat(5000), "]".repeat(5000)),
            format!("{}true", "!".repeat(8000)),
            format!("{}1 > 0", "-".repeat(8000)),
            format!("{}x{}", "{'a': ".repeat(3000), "}".repeat(3000)),
            format!("{l}.all(a, {l}.all(b, {l}.all(c, {l}.all(d, a + b + c + d >= 0))))"),
            format!("{l}.map(a, {l}.map(b, {l}.map(c, [a, b, c]))).size() > 0"),
            format!("x.split('').all(a, x.split('').all(b, x.split('').all(c, a == b)))"),
            "x".repeat(MAX_SOURCE_BYTES + 1),
            // just under the operator count: the parser sees them, the depth check refuses
            format!("{} > 0", chain("1", "+", MAX_OPERATORS - 1)),
            format!("{} > 0", chain("1", "*", MAX_OPERATORS - 1)),
            format!("a{} == 1", ".b".repeat(MAX_OPERATORS - 2)),
        ]
    }

    #[test]
    fn hostile_expressions_are_refused_without_overflowing_the_stack() {
        let refusals = on_small_stack(|| {
            hostile()
                .iter()
                .map(|source| compile(source).err())
                .collect::<Vec<_>>()
        });
        let expected = [
            "is too long",
            "is too complex",
            "is nested too deeply",
            "may cost too much",
            "does not parse",
        ];
        for (source, refusal) in hostile().iter().zip(refusals) {
            let reason = refusal.unwrap_or_else(|| panic!("accepted: {}", &source[..60]));
            assert!(expected.iter().any(|e| reason.starts_with(e)), "{reason}");
        }
        assert!(
            compile(&hostile()[14])
                .unwrap_err()
                .starts_with("may cost too much")
        );
        assert!(
            compile(&hostile()[1])
                .unwrap_err()
                .starts_with("is too long")
        );
        let e = compile(&format!("{} > 0", chain("1", "+", 1000))).unwrap_err();
        assert_eq!(e, "is too complex: 1000 operators, at most 256");
        let e = compile(&format!("{} > 0", chain("1", "+", 100))).err();
        assert_eq!(
            e.as_deref(),
            Some("is nested too deeply: 101 levels, at most 64")
        );
    }

    #[test]
    fn the_largest_allowed_expressions_evaluate_on_a_small_stack() {
        on_small_stack(|| {
            // as deep as allowed, in every shape that nests
            let depth = MAX_DEPTH - 2;
            let sum = format!("{} > 0", chain("1", "+", depth));
            let parens = format!("{}1{} == 1", "(".repeat(40), ")".repeat(40));
            let methods = format!("'A'{} == 'a'", ".lowerAscii()".repeat(depth - 2));
            let nested_all = format!(
                "[1].all(a, [1].all(b, [1].all(c, [1].all(d, [1].all(e, {} > 0)))))",
                chain("a", "+", 40)
            );
            // as many operators as allowed, in a shallow tree
            let wide = format!(
                "[{}].size() > 0",
                vec![chain("1", "+", 8); MAX_OPERATORS / 9].join(", ")
            );
            // prefix operators as many as allowed (the parser folds them)
            let nots = format!("{}true", "!".repeat(MAX_OPERATORS));
            let minuses = format!("{}1 < 0", "-".repeat(MAX_OPERATORS - 1));
            let context = Context::with_env(env());
            for source in [sum, parens, methods, nested_all, wide, nots, minuses] {
                let compiled = compile(&source).unwrap_or_else(|e| panic!("{e}: {source}"));
                assert_eq!(
                    compiled.execute(&context, None),
                    Ok(Value::Bool(true)),
                    "{source}"
                );
            }
        });
    }

    #[test]
    fn comprehensions_keep_their_results_with_the_step_checks() {
        let context = Context::with_env(env());
        for source in [
            "[1, 2, 3].map(x, x * 2) == [2, 4, 6]",
            "[1, 2, 3].map(x, x > 1, x * 10) == [20, 30]",
            "[1, 2, 3].filter(x, x > 1) == [2, 3]",
            "[1, 2, 3].all(x, x > 0) && ![1, 2, 3].all(x, x > 1)",
            "[1, 2, 3].exists(x, x == 2) && ![1, 2].exists(x, x == 3)",
            "[1, 2, 3].exists_one(x, x > 2) && ![1, 2, 3].exists_one(x, x > 1)",
            "{'a': 1, 'b': 2}.all(k, k != 'c')",
            "[1, 0].exists(x, 1 / x == 1)",
            "'a-b'.replace('-', '+') == 'a+b' && 'aaa'.replace('a', 'b', 2) == 'bba'",
        ] {
            let compiled = compile(source).unwrap();
            assert!(compiled.has_loops(), "{source}");
            assert_eq!(
                compiled.execute(&context, None),
                Ok(Value::Bool(true)),
                "{source}"
            );
        }
        // outside an evaluation the budget is empty: a step fails closed
        assert!(BUDGET.with(Budget::take_step).is_err());
    }

    #[test]
    fn an_interrupt_stops_an_evaluation_between_two_steps() {
        let compiled = compile("[1, 2, 3].all(x, x > 0)").unwrap();
        let context = Context::with_env(env());
        let interrupt = Arc::new(AtomicBool::new(true));
        // the flag is read every 256 steps: a short loop finishes
        assert!(compiled.execute(&context, Some(&interrupt)).is_ok());
        let list: String = (0..300)
            .map(|i| i.to_string())
            .collect::<Vec<_>>()
            .join(",");
        let long = compile(&format!("[{list}].all(x, x >= 0)")).unwrap();
        assert_eq!(
            long.execute(&context, Some(&interrupt)),
            Err(EvalError::Limit("the run was stopped"))
        );
        interrupt.store(false, Ordering::Relaxed);
        assert_eq!(
            long.execute(&context, Some(&interrupt)),
            Ok(Value::Bool(true))
        );
    }

    #[test]
    fn parse_errors_read_as_sentences() {
        assert_eq!(
            compile("price >=").unwrap_err(),
            "does not parse at line 1, column 9: the expression ends too early (an operand or \
             a closing bracket is missing)"
        );
        let e = compile("price >= >= 1").unwrap_err();
        assert!(e.ends_with("'>=' is not expected here"), "{e}");
        assert!(!e.contains("expecting"), "{e}");
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
