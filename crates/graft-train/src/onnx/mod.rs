//! ONNX export: the whole classifier as one ONNX model (opset 17), written in Rust with `prost`.
//!
//! - Either backbone, written from its plan (`Architecture::plan`): MobileNetV2 or
//!   EfficientNet-Lite0. TensorFlow's SAME padding (Lite0) becomes explicit, possibly lopsided
//!   `pads` for the graph's fixed input size.
//! - Every BatchNorm is folded into its convolution (weights `w·γ/√(var+ε)`, bias
//!   `β − mean·γ/√(var+ε)`, each layer with its own ε): the export is for inference, where
//!   BatchNorm is that affine map.
//! - Input `input: float32[batch, 3, S, S]` is the image already normalised as the manifest says
//!   (`(x/255 − mean)/std`, RGB, S = `input_size`) — the same tensor graft and torchvision take.
//! - Outputs `logits: float32[batch, classes]` and `probabilities` (their softmax).
//! - Metadata: `classes` (JSON list, in logit order), `normalization`, `input_size`,
//!   `resize_side`, `architecture` and the whole `graft_manifest`.

mod proto;

use graft_model::{HeadKind, PlannedLayer, WeightError, WeightMap, FEATURE_DIM, IMAGENET_CLASSES};
use prost::Message;

use crate::export::{ExportBundle, Manifest, MANIFEST_FILE, WEIGHTS_FILE};
pub use proto::ModelProto;
use proto::{
    attribute_type, AttributeProto, Dimension, GraphProto, NodeProto, OperatorSetIdProto, StringStringEntryProto,
    TensorProto, TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto, FLOAT,
};

/// ONNX operator set the graph is written for (Conv, Clip with tensor bounds, Gemm, Softmax).
pub const OPSET: i64 = 17;
/// ONNX IR version that goes with opset 17.
const IR_VERSION: i64 = 8;
pub const INPUT_NAME: &str = "input";
pub const LOGITS_NAME: &str = "logits";
pub const PROBABILITIES_NAME: &str = "probabilities";

#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    #[error(transparent)]
    Weights(#[from] WeightError),
    #[error("the export cannot be converted to ONNX: {0}")]
    Export(String),
}

/// Converts an export (`model.safetensors` + `manifest.json`) to the bytes of an `.onnx` file.
pub fn onnx_from_export(bundle: &ExportBundle) -> Result<Vec<u8>, OnnxError> {
    let missing = |name: &str| OnnxError::Export(format!("the export has no {name}"));
    let weights = bundle.file(WEIGHTS_FILE).ok_or_else(|| missing(WEIGHTS_FILE))?;
    let manifest = bundle.file(MANIFEST_FILE).ok_or_else(|| missing(MANIFEST_FILE))?;
    let manifest: Manifest = serde_json::from_slice(manifest).map_err(|e| OnnxError::Export(e.to_string()))?;
    let weights = WeightMap::from_safetensors_bytes(weights.to_vec())?;
    Ok(onnx_model(&weights, &manifest)?.encode_to_vec())
}

/// The ONNX model of a classifier with the export's `weights` (the names of the manifest's
/// architecture).
pub fn onnx_model(weights: &WeightMap, manifest: &Manifest) -> Result<ModelProto, OnnxError> {
    let arch = manifest.arch().map_err(OnnxError::Export)?;
    let classes = manifest.classes.len();
    let mut graph = GraphBuilder::default();
    graph.initializer("relu6_min", &[], &[0.0]);
    graph.initializer("relu6_max", &[], &[6.0]);

    let mut x = INPUT_NAME.to_string();
    // The spatial side at the current layer: SAME padding depends on it.
    let mut side = usize::try_from(manifest.input_size).map_err(|e| OnnxError::Export(e.to_string()))?;
    for (index, block) in arch.plan().iter().enumerate() {
        let input = x.clone();
        for layer in &block.layers {
            x = graph.conv_bn(layer, &x, side, weights)?;
            side = layer.spec.output_side(side);
        }
        if block.residual {
            x = graph.node("Add", &format!("block{index}.add"), &[&x, &input], vec![]);
        }
    }
    let pooled = graph.node("GlobalAveragePool", "pool", &[&x], vec![]);
    let mut x = graph.node("Flatten", "flatten", &[&pooled], vec![int_attr("axis", 1)]);
    let linears: Vec<(String, usize, usize)> = match manifest.head {
        HeadKind::Stacked => {
            vec![(arch.head_layer(0), FEATURE_DIM, IMAGENET_CLASSES), (arch.head_layer(1), IMAGENET_CLASSES, classes)]
        }
        HeadKind::Replace | HeadKind::KeepImagenet { .. } => vec![(arch.head_layer(0), FEATURE_DIM, classes)],
    };
    for (name, d_in, d_out) in linears {
        x = graph.linear(&name, &x, d_in, d_out, weights)?;
    }
    graph.rename_last_output(LOGITS_NAME);
    graph.node_named("Softmax", "softmax", &[LOGITS_NAME], PROBABILITIES_NAME, vec![int_attr("axis", 1)]);

    let side = i64::from(manifest.input_size);
    let graph = GraphProto {
        node: graph.nodes,
        name: Some("graft_classifier".into()),
        initializer: graph.initializers,
        input: vec![value_info(INPUT_NAME, &[None, Some(3), Some(side), Some(side)])],
        output: vec![
            value_info(LOGITS_NAME, &[None, Some(int(classes))]),
            value_info(PROBABILITIES_NAME, &[None, Some(int(classes))]),
        ],
    };
    Ok(ModelProto {
        ir_version: Some(IR_VERSION),
        producer_name: Some("graft".into()),
        producer_version: Some(env!("CARGO_PKG_VERSION").into()),
        doc_string: Some(format!(
            "{} fine-tuned by graft. Input: RGB image resized (shorter side {}) and centre-cropped to {side}x{side}, \
             scaled to [0,1], normalised with mean {:?} and std {:?}, NCHW. Outputs: logits and probabilities \
             over the classes in metadata 'classes'.",
            manifest.architecture, manifest.resize_side, manifest.normalization.mean, manifest.normalization.std
        )),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
        metadata_props: metadata(manifest)?,
    })
}

fn metadata(manifest: &Manifest) -> Result<Vec<StringStringEntryProto>, OnnxError> {
    let entries = [
        ("classes", json(&manifest.classes)?),
        ("normalization", json(&manifest.normalization)?),
        ("input_size", manifest.input_size.to_string()),
        ("resize_side", manifest.resize_side.to_string()),
        ("architecture", manifest.architecture.clone()),
        ("graft_manifest", json(manifest)?),
    ];
    Ok(entries.into_iter().map(|(k, v)| StringStringEntryProto { key: Some(k.into()), value: Some(v) }).collect())
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, OnnxError> {
    serde_json::to_string(value).map_err(|e| OnnxError::Export(e.to_string()))
}

/// A size as ONNX's int64.
fn int(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn int_attr(name: &str, value: i64) -> AttributeProto {
    AttributeProto { name: Some(name.into()), i: Some(value), ints: vec![], r#type: Some(attribute_type::INT) }
}

fn ints_attr(name: &str, values: Vec<i64>) -> AttributeProto {
    AttributeProto { name: Some(name.into()), i: None, ints: values, r#type: Some(attribute_type::INTS) }
}

/// A float tensor's type; `None` dimensions are the free batch size.
fn value_info(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    let dim = dims
        .iter()
        .map(|d| match d {
            Some(v) => Dimension { dim_value: Some(*v), dim_param: None },
            None => Dimension { dim_value: None, dim_param: Some("batch".into()) },
        })
        .collect();
    ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto { elem_type: Some(FLOAT), shape: Some(TensorShapeProto { dim }) }),
        }),
    }
}

#[derive(Default)]
struct GraphBuilder {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
}

impl GraphBuilder {
    fn initializer(&mut self, name: &str, dims: &[usize], values: &[f32]) {
        debug_assert_eq!(dims.iter().product::<usize>(), values.len());
        self.initializers.push(TensorProto {
            dims: dims.iter().map(|&d| int(d)).collect(),
            data_type: Some(FLOAT),
            name: Some(name.into()),
            raw_data: Some(values.iter().flat_map(|v| v.to_le_bytes()).collect()),
        });
    }

    /// Adds a node whose one output is named after the node; returns that name.
    fn node(&mut self, op: &str, name: &str, inputs: &[&str], attrs: Vec<AttributeProto>) -> String {
        self.node_named(op, name, inputs, name, attrs)
    }

    fn node_named(
        &mut self,
        op: &str,
        name: &str,
        inputs: &[&str],
        output: &str,
        attrs: Vec<AttributeProto>,
    ) -> String {
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.into()],
            name: Some(name.into()),
            op_type: Some(op.into()),
            attribute: attrs,
        });
        output.into()
    }

    fn rename_last_output(&mut self, name: &str) {
        if let Some(last) = self.nodes.last_mut() {
            last.output = vec![name.into()];
        }
    }

    /// Convolution with its BatchNorm folded in, then ReLU6 (`Clip(0, 6)`) when the layer has one;
    /// `side` is the input's height and width.
    fn conv_bn(
        &mut self,
        layer: &PlannedLayer,
        input: &str,
        side: usize,
        weights: &WeightMap,
    ) -> Result<String, OnnxError> {
        let spec = layer.spec;
        let (conv, bn) = (&layer.names.conv, &layer.names.bn);
        let shape = [spec.c_out, spec.c_in / spec.groups, spec.kernel, spec.kernel];
        let w = weights.values(&format!("{conv}.weight"), &shape)?;
        let c = [spec.c_out];
        let gamma = weights.values(&format!("{bn}.weight"), &c)?;
        let beta = weights.values(&format!("{bn}.bias"), &c)?;
        let mean = weights.values(&format!("{bn}.running_mean"), &c)?;
        let var = weights.values(&format!("{bn}.running_var"), &c)?;
        let per_out = w.len() / spec.c_out;
        let scale: Vec<f64> =
            (0..spec.c_out).map(|o| f64::from(gamma[o]) / (f64::from(var[o]) + spec.bn_eps).sqrt()).collect();
        #[allow(clippy::cast_possible_truncation)] // f64 products back to the model's f32
        let folded: Vec<f32> = w.iter().enumerate().map(|(i, &v)| (f64::from(v) * scale[i / per_out]) as f32).collect();
        #[allow(clippy::cast_possible_truncation)]
        let bias: Vec<f32> =
            (0..spec.c_out).map(|o| (f64::from(beta[o]) - f64::from(mean[o]) * scale[o]) as f32).collect();
        let (w_name, b_name) = (format!("{conv}.weight_folded"), format!("{conv}.bias_folded"));
        self.initializer(&w_name, &shape, &folded);
        self.initializer(&b_name, &c, &bias);
        let (k, s) = (int(spec.kernel), int(spec.stride));
        let (before, after) = spec.padding.pads(side, spec.kernel, spec.stride);
        let (before, after) = (int(before), int(after));
        let attrs = vec![
            int_attr("group", int(spec.groups)),
            ints_attr("kernel_shape", vec![k, k]),
            // [top, left, bottom, right]: the input is square.
            ints_attr("pads", vec![before, before, after, after]),
            ints_attr("strides", vec![s, s]),
        ];
        let y = self.node("Conv", conv, &[input, &w_name, &b_name], attrs);
        Ok(if spec.relu6 {
            self.node("Clip", &format!("{conv}.relu6"), &[&y, "relu6_min", "relu6_max"], vec![])
        } else {
            y
        })
    }

    /// `Gemm` with PyTorch's `[out, in]` weight (`transB = 1`).
    fn linear(
        &mut self,
        name: &str,
        input: &str,
        d_in: usize,
        d_out: usize,
        weights: &WeightMap,
    ) -> Result<String, OnnxError> {
        let (w_name, b_name) = (format!("{name}.weight"), format!("{name}.bias"));
        self.initializer(&w_name, &[d_out, d_in], weights.values(&w_name, &[d_out, d_in])?);
        self.initializer(&b_name, &[d_out], weights.values(&b_name, &[d_out])?);
        Ok(self.node("Gemm", name, &[input, &w_name, &b_name], vec![int_attr("transB", 1)]))
    }
}

#[cfg(test)]
mod tests;
