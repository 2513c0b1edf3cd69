//! Timing this engine: the benchmark page, graft's GPU kernels checked against the CPU, and the
//! start-up measurement that picks an engine per mode.

use burn::tensor::Device;
use graft_model::{Architecture, RandomWeights};
use graft_train::measure_speed;
use web_time::Instant;

use crate::protocol::{Backend, Candidate, CandidateTiming, Event, Level};
use crate::worker::engine::Engine;
use crate::worker::link::{notice, post, wasm_memory_bytes, yield_now};

impl Engine {
    pub(super) async fn bench(&self, batches: &[usize], iterations: usize) {
        let backend = self.backend();
        let device = self.device(backend);
        let weights = self.pretrained.borrow().get(&graft_model::Architecture::MobileNetV2).cloned();
        let Some(weights) = weights else {
            return post(&Event::Bench {
                report: Err("the backbone is not loaded".into()),
                backend: backend.label().into(),
            });
        };
        let options = graft_train::BenchOptions::default();
        let mut report = graft_train::bench(&weights, &device, batches, iterations.max(1), 224, options).await;
        if let Ok(r) = report.as_mut() {
            r.rows.push(graft_project::bench_ingest(8));
            r.rows.push(graft_project::bench_ingest_phone(3));
        }
        post(&Event::Bench { report, backend: self.backend_label(backend) });
        // Linear memory only grows: after a benchmark it is the peak its largest batch needed.
        post(&Event::Memory { wasm_bytes: wasm_memory_bytes() });
    }

    /// "CPU · 4 threads", "WebGPU": the backend in use, as the bench page and the backbone
    /// chooser name it.
    fn backend_label(&self, backend: Backend) -> String {
        match (backend, self.compute.borrow().cpu_threads) {
            (Backend::Cpu, threads) if threads > 1 => format!("{} · {threads} threads", backend.label()),
            _ => backend.label().to_string(),
        }
    }

    /// Each backbone's frozen and discriminative speed on the backend in use: the chooser's
    /// "expected speed here". Random weights of each network's shape, so nothing is downloaded.
    pub(super) async fn time_backbones(&self) {
        let backend = self.backend();
        let device = self.device(backend);
        let engine = self.backend_label(backend);
        for arch in Architecture::ALL {
            match measure_speed(&RandomWeights::for_arch(arch, 0), &device, None, None).await {
                Ok(speed) => post(&Event::BackboneSpeed { arch, engine: engine.clone(), speed }),
                Err(e) => notice(Level::Error, format!("timing {}: {e}", arch.title())),
            }
            yield_now().await;
        }
    }

    /// graft's GPU kernels against their definition on this engine's WebGPU device (whether or
    /// not its start-up check kept them: this is how to see which one answered wrong).
    pub(super) async fn check_kernels(&self) {
        #[cfg(feature = "webgpu")]
        let device = self.gpu.borrow().as_ref().map(|g| g.device.clone());
        #[cfg(feature = "webgpu")]
        let checks = match device {
            Some(device) if !self.gpu_lost.get() => graft_model::gpu::check_kernels(&device).await,
            _ => Err("WebGPU is not in use in this engine (not available, refused or lost)".into()),
        };
        #[cfg(not(feature = "webgpu"))]
        let checks = Err("this engine has no WebGPU (the multi-threaded CPU engine)".into());
        post(&Event::KernelChecks { checks });
    }

    /// Times each backend of this engine in both modes: the CPU first (fast everywhere, and
    /// what a slow GPU is cut short against), then WebGPU if it passed its start-up check.
    pub(super) async fn measure(&self, mut best_frozen: Option<f32>, mut best_discriminative: Option<f32>) {
        // WebGPU is measured only once it passed its check.
        if self.compute.borrow().gpu_checking {
            post(&Event::Measuring { what: "checking WebGPU's answers first".into() });
        }
        while self.compute.borrow().gpu_checking {
            gloo::timers::future::TimeoutFuture::new(100).await;
        }
        let t0 = Instant::now();
        let weights = self.pretrained.borrow().get(&graft_model::Architecture::MobileNetV2).cloned();
        let Some(weights) = weights else {
            return notice(Level::Error, "cannot measure: the backbone is not loaded");
        };
        let mut timings = Vec::new();
        let threads = self.compute.borrow().cpu_threads.max(1);
        let mut devices = vec![(if threads > 1 { Candidate::CpuThreads } else { Candidate::CpuOne }, Device::flex())];
        let gpu = self.gpu.borrow().as_ref().map(|g| g.device.clone());
        match gpu {
            Some(device) if !self.gpu_lost.get() => devices.push((Candidate::Webgpu, device)),
            _ if cfg!(feature = "webgpu") => {
                let reason = self.compute.borrow().webgpu_error.clone().unwrap_or_else(|| "no WebGPU".into());
                timings.push(CandidateTiming {
                    candidate: Candidate::Webgpu,
                    threads: 1,
                    speed: None,
                    refused: Some(reason),
                });
            }
            _ => {}
        }
        for (candidate, device) in devices {
            let threads = if candidate == Candidate::CpuThreads { threads } else { 1 };
            let mut timing = CandidateTiming { candidate, threads, speed: None, refused: None };
            post(&Event::Measuring { what: timing.label() });
            match measure_speed(weights.as_ref(), &device, best_frozen, best_discriminative).await {
                Ok(speed) => {
                    let max = |a: Option<f32>, b: Option<f32>| a.into_iter().chain(b).reduce(f32::max);
                    best_frozen = max(best_frozen, speed.frozen.images_per_sec);
                    best_discriminative = max(best_discriminative, speed.discriminative.images_per_sec);
                    timing.speed = Some(speed);
                }
                Err(e) => timing.refused = Some(format!("failed while timing: {e}")),
            }
            timings.push(timing);
            yield_now().await;
        }
        post(&Event::Measured { timings, seconds: t0.elapsed().as_secs_f32() });
    }
}
