//! Version 1 of the JSON API.

pub(crate) mod sys;
