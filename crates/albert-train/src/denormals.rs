//! Denormal (subnormal) floats flushed to zero on the CPU, as `torch.set_flush_denormal(True)`
//! does in PyTorch.
//!
//! Why: x86 cores take a microcode assist on every operation with a subnormal operand or result,
//! tens to a hundred times slower than a normal one. Training can drift into them: attention heads
//! that sharpen put softmax probabilities below 1.2e-38, and the GEMMs of the forward and backward
//! passes then run on them. Measured on the NSP run of the Table 5 experiment (2 cores): 4.5 % of
//! its attention probabilities are subnormal at step 8,054 (`tools/count_subnormals.py`; 0 for the
//! SOP and MLM-only runs and for a fresh model); resumed from its step-4,000 state it trained at
//! 3,900 tokens/s without this and 7,050 with it, with bit-identical losses over 100 steps.

/// Sets flush-to-zero and denormals-are-zero for this thread. Threads it starts afterwards inherit
/// the setting (glibc copies the floating-point environment into a new thread), so calling this
/// first thing in `main`, before libtorch starts its OpenMP and MKL worker threads, covers them.
/// Returns whether the CPU has the control (x86-64: always; elsewhere a no-op returning false).
pub fn flush_denormals_to_zero() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        // MXCSR bit 15 (FTZ: results that would be subnormal become 0) and bit 6 (DAZ: subnormal
        // inputs are read as 0).
        const FTZ_DAZ: u32 = 0x8040;
        let mut mxcsr: u32 = 0;
        // SAFETY: stmxcsr/ldmxcsr read and write this thread's SSE control register through a
        // valid pointer to a local; the only effect is the FTZ/DAZ rounding mode described above.
        #[allow(unsafe_code)]
        unsafe {
            std::arch::asm!("stmxcsr [{}]", in(reg) &mut mxcsr, options(nostack));
            mxcsr |= FTZ_DAZ;
            std::arch::asm!("ldmxcsr [{}]", in(reg) &mxcsr, options(nostack));
        }
        true
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnormal_results_become_zero_on_this_thread_and_its_children() {
        // Run in a fresh thread so other tests keep the default environment.
        std::thread::spawn(|| {
            let tiny = std::hint::black_box(f32::MIN_POSITIVE);
            let subnormal = std::hint::black_box(tiny / 4.0);
            assert!(
                (tiny / 4.0) > 0.0,
                "default: gradual underflow to a subnormal"
            );
            if !flush_denormals_to_zero() {
                return; // not x86-64: nothing to check
            }
            assert_eq!(
                std::hint::black_box(tiny) / 4.0,
                0.0,
                "FTZ: a subnormal result is 0"
            );
            // A subnormal input scaled into the normal range: DAZ reads it as 0.
            assert_eq!(
                std::hint::black_box(subnormal) * 2f32.powi(30),
                0.0,
                "DAZ: a subnormal input is 0"
            );
            let child = std::thread::spawn(move || std::hint::black_box(tiny) / 4.0);
            assert_eq!(
                child.join().expect("child thread"),
                0.0,
                "inherited by a thread started after"
            );
        })
        .join()
        .expect("test thread");
    }
}
