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
        Self::from_store(&mut store)
    }

    /// Reads a PyTorch checkpoint (`.pth`) from disk: the one-off conversion path.
    #[cfg(feature = "pytorch")]
    pub fn from_pytorch_file(path: &std::path::Path) -> Result<Self, WeightError> {
        // Keep torchvision's indices: `classifier.1` must not be renumbered to `classifier.0`
        // just because the dropout at index 0 has no parameters.
        let mut store = burn::store::PytorchStore::from_file(path).map_indices_contiguous(false);
        Self::from_store(&mut store)
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
        let sorted: BTreeMap<&String, &(Vec<usize>, Vec<f32>)> = self.tensors.iter().collect();
        let raw: Vec<(String, Vec<usize>, Vec<u8>)> = sorted
            .into_iter()
            .map(|(name, (shape, values))| {
                let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
                (name.clone(), shape.clone(), bytes)
            })
            .collect();
        let views = raw
            .iter()
            .map(|(name, shape, bytes)| {
                safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape.clone(), bytes)
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
