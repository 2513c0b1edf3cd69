//! A project survives a trip through its file exactly: same classes, pictures, settings and
//! model, and a run on the reopened project repeats the original's losses step for step.

use std::path::PathBuf;
use std::sync::Arc;

use burn::tensor::Device;
use futures::executor::block_on;
use graft_model::ImageClassifier;
use graft_project::{
    prepare_file, read_project, write_project, HeadChoice, ModelRecord, ModelStatus, Project, PROJECT_FORMAT,
};
use graft_train::{export_model, ExportBundle, Mode, TrainConfig, TrainEvent, Trainer};

fn photo_files(class: &str, n: usize) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/photos").join(class);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}; run scripts/fetch-photos.sh", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    files
        .into_iter()
        .take(n)
        .map(|f| (f.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&f).unwrap()))
        .collect()
}

fn quick() -> TrainConfig {
    TrainConfig {
        mode: Mode::Frozen,
        epochs: 2,
        input_size: 64,
        batch_size: 4,
        frozen_views: 1,
        ..TrainConfig::default()
    }
}

fn project() -> Project {
    let mut p = Project::default();
    p.rename_class(0, "bird");
    p.rename_class(1, "flower");
    p.settings.train = quick();
    p.settings.head = HeadChoice::Replace;
    let pre = p.settings.train.preprocess();
    for (class_id, class) in [(0, "bird"), (1, "flower")] {
        for (name, bytes) in photo_files(class, 6) {
            let prepared = prepare_file(&bytes, &name, &pre).expect("a real photo prepares");
            p.add_image(class_id, name, prepared);
        }
    }
    p
}

fn step_losses(p: &Project, device: &Device) -> (Vec<f32>, graft_train::RunResult) {
    let dataset = p.dataset(p.settings.train.preprocess()).unwrap();
    let model = ImageClassifier::random(2, 5, device).unwrap();
    let mut trainer = Trainer::new(p.settings.train.clone(), dataset, model, device).unwrap();
    let mut losses = Vec::new();
    while let Some(e) = block_on(trainer.next_event()) {
        if let TrainEvent::Step(s) = e {
            losses.push(s.loss);
        }
    }
    (losses, trainer.finish())
}

#[test]
fn a_project_file_round_trip_is_exact_and_trains_identically() {
    let device = Device::flex();
    let mut original = project();
    let (losses, result) = step_losses(&original, &device);
    assert!(!losses.is_empty());
    let trained = result.trained.expect("a model");
    let bundle = block_on(export_model(&trained)).unwrap();
    original.model = Some(ModelRecord {
        manifest: trained.manifest.clone(),
        weights: Arc::from(bundle.file("model.safetensors").unwrap()),
        status: ModelStatus::Complete,
    });

    let file = write_project(&original).unwrap();
    let reopened = read_project(&file).unwrap();
    assert_eq!(reopened, original);
    println!("project file: {} pictures, {} KB", original.images.len(), file.len() / 1024);

    let (again, _) = step_losses(&reopened, &device);
    assert_eq!(again, losses, "the reopened project must train exactly like the original");

    // The kept model loads back from the project and predicts like the original.
    let model = reopened.model.unwrap();
    let files = vec![
        ("model.safetensors".to_string(), model.weights.to_vec()),
        ("manifest.json".to_string(), serde_json::to_vec(&model.manifest).unwrap()),
    ];
    let loaded = ExportBundle { files }.load(&device).unwrap();
    assert_eq!(loaded.manifest, trained.manifest);
}

#[test]
fn damaged_or_foreign_files_are_refused_with_a_reason() {
    let p = project();
    let file = write_project(&p).unwrap();
    let err = |bytes: &[u8]| read_project(bytes).expect_err("refused").to_string();
    assert!(err(b"not a zip at all").starts_with("not a graft project file"));
    // A model export is a zip but not a project.
    let other = graft_data::write_zip(&[("manifest.json".into(), b"{}".to_vec())]).unwrap();
    assert!(err(&other).contains("project.json"));
    // A project whose picture is missing.
    let mut entries = graft_data::read_zip(&file).unwrap();
    entries.retain(|(name, _)| name != "images/3.jpg");
    assert!(err(&graft_data::write_zip(&entries).unwrap()).contains("images/3.jpg is missing"));
    // Another format version.
    let mut entries = graft_data::read_zip(&file).unwrap();
    let json = String::from_utf8(entries[0].1.clone()).unwrap().replace(PROJECT_FORMAT, "graft-project/99");
    entries[0].1 = json.into_bytes();
    assert!(err(&graft_data::write_zip(&entries).unwrap()).contains("graft-project/99"));
    // Ids used twice (a hand-edited or corrupted file): a class's, a picture's.
    for (what, find, replace) in [
        (
            "class id 0 is used twice",
            "\"id\": 1,\n      \"name\": \"flower\"",
            "\"id\": 0,\n      \"name\": \"flower\"",
        ),
        ("picture id 0 is used twice", "\"id\": 1,\n      \"class_id\"", "\"id\": 0,\n      \"class_id\""),
    ] {
        let mut entries = graft_data::read_zip(&file).unwrap();
        let json = String::from_utf8(entries[0].1.clone()).unwrap();
        assert!(json.contains(find), "the test edits {find:?} in {json}");
        entries[0].1 = json.replacen(find, replace, 1).into_bytes();
        assert!(err(&graft_data::write_zip(&entries).unwrap()).contains(what), "{what}");
    }
}
