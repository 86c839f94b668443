//! The one comparison of two outputs in the workspace: max-abs difference and cosine, where a
//! value that is not finite, on either side, or a shape mismatch fails the comparison instead
//! of scoring as a match.
//!
//! Why one helper: folding differences with `f64::max` skips NaN (`f64::max(0.0, NaN)` is 0),
//! so an output of NaN everywhere used to score 0 and pass the converter's drift check, the
//! bench and the tests alike. Every output we compare (hidden states, logits) is finite in a
//! working model; NaN or ±inf (float16 overflow, a broken graph) is a fault however the other
//! side looks.

use std::fmt;

use ndarray::{ArrayView, AsArray, Dimension};

/// Why two outputs are not comparable at all.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    Shape {
        left: Vec<usize>,
        right: Vec<usize>,
    },
    /// The first element (in row-major order) where either side is NaN or infinite.
    NonFinite {
        index: usize,
        left: f32,
        right: f32,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Shape { left, right } => write!(f, "shape {left:?} against {right:?}"),
            Fault::NonFinite { index, left, right } => {
                write!(
                    f,
                    "non-finite value at element {index}: {left} against {right}"
                )
            }
        }
    }
}

/// The difference between two outputs.
#[derive(Debug, Clone, PartialEq)]
pub struct Drift {
    /// Largest |a - b|; `+inf` when there is a [`Fault`].
    pub max_abs: f64,
    /// Cosine of the two outputs as flat vectors (1 when both are zero); `-inf` when there is a
    /// [`Fault`], so that any lower bound and any minimum over rows fail with it.
    pub cosine: f64,
    pub fault: Option<Fault>,
}

impl Drift {
    /// Two identical outputs: the start of [`Drift::worst`] over many.
    pub const EXACT: Drift = Drift {
        max_abs: 0.0,
        cosine: 1.0,
        fault: None,
    };

    fn faulted(fault: Fault) -> Drift {
        Drift {
            max_abs: f64::INFINITY,
            cosine: f64::NEG_INFINITY,
            fault: Some(fault),
        }
    }

    /// Whether the outputs are comparable and differ by at most `tolerance` (max-abs).
    pub fn within(&self, tolerance: f64) -> bool {
        self.fault.is_none() && self.max_abs <= tolerance
    }

    /// The worse of two drifts: the larger max-abs, the smaller cosine, the first fault.
    pub fn worst(self, other: Drift) -> Drift {
        Drift {
            max_abs: self.max_abs.max(other.max_abs),
            cosine: self.cosine.min(other.cosine),
            fault: self.fault.or(other.fault),
        }
    }
}

/// Compares `a` with `b` element by element (arrays of any rank, or slices).
pub fn drift<'a, 'b, D: Dimension>(
    a: impl AsArray<'a, f32, D>,
    b: impl AsArray<'b, f32, D>,
) -> Drift {
    let (a, b): (ArrayView<'a, f32, D>, ArrayView<'b, f32, D>) = (a.into(), b.into());
    if a.shape() != b.shape() {
        return Drift::faulted(Fault::Shape {
            left: a.shape().to_vec(),
            right: b.shape().to_vec(),
        });
    }
    let (mut max_abs, mut dot, mut norm_a, mut norm_b) = (0f64, 0f64, 0f64, 0f64);
    for (index, (&left, &right)) in a.iter().zip(b.iter()).enumerate() {
        if !left.is_finite() || !right.is_finite() {
            return Drift::faulted(Fault::NonFinite { index, left, right });
        }
        let (x, y) = (f64::from(left), f64::from(right));
        // Both finite, so the difference is too: `f64::max` cannot meet a NaN here.
        max_abs = max_abs.max((x - y).abs());
        dot += x * y;
        norm_a += x * x;
        norm_b += y * y;
    }
    let cosine = if norm_a == 0.0 && norm_b == 0.0 {
        1.0
    } else {
        dot / (norm_a.sqrt() * norm_b.sqrt()).max(f64::MIN_POSITIVE)
    };
    Drift {
        max_abs,
        cosine,
        fault: None,
    }
}

/// [`drift`]'s max-abs difference (`+inf` on a [`Fault`]).
pub fn max_abs_diff<'a, 'b, D: Dimension>(
    a: impl AsArray<'a, f32, D>,
    b: impl AsArray<'b, f32, D>,
) -> f64 {
    drift(a, b).max_abs
}

/// [`drift`]'s cosine (`-inf` on a [`Fault`]).
pub fn cosine<'a, 'b, D: Dimension>(
    a: impl AsArray<'a, f32, D>,
    b: impl AsArray<'b, f32, D>,
) -> f64 {
    drift(a, b).cosine
}
