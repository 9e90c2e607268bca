//! "View as".
