//! What an API token may do, chosen when it is made: a token never acts beyond its scope, and
//! never beyond its owner's current role either (the policy checks both).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An API token's scope, from narrowest to widest.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum TokenScope {
    /// Reading only: nothing is created, changed, started or deleted.
    Read,
    /// Reading, and starting and cancelling pipeline runs.
    Run,
    /// Everything the owner's role allows (API tokens never change credentials, whatever their
    /// scope).
    Manage,
}

impl TokenScope {
    pub const ALL: [TokenScope; 3] = [TokenScope::Read, TokenScope::Run, TokenScope::Manage];

    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Read => "read",
            TokenScope::Run => "run",
            TokenScope::Manage => "manage",
        }
    }
}

impl fmt::Display for TokenScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error for a string that names no scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("must be one of read, run, manage")]
pub struct UnknownScope;

impl FromStr for TokenScope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // One spelling per value: the one `as_str` writes.
        TokenScope::ALL
            .into_iter()
            .find(|value| value.as_str() == s)
            .ok_or(UnknownScope)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_round_trip_and_unknown_is_refused() {
        for scope in TokenScope::ALL {
            assert_eq!(scope.as_str().parse::<TokenScope>(), Ok(scope));
            assert_eq!(
                serde_json::to_string(&scope).ok(),
                Some(format!("\"{scope}\""))
            );
        }
        assert_eq!("Read".parse::<TokenScope>(), Err(UnknownScope));
        assert_eq!("admin".parse::<TokenScope>(), Err(UnknownScope));
        assert!(TokenScope::Read < TokenScope::Run && TokenScope::Run < TokenScope::Manage);
    }
}
