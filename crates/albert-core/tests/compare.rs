//! `albert_core::compare`: NaN, infinities and shape mismatches fail a comparison, never pass it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a panic is the failure report

use albert_core::compare::{self, Drift, Fault};
use ndarray::ArrayD;

#[test]
fn close_outputs_are_within_the_tolerance() {
    let d = compare::drift(&[1.0, 2.0, -3.0][..], &[1.0, 2.00001, -3.0][..]);
    assert!(d.within(1e-4) && !d.within(1e-6), "{d:?}");
    assert!(d.cosine > 0.999_999, "{d:?}");
    assert_eq!(compare::drift(&[0.0; 3][..], &[0.0; 3][..]), Drift::EXACT);
    let (a, b) = (
        ArrayD::from_elem(vec![2, 3], 0.5f32),
        ArrayD::from_elem(vec![2, 3], -0.5f32),
    );
    assert_eq!(compare::max_abs_diff(&a, &b), 1.0);
    assert!((compare::cosine(&a, &b) + 1.0).abs() < 1e-12);
}

#[test]
fn nan_and_infinity_on_either_side_fail() {
    let good = [0.5f32, 1.0, 2.0];
    for bad in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
        let mut poisoned = good;
        poisoned[1] = bad;
        for d in [
            compare::drift(&good[..], &poisoned[..]),
            compare::drift(&poisoned[..], &good[..]),
            compare::drift(&poisoned[..], &poisoned[..]),
        ] {
            assert!(!d.within(f64::MAX), "{bad}: {d:?}");
            assert_eq!(d.max_abs, f64::INFINITY, "{bad}");
            assert_eq!(d.cosine, f64::NEG_INFINITY, "{bad}");
            assert!(
                matches!(d.fault, Some(Fault::NonFinite { index: 1, .. })),
                "{bad}: {d:?}"
            );
        }
    }
    // All NaN: `fold(0.0, f64::max)` scored this 0.
    let nan = [f32::NAN; 4];
    assert!(!compare::drift(&nan[..], &nan[..]).within(1.0));
}

#[test]
fn shapes_must_match() {
    let d = compare::drift(
        &ArrayD::<f32>::zeros(vec![2, 3]),
        &ArrayD::<f32>::zeros(vec![3, 2]),
    );
    assert!(!d.within(f64::MAX), "{d:?}");
    assert_eq!(
        d.fault.as_ref().map(ToString::to_string).as_deref(),
        Some("shape [2, 3] against [3, 2]")
    );
    assert!(!compare::drift(&[1.0f32, 2.0][..], &[1.0f32][..]).within(1.0));
}

#[test]
fn the_worst_of_many_keeps_a_fault() {
    let ok = compare::drift(&[1.0f32][..], &[1.5f32][..]);
    let bad = compare::drift(&[1.0f32][..], &[f32::NAN][..]);
    let worst = [ok.clone(), bad, ok]
        .into_iter()
        .fold(Drift::EXACT, Drift::worst);
    assert!(!worst.within(f64::MAX), "{worst:?}");
    assert_eq!(worst.max_abs, f64::INFINITY);
    assert_eq!(worst.cosine, f64::NEG_INFINITY);
}
