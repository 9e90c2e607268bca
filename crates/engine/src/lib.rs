//! Lockstep's sync engine.
