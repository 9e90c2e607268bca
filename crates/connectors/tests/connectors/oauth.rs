//! The `oauth` connector's tests.
