//! The EfficientNet-Lite0 port is exact: its logits equal PyTorch's on the fixed input (the
//! reference network is written from the checkpoint's own layout in
//! scripts/make_reference_efficientnet.py), a real photo gets PyTorch's ImageNet top-1, the head
//! is replaced under `efficientnet_pytorch`'s names, and a training step's gradients through the
//! flex kernels (5×5 and SAME-padded depthwise) equal burn's generic ops on wgpu.

mod common;

use burn::tensor::{Device, Tensor, TensorData};
use common::{fixed_input, grad_values, ranked, reference_from, reference_logits, repo, weights_file};
use graft_model::{imagenet_labels, Architecture, HeadKind, HeadSpec, ImageClassifier, WeightMap, WeightSource};

fn pretrained() -> WeightMap {
    weights_file("efficientnet_lite0.safetensors")
}

fn imagenet_model(device: &Device) -> ImageClassifier {
    ImageClassifier::from_pretrained(&pretrained(), &HeadSpec::imagenet(), device).expect("model builds")
}

fn reference() -> serde_json::Value {
    reference_from("reference_efficientnet_lite0.json")
}

#[test]
fn the_checkpoint_is_told_apart_and_every_tensor_is_used() {
    let weights = pretrained();
    assert_eq!(weights.architecture(), Architecture::EfficientNetLite0);
    let model = imagenet_model(&Device::flex());
    assert_eq!(model.arch(), Architecture::EfficientNetLite0);
    let mut exported: Vec<String> = model.named_tensors().into_iter().map(|t| t.name).collect();
    let mut stored: Vec<String> = weights.names().map(String::from).collect();
    exported.sort();
    stored.sort();
    assert_eq!(exported, stored, "the model exports exactly the checkpoint's tensors");
}

fn assert_logits_match_pytorch(model: &ImageClassifier) {
    let device = Device::flex();
    let x = Tensor::<4>::from_data(TensorData::new(fixed_input(2, 224), [2, 3, 224, 224]), &device);
    let logits: Vec<f32> = model.forward(x).into_data().try_into_vec().unwrap();
    let expected = reference_logits(&reference());
    assert_eq!(logits.len(), expected.len());
    let max_err = logits.iter().zip(&expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    println!("max |logit diff| vs PyTorch: {max_err:e}");
    assert!(max_err < 1e-3, "max abs logit error {max_err}");
}

#[test]
fn logits_match_pytorch_on_fixed_input() {
    assert_logits_match_pytorch(&imagenet_model(&Device::flex()));
}

#[test]
fn folded_batchnorm_logits_match_pytorch() {
    assert_logits_match_pytorch(&imagenet_model(&Device::flex()).folded());
}

#[test]
fn real_photo_gets_pytorchs_imagenet_top1() {
    let device = Device::flex();
    let model = imagenet_model(&device).folded();
    let reference = reference();
    let photo = repo().join(reference["photo"]["file"].as_str().unwrap());
    let bytes =
        std::fs::read(&photo).unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-photos.sh", photo.display()));
    let image = graft_data::decode_image(&bytes).unwrap();
    let pre = graft_data::Preprocess {
        norm: Architecture::EfficientNetLite0.normalization(),
        ..graft_data::Preprocess::imagenet(224)
    };
    let x = Tensor::<4>::from_data(TensorData::new(pre.eval(&pre.prepare(&image)), [1, 3, 224, 224]), &device);
    let logits: Vec<f32> = model.forward(x).into_data().try_into_vec().unwrap();
    let ranked = ranked(&logits);
    let labels = imagenet_labels();
    println!("top-5: {:?}", ranked[..5].iter().map(|&i| labels[i]).collect::<Vec<_>>());
    let torch_top1 = usize::try_from(reference["photo"]["top5"][0].as_u64().unwrap()).unwrap();
    assert_eq!(labels[torch_top1], "banana", "PyTorch's own answer on the banana photo");
    assert_eq!(ranked[0], torch_top1);
}

#[test]
fn the_replaced_head_is_fresh_and_named_like_efficientnet_pytorchs() {
    let device = Device::flex();
    let weights = pretrained();
    let spec = HeadSpec { kind: HeadKind::Replace, num_classes: 3, seed: 1 };
    let model = ImageClassifier::from_pretrained(&weights, &spec, &device).unwrap();
    let named = model.named_tensors();
    let head: Vec<(&str, &[usize])> =
        named.iter().filter(|t| t.name.starts_with("_fc")).map(|t| (t.name.as_str(), t.shape.as_slice())).collect();
    assert_eq!(head, vec![("_fc.weight", [3, 1280].as_slice()), ("_fc.bias", [3].as_slice())]);
    assert!(named.iter().all(|t| t.shape != vec![1000, 1280]), "the ImageNet head is gone");
    // The stacked experiment keeps ImageNet's `_fc` under a new `_fc2`.
    let spec = HeadSpec { kind: HeadKind::Stacked, num_classes: 3, seed: 1 };
    let stacked = ImageClassifier::from_pretrained(&weights, &spec, &device).unwrap();
    let names: Vec<String> = stacked.head_tensors().into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["_fc.weight", "_fc.bias", "_fc2.weight", "_fc2.bias"]);
}

/// Gradients of a training step on flex (graft's depthwise kernels: 3x3 and 5x5, TensorFlow
/// SAME padding, strides 1 and 2) equal those of burn's own convolutions on wgpu (Mesa lavapipe
/// here), relative to each gradient's largest entry.
#[test]
fn flex_kernel_gradients_match_burns_convolutions_on_wgpu() {
    let grads = |device: Device| -> Vec<(String, Vec<f32>)> {
        let device = device.autodiff();
        let spec = HeadSpec { kind: HeadKind::Replace, num_classes: 4, seed: 3 };
        let model = ImageClassifier::from_pretrained(&pretrained(), &spec, &device).unwrap();
        let g = common::weighted_logits(&model, &device).backward();
        let read = |t| grad_values::<4>(t);
        let b = &model.backbone;
        // _blocks.1: 3x3 stride 2; _blocks.3: 5x5 stride 2; _blocks.4: 5x5 stride 1 (residual).
        let depthwise = |i: usize| read(b.blocks[i].layers[1].conv.weight.grad(&g));
        vec![
            ("stem conv".into(), read(b.stem.conv.weight.grad(&g))),
            ("3x3 s2 depthwise".into(), depthwise(1)),
            ("5x5 s2 depthwise".into(), depthwise(3)),
            ("5x5 s1 depthwise".into(), depthwise(4)),
            ("5x5 s1 depthwise γ".into(), grad_values::<1>(b.blocks[4].layers[1].bn.gamma.grad(&g))),
            ("head conv".into(), read(b.last.conv.weight.grad(&g))),
        ]
    };
    common::assert_gradients_match(&grads(Device::wgpu(Default::default())), &grads(Device::flex()), "flex");
}
