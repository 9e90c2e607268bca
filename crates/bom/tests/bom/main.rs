//! Tests of lockstep-bom.
