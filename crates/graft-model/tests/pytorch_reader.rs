//! graft's own `.pth` reader (the page's: no file system) reads both published backbones'
//! checkpoints exactly as burn's file-based reader does: every tensor, bit for bit.

mod common;

use burn::store::{bridge, ModuleStore, PytorchStore};
use common::repo;
use graft_model::WeightMap;

fn burns_reading(file: &str) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let path = repo().join("weights").join(file);
    let mut store = PytorchStore::from_file(&path).map_indices_contiguous(false);
    let mut all: Vec<_> = store
        .get_all_tensors()
        .unwrap()
        .iter()
        .filter(|(name, _)| !name.ends_with("num_batches_tracked"))
        .map(|(name, tensor)| {
            let data = bridge::to_data(tensor).unwrap();
            let shape = data.shape().to_vec();
            (name.clone(), shape, data.convert::<f32>().try_into_vec::<f32>().unwrap())
        })
        .collect();
    all.sort_by(|a, b| a.0.cmp(&b.0));
    all
}

fn check(file: &str) {
    let path = repo().join("weights").join(file);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()));
    let ours = WeightMap::from_pytorch_bytes(&bytes).expect("graft reads it");
    let burns = burns_reading(file);
    assert_eq!(ours.len(), burns.len(), "{file}: the same tensors");
    for (name, shape, values) in &burns {
        let (s, v) = ours.get(name).unwrap_or_else(|| panic!("{file}: graft's reading lacks {name}"));
        assert_eq!(s, shape.as_slice(), "{file}: {name}");
        assert!(v == values.as_slice(), "{file}: {name} differs");
    }
}

#[test]
fn torchvisions_mobilenet_v2_checkpoint_reads_as_burn_reads_it() {
    check("mobilenet_v2-b0353104.pth");
}

#[test]
fn the_efficientnet_lite0_checkpoint_reads_as_burn_reads_it() {
    check("efficientnet-lite0-57934424.pth");
}
