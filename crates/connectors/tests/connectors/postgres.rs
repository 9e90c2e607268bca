//! The `postgres` connector's tests.
