//! criterion benchmarks; see `benches/`.
