//! Pages: pipelines (in process, see `web.rs`).
