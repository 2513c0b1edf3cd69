//! Counting (and, natively, timing) the kernels a pass launches, through CubeCL's launch
//! observer: how many dispatches a frozen batch or a fine-tune step costs, and where the time
//! goes by op group.

use std::collections::BTreeMap;
#[cfg(feature = "gpu")]
use std::sync::{Arc, Mutex};

#[cfg(feature = "gpu")]
use cubecl_runtime::logging::{Duration, LaunchObservation, LaunchObserver, TimingMethod, TimingRequest};

/// Launches seen while a [`LaunchCount`] was running, by op group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Launches {
    pub total: u64,
    /// Group → (launches, seconds when timed).
    pub groups: BTreeMap<&'static str, (u64, f64)>,
}

impl Launches {
    /// The launches of one of `batches` identical batches (each group's count rounded).
    #[must_use]
    pub fn per_batch(self, batches: usize) -> Self {
        let n = batches.max(1) as u64;
        let groups: BTreeMap<_, _> =
            self.groups.into_iter().map(|(g, (count, s))| (g, ((count + n / 2) / n, s / n as f64))).collect();
        Launches { total: groups.values().map(|(count, _)| count).sum(), groups }
    }
}

/// The op group of a kernel, from the name the kernel gives itself.
pub fn op_group(kernel: &str) -> &'static str {
    let k = kernel.to_ascii_lowercase();
    if k.contains("graft_model") {
        if k.contains("depthwise") {
            "depthwise (graft)"
        } else if k.contains("affine") {
            "BatchNorm+ReLU6 (graft)"
        } else if k.contains("adamw") {
            "AdamW (graft)"
        } else if k.contains("dense") {
            "1×1 matmul gradients (graft)"
        } else {
            "stem patches (graft)"
        }
    } else if k.contains("matmul") || k.contains("gemm") {
        "matmul"
    } else if k.contains("conv") {
        "convolution (burn)"
    } else if k.contains("reduce") || k.contains("sum") || k.contains("mean") || k.contains("argmax") {
        "reduction"
    } else if k.contains("contiguous")
        || k.contains("copy")
        || k.contains("permute")
        || k.contains("slice")
        || k.contains("cat")
    {
        "layout copy"
    } else if k.contains("fuse") || k.contains("fusion") || k.contains("elemwise") {
        "fused element-wise"
    } else if k.contains("random") || k.contains("prng") {
        "random"
    } else {
        "element-wise (burn)"
    }
}

#[cfg(feature = "gpu")]
struct Counter {
    timed: bool,
    groups: Mutex<BTreeMap<&'static str, (u64, f64)>>,
}

#[cfg(feature = "gpu")]
impl LaunchObserver for Counter {
    fn launched(&self, kernel: &'static str) {
        if let Ok(mut g) = self.groups.lock() {
            g.entry(op_group(kernel)).or_default().0 += 1;
        }
    }

    fn timing(&self) -> TimingRequest {
        if self.timed {
            TimingRequest::Resolved
        } else {
            TimingRequest::None
        }
    }

    fn timed(&self, kernel: &'static str, duration: Duration, _method: TimingMethod) {
        if let Ok(mut g) = self.groups.lock() {
            g.entry(op_group(kernel)).or_default().1 += duration.as_secs_f64();
        }
    }
}

/// Counts every kernel launched until [`LaunchCount::finish`]. With `timed`, each launch is
/// also timed on the device — which runs kernels one at a time, so time passes differently
/// from an untimed run: use it for the split by op group, not for throughput. Timing blocks
/// until each kernel ends, which wasm cannot do: there, ask for counts only.
pub struct LaunchCount {
    #[cfg(feature = "gpu")]
    counter: Arc<Counter>,
    #[cfg(feature = "gpu")]
    _observation: LaunchObservation,
}

impl LaunchCount {
    pub fn start(timed: bool) -> Self {
        #[cfg(feature = "gpu")]
        {
            let counter = Arc::new(Counter { timed, groups: Mutex::default() });
            let observation = LaunchObservation::new(counter.clone());
            Self { counter, _observation: observation }
        }
        #[cfg(not(feature = "gpu"))]
        {
            let _ = timed;
            Self {}
        }
    }

    /// What was launched; `None` in a build without the GPU backends (nothing can launch).
    pub fn finish(self) -> Option<Launches> {
        #[cfg(feature = "gpu")]
        {
            let groups = self.counter.groups.lock().map(|g| g.clone()).unwrap_or_default();
            Some(Launches { total: groups.values().map(|(n, _)| n).sum(), groups })
        }
        #[cfg(not(feature = "gpu"))]
        None
    }
}

/// Whether `device` is a GPU (CubeCL) device, whose kernels a [`LaunchCount`] sees.
pub fn is_gpu(device: &burn::tensor::Device) -> bool {
    #[cfg(feature = "gpu")]
    {
        matches!(device.clone().without_autodiff().as_dispatch(), burn::backend::DispatchDevice::Cube(_))
    }
    #[cfg(not(feature = "gpu"))]
    {
        let _ = device;
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_batch_divides_each_group_and_rounds() {
        let launches = Launches { total: 0, groups: BTreeMap::from([("matmul", (20, 2.0)), ("AdamW", (7, 0.5))]) };
        let one = launches.per_batch(2);
        assert_eq!(one.groups["matmul"], (10, 1.0));
        assert_eq!(one.groups["AdamW"], (4, 0.25));
        assert_eq!(one.total, 14);
    }
}
