//! Backend selection and the pretrained weights location.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use graft_model::{Architecture, WeightMap};

use crate::args::{BackendName, Common};

pub fn device(name: BackendName) -> Device {
    match name {
        BackendName::Flex => Device::flex(),
        // wgpu picks the platform's graphics API: Vulkan (Mesa lavapipe on a GPU-less Linux box).
        BackendName::Wgpu => Device::wgpu(Default::default()),
    }
}

pub fn backend_label(name: BackendName) -> &'static str {
    match name {
        BackendName::Flex => "flex",
        BackendName::Wgpu => "wgpu",
    }
}

/// `--weights`, else `$GRAFT_WEIGHTS`, else the file the setup script converts for `arch`.
pub fn weights_path(common: &Common, arch: Architecture) -> PathBuf {
    common
        .weights
        .clone()
        .or_else(|| std::env::var_os("GRAFT_WEIGHTS").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("static/weights").join(arch.weights_file()))
}

pub fn load_pretrained(path: &Path) -> Result<WeightMap, String> {
    let bytes = std::fs::read(path)
        .map_err(|e| format!("cannot read weights {}: {e} (run scripts/setup.sh first)", path.display()))?;
    WeightMap::from_safetensors_bytes(bytes).map_err(|e| e.to_string())
}

/// Peak resident memory of this process (Linux), in MiB.
pub fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
