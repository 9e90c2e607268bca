//! Pages: connections (in process, see `web.rs`).
