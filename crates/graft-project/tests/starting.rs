//! Starting checkpoints as the user gives them — a graft export, a project file with a model, a
//! safetensors `state_dict` — read and turned into a start; anything else refused with a reason.

use std::sync::Arc;

use burn::tensor::Device;
use futures::executor::block_on;
use graft_data::write_zip;
use graft_model::{Architecture, HeadKind, ImageClassifier};
use graft_project::{read_checkpoint, write_project, Checkpoint, ModelRecord, ModelStatus, Project, Start};
use graft_train::{export_model, Manifest, TrainConfig, TrainedModel};

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A graft model of `classes` (random weights: only names and shapes matter here).
fn trained(classes: &[&str]) -> TrainedModel {
    let model = ImageClassifier::random(classes.len(), 5, &Device::flex()).unwrap();
    let preprocess = TrainConfig::default().preprocess();
    let manifest = Manifest::new(
        graft_model::Architecture::MobileNetV2,
        names(classes),
        HeadKind::Replace,
        &preprocess,
        None,
        None,
    );
    TrainedModel { model, manifest }
}

fn export_zip(classes: &[&str]) -> Vec<u8> {
    write_zip(&block_on(export_model(&trained(classes))).unwrap().files).unwrap()
}

#[test]
fn a_graft_export_of_the_same_classes_continues_and_of_others_gives_its_backbone() {
    let file = export_zip(&["bird", "flower"]);
    let same = read_checkpoint("model.zip", &file).unwrap().start(
        Architecture::MobileNetV2,
        &names(&["bird", "flower"]),
        &HeadKind::Replace,
    );
    assert!(matches!(same, Ok(Start::Continue { .. })), "{same:?}");

    let other = read_checkpoint("model.zip", &file).unwrap();
    let Ok(Start::Backbone(start)) =
        other.start(Architecture::MobileNetV2, &names(&["cat", "dog", "fish"]), &HeadKind::Replace)
    else {
        panic!("the backbone of a model of other classes")
    };
    assert_eq!(start.notes[0], "a graft model of other classes (bird, flower): its backbone");
    assert!(start.notes.contains(
        &"`classifier.1.weight` is [2, 1280], this project has 3 classes — the head will be replaced".to_string()
    ));
}

#[test]
fn a_project_file_starts_from_its_kept_model_and_one_without_is_refused() {
    let mut project = Project::default();
    let err = read_checkpoint("empty.graft", &write_project(&project).unwrap()).unwrap_err();
    assert_eq!(err, "empty.graft is a project without a trained model");

    let model = trained(&["class 1", "class 2"]);
    let bundle = block_on(export_model(&model)).unwrap();
    project.model = Some(ModelRecord {
        manifest: model.manifest,
        weights: Arc::from(bundle.file(graft_train::WEIGHTS_FILE).unwrap()),
        status: ModelStatus::Complete,
    });
    let read = read_checkpoint("mine.graft", &write_project(&project).unwrap()).unwrap();
    assert!(matches!(read, Checkpoint::Graft { .. }));
}

#[test]
fn a_safetensors_state_dict_gives_its_backbone() {
    let weights = block_on(trained(&["a", "b"]).model.to_weight_map()).unwrap();
    let bytes = weights.to_safetensors_bytes(None).unwrap();
    let read = read_checkpoint("resnet-ish.safetensors", &bytes).unwrap();
    assert!(matches!(read, Checkpoint::StateDict(_)));
    assert!(matches!(
        read.start(Architecture::MobileNetV2, &names(&["x"]), &HeadKind::Replace),
        Ok(Start::Backbone(_))
    ));
}

#[test]
fn other_files_are_refused_with_a_reason() {
    let err = read_checkpoint("notes.txt", b"hello, not a model").unwrap_err();
    assert!(err.starts_with("notes.txt is not a checkpoint graft reads"), "{err}");
    let pth =
        write_zip(&[("archive/data.pkl".into(), vec![0x80, 2]), ("archive/version".into(), b"3".to_vec())]).unwrap();
    let err = read_checkpoint("model.pth", &pth).unwrap_err();
    assert_eq!(err, "model.pth: weight file could not be read: the pickle ends early");
    let other = write_zip(&[("readme.md".into(), b"hi".to_vec())]).unwrap();
    assert_eq!(
        read_checkpoint("x.zip", &other).unwrap_err(),
        "x.zip is a zip file, but neither a graft export nor a project file"
    );
    // A safetensors header that claims more bytes than the file has is not read as one.
    let mut short = 1000u64.to_le_bytes().to_vec();
    short.extend_from_slice(b"{}");
    assert!(read_checkpoint("cut.safetensors", &short).unwrap_err().contains("not a checkpoint graft reads"));
}

/// The published checkpoints as a user would download them (torchvision's legacy `.pth`),
/// read from their bytes as the page reads a dropped file.
fn published(file: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../weights").join(file);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}; run scripts/setup.sh", path.display()))
}

#[test]
fn a_pytorch_pth_gives_its_backbone_and_the_other_network_is_named() {
    let read = read_checkpoint("mobilenet_v2-b0353104.pth", &published("mobilenet_v2-b0353104.pth")).unwrap();
    assert_eq!(read.architecture(), Some(Architecture::MobileNetV2));
    match read.start(Architecture::MobileNetV2, &names(&["cat", "dog"]), &HeadKind::Replace) {
        Ok(start @ Start::Backbone(_)) => {
            let notes = start.notes().join("; ");
            assert!(
                notes.contains(
                    "`classifier.1.weight` is [1000, 1280], this project has 2 classes — the head will be replaced"
                ),
                "{notes}"
            );
        }
        other => panic!("expected its backbone: {:?}", other.map(|s| s.notes().to_vec())),
    }
    let lite0_bytes = published("efficientnet-lite0-57934424.pth");
    let lite0 = || read_checkpoint("lite0.pth", &lite0_bytes).unwrap();
    let err = lite0().start(Architecture::MobileNetV2, &names(&["cat", "dog"]), &HeadKind::Replace).unwrap_err();
    assert!(err.to_string().contains("EfficientNet-Lite0"), "{err}");
    assert!(matches!(
        lite0().start(Architecture::EfficientNetLite0, &names(&["cat", "dog"]), &HeadKind::Replace),
        Ok(Start::Backbone(_))
    ));
}

/// A `.pth` in PyTorch's ZIP container (graft-model's torch-written fixture) reads as a
/// state_dict: its float tensors, the integer buffer left out.
#[test]
fn a_zip_container_pth_reads_as_a_state_dict() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../graft-model/tests/data/tiny_state_dict.pth");
    let read = read_checkpoint("tiny.pth", &std::fs::read(path).unwrap()).unwrap();
    let Checkpoint::StateDict(map) = read else { panic!("a state_dict") };
    assert_eq!(map.len(), 8);
    assert_eq!(map.get("transposed.weight").map(|(s, _)| s.to_vec()), Some(vec![4, 6]));
}
