//! Newtype ids, so an organization id can never be passed where another id is expected.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, utoipa::ToSchema)]
        #[serde(transparent)]
        #[schema(value_type = String, format = Uuid)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID the caller made (UUIDv7 in production, fixed values in tests).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID behind this id.
            pub const fn as_uuid(&self) -> &Uuid {
                &self.0
            }

            /// The 16 bytes of the UUID, as bound into ciphertexts' associated data.
            pub const fn as_bytes(&self) -> &[u8; 16] {
                self.0.as_bytes()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0.hyphenated(), f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0.hyphenated())
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

id_type!(
    /// Identifies an organization (a tenant).
    OrganizationId
);
id_type!(
    /// Identifies an invitation to join an organization.
    InvitationId
);
id_type!(
    /// Identifies a user (a member of one organization).
    UserId
);
id_type!(
    /// Identifies a signed-in session.
    SessionId
);
id_type!(
    /// Identifies an API token (its id, never the token itself).
    ApiTokenId
);
id_type!(
    /// Identifies a connection (a configured source or destination).
    ConnectionId
);
id_type!(
    /// Identifies a file uploaded to a `files` connection.
    UploadId
);
id_type!(
    /// Identifies a pipeline (source object → destination object).
    PipelineId
);
id_type!(
    /// Identifies one run of a pipeline.
    RunId
);
id_type!(
    /// Identifies a data set (records pulled through a pipeline, staged for review).
    DatasetId
);
id_type!(
    /// Identifies a team: members of one organization that data policies name together.
    TeamId
);
id_type!(
    /// Identifies a member's registered passkey (a WebAuthn credential).
    PasskeyId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_text_and_json() {
        let id =
            OrganizationId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001));
        let text = id.to_string();
        assert_eq!(text, "01900000-0000-7000-8000-000000000001");
        assert_eq!(text.parse::<OrganizationId>().ok(), Some(id));
        let json = serde_json::to_string(&id).unwrap_or_default();
        assert_eq!(json, format!("\"{text}\""));
    }

    #[test]
    fn malformed_id_is_refused() {
        assert!("not-a-uuid".parse::<OrganizationId>().is_err());
    }
}
