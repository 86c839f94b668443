//! Prints the machine's CPU line (model, AVX2 / AVX-512 / VNNI / AMX), as `make test` does first,
//! so that a failure report says which machine it came from: `cargo run -q -p albert-core --example cpu`.

fn main() {
    let cpu = albert_core::cpu::cpu();
    let int8 = if cpu.u8s8_saturates() {
        "no VNNI: ONNX Runtime's u8×s8 int8 kernels saturate on full-range weights"
    } else {
        "ONNX Runtime's u8×s8 int8 kernels do not saturate here"
    };
    println!("{cpu} ({int8})");
}
