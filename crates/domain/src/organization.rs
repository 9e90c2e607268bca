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

/// An e-mail address the hub can also mail: an unquoted local part of RFC 5322 `atext` (UTF-8
/// allowed, RFC 6531), `@`, a domain name of at least two labels (no IP literal), at most 254
/// characters. Checked with the `email_address` crate, the validator lettre's mailer uses, with
/// its permissive parts turned off (display text, domain literals, quoted local parts), so an
/// address accepted here is one the mailer takes. Stored lower-cased in its domain part.
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
        let options = email_address::Options {
            minimum_sub_domains: 2,
            allow_domain_literal: false,
            allow_display_text: false,
        };
        if local.starts_with('"')
            || email_address::EmailAddress::parse_with_options(value, options).is_err()
        {
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
            // What the mailer would refuse: markup, brackets, IP literals, quoting.
            "\"><script>alert(1)</script>@example.com",
            "a>b@x.example",
            "a<b@x.example",
            "x@[127.0.0.1]",
            "x@[IPv6:::1]",
            "\"quoted\"@example.com",
            "Ada <ada@example.com>",
            "ada@-example.com",
            "ada@example.com-",
            "a..b@example.com",
            ".ada@example.com",
            "ada.@example.com",
            "a(b)@example.com",
            "a,b@example.com",
            "a;b@example.com",
            "a\\b@example.com",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn ordinary_addresses_are_accepted() {
        for good in [
            "ada@example.com",
            "ada.lovelace+hub@mail.example.co.uk",
            "o'brien@example.ie",
            "x_y-z@sub-domain.example",
            "1234@123.example",
            "jürgen@müller.example",
        ] {
            assert!(EmailAddress::parse(good).is_ok(), "{good:?} was refused");
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
