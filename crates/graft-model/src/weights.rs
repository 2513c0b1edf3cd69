//! Named weight tables: reading safetensors / PyTorch checkpoints, writing safetensors.
//!
//! The model builds itself from a [`WeightMap`] and describes itself as a list of
//! [`NamedTensor`]s. Export reads every tensor back with `into_data_async`, so the same code
//! works in the browser, where a synchronous GPU readback panics.

use std::collections::{BTreeMap, HashMap};

use burn::store::{bridge, ModuleStore, SafetensorsStore};
use burn::tensor::Tensor;

#[derive(Debug, thiserror::Error)]
pub enum WeightError {
    #[error("weight file could not be read: {0}")]
    Read(String),
    #[error("missing tensor `{0}` in the weight file")]
    Missing(String),
    #[error("tensor `{name}` has shape {found:?}, expected {expected:?}")]
    Shape { name: String, found: Vec<usize>, expected: Vec<usize> },
    #[error("GPU readback failed: {0}")]
    Readback(String),
    #[error("{0}")]
    Mismatch(String),
}

/// How a weight file stores its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredAs {
    F32,
    /// Half the bytes (widened to f32 on load; training and every export stay f32).
    F16,
    /// A quarter of the bytes: every weight of two or more dimensions as int8 with one f16 scale
    /// per output channel (symmetric: `w ≈ q · scale`, `scale = max|w| / 127` over the channel),
    /// stored as `NAME` (I8) plus `NAME` + [`SCALE_SUFFIX`] (F16); 1-D tensors (BatchNorm,
    /// biases) as f16. Widened to f32 on load.
    Int8,
}

/// Name suffix of the per-output-channel scales of an [`StoredAs::Int8`] tensor.
pub const SCALE_SUFFIX: &str = ".__int8_scale__";

/// Symmetric per-output-channel int8 codes and f16 scales of a tensor whose first dimension is
/// its output channel.
fn quantize_per_channel(shape: &[usize], values: &[f32]) -> (Vec<i8>, Vec<half::f16>) {
    let channels = shape.first().copied().unwrap_or(1).max(1);
    let per = values.len() / channels;
    let mut codes = Vec::with_capacity(values.len());
    let mut scales = Vec::with_capacity(channels);
    for row in values.chunks(per.max(1)) {
        let peak = row.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        // The scale is stored as f16: quantise against the stored value so codes and scale agree.
        let scale = half::f16::from_f32(if peak > 0.0 { peak / 127.0 } else { 1.0 });
        let s = scale.to_f32();
        #[allow(clippy::cast_possible_truncation)] // rounded and clamped to ±127 first
        codes.extend(row.iter().map(|v| (v / s).round().clamp(-127.0, 127.0) as i8));
        scales.push(scale);
    }
    (codes, scales)
}

/// Host-side f32 tensors keyed by torchvision parameter name.
#[derive(Debug, Clone, Default)]
pub struct WeightMap {
    tensors: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl WeightMap {
    pub fn insert(&mut self, name: impl Into<String>, shape: Vec<usize>, values: Vec<f32>) {
        self.tensors.insert(name.into(), (shape, values));
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    pub fn shape(&self, name: &str) -> Option<&[usize]> {
        self.tensors.get(name).map(|(shape, _)| shape.as_slice())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// A tensor's shape and values, whatever its shape.
    pub fn get(&self, name: &str) -> Option<(&[usize], &[f32])> {
        self.tensors.get(name).map(|(shape, values)| (shape.as_slice(), values.as_slice()))
    }

    /// A copy with every name passed through `rename`; `None` leaves that tensor out.
    #[must_use]
    pub fn renamed(&self, rename: impl Fn(&str) -> Option<String>) -> Self {
        let tensors = self.tensors.iter().filter_map(|(name, t)| Some((rename(name)?, t.clone()))).collect();
        Self { tensors }
    }

    /// Raw values of a tensor, checked against the expected shape.
    pub fn values(&self, name: &str, expected: &[usize]) -> Result<&[f32], WeightError> {
        let (shape, values) = self.tensors.get(name).ok_or_else(|| WeightError::Missing(name.to_string()))?;
        if shape != expected {
            return Err(WeightError::Shape {
                name: name.to_string(),
                found: shape.clone(),
                expected: expected.to_vec(),
            });
        }
        Ok(values)
    }

    /// Reads a safetensors file held in memory (f32, f16 or bf16 tensors).
    pub fn from_safetensors_bytes(bytes: Vec<u8>) -> Result<Self, WeightError> {
        let mut store = SafetensorsStore::from_bytes(Some(bytes));
        let mut map = Self::from_store(&mut store)?;
        map.widen_int8()?;
        Ok(map)
    }

    /// Reads a PyTorch checkpoint (`.pth`: `torch.save` of a `state_dict`, either container)
    /// from its bytes: see [`crate::pytorch`]. torchvision's indices are kept as they are
    /// (`classifier.1` stays `classifier.1`).
    pub fn from_pytorch_bytes(bytes: &[u8]) -> Result<Self, WeightError> {
        Ok(Self::from_read_tensors(crate::pytorch::read_state_dict(bytes).map_err(WeightError::Read)?))
    }

    /// [`Self::from_pytorch_bytes`] of a ZIP checkpoint its caller already unpacked.
    pub fn from_pytorch_zip_entries(files: HashMap<String, Vec<u8>>) -> Result<Self, WeightError> {
        Ok(Self::from_read_tensors(crate::pytorch::read_zipped_state_dict(files).map_err(WeightError::Read)?))
    }

    fn from_read_tensors(tensors: Vec<crate::pytorch::ReadTensor>) -> Self {
        let mut map = WeightMap::default();
        for (name, shape, values) in tensors {
            map.insert(name, shape, values);
        }
        map
    }

    /// [`Self::from_pytorch_bytes`] of a file.
    pub fn from_pytorch_file(path: &std::path::Path) -> Result<Self, WeightError> {
        let bytes = std::fs::read(path).map_err(|e| WeightError::Read(format!("{}: {e}", path.display())))?;
        Self::from_pytorch_bytes(&bytes)
    }

    fn from_store<S: ModuleStore>(store: &mut S) -> Result<Self, WeightError>
    where
        S::Error: std::fmt::Display,
    {
        let all = store.get_all_tensors().map_err(|e| WeightError::Read(e.to_string()))?;
        let mut map = WeightMap::default();
        for (name, tensor) in all {
            // Integer bookkeeping such as BatchNorm's `num_batches_tracked` is not a weight.
            if name.ends_with("num_batches_tracked") {
                continue;
            }
            let data = bridge::to_data(tensor).map_err(|e| WeightError::Read(e.to_string()))?;
            let shape = data.shape().to_vec();
            let values =
                data.convert::<f32>().try_into_vec::<f32>().map_err(|e| WeightError::Read(format!("{name}: {e:?}")))?;
            map.insert(name.clone(), shape, values);
        }
        Ok(map)
    }

    /// Serialises every tensor as f32 safetensors, names sorted, with string metadata.
    pub fn to_safetensors_bytes(&self, metadata: Option<HashMap<String, String>>) -> Result<Vec<u8>, WeightError> {
        self.to_safetensors_bytes_as(StoredAs::F32, metadata)
    }

    /// The same table with every value rounded to f16 and back: exactly what a model loaded
    /// from the [`StoredAs::F16`] file computes with.
    #[must_use]
    pub fn rounded_to_f16(&self) -> Self {
        let tensors = self
            .tensors
            .iter()
            .map(|(name, (shape, values))| {
                let rounded = values.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect();
                (name.clone(), (shape.clone(), rounded))
            })
            .collect();
        Self { tensors }
    }

    /// Multiplies every int8 tensor of an [`StoredAs::Int8`] file by its channels' scales (and
    /// drops the scales). A scale without its tensor, or of the wrong length, is an error.
    fn widen_int8(&mut self) -> Result<(), WeightError> {
        let scaled: Vec<String> = self.tensors.keys().filter(|n| n.ends_with(SCALE_SUFFIX)).cloned().collect();
        for scale_name in scaled {
            let (_, scales) = self.tensors.remove(&scale_name).unwrap_or_default();
            let name = scale_name.trim_end_matches(SCALE_SUFFIX);
            let (shape, values) = self
                .tensors
                .get_mut(name)
                .ok_or_else(|| WeightError::Read(format!("int8 scales `{scale_name}` without the tensor `{name}`")))?;
            if shape.first() != Some(&scales.len()) || scales.is_empty() {
                return Err(WeightError::Read(format!(
                    "`{scale_name}` has {} scales for a tensor of shape {shape:?}",
                    scales.len()
                )));
            }
            let per = values.len() / scales.len();
            for (row, scale) in values.chunks_mut(per.max(1)).zip(&scales) {
                row.iter_mut().for_each(|v| *v *= scale);
            }
        }
        Ok(())
    }

    /// Serialises every tensor as `stored` safetensors, names sorted, with string metadata.
    pub fn to_safetensors_bytes_as(
        &self,
        stored: StoredAs,
        metadata: Option<HashMap<String, String>>,
    ) -> Result<Vec<u8>, WeightError> {
        let sorted: BTreeMap<&String, &(Vec<usize>, Vec<f32>)> = self.tensors.iter().collect();
        let f16_bytes =
            |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect() };
        let mut raw: Vec<(String, safetensors::Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for (name, (shape, values)) in sorted {
            match stored {
                StoredAs::F32 => raw.push((
                    name.clone(),
                    safetensors::Dtype::F32,
                    shape.clone(),
                    values.iter().flat_map(|v| v.to_le_bytes()).collect(),
                )),
                StoredAs::F16 => raw.push((name.clone(), safetensors::Dtype::F16, shape.clone(), f16_bytes(values))),
                StoredAs::Int8 if shape.len() >= 2 => {
                    let (codes, scales) = quantize_per_channel(shape, values);
                    let codes = codes.iter().flat_map(|c| c.to_le_bytes()).collect();
                    raw.push((name.clone(), safetensors::Dtype::I8, shape.clone(), codes));
                    let scales = scales.iter().flat_map(|s| s.to_le_bytes()).collect();
                    raw.push((format!("{name}{SCALE_SUFFIX}"), safetensors::Dtype::F16, vec![shape[0]], scales));
                }
                StoredAs::Int8 => raw.push((name.clone(), safetensors::Dtype::F16, shape.clone(), f16_bytes(values))),
            }
        }
        let views = raw
            .iter()
            .map(|(name, dtype, shape, bytes)| {
                safetensors::tensor::TensorView::new(*dtype, shape.clone(), bytes)
                    .map(|view| (name.clone(), view))
                    .map_err(|e| WeightError::Read(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        safetensors::serialize(views, metadata).map_err(|e| WeightError::Read(e.to_string()))
    }
}

/// A parameter of a live model with its torchvision name, as a flat tensor plus its shape.
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub flat: Tensor<1>,
}

impl NamedTensor {
    pub fn new<const D: usize>(name: impl Into<String>, tensor: Tensor<D>) -> Self {
        let shape = tensor.dims().to_vec();
        let len: usize = shape.iter().product();
        Self { name: name.into(), shape, flat: tensor.reshape([len]) }
    }

    /// Reads every tensor back to the host without blocking (works on WebGPU in wasm).
    pub async fn read_all(tensors: Vec<NamedTensor>) -> Result<WeightMap, WeightError> {
        let mut map = WeightMap::default();
        for t in tensors {
            let data = t.flat.into_data_async().await.map_err(|e| WeightError::Readback(e.to_string()))?;
            let values =
                data.convert::<f32>().try_into_vec::<f32>().map_err(|e| WeightError::Readback(format!("{e:?}")))?;
            map.insert(t.name, t.shape, values);
        }
        Ok(map)
    }
}
