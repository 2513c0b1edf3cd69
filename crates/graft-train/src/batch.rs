//! Turning preprocessed images into device batches.

use burn::tensor::{Device, Int, Tensor, TensorData};

/// Stacks CHW float images into a `[n, 3, size, size]` tensor.
pub fn images_to_tensor(images: Vec<Vec<f32>>, size: u32, device: &Device) -> Tensor<4> {
    let n = images.len();
    let s = size as usize;
    let flat: Vec<f32> = images.into_iter().flatten().collect();
    Tensor::from_data(TensorData::new(flat, [n, 3, s, s]), device)
}

pub fn index_tensor(indices: &[usize], device: &Device) -> Tensor<1, Int> {
    let values: Vec<i64> = indices.iter().map(|&i| i as i64).collect();
    Tensor::from_data(TensorData::new(values, [indices.len()]), device)
}

/// Reads a float tensor of any rank back to the host without blocking (the only kind of
/// readback wasm allows), as f32 in row-major order.
pub async fn read_floats<const D: usize>(t: Tensor<D>) -> Result<Vec<f32>, String> {
    let data = t.into_data_async().await.map_err(|e| format!("readback failed: {e}"))?;
    data.convert::<f32>().try_into_vec::<f32>().map_err(|e| format!("readback failed: {e:?}"))
}

/// Reads a 2-D float tensor back to the host without blocking.
pub async fn read_matrix(t: Tensor<2>) -> Result<Vec<f32>, String> {
    read_floats(t).await
}
