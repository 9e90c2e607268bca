//! The `mysql` connector's tests.
