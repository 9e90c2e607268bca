//! The `sqlite` connector's tests.
