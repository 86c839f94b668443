//! Optimizers (LAMB, AdamW) with ALBERT's weight-decay exclusions, the learning-rate schedule and
//! gradient clipping.

pub mod lamb;
pub mod schedule;

pub use lamb::{Optimizer, OptimizerKind, OptimizerOptions};
pub use schedule::Schedule;
