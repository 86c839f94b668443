//! `--device auto|cpu|cuda[:N]`: CUDA when asked for or present, with a clear error when it is
//! asked for and absent.

use std::fmt;
use std::str::FromStr;

use tch::{Cuda, Device};

use crate::error::{Result, TrainError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// CUDA device 0 when libtorch sees one, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda(usize),
}

impl FromStr for DeviceChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(DeviceChoice::Auto),
            "cpu" => Ok(DeviceChoice::Cpu),
            "cuda" => Ok(DeviceChoice::Cuda(0)),
            other => other
                .strip_prefix("cuda:")
                .and_then(|n| n.parse().ok())
                .map(DeviceChoice::Cuda)
                .ok_or_else(|| format!("expected auto, cpu, cuda or cuda:N, found `{other}`")),
        }
    }
}

impl fmt::Display for DeviceChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceChoice::Auto => f.write_str("auto"),
            DeviceChoice::Cpu => f.write_str("cpu"),
            DeviceChoice::Cuda(i) => write!(f, "cuda:{i}"),
        }
    }
}

impl DeviceChoice {
    pub fn resolve(self) -> Result<Device> {
        match self {
            DeviceChoice::Cpu => Ok(Device::Cpu),
            DeviceChoice::Auto => Ok(Device::cuda_if_available()),
            DeviceChoice::Cuda(index) => {
                if !Cuda::is_available() {
                    return Err(TrainError::CudaUnavailable {
                        libtorch: libtorch_description(),
                    });
                }
                let count = Cuda::device_count() as usize;
                if index >= count {
                    return Err(TrainError::CudaIndex { index, count });
                }
                Ok(Device::Cuda(index))
            }
        }
    }
}

/// Where libtorch was found at build time and whether it was built with CUDA, for messages.
pub fn libtorch_description() -> String {
    format!(
        "libtorch with CUDA support: {}, CUDA devices: {}, cuDNN: {}",
        tch::utils::has_cuda(),
        Cuda::device_count(),
        Cuda::cudnn_is_available()
    )
}
