//! Start-up: acquire WebGPU (if any), download the backbone with progress, and measure which
//! backend runs the backbone faster on this machine (a software WebGPU adapter can be far
//! slower than the CPU).

use std::rc::Rc;

use burn::module::Module;
use burn::tensor::{Device, Distribution, Tensor};
use graft_model::{MobileNetV2, WeightMap};
use leptos::prelude::*;
use web_time::Instant;

use crate::browser::{fetch_bytes, has_webgpu};
use crate::state::{AppState, Backend, Boot, ComputeInfo};

pub const WEIGHTS_URL: &str = "weights/mobilenet_v2.safetensors";

pub async fn boot(state: AppState) {
    state.boot.set(Boot::Starting("looking for WebGPU".into()));
    let mut info = ComputeInfo::default();
    if has_webgpu() {
        match Device::wgpu_options().init_with_setup_async().await {
            Ok((device, setup)) => {
                let a = setup.adapter.get_info();
                info.fallback_adapter = a.device_type == burn::tensor::wgpu::wgpu::DeviceType::Cpu;
                // Browsers often hide the adapter's name; say what is known.
                let name = if a.name.is_empty() { "unnamed adapter".to_string() } else { a.name.clone() };
                info.adapter = Some(format!("{name} ({:?}, {:?})", a.backend, a.device_type));
                state.engine.update_value(|e| e.webgpu = Some(device));
            }
            Err(e) => info.webgpu_error = Some(format!("WebGPU adapter unavailable: {e}")),
        }
    } else {
        info.webgpu_error = Some("this browser does not expose WebGPU (navigator.gpu)".into());
    }
    state.compute.set(info.clone());

    state.boot.set(Boot::Loading { loaded: 0, total: None });
    let bytes = match fetch_bytes(WEIGHTS_URL, |loaded, total| state.boot.set(Boot::Loading { loaded, total })).await {
        Ok(b) => b,
        Err(e) => return state.boot.set(Boot::Failed(format!("could not download the backbone: {e}"))),
    };
    let weights = match WeightMap::from_safetensors_bytes(bytes) {
        Ok(w) => Rc::new(w),
        Err(e) => return state.boot.set(Boot::Failed(format!("backbone weights are invalid: {e}"))),
    };
    state.engine.update_value(|e| e.pretrained = Some(weights.clone()));

    state.boot.set(Boot::Probing);
    info.cpu_speed = probe(&weights, &Device::flex()).await.ok();
    if let Some(gpu) = state.device(Backend::Webgpu) {
        match probe(&weights, &gpu).await {
            Ok(speed) => info.webgpu_speed = Some(speed),
            Err(e) => info.webgpu_error = Some(format!("WebGPU failed the speed check: {e}")),
        }
    }
    info.auto_choice = Some(match (info.webgpu_speed, info.cpu_speed) {
        (Some(g), Some(c)) if g > c => Backend::Webgpu,
        (Some(_), None) => Backend::Webgpu,
        _ => Backend::Cpu,
    });
    state.compute.set(info);
    state.boot.set(Boot::Ready);
}

/// Backbone images/s for one 224×224 image, after one warm-up run (shader compilation).
async fn probe(weights: &WeightMap, device: &Device) -> Result<f32, String> {
    let backbone = MobileNetV2::load(weights, device).map_err(|e| e.to_string())?.valid();
    let mut seconds = 0.0;
    for run in 0..2 {
        let x = Tensor::<4>::random([1, 3, 224, 224], Distribution::Normal(0.0, 1.0), device);
        let t0 = Instant::now();
        let features = backbone.forward(x);
        features.slice([0..1, 0..1]).into_data_async().await.map_err(|e| format!("{e:?}"))?;
        if run == 1 {
            seconds = t0.elapsed().as_secs_f32();
        }
        // Let the page repaint between runs.
        gloo::timers::future::TimeoutFuture::new(0).await;
    }
    Ok(1.0 / seconds.max(1e-6))
}
