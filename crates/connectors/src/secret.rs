//! Secrets in memory: zeroized on drop, never printed.

use std::collections::BTreeMap;
use std::fmt;
use zeroize::Zeroizing;

/// One secret value (a password, a key, a token). `Debug` prints `[redacted]`; the memory is wiped
/// on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: String) -> Secret {
        Secret(Zeroizing::new(value))
    }

    /// The value in clear, for the moment of a call.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A connection's secrets by field name (`password`, `api_key`, `client_secret`,
/// `oauth_access_token`, …).
#[derive(Debug, Clone, Default)]
pub struct Secrets(BTreeMap<String, Secret>);

impl Secrets {
    pub fn new() -> Secrets {
        Secrets::default()
    }

    pub fn insert(&mut self, field: impl Into<String>, value: Secret) {
        self.0.insert(field.into(), value);
    }

    pub fn get(&self, field: &str) -> Option<&Secret> {
        self.0.get(field)
    }

    pub fn remove(&mut self, field: &str) -> Option<Secret> {
        self.0.remove(field)
    }

    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// A file uploaded to a `files` connection, decrypted for the moment of a call.
#[derive(Clone)]
pub struct UploadedFile {
    /// Its name as uploaded (`customers.csv`); the extension says the format.
    pub name: String,
    pub contents: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for UploadedFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadedFile")
            .field("name", &self.name)
            .field("bytes", &self.contents.len())
            .finish()
    }
}
