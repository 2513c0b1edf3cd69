//! PyTorch checkpoints (`torch.save(model.state_dict(), …)`) read from their bytes, so the page
//! reads a dropped `.pth` the way the CLI reads one from disk: no file system, nothing executed.
//!
//! Two containers exist. Since PyTorch 1.6 a checkpoint is a ZIP archive holding `data.pkl` and
//! one `data/<key>` entry per storage. Before it (torchvision's own downloads are of this kind) it
//! is a run of pickles — magic number, protocol, system info, the object, the storage keys —
//! followed by each storage as an element count and its bytes, in the keys' order.

mod pickle;
#[cfg(test)]
mod tests;

use std::collections::HashMap;

use pickle::{read_pickle, storage_from_pid, Dtype, TensorRef, Value};

/// The first bytes of a legacy checkpoint: protocol 2, then LONG1 of the magic number
/// 0x1950a86a20f9469cfc6c.
const LEGACY_MAGIC: [u8; 14] = [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];

/// Whether `bytes` look like a PyTorch checkpoint: a legacy file, or a ZIP archive (an export
/// or project file is a ZIP too: [`read_state_dict`] tells them apart by `data.pkl`).
pub fn is_legacy_checkpoint(bytes: &[u8]) -> bool {
    bytes.starts_with(&LEGACY_MAGIC)
}

/// A tensor read from a checkpoint: its name, shape and values (row-major, f32).
pub type ReadTensor = (String, Vec<usize>, Vec<f32>);

/// A checkpoint's floating-point tensors as `(name, shape, values)`, widened to f32; integer
/// tensors (`num_batches_tracked`) are left out. A dict holding the `state_dict` under a key
/// (`{"state_dict": …}`, `{"model": …}`) is looked into.
pub fn read_state_dict(bytes: &[u8]) -> Result<Vec<ReadTensor>, String> {
    if is_legacy_checkpoint(bytes) {
        let (root, storages) = read_legacy(bytes)?;
        return tensors_of(&root, &storages);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        let files = graft_data::read_zip(bytes).map_err(|e| e.to_string())?.into_iter().collect();
        return read_zipped_state_dict(files);
    }
    Err("not a PyTorch checkpoint (neither a ZIP archive nor a legacy torch.save file)".into())
}

/// [`read_state_dict`] of a ZIP checkpoint already unpacked (name → bytes), for a caller that
/// unpacked the archive to see what it holds.
pub fn read_zipped_state_dict(files: HashMap<String, Vec<u8>>) -> Result<Vec<ReadTensor>, String> {
    let (root, storages) = read_zip_checkpoint(files)?;
    tensors_of(&root, &storages)
}

/// The floating-point tensors of the state_dict in `root`, their values from `storages`.
fn tensors_of(root: &Value, storages: &Storages) -> Result<Vec<ReadTensor>, String> {
    let tensors = find_state_dict(root)?;
    let mut out = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        if !t.storage.dtype.is_float() {
            continue;
        }
        let data = storages
            .get(&t.storage.key)
            .ok_or_else(|| format!("`{name}`: its storage {} is missing", t.storage.key))?;
        let values = tensor_values(&t, data).map_err(|e| format!("`{name}`: {e}"))?;
        out.push((name, t.shape.clone(), values));
    }
    Ok(out)
}

/// Storage key → its bytes.
type Storages<'a> = HashMap<String, std::borrow::Cow<'a, [u8]>>;

fn read_zip_checkpoint(files: HashMap<String, Vec<u8>>) -> Result<(Value, Storages<'static>), String> {
    // `<archive name>/data.pkl`; the shortest such root is the checkpoint's own.
    let root = files
        .keys()
        .filter_map(|n| n.strip_suffix("data.pkl"))
        .filter(|r| r.is_empty() || r.ends_with('/'))
        .min_by_key(|r| r.len())
        .ok_or("a ZIP archive without data.pkl: not a PyTorch checkpoint")?
        .to_string();
    if files.get(&format!("{root}byteorder")).is_some_and(|b| b.as_slice() == b"big") {
        return Err("a checkpoint saved on a big-endian machine".into());
    }
    let pickle = &files[&format!("{root}data.pkl")];
    let mut pos = 0;
    let value = read_pickle(pickle, &mut pos, &mut storage_from_pid)?;
    let prefix = format!("{root}data/");
    let storages = files
        .into_iter()
        .filter_map(|(name, data)| Some((name.strip_prefix(&prefix)?.to_string(), data.into())))
        .collect();
    Ok((value, storages))
}

fn read_legacy(bytes: &[u8]) -> Result<(Value, Storages<'_>), String> {
    let mut pos = 0;
    let mut no_storages = |_| Err::<Value, String>("a storage before the checkpoint's object".into());
    read_pickle(bytes, &mut pos, &mut no_storages)?; // the magic number
    let protocol = read_pickle(bytes, &mut pos, &mut no_storages)?;
    if protocol != Value::Int(1001) {
        return Err(format!("legacy checkpoint protocol {protocol:?}, expected 1001"));
    }
    if let Value::Dict(info) = read_pickle(bytes, &mut pos, &mut no_storages)? {
        let little = info.iter().find(|(k, _)| k.as_str() == Some("little_endian")).map(|(_, v)| v);
        if little == Some(&Value::Bool(false)) {
            return Err("a checkpoint saved on a big-endian machine".into());
        }
    }
    // The storages' element types, declared by the persistent ids of the object's pickle.
    let mut declared: HashMap<String, Dtype> = HashMap::new();
    let root = read_pickle(bytes, &mut pos, &mut |pid| {
        let v = storage_from_pid(pid)?;
        if let Value::Storage(s) = &v {
            declared.insert(s.key.clone(), s.dtype);
        }
        Ok(v)
    })?;
    let Value::List(keys) = read_pickle(bytes, &mut pos, &mut no_storages)? else {
        return Err("a legacy checkpoint without its list of storages".into());
    };
    let mut storages = Storages::new();
    for key in keys {
        let key = key.as_str().ok_or("a storage key that is not a name")?.to_string();
        let dtype = declared.get(&key).ok_or_else(|| format!("storage {key} is listed but never used"))?;
        let count = bytes.get(pos..pos + 8).ok_or("the checkpoint ends before its storages")?;
        let count = usize::try_from(u64::from_le_bytes(count.try_into().map_err(|_| "short count")?))
            .map_err(|e| e.to_string())?;
        let len = count.checked_mul(dtype.size()).ok_or("a storage too large")?;
        let start = pos + 8;
        let data = start
            .checked_add(len)
            .and_then(|end| bytes.get(start..end))
            .ok_or("the checkpoint ends inside a storage")?;
        storages.insert(key, data.into());
        pos = start + len;
    }
    Ok((root, storages))
}

/// The `state_dict` in a checkpoint: the root dict's tensors, or those of the first dict inside
/// it that holds some (the usual keys first).
fn find_state_dict(root: &Value) -> Result<Vec<(String, TensorRef)>, String> {
    fn tensors(v: &Value) -> Vec<(String, TensorRef)> {
        let Value::Dict(items) = v else { return Vec::new() };
        items
            .iter()
            .filter_map(|(k, v)| match (k.as_str(), v) {
                (Some(k), Value::Tensor(t)) => Some((k.to_string(), t.clone())),
                _ => None,
            })
            .collect()
    }
    let direct = tensors(root);
    if !direct.is_empty() {
        return Ok(direct);
    }
    match root {
        Value::Dict(items) => {
            const USUAL: [&str; 5] = ["state_dict", "model_state_dict", "model", "module", "net"];
            let nested = |want: Option<&str>| {
                items
                    .iter()
                    .filter(|(k, _)| want.is_none_or(|w| k.as_str() == Some(w)))
                    .map(|(_, v)| tensors(v))
                    .find(|t| !t.is_empty())
            };
            USUAL
                .iter()
                .find_map(|k| nested(Some(k)))
                .or_else(|| nested(None))
                .ok_or_else(|| "the checkpoint holds no tensors (a state_dict maps names to tensors)".into())
        }
        Value::Object { .. } => {
            Err("the checkpoint is a whole pickled model, not a state_dict: save `model.state_dict()` instead".into())
        }
        _ => Err("the checkpoint holds no state_dict (a dict of names to tensors)".into()),
    }
}

/// A tensor's values in row-major order, widened to f32; any strides and offset.
fn tensor_values(t: &TensorRef, data: &[u8]) -> Result<Vec<f32>, String> {
    let size = t.storage.dtype.size();
    let available = data.len() / size;
    let numel: usize = t.shape.iter().product();
    if numel == 0 {
        return Ok(Vec::new());
    }
    let base = t.storage.view_offset + t.offset;
    let last = t
        .shape
        .iter()
        .zip(&t.stride)
        .try_fold(base, |acc, (&n, &s)| (n - 1).checked_mul(s).and_then(|d| acc.checked_add(d)));
    if last.is_none_or(|l| l >= available) {
        return Err(format!(
            "shape {:?} with strides {:?} reads past its storage of {available} values",
            t.shape, t.stride
        ));
    }
    let read = |i: usize| -> f32 {
        let b = &data[i * size..(i + 1) * size];
        match t.storage.dtype {
            Dtype::F32 => f32::from_le_bytes([b[0], b[1], b[2], b[3]]),
            // Narrowed on purpose: the model computes in f32.
            #[allow(clippy::cast_possible_truncation)]
            Dtype::F64 => f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32,
            Dtype::F16 => half::f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
            Dtype::Bf16 => half::bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32(),
            _ => unreachable!("only floating-point tensors are read"),
        }
    };
    // Row-major strides: one run of the storage.
    let contiguous = t
        .shape
        .iter()
        .rev()
        .zip(t.stride.iter().rev())
        .try_fold(1usize, |expect, (&n, &s)| (n == 1 || s == expect).then(|| expect * n));
    if contiguous.is_some() {
        return Ok((base..base + numel).map(read).collect());
    }
    let mut out = Vec::with_capacity(numel);
    let mut index = vec![0usize; t.shape.len()];
    for _ in 0..numel {
        out.push(read(base + index.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>()));
        for d in (0..index.len()).rev() {
            index[d] += 1;
            if index[d] < t.shape[d] {
                break;
            }
            index[d] = 0;
        }
    }
    Ok(out)
}
