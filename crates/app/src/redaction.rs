//! Redaction's key: the organization's [`Scrambler`], with which scrambled values are hashed —
//! in pipelines' redact transforms, and wherever records are shown redacted.

use crate::{AppError, Hub};
use lockstep_domain::OrganizationId;
use lockstep_engine::Scrambler;
use std::sync::Arc;

/// The purpose the scrambler's subkey is derived for: changing it changes every scrambled value.
const SCRAMBLE_PURPOSE: &str = "redaction scramble v1";

impl Hub {
    /// HMAC-SHA256 under the organization's first data key (subkey for "redaction scramble
    /// v1"): equal values give equal hashes in one organization, different ones in another,
    /// and nothing can be learnt from them without the key.
    pub(crate) async fn scrambler(&self, org: OrganizationId) -> Result<Scrambler, AppError> {
        let hasher = self.org_keys(org).await?.hasher(SCRAMBLE_PURPOSE)?;
        Ok(Arc::new(move |data: &[u8]| hasher.hash(data)))
    }
}
