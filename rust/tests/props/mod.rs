//! Shared parts of the property tests: the invariants every batch must
//! satisfy (`checks`) and the generators of hostile input (`strategies`).

pub mod checks;
pub mod strategies;
