//! Validated values an operator gives when creating an organization.

use std::fmt;
use thiserror::Error;

/// Why a value was refused. The message names the rule, never the value.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ParseError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {max} characters")]
    TooLong { max: usize },
    #[error("must not contain control characters")]
    ControlCharacter,
    #[error("must not start or end with white space")]
    SurroundingWhitespace,
    #[error("is not a valid e-mail address")]
    InvalidEmail,
}

/// An organization's display name: 1 to 100 characters, no control characters, trimmed.
#[derive(Clone, PartialEq, Eq)]
pub struct OrganizationName(String);

impl OrganizationName {
    pub const MAX_CHARS: usize = 100;

    pub fn parse(value: &str) -> Result<Self, ParseError> {
        if value.is_empty() {
            return Err(ParseError::Empty);
        }
        if value.trim() != value {
            return Err(ParseError::SurroundingWhitespace);
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(ParseError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if value.chars().any(char::is_control) {
            return Err(ParseError::ControlCharacter);
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form two names are compared in for uniqueness ("Acme" and "acme" are the same).
    pub fn canonical(&self) -> String {
        self.0.to_lowercase()
    }
}

/// Names are personal-ish data for the operator's eyes: `Debug` does not print them, so a
/// stray `{:?}` in a log line cannot leak one.
impl fmt::Debug for OrganizationName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OrganizationName(..)")
    }
}

/// An e-mail address, checked for shape only (one `@`, a non-empty local part, a domain with a
/// dot), at most 254 characters. Stored lower-cased in its domain part.
#[derive(Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub const MAX_CHARS: usize = 254;

    pub fn parse(value: &str) -> Result<Self, ParseError> {
        if value.is_empty() {
            return Err(ParseError::Empty);
        }
        if value.chars().count() > Self::MAX_CHARS {
            return Err(ParseError::TooLong {
                max: Self::MAX_CHARS,
            });
        }
        if value.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err(ParseError::InvalidEmail);
        }
        let (local, domain) = value.rsplit_once('@').ok_or(ParseError::InvalidEmail)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !domain.contains("..");
        if local.is_empty() || local.contains('@') || !domain_ok {
            return Err(ParseError::InvalidEmail);
        }
        Ok(Self(format!("{local}@{}", domain.to_lowercase())))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Personal data: `Debug` does not print the address.
impl fmt::Debug for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmailAddress(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn organization_names_follow_the_rules() {
        assert!(OrganizationName::parse("Acme Engineering").is_ok());
        assert_eq!(OrganizationName::parse(""), Err(ParseError::Empty));
        assert_eq!(
            OrganizationName::parse(" Acme"),
            Err(ParseError::SurroundingWhitespace)
        );
        assert_eq!(
            OrganizationName::parse("Ac\u{7}me"),
            Err(ParseError::ControlCharacter)
        );
        assert_eq!(
            OrganizationName::parse(&"x".repeat(101)),
            Err(ParseError::TooLong { max: 100 })
        );
        assert!(OrganizationName::parse(&"é".repeat(100)).is_ok());
    }

    #[test]
    fn canonical_name_ignores_case() {
        let a = OrganizationName::parse("Acme").ok().map(|n| n.canonical());
        let b = OrganizationName::parse("ACME").ok().map(|n| n.canonical());
        assert_eq!(a, b);
    }

    #[test]
    fn email_addresses_are_checked_for_shape() {
        assert_eq!(
            EmailAddress::parse("Ada@Example.COM").map(|e| e.as_str().to_owned()),
            Ok("Ada@example.com".to_owned())
        );
        for bad in [
            "",
            "ada",
            "@example.com",
            "ada@",
            "ada@example",
            "ada@.com",
            "a da@x.io",
            "ada@x..io",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn debug_never_prints_personal_data() {
        let email = EmailAddress::parse("ada@example.com");
        let name = OrganizationName::parse("Secret Corp");
        assert!(!format!("{email:?}{name:?}").contains("ada"));
        assert!(!format!("{name:?}").contains("Secret"));
    }
}
