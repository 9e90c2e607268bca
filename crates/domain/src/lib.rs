//! Lockstep's vocabulary: typed ids and validated values shared by every other crate.
//!
//! Nothing here performs IO, reads the clock or draws randomness: ids are made by the caller
//! from bytes it chose (see [`ids`]), values are parsed once at the edge (see [`organization`]).

pub mod ids;
pub mod organization;
pub mod role;
pub mod scope;

pub use ids::{
    ApiTokenId, ConnectionId, DatasetId, InvitationId, OrganizationId, PasskeyId, PipelineId,
    RunId, SessionId, TeamId, UploadId, UserId,
};
pub use organization::{EmailAddress, OrganizationName, ParseError};
pub use role::Role;
pub use scope::TokenScope;
