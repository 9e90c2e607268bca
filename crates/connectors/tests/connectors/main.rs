//! Connectors against real systems: PostgreSQL and MariaDB on the machine (or the throwaway ones
//! `scripts/test` starts), SQLite and files in temporary directories, HTTP APIs served by the
//! test, a real OAuth 2.0 authorization server (`oidc-provider` from npm) and a real Tryton ERP
//! server (trytond 8.2, started by scripts/test).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod cross_kind;
mod files;
mod files_batch;
mod mysql;
mod mysql_batch;
mod oauth;
mod postgres;
mod postgres_batch;
mod rest;
mod sqlite;
mod tryton;
