//! The `files` connector's tests.
