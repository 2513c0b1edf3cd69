//! The written graph, decoded again and evaluated with burn's own ops by a small interpreter of
//! the operators it uses, must give the classifier's logits. (The test suite also runs the file
//! in onnxruntime and through `onnx.checker`; see tests/python/onnx_check.py.)
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss, clippy::cast_precision_loss)]

use std::collections::HashMap;

use burn::tensor::activation::softmax;
use burn::tensor::module::conv2d;
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{Device, Tensor, TensorData};
use futures::executor::block_on;
use graft_model::{Architecture, HeadKind, HeadSpec, ImageClassifier, RandomWeights};
use prost::Message;

use super::*;
use crate::config::TrainConfig;

fn attr(node: &NodeProto, name: &str) -> Option<AttributeProto> {
    node.attribute.iter().find(|a| a.name.as_deref() == Some(name)).cloned()
}

fn pair(node: &NodeProto, name: &str) -> [usize; 2] {
    let ints = attr(node, name).expect("attribute").ints;
    [ints[0] as usize, ints[1] as usize]
}

/// Runs the graph on `input` with burn on `device` (only the operators graft writes).
fn evaluate(model: &ModelProto, input: Tensor<4>, device: &Device) -> HashMap<String, Tensor<2>> {
    let graph = model.graph.as_ref().unwrap();
    let mut tensors: HashMap<String, (Vec<usize>, Vec<f32>)> = HashMap::new();
    for t in &graph.initializer {
        let raw = t.raw_data.as_ref().unwrap();
        let values = raw.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
        tensors.insert(t.name.clone().unwrap(), (t.dims.iter().map(|&d| d as usize).collect(), values));
    }
    fn tensor<const D: usize>(
        tensors: &HashMap<String, (Vec<usize>, Vec<f32>)>,
        name: &str,
        device: &Device,
    ) -> Tensor<D> {
        let (dims, values) = &tensors[name];
        Tensor::from_data(TensorData::new(values.clone(), dims.clone()), device)
    }
    let mut maps: HashMap<String, Tensor<4>> = HashMap::from([(INPUT_NAME.to_string(), input)]);
    let mut flat: HashMap<String, Tensor<2>> = HashMap::new();
    for node in &graph.node {
        let op = node.op_type.as_deref().unwrap();
        let inputs = &node.input;
        let out = node.output[0].clone();
        match op {
            "Conv" => {
                let weight: Tensor<4> = tensor(&tensors, &inputs[1], device);
                let bias: Tensor<1> = tensor(&tensors, &inputs[2], device);
                // [top, left, bottom, right]; lopsided amounts (SAME padding) are padded first.
                let pads: Vec<usize> = attr(node, "pads").unwrap().ints.iter().map(|&p| p as usize).collect();
                let x = maps[&inputs[0]].clone();
                let (x, padding) = if pads[0] == pads[2] && pads[1] == pads[3] {
                    (x, [pads[0], pads[1]])
                } else {
                    (x.pad((pads[1], pads[3], pads[0], pads[2]), PadMode::Constant(0.0)), [0, 0])
                };
                let options = ConvOptions::new(
                    pair(node, "strides"),
                    padding,
                    [1, 1],
                    attr(node, "group").unwrap().i.unwrap() as usize,
                );
                let y = conv2d(x, weight, Some(bias), options);
                maps.insert(out, y);
            }
            "Clip" => {
                let (lo, hi) = (tensors[&inputs[1]].1[0], tensors[&inputs[2]].1[0]);
                maps.insert(out, maps[&inputs[0]].clone().clamp(lo, hi));
            }
            "Add" => {
                let y = maps[&inputs[0]].clone() + maps[&inputs[1]].clone();
                maps.insert(out, y);
            }
            "GlobalAveragePool" => {
                maps.insert(out, maps[&inputs[0]].clone().mean_dim(3).mean_dim(2));
            }
            "Flatten" => {
                flat.insert(out, maps[&inputs[0]].clone().flatten(1, 3));
            }
            "Gemm" => {
                assert_eq!(attr(node, "transB").unwrap().i, Some(1));
                let weight: Tensor<2> = tensor(&tensors, &inputs[1], device);
                let bias: Tensor<1> = tensor(&tensors, &inputs[2], device);
                let y = flat[&inputs[0]].clone().matmul(weight.transpose()) + bias.unsqueeze();
                flat.insert(out, y);
            }
            "Softmax" => {
                flat.insert(out, softmax(flat[&inputs[0]].clone(), 1));
            }
            other => panic!("graft wrote an operator the test does not know: {other}"),
        }
    }
    flat
}

fn written(arch: Architecture, head: HeadKind, classes: usize) -> (ImageClassifier, Manifest, ModelProto) {
    let device = Device::flex();
    let spec = HeadSpec { kind: head.clone(), num_classes: classes, seed: 3 };
    let random = ImageClassifier::from_pretrained(&RandomWeights::for_arch(arch, 11), &spec, &device).unwrap();
    // RandomWeights' BatchNorms are identities (γ = var = 1, β = mean = 0) and its biases zero:
    // give every vector distinct values so that a wrong fold or a misplaced bias shows.
    let mut weights = block_on(random.to_weight_map()).unwrap();
    let vectors: Vec<String> =
        weights.names().filter(|n| weights.shape(n).is_some_and(|s| s.len() == 1)).map(String::from).collect();
    for (k, name) in vectors.iter().enumerate() {
        let len = weights.shape(name).unwrap()[0];
        let wave = |i: usize| ((i * 7 + k * 13) as f32 * 0.61).sin();
        let positive = name.ends_with("running_var") || name.ends_with(".weight");
        let values = (0..len).map(|i| if positive { 1.0 + 0.5 * wave(i) } else { 0.2 * wave(i) }).collect();
        weights.insert(name.as_str(), vec![len], values);
    }
    let model = ImageClassifier::from_export(&weights, &head, classes, &device).unwrap();
    let names: Vec<String> = (0..classes).map(|i| format!("class {i}")).collect();
    let settings = TrainConfig { backbone: arch, ..TrainConfig::default() };
    let manifest = Manifest::new(arch, names, head, &settings.preprocess(), None, None);
    let bytes = onnx_model(&weights, &manifest).unwrap().encode_to_vec();
    (model, manifest, ModelProto::decode(bytes.as_slice()).unwrap())
}

fn input(n: usize, device: &Device) -> Tensor<4> {
    let len = n * 3 * 224 * 224;
    let values: Vec<f32> = (0..len).map(|i| ((i as f32) * 0.0137).sin() * 1.5).collect();
    Tensor::<1>::from_data(TensorData::new(values, [len]), device).reshape([n, 3, 224, 224])
}

fn max_abs_diff(a: Tensor<2>, b: Tensor<2>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn the_onnx_graph_computes_the_classifiers_logits() {
    let device = Device::flex();
    let cases = [
        (Architecture::MobileNetV2, HeadKind::Replace, 4),
        (Architecture::MobileNetV2, HeadKind::Stacked, 3),
        (Architecture::EfficientNetLite0, HeadKind::Replace, 4),
        (Architecture::EfficientNetLite0, HeadKind::Stacked, 3),
    ];
    for (arch, head, classes) in cases {
        let (model, _, proto) = written(arch, head.clone(), classes);
        let x = input(2, &device);
        let expected = model.forward(x.clone());
        let outputs = evaluate(&proto, x, &device);
        let logits = outputs[LOGITS_NAME].clone();
        assert_eq!(logits.dims(), [2, classes]);
        let scale: f32 = expected.clone().abs().max().into_scalar();
        let scale = scale.max(1.0);
        let diff = max_abs_diff(logits.clone(), expected);
        assert!(diff <= 1e-4 * scale, "{arch:?} {head:?}: logits differ by {diff} (scale {scale})");
        let p = outputs[PROBABILITIES_NAME].clone();
        assert!(max_abs_diff(p, softmax(logits, 1)) < 1e-6);
    }
}

#[test]
fn the_onnx_file_describes_its_input_outputs_and_classes() {
    let (_, manifest, proto) = written(Architecture::MobileNetV2, HeadKind::Replace, 5);
    assert_eq!(proto.ir_version, Some(8));
    assert_eq!(proto.opset_import[0].version, Some(OPSET));
    let graph = proto.graph.unwrap();
    let dims = |v: &ValueInfoProto| v.r#type.clone().unwrap().tensor_type.unwrap().shape.unwrap().dim;
    let input = dims(&graph.input[0]);
    assert_eq!(input[0].dim_param.as_deref(), Some("batch"), "the batch is free");
    assert_eq!(input.iter().skip(1).map(|d| d.dim_value.unwrap()).collect::<Vec<_>>(), [3, 224, 224]);
    assert_eq!(dims(&graph.output[0])[1].dim_value, Some(5));
    let ops = |op: &str| graph.node.iter().filter(|n| n.op_type.as_deref() == Some(op)).count();
    // 52 convolutions (stem, 2 + 16×3 in the blocks, last), 10 residual adds, no BatchNorm left.
    assert_eq!((ops("Conv"), ops("Add"), ops("BatchNormalization"), ops("Gemm")), (52, 10, 0, 1));
    let meta: HashMap<_, _> =
        proto.metadata_props.iter().map(|e| (e.key.clone().unwrap(), e.value.clone().unwrap())).collect();
    let classes: Vec<String> = serde_json::from_str(&meta["classes"]).unwrap();
    assert_eq!(classes, manifest.classes);
    let back: Manifest = serde_json::from_str(&meta["graft_manifest"]).unwrap();
    assert_eq!(back, manifest);
}

#[test]
fn efficientnet_lite0s_graph_has_its_layers_and_lopsided_same_padding() {
    let (_, manifest, proto) = written(Architecture::EfficientNetLite0, HeadKind::Replace, 3);
    assert_eq!(manifest.architecture, "efficientnet_lite0");
    let graph = proto.graph.unwrap();
    let ops = |op: &str| graph.node.iter().filter(|n| n.op_type.as_deref() == Some(op)).count();
    // 49 convolutions (stem, 2 + 15×3 in the blocks, head), 9 residual adds.
    assert_eq!((ops("Conv"), ops("Add"), ops("Gemm")), (49, 9, 1));
    let pads = |name: &str| {
        let conv = graph.node.iter().find(|n| n.name.as_deref() == Some(name)).expect(name);
        attr(conv, "pads").unwrap().ints
    };
    // Stride 2 on an even side pads only after (224 → 112); stride 1 is centred.
    assert_eq!(pads("_conv_stem"), [0, 0, 1, 1]);
    assert_eq!(pads("_blocks.3._depthwise_conv"), [1, 1, 2, 2], "5×5, stride 2, 56 → 28");
    assert_eq!(pads("_blocks.4._depthwise_conv"), [2, 2, 2, 2]);
    assert!(graph.initializer.iter().any(|t| t.name.as_deref() == Some("_fc.weight")));
}
