//! The machine's CPU: its model name and the x86-64 instruction-set extensions the int8 paths
//! depend on. The workspace's one CPU-feature detection (the runtime's int8 warning, albert-bench's
//! report, albert-load's report and the line `make test` prints come from here).
//!
//! Why it matters: ONNX Runtime's u8×s8 integer matrix product on x86-64 without VNNI (SSE4.1,
//! AVX2, AVX-512 without VNNI: Haswell to Skylake, AMD Zen 1–3) adds pairs of 8-bit products in
//! 16-bit lanes that saturate once a weight lies outside [-64, 63]; with VNNI (`vpdpbusd`) the
//! pairs go straight to 32 bits (ONNX Runtime's session option `session.x64quantprecision`, in its
//! `onnxruntime_session_options_config_keys.h`, documents the overflow). docs/export-and-convert.md,
//! "int8 weights and the CPU", has the measurements.

use std::fmt;
use std::sync::OnceLock;

/// What this machine's CPU is and supports. Off x86-64 every x86 flag is false.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuInfo {
    /// The model name from /proc/cpuinfo (`unknown` where there is none).
    pub model: String,
    /// The target architecture (`x86_64`, `aarch64`, …).
    pub arch: &'static str,
    pub avx2: bool,
    pub fma: bool,
    pub avx512f: bool,
    /// AVX-512 VNNI (Cascade Lake, Ice Lake, AMD Zen 4 and later).
    pub avx512_vnni: bool,
    /// AVX-VNNI, the VEX-encoded form (Alder Lake, Sapphire Rapids, AMD Zen 5).
    pub avx_vnni: bool,
    /// AMX with int8 tiles (Sapphire Rapids and later).
    pub amx_int8: bool,
}

impl CpuInfo {
    /// Detects the running CPU: `std::arch::is_x86_feature_detected!` (CPUID and the OS's saved
    /// register state), and from /proc/cpuinfo the model name and AMX-INT8 (its detection in std
    /// is unstable, rust-lang/rust#126622; the kernel lists `amx_int8` only when it enabled the
    /// tile state).
    pub fn detect() -> CpuInfo {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        #[cfg(target_arch = "x86_64")]
        let flags = (
            std::arch::is_x86_feature_detected!("avx2"),
            std::arch::is_x86_feature_detected!("fma"),
            std::arch::is_x86_feature_detected!("avx512f"),
            std::arch::is_x86_feature_detected!("avx512vnni"),
            std::arch::is_x86_feature_detected!("avxvnni"),
        );
        #[cfg(not(target_arch = "x86_64"))]
        let flags = (false, false, false, false, false);
        let (avx2, fma, avx512f, avx512_vnni, avx_vnni) = flags;
        let amx_int8 = cfg!(target_arch = "x86_64") && has_flag(&cpuinfo, "amx_int8");
        CpuInfo {
            model: parse_model_name(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            arch: std::env::consts::ARCH,
            avx2,
            fma,
            avx512f,
            avx512_vnni,
            avx_vnni,
            amx_int8,
        }
    }

    /// Either form of VNNI (the 8-bit dot product into 32-bit lanes).
    pub fn vnni(&self) -> bool {
        self.avx512_vnni || self.avx_vnni
    }

    /// Whether ONNX Runtime's u8×s8 integer matrix product saturates here on weights outside
    /// [-64, 63] (see the module docs): x86-64 without VNNI.
    pub fn u8s8_saturates(&self) -> bool {
        self.arch == "x86_64" && !self.vnni()
    }
}

/// The detected CPU, once per process.
pub fn cpu() -> &'static CpuInfo {
    static CPU: OnceLock<CpuInfo> = OnceLock::new();
    CPU.get_or_init(CpuInfo::detect)
}

/// `CPU: <model> (x86_64): AVX2 yes, FMA yes, AVX-512F no, AVX512-VNNI no, AVX-VNNI no, AMX-INT8 no`.
impl fmt::Display for CpuInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let yes = |b: bool| if b { "yes" } else { "no" };
        write!(f, "CPU: {} ({})", self.model, self.arch)?;
        if self.arch == "x86_64" {
            write!(
                f,
                ": AVX2 {}, FMA {}, AVX-512F {}, AVX512-VNNI {}, AVX-VNNI {}, AMX-INT8 {}",
                yes(self.avx2),
                yes(self.fma),
                yes(self.avx512f),
                yes(self.avx512_vnni),
                yes(self.avx_vnni),
                yes(self.amx_int8)
            )?;
        }
        Ok(())
    }
}

/// The model name in /proc/cpuinfo (x86: `model name`; some ARM kernels: `Model` or `Hardware`);
/// none on other systems or where a container hides the file.
fn parse_model_name(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware"].iter().find_map(|key| {
        cpuinfo
            .lines()
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim() == *key)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    })
}

/// Whether the first processor's `flags` line of /proc/cpuinfo lists `flag`.
fn has_flag(cpuinfo: &str, flag: &str) -> bool {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "flags")
        .is_some_and(|(_, v)| v.split_whitespace().any(|f| f == flag))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_name_is_read_from_cpuinfo() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\nmodel name\t: AMD EPYC 7551 32-Core Processor\nflags\t\t: fpu avx2\n";
        assert_eq!(
            parse_model_name(info).as_deref(),
            Some("AMD EPYC 7551 32-Core Processor")
        );
        assert_eq!(
            parse_model_name("processor : 0\nHardware : BCM2835\n").as_deref(),
            Some("BCM2835")
        );
        assert_eq!(parse_model_name("processor : 0\n"), None);
        assert!(has_flag(info, "avx2"));
        assert!(!has_flag(info, "amx_int8"));
    }

    #[test]
    fn saturation_follows_vnni_on_x86_64_only() {
        let mut c = CpuInfo {
            model: "test".into(),
            arch: "x86_64",
            avx2: true,
            fma: true,
            avx512f: false,
            avx512_vnni: false,
            avx_vnni: false,
            amx_int8: false,
        };
        assert!(c.u8s8_saturates());
        c.avx_vnni = true;
        assert!(!c.u8s8_saturates());
        c.avx_vnni = false;
        c.avx512_vnni = true;
        assert!(!c.u8s8_saturates());
        c.avx512_vnni = false;
        c.arch = "aarch64";
        assert!(!c.u8s8_saturates());
        assert_eq!(c.to_string(), "CPU: test (aarch64)");
    }
}
