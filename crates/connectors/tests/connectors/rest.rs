//! The `rest` connector's tests.
