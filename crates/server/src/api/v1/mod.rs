//! Version 1 of the JSON API.

pub(crate) mod audit;
pub(crate) mod auth;
mod bodies;
pub(crate) mod boms;
pub(crate) mod connections;
pub(crate) mod datasets;
pub(crate) mod footprint;
pub(crate) mod me;
pub(crate) mod organization;
pub(crate) mod pipelines;
pub(crate) mod policies;
pub(crate) mod run_history;
pub(crate) mod sso;
pub(crate) mod support;
pub(crate) mod sys;
pub(crate) mod users;
