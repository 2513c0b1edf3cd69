//! The engine's start: WebGPU looked for, the backbone downloaded, WebGPU's start-up check
//! started beside the rest, the saved project restored.

use std::rc::Rc;

use graft_model::Architecture;

use crate::protocol::{BootStage, ComputeInfo, Event};
use crate::worker::boot;
use crate::worker::engine::Engine;
use crate::worker::link::post;
// WebGPU's start-up check (the multi-threaded engine has no WebGPU).
#[cfg(feature = "webgpu")]
use {
    crate::protocol::Level, crate::worker::boot::Gpu, crate::worker::link::notice, graft_model::WeightMap,
    wasm_bindgen_futures::spawn_local,
};

impl Engine {
    pub async fn boot(self: &Rc<Self>) {
        self.measure_only.set(boot::worker_param("measure-only").is_some());
        post(&Event::Boot(BootStage::Starting { message: "looking for WebGPU".into() }));
        let mut info = ComputeInfo { cpu_threads: boot::cpu_threads(), ..ComputeInfo::default() };
        let gpu = boot::init_webgpu(&mut info).await;
        *self.gpu.borrow_mut() = gpu;
        *self.compute.borrow_mut() = info;
        self.post_compute();

        post(&Event::Boot(BootStage::Downloading { loaded: 0, total: None }));
        let downloading = |loaded, total| post(&Event::Boot(BootStage::Downloading { loaded, total }));
        // The multi-threaded engine has no WebGPU to check with them.
        #[cfg_attr(not(feature = "webgpu"), allow(unused_variables))]
        let weights = match self.download_pretrained(Architecture::MobileNetV2, downloading).await {
            Ok(w) => w,
            Err(message) => return post(&Event::Boot(BootStage::Failed { message })),
        };
        // WebGPU is not offered until it passed its check, which runs beside the rest: the app
        // is usable on the CPU meanwhile (a software adapter takes seconds to compile kernels).
        #[cfg(feature = "webgpu")]
        {
            let gpu = self.gpu.borrow_mut().take();
            if let Some(gpu) = gpu {
                self.compute.borrow_mut().gpu_checking = true;
                self.post_compute();
                let engine = self.clone();
                spawn_local(async move { engine.check_gpu(gpu, &weights).await });
            }
        }

        if !self.measure_only.get() {
            post(&Event::Boot(BootStage::Restoring));
            crate::worker::restore::restore(self).await;
        }
        post(&Event::Boot(BootStage::Ready));
    }

    /// Verify before trusting: WebGPU is offered only after one training step on it agreed with
    /// the CPU's, without a WebGPU error (see `gpu_check`); otherwise it is refused for this
    /// session and the CPU trains.
    #[cfg(feature = "webgpu")]
    pub(super) async fn check_gpu(&self, gpu: Gpu, weights: &WeightMap) {
        let fault = boot::worker_param("probe-fault");
        let check = crate::worker::gpu_check::check(weights, &gpu, fault.as_deref()).await;
        if check.passed {
            *self.gpu.borrow_mut() = Some(gpu);
        } else {
            let reason = match check.worst {
                Some(_) => format!("WebGPU answered wrong: {}", check.summary),
                None => format!("WebGPU failed its check: {}", check.summary),
            };
            notice(Level::Error, format!("{reason}; training on the CPU"));
            self.compute.borrow_mut().webgpu_error = Some(format!("refused by the start-up check ({reason})"));
        }
        {
            let mut c = self.compute.borrow_mut();
            c.gpu_check = Some(check);
            c.gpu_checking = false;
        }
        self.post_compute();
    }
}
