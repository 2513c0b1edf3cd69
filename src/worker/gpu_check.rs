//! Verify before trusting: at start-up, before WebGPU is offered, one training step of the real
//! model runs on the WebGPU device inside WebGPU error scopes (validation, internal, out of
//! memory) and is compared with the same step on the CPU (`graft_train::probe_step`), first with
//! graft's own GPU kernels, then (if those answered wrong) with burn's generic ones. Any error, or
//! a difference past `PROBE_TOLERANCE` on both, refuses WebGPU for the session. On wasm a shader that
//! fails WebGPU validation does not fail its launch (tracel-ai/cubecl#1641): its dispatch is
//! skipped and its outputs keep stale data — the error scopes and the comparison both see that.
//! Which kernel answered wrong is the bench page's "Check GPU kernels" (each kernel alone against
//! its definition): too slow on a software adapter to run at every start.

use burn::tensor::Device;
use graft_model::WeightMap;
use graft_train::{compare_readings, probe_step, ProbeComparison, ProbeReading, PROBE_TOLERANCE};
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
    let t0 = Instant::now();
    let cpu = match probe_step(weights, &Device::flex()).await {
        Ok(r) => r,
        Err(e) => return refused(format!("the CPU's reference step failed ({e}), so WebGPU could not be checked"), t0),
    };

    // graft's own kernels first, where the device has the storage bindings they need; if WebGPU
    // answers them wrong or reports an error, burn's generic kernels get their own check before
    // WebGPU is refused: a driver that miscompiles or refuses one of graft's kernels can still
    // train correctly on burn's.
    let bindings = gpu.wgpu.limits().max_storage_buffers_per_shader_stage;
    let mut outcome = if bindings >= graft_model::gpu::STORAGE_BUFFERS_NEEDED {
        graft_model::gpu::set_enabled(true);
        probe_gpu(weights, gpu, fault, &cpu).await
    } else {
        Err(format!(
            "graft's kernels need {} storage buffers per shader stage, this device allows {bindings}",
            graft_model::gpu::STORAGE_BUFFERS_NEEDED
        ))
    };
    let first = match &outcome {
        Ok((comparison, _)) if comparison.passed() => None,
        Ok((comparison, _)) => Some(format!("graft's kernels answered wrong ({})", comparison.describe())),
        Err(e) => Some(format!("graft's kernels were not usable ({e})")),
    };
    let mut before = String::new();
    if let Some(first) = first {
        log(&format!("graft WebGPU check: {first}; trying burn's generic kernels"));
        before = format!("{first}; with burn's generic kernels: ");
        graft_model::gpu::set_enabled(false);
        outcome = probe_gpu(weights, gpu, fault, &cpu).await.map(|(c, r)| (c, r.with_note(before.clone())));
    }
    let (comparison, gpu_reading) = match outcome {
        Ok(done) => done,
        Err(summary) => {
            graft_model::gpu::set_enabled(true);
            return refused(format!("{before}{summary}"), t0);
        }
    };
    let passed = comparison.passed();
    if !passed {
        graft_model::gpu::set_enabled(true);
    }
    let kernels = if graft_model::gpu::enabled() { "graft's kernels" } else { "burn's generic kernels" };
    let summary = if passed {
        format!(
            "{}one training step with {kernels} agrees with the CPU's ({}; CPU step {:.1} s, WebGPU step {:.1} s)",
            gpu_reading.note,
            comparison.describe(),
            cpu.seconds,
            gpu_reading.reading.seconds
        )
    } else {
        format!("{}{}", gpu_reading.note, comparison.describe())
    };
    GpuCheck {
        passed,
        summary,
        worst: comparison.worst().cloned(),
        tolerance: PROBE_TOLERANCE,
        seconds: t0.elapsed().as_secs_f32(),
    }
}

fn log(line: &str) {
    web_sys::console::log_1(&line.into());
}

/// A WebGPU reading, with what came before it (a first attempt that failed).
struct GpuReading {
    reading: ProbeReading,
    note: String,
}

impl GpuReading {
    fn with_note(mut self, note: String) -> Self {
        self.note = note;
        self
    }
}

/// One probe step on WebGPU inside error scopes, compared with the CPU's: the comparison, or
/// why there is none (a WebGPU error, a failed step).
async fn probe_gpu(
    weights: &WeightMap,
    gpu: &Gpu,
    fault: Option<&str>,
    cpu: &ProbeReading,
) -> Result<(ProbeComparison, GpuReading), String> {
    use burn::tensor::wgpu::wgpu;
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
        return Err(format!("WebGPU reported a {kind} error during the check: {error}"));
    }
    let reading = reading.map_err(|e| format!("the WebGPU step failed: {e}"))?;
    let reading = match fault {
        Some(what @ ("logits" | "loss" | "gradient" | "update")) => reading.perturbed(what, 0.8),
        _ => reading,
    };
    let comparison = compare_readings(cpu, &reading, PROBE_TOLERANCE);
    // Every quantity's difference, for whoever looks (the page shows the closest call).
    for d in &comparison.diffs {
        log(&format!("graft WebGPU check: {} differs by {:.2e} (allowed {:.2e})", d.what, d.max_diff, d.allowed));
    }
    Ok((comparison, GpuReading { reading, note: String::new() }))
}
