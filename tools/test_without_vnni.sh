#!/usr/bin/env bash
# Runs the int8 engine tests on an emulated x86-64 CPU without VNNI or AVX-512 (Haswell: AVX2 and
# FMA only, as AMD Zen 1–3 and pre-Cascade Lake Xeons), where ONNX Runtime's u8×s8 int8 kernels
# saturate on full-range weights (crates/albert-core/src/cpu.rs). By hand, not in `make test`:
# needs qemu-user (Debian/Ubuntu: `apt-get install qemu-user`); ~5 minutes on 2 cores.
#
#   bash tools/test_without_vnni.sh [CPU] [TEST FILTER]    (defaults: Haswell, int8)
#
# qemu-user emulates the test process itself (ONNX Runtime inside it sees the emulated CPUID);
# programs it starts run natively, so only in-process tests are meaningful here.
set -euo pipefail
cd "$(dirname "$0")/.."
cpu=${1:-Haswell}
filter=${2:-int8}
command -v qemu-x86_64 >/dev/null || {
    echo "qemu-x86_64 not found: install qemu-user" >&2
    exit 1
}
cargo build --quiet -p albert-core --example cpu
test_binary=$(cargo test --no-run -p albert-verify --test convert 2>&1 |
    grep -o 'target/debug/deps/convert-[0-9a-f]*' | tail -1)
emulated() { qemu-x86_64 -cpu "$cpu" "$@" 2> >(grep -v '^qemu-x86_64: warning' >&2); }
emulated target/debug/examples/cpu
cd crates/albert-verify
emulated "../../$test_binary" "$filter" --test-threads 1 --nocapture
