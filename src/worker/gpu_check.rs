//! Verify before trusting: at start-up, before WebGPU is offered, one training step of the real
//! model runs on the WebGPU device inside WebGPU error scopes (validation, internal, out of
//! memory) and is compared with the same step on the CPU (`graft_train::probe_step`). Any error
//! or difference past `PROBE_TOLERANCE` refuses WebGPU for the session. On wasm a shader that
//! fails WebGPU validation does not fail its launch (tracel-ai/cubecl#1641): its dispatch is
//! skipped and its outputs keep stale data — the error scopes and the comparison both see that.

use burn::tensor::Device;
use graft_model::WeightMap;
use graft_train::{compare_readings, probe_step, PROBE_TOLERANCE};
use web_time::Instant;

use crate::protocol::GpuCheck;
use crate::worker::boot::Gpu;

fn refused(summary: String, t0: Instant) -> GpuCheck {
    GpuCheck { passed: false, summary, worst: None, tolerance: PROBE_TOLERANCE, seconds: t0.elapsed().as_secs_f32() }
}

/// Runs the check. `fault` is a testing aid (the page's `?probe-fault=`): `logits`, `loss`,
/// `gradient` or `update` perturbs WebGPU's reading before the comparison; `validation` makes a
/// WebGPU call the device must refuse, inside the scopes.
pub async fn check(weights: &WeightMap, gpu: &Gpu, fault: Option<&str>) -> GpuCheck {
    use burn::tensor::wgpu::wgpu;
    let t0 = Instant::now();
    let cpu = match probe_step(weights, &Device::flex()).await {
        Ok(r) => r,
        Err(e) => return refused(format!("the CPU's reference step failed ({e}), so WebGPU could not be checked"), t0),
    };

    let validation = gpu.wgpu.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = gpu.wgpu.push_error_scope(wgpu::ErrorFilter::Internal);
    let memory = gpu.wgpu.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
    if fault == Some("validation") {
        // A buffer both mappable for reading and for writing: WebGPU forbids that usage.
        let _ = gpu.wgpu.create_buffer(&wgpu::BufferDescriptor {
            label: Some("graft probe-fault"),
            size: 4,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::MAP_WRITE,
            mapped_at_creation: false,
        });
    }
    // Every result is read back before the scopes close: the work was submitted and done.
    let reading = probe_step(weights, &gpu.device).await;
    // Scopes close in reverse order; each reports the first error it caught.
    let (memory, internal, validation) = (memory.pop(), internal.pop(), validation.pop());
    let errors = [("out-of-memory", memory.await), ("internal", internal.await), ("validation", validation.await)];
    if let Some((kind, Some(error))) = errors.into_iter().find(|(_, e)| e.is_some()) {
        return refused(format!("WebGPU reported a {kind} error during the check: {error}"), t0);
    }
    let gpu_reading = match reading {
        Ok(r) => r,
        Err(e) => return refused(format!("the WebGPU step failed: {e}"), t0),
    };
    let gpu_reading = match fault {
        Some(what @ ("logits" | "loss" | "gradient" | "update")) => gpu_reading.perturbed(what, 0.8),
        _ => gpu_reading,
    };
    let comparison = compare_readings(&cpu, &gpu_reading, PROBE_TOLERANCE);
    let passed = comparison.passed();
    // Every quantity's difference, for whoever looks (the page shows the closest call).
    for d in &comparison.diffs {
        let line = format!("graft WebGPU check: {} differs by {:.2e} (allowed {:.2e})", d.what, d.max_diff, d.allowed);
        web_sys::console::log_1(&line.into());
    }
    let summary = if passed {
        format!(
            "one training step agrees with the CPU's ({}; CPU step {:.1} s, WebGPU step {:.1} s)",
            comparison.describe(),
            cpu.seconds,
            gpu_reading.seconds
        )
    } else {
        comparison.describe()
    };
    GpuCheck {
        passed,
        summary,
        worst: comparison.worst().cloned(),
        tolerance: PROBE_TOLERANCE,
        seconds: t0.elapsed().as_secs_f32(),
    }
}
