//! Signals (docs/signals.md): state builders over the normalized records, the
//! engine that drives a signal over envelope lines from the bus or the
//! archive, and the rules the built-in signals are evaluated with.
//!
//! - [`fixed`]: exact decimals and the per-venue dollar value of a trade;
//! - [`window`]: sliding windows over receive time, O(1) per record;
//! - [`builders`]: `volume_profile`, `price_profile`, `spread`, `lifecycle`;
//! - [`engine`]: lines → records → builders → evaluation → fires;
//! - [`rule`]: conditions on builder fields evaluated in Rust.
//!
//! Everything here is plain Rust; the bindings are in
//! `rust/python/signals.rs`.
pub mod builders;
pub mod engine;
pub mod fixed;
pub mod rule;
pub mod window;

#[cfg(test)]
mod tests;

pub use builders::{Phase, Spec, State, Value};
pub use engine::{Config, Counters, Ctx, Engine, Evaluator, Fire, Gap, Instrument, Mode, Trigger};
pub use rule::{payload_of, Clause, Op, Payload, Rule, RuleError};

/// A record's exchange time (ms) in ns, as every time of a signal is.
pub fn ms_to_ns(ms: i64) -> i64 {
    ms.saturating_mul(1_000_000)
}
