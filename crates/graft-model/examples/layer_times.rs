//! Where a frozen forward pass spends its time, by layer kind and shape (flex CPU, BatchNorm
//! folded as in frozen feature extraction). A measurement, not a test:
//! `cargo run --release -p graft-model --features parallel --example layer_times [batch]`
use std::collections::BTreeMap;
use std::time::Instant;

use burn::tensor::{Device, Distribution, Tensor};
use graft_model::{Architecture, Backbone, RandomWeights};

/// Waits for `x` to be computed (flex is eager; a one-element read is enough).
fn sync(x: &Tensor<4>) {
    let _ = x.clone().slice([0..1, 0..1, 0..1, 0..1]).into_data();
}

fn main() {
    let batch: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(16);
    let device = Device::flex();
    let net =
        Backbone::load(Architecture::MobileNetV2, &RandomWeights::new(1), &device).expect("random weights").folded();
    let timed = 3;
    let mut totals = BTreeMap::<String, f64>::new();
    for iter in 0..=timed {
        let mut record = |name: String, f: &dyn Fn(Tensor<4>) -> Tensor<4>, x: Tensor<4>| {
            let t0 = Instant::now();
            let y = f(x);
            sync(&y);
            if iter > 0 {
                *totals.entry(name).or_default() += t0.elapsed().as_secs_f64();
            }
            y
        };
        let mut x = Tensor::<4>::random([batch, 3, 224, 224], Distribution::Normal(0.0, 1.0), &device);
        sync(&x);
        x = record("stem 3x3".into(), &|x| net.stem.forward(x), x);
        for block in &net.blocks {
            let input = x.clone();
            for (i, layer) in block.layers.iter().enumerate() {
                let [_, c, h, w] = x.dims();
                let kind = if layer.conv.groups > 1 {
                    format!("depthwise s{} {c}x{h}x{w}", layer.conv.stride[0])
                } else if i + 1 == block.layers.len() {
                    "project 1x1".into()
                } else {
                    "expand 1x1".into()
                };
                x = record(kind, &|x| layer.forward(x), x);
            }
            if block.residual {
                x = record("residual add".into(), &|x| x + input.clone(), x);
            }
        }
        x = record("last 1x1".into(), &|x| net.last.forward(x), x);
        let _ = Backbone::pool(x).into_data();
    }
    let all: f64 = totals.values().sum();
    for (kind, seconds) in &totals {
        println!("{kind:28} {:7.1} ms/batch {:5.1} %", seconds * 1000.0 / timed as f64, 100.0 * seconds / all);
    }
    println!(
        "total {:.1} ms/batch = {:.1} img/s (batch {batch})",
        all * 1000.0 / timed as f64,
        (batch * timed) as f64 / all
    );
}
