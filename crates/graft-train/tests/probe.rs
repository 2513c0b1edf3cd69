//! The start-up check of a compute device (one real training step, read back and compared with
//! the CPU's) and the speed measurement the web app chooses its engine with.

use std::path::PathBuf;

use burn::tensor::Device;
use futures::executor::block_on;
use graft_model::WeightMap;
use graft_train::{compare_readings, measure_speed, probe_step, ProbeReading, PROBE_TOLERANCE};

fn pretrained() -> WeightMap {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../static/weights/mobilenet_v2.safetensors");
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()));
    WeightMap::from_safetensors_bytes(bytes).unwrap()
}

fn report(label: &str, reference: &ProbeReading, candidate: &ProbeReading) {
    let c = compare_readings(reference, candidate, PROBE_TOLERANCE);
    println!("{label}: passed {} in {:.2} s; {}", c.passed(), candidate.seconds, c.describe());
    for d in &c.diffs {
        println!("  {:<60} max diff {:.2e}  allowed {:.2e}  ({:.1e} of it)", d.what, d.max_diff, d.allowed, d.ratio());
    }
}

#[test]
fn the_cpu_agrees_with_itself_and_a_wrong_answer_is_named() {
    let weights = pretrained();
    let cpu = block_on(probe_step(&weights, &Device::flex())).unwrap();
    let again = block_on(probe_step(&weights, &Device::flex())).unwrap();
    report("flex vs flex", &cpu, &again);
    assert!(compare_readings(&cpu, &again, PROBE_TOLERANCE).passed());
    // Every kind of quantity is there, with real values (a step that moved nothing proves little).
    for what in ["loss", "logits", "gradient of features.0.0.weight", "update of classifier.1.weight"] {
        let q = cpu.quantities.iter().find(|q| q.what.starts_with(what)).unwrap_or_else(|| panic!("no {what}"));
        assert!(
            q.values.iter().all(|v| v.is_finite()) && q.values.iter().any(|v| *v != 0.0),
            "{what}: {:?}",
            &q.values[..4]
        );
    }
    assert_eq!(cpu.get("logits").unwrap().len(), 2 * 3);

    for (what, by) in [("logits", 0.8), ("gradient of features.0.0.weight", 1e-3), ("update", 1e-5)] {
        let wrong = again.clone().perturbed(what, by);
        let c = compare_readings(&cpu, &wrong, PROBE_TOLERANCE);
        assert!(!c.passed(), "{what} off by {by} passed: {}", c.describe());
        assert!(c.describe().starts_with(what), "{what}: {}", c.describe());
    }
}

#[test]
fn wgpu_agrees_with_the_cpu() {
    // Natively wgpu runs on Vulkan (Mesa lavapipe on a GPU-less machine, installed by setup).
    let weights = pretrained();
    let cpu = block_on(probe_step(&weights, &Device::flex())).unwrap();
    let gpu = block_on(probe_step(&weights, &Device::wgpu(Default::default()))).unwrap();
    report("wgpu vs flex", &cpu, &gpu);
    let c = compare_readings(&cpu, &gpu, PROBE_TOLERANCE);
    assert!(c.passed(), "{}", c.describe());
    // The margin: the worst quantity uses under a tenth of its allowance.
    assert!(c.worst().unwrap().ratio() < 0.1, "{}", c.describe());
}

#[test]
fn speed_is_measured_per_mode_and_a_far_slower_device_is_cut_short() {
    let weights = pretrained();
    let cpu = block_on(measure_speed(&weights, &Device::flex(), None, None)).unwrap();
    println!("flex: {cpu:?}");
    let (frozen, tuned) = (cpu.frozen.images_per_sec.unwrap(), cpu.discriminative.images_per_sec.unwrap());
    assert!(frozen > tuned && tuned > 0.0, "{cpu:?}");
    assert!(cpu.frozen.cut_short.is_none() && cpu.discriminative.cut_short.is_none());
    // Against a device a hundred times faster, this one stops after its batch of one.
    let behind = block_on(measure_speed(&weights, &Device::flex(), Some(frozen * 100.0), None)).unwrap();
    println!("flex against 100× faster: {behind:?}");
    assert_eq!(behind.frozen.batch, 1);
    assert!(behind.frozen.cut_short.as_deref().is_some_and(|c| c.contains("slower")), "{behind:?}");
    assert!(behind.discriminative.images_per_sec.is_none(), "{behind:?}");
    assert!(behind.seconds < cpu.seconds, "cutting short saves time: {behind:?} vs {cpu:?}");
}

/// A wgpu device that allows `storage_buffers` storage buffers per shader stage (WebGPU's
/// defaults otherwise), as a browser's adapter may: the web app checks this limit before
/// trying graft's kernels.
fn wgpu_with_storage_buffers(storage_buffers: u32) -> Device {
    use burn::tensor::wgpu::{wgpu, WgpuSetup};
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle());
    let adapter = block_on(instance.request_adapter(&wgpu::RequestAdapterOptions::default())).expect("an adapter");
    let limits = wgpu::Limits { max_storage_buffers_per_shader_stage: storage_buffers, ..wgpu::Limits::default() };
    let (device, queue) = block_on(adapter.request_device(&wgpu::DeviceDescriptor {
        label: None,
        required_features: adapter.features().difference(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS),
        required_limits: limits,
        memory_hints: wgpu::MemoryHints::MemoryUsage,
        trace: wgpu::Trace::Off,
        experimental_features: wgpu::ExperimentalFeatures::disabled(),
    }))
    .expect("a device");
    let backend = adapter.get_info().backend;
    Device::wgpu_options().setup(WgpuSetup { instance, adapter, device, queue, backend }).init().expect("registered")
}

#[test]
fn graft_kernels_need_exactly_the_storage_buffers_the_web_app_checks_for() {
    let needed = graft_model::gpu::STORAGE_BUFFERS_NEEDED;
    let weights = pretrained();
    let cpu = block_on(probe_step(&weights, &Device::flex())).unwrap();
    let enough = block_on(probe_step(&weights, &wgpu_with_storage_buffers(needed))).unwrap();
    let c = compare_readings(&cpu, &enough, PROBE_TOLERANCE);
    assert!(c.passed(), "with {needed} storage buffers: {}", c.describe());
    // One fewer (WebGPU's guaranteed 8 is fewer still) and a training kernel cannot be built.
    let error = block_on(probe_step(&weights, &wgpu_with_storage_buffers(needed - 1))).unwrap_err();
    assert!(error.contains("storage") || error.contains("StorageBuffers"), "{error}");
}
