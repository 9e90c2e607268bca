//! How pipelines, samples and discovery name a database object, per connection kind.
//!
//! A name is `table` or `namespace.table`, where the namespace is MySQL's database or
//! PostgreSQL's schema; a name without one is in the connection's default (MySQL: the configured
//! database; PostgreSQL: the configured schema, else `public`). A part holding a dot or the kind's
//! quote character at its start is written quoted the kind's way (`` `my.table` ``, `"my.table"`, the quote
//! doubled inside), as discovery names such objects. Parts are compared exactly (no case folding),
//! and each is checked against the system's identifier limits; SQL always quotes them again
//! ([`ObjectName::mysql_sql`], [`ObjectName::postgres_sql`]).
//!
//! (Written here rather than with a SQL parser: discovered names may hold any character, which a
//! SQL parser's bare identifiers do not allow, and the grammar is two parts and one quote.)

use crate::{ConnectionKind, ConnectorError};

/// A parsed object name: its namespace (database or schema) and its own name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    pub namespace: String,
    pub name: String,
}

/// The quote character of a kind's identifiers.
fn quote_char(kind: ConnectionKind) -> char {
    match kind {
        ConnectionKind::Mysql => '`',
        _ => '"',
    }
}

/// What a valid name looks like, for error messages and hints: (form, example).
pub fn name_form(kind: ConnectionKind) -> (&'static str, &'static str) {
    match kind {
        ConnectionKind::Mysql => (
            "database.table, or table for a table in the connection's database",
            "shop.items",
        ),
        ConnectionKind::Postgres => (
            "schema.table, or table for a table in the connection's schema (public unless set)",
            "public.items",
        ),
        _ => ("the object's name", "items"),
    }
}

impl ObjectName {
    /// Parses `text` as `kind` names objects; `default_namespace` when it names none.
    pub fn parse(
        kind: ConnectionKind,
        text: &str,
        default_namespace: &str,
    ) -> Result<ObjectName, ConnectorError> {
        let q = quote_char(kind);
        let invalid = || {
            let (form, example) = name_form(kind);
            ConnectorError::config(
                "object",
                format!(
                    "must be {form} (for example {example}); a name holding a dot is quoted \
                     with {q}"
                ),
            )
        };
        let mut parts: Vec<String> = Vec::with_capacity(2);
        let mut rest = text;
        loop {
            let (part, after) = take_part(rest, q).ok_or_else(invalid)?;
            parts.push(part);
            match after.strip_prefix('.') {
                Some(next) => rest = next,
                None if after.is_empty() => break,
                None => return Err(invalid()),
            }
        }
        let (namespace, name) = match parts.as_slice() {
            [name] => (default_namespace.to_owned(), name.clone()),
            [namespace, name] => (namespace.clone(), name.clone()),
            _ => return Err(invalid()),
        };
        check_identifier(kind, &namespace)?;
        check_identifier(kind, &name)?;
        Ok(ObjectName { namespace, name })
    }

    /// How discovery names the object: `table` in the default namespace (`None`), else
    /// `namespace.table`; parts quoted when they hold a dot or start with the quote character.
    pub fn display(kind: ConnectionKind, namespace: Option<&str>, name: &str) -> String {
        let part = |p: &str| {
            let q = quote_char(kind);
            if p.is_empty() || p.contains('.') || p.starts_with(q) {
                let doubled = p.replace(q, &format!("{q}{q}"));
                format!("{q}{doubled}{q}")
            } else {
                p.to_owned()
            }
        };
        match namespace {
            Some(namespace) => format!("{}.{}", part(namespace), part(name)),
            None => part(name),
        }
    }

    /// `` `database`.`table` `` for MySQL statements.
    pub fn mysql_sql(&self) -> String {
        format!(
            "{}.{}",
            mysql_quote(&self.namespace),
            mysql_quote(&self.name)
        )
    }

    /// `"schema"."table"` for PostgreSQL statements.
    pub fn postgres_sql(&self) -> String {
        format!(
            "{}.{}",
            postgres_quote(&self.namespace),
            postgres_quote(&self.name)
        )
    }

    /// The same namespace, another table (staging tables live next to their table).
    pub fn sibling(&self, name: impl Into<String>) -> ObjectName {
        ObjectName {
            namespace: self.namespace.clone(),
            name: name.into(),
        }
    }
}

/// A quoted MySQL identifier: backticks around it, inner backticks doubled.
pub(crate) fn mysql_quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// A quoted PostgreSQL identifier: `"` around it, inner `"` doubled.
pub(crate) fn postgres_quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

/// One part at the start of `text`: quoted with `q` (the quote doubled inside) or bare up to the
/// next dot (not starting with the quote). `None` when it is empty or its quotes do not close.
fn take_part(text: &str, q: char) -> Option<(String, &str)> {
    if let Some(quoted) = text.strip_prefix(q) {
        let mut part = String::new();
        let mut chars = quoted.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c != q {
                part.push(c);
                continue;
            }
            if chars.peek().is_some_and(|(_, next)| *next == q) {
                part.push(q);
                chars.next();
                continue;
            }
            let after = quoted.get(i + c.len_utf8()..)?;
            return (!part.is_empty()).then_some((part, after));
        }
        return None;
    }
    let end = text.find('.').unwrap_or(text.len());
    let (part, after) = text.split_at(end);
    (!part.is_empty()).then(|| (part.to_owned(), after))
}

/// A part the system accepts: MySQL 1 to 64 characters without a trailing space; PostgreSQL
/// 1 to 63 bytes (longer names would be cut silently). Never control characters.
fn check_identifier(kind: ConnectionKind, part: &str) -> Result<(), ConnectorError> {
    let (ok, limit) = match kind {
        ConnectionKind::Mysql => (
            (1..=64).contains(&part.chars().count()) && !part.ends_with(' '),
            "a MySQL name has 1 to 64 characters and no trailing space",
        ),
        _ => (
            (1..=63).contains(&part.len()),
            "a PostgreSQL name has 1 to 63 bytes",
        ),
    };
    if !ok || part.chars().any(char::is_control) {
        let reason = if ok {
            "a name holds no control characters"
        } else {
            limit
        };
        return Err(ConnectorError::config("object", reason));
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn mysql(text: &str) -> Option<(String, String)> {
        ObjectName::parse(ConnectionKind::Mysql, text, "app")
            .ok()
            .map(|n| (n.namespace, n.name))
    }

    fn postgres(text: &str) -> Option<(String, String)> {
        ObjectName::parse(ConnectionKind::Postgres, text, "public")
            .ok()
            .map(|n| (n.namespace, n.name))
    }

    fn pair(a: &str, b: &str) -> Option<(String, String)> {
        Some((a.to_owned(), b.to_owned()))
    }

    #[test]
    fn names_are_qualified_per_kind() {
        assert_eq!(mysql("ls_dst.kunden_aktiv"), pair("ls_dst", "kunden_aktiv"));
        assert_eq!(mysql("kunden"), pair("app", "kunden"));
        assert_eq!(mysql("`my.db`.`a``b`"), pair("my.db", "a`b"));
        assert_eq!(mysql("`t.x`"), pair("app", "t.x"));
        assert_eq!(mysql("we`ird"), pair("app", "we`ird"));
        assert_eq!(postgres("shop.items"), pair("shop", "items"));
        assert_eq!(postgres("items"), pair("public", "items"));
        assert_eq!(postgres("\"a.b\".\"c\"\"d\""), pair("a.b", "c\"d"));
        assert_eq!(postgres("Ärger.Straße"), pair("Ärger", "Straße"));
        for bad in ["", ".", "a.", ".a", "a.b.c", "`a", "`a`x", "``", "a.b "] {
            assert_eq!(mysql(bad), None, "{bad}");
        }
        assert_eq!(mysql(&"x".repeat(65)), None);
        assert_eq!(postgres(&"ä".repeat(32)), None);
        assert_eq!(postgres("a\nb"), None);
    }

    #[test]
    fn discovery_names_parse_back() {
        for (namespace, name) in [
            ("app", "plain"),
            ("app", "with.dot"),
            ("x`y", "a\"b"),
            ("`x", "\"b"),
        ] {
            for kind in [ConnectionKind::Mysql, ConnectionKind::Postgres] {
                let shown = ObjectName::display(kind, Some(namespace), name);
                let parsed = ObjectName::parse(kind, &shown, "other").unwrap();
                assert_eq!(
                    (parsed.namespace.as_str(), parsed.name.as_str()),
                    (namespace, name)
                );
                let short = ObjectName::display(kind, None, name);
                let parsed = ObjectName::parse(kind, &short, "app").unwrap();
                assert_eq!(parsed.name, name);
            }
        }
        assert_eq!(
            ObjectName::display(ConnectionKind::Mysql, None, "t.x"),
            "`t.x`"
        );
        let name = ObjectName::parse(ConnectionKind::Mysql, "d.`x``; DROP TABLE t`", "a").unwrap();
        assert_eq!(name.mysql_sql(), "`d`.`x``; DROP TABLE t`");
        let name = ObjectName::parse(ConnectionKind::Postgres, "s.x\"; DROP", "a").unwrap();
        assert_eq!(name.postgres_sql(), "\"s\".\"x\"\"; DROP\"");
    }
}
