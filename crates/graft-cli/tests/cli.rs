//! The command-line tool end to end: train on a folder of class subfolders (with a bad file),
//! predict with the export, pack it as a zip.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn graft(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_graft")).args(args).current_dir(repo()).output().expect("graft runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "graft {args:?} failed:\n{text}");
    text
}

fn copy_photos(from: &str, to: &Path, n: usize) {
    std::fs::create_dir_all(to).unwrap();
    let mut files: Vec<_> =
        std::fs::read_dir(repo().join("data/photos").join(from)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    for f in files.into_iter().take(n) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

#[test]
fn train_predict_export_on_a_folder() {
    let tmp = std::env::temp_dir().join(format!("graft-cli-test-{}", std::process::id()));
    let data = tmp.join("data");
    copy_photos("fruit", &data.join("fruit"), 5);
    copy_photos("bird", &data.join("bird"), 5);
    std::fs::write(data.join("bird/notes.jpg"), b"not an image").unwrap();
    let out = tmp.join("model");

    let log = graft(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--epochs",
        "2",
        "--input-size",
        "64",
        "--batch",
        "4",
        "--views",
        "1",
    ]);
    assert!(log.contains("skipped bird/notes.jpg: not an image"), "{log}");
    assert!(log.contains("validation accuracy"), "{log}");
    for f in ["model.safetensors", "labels.json", "manifest.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["classes"], serde_json::json!(["bird", "fruit"]));
    assert_eq!(manifest["training"]["mode"], "frozen");
    assert_eq!(manifest["input_size"], 64);

    let photo = data.join("fruit").read_dir().unwrap().next().unwrap().unwrap().path();
    let pred = graft(&["predict", out.to_str().unwrap(), photo.to_str().unwrap(), "--top", "2"]);
    assert!(pred.contains("fruit") && pred.contains("bird"), "{pred}");

    // Further training of the export, discriminatively this time.
    let more = tmp.join("model2");
    let log = graft(&[
        "train",
        data.to_str().unwrap(),
        "--out",
        more.to_str().unwrap(),
        "--from",
        out.to_str().unwrap(),
        "--mode",
        "discriminative",
        "--epochs",
        "1",
        "--warmup",
        "0",
        "--input-size",
        "64",
        "--batch",
        "4",
    ]);
    assert!(log.contains("fine-tuning backbone and head"), "{log}");
    assert!(more.join("model.safetensors").is_file());

    let zip = tmp.join("model.zip");
    graft(&["export", out.to_str().unwrap(), zip.to_str().unwrap()]);
    let bytes = std::fs::read(&zip).unwrap();
    assert_eq!(&bytes[..4], b"PK\x03\x04");
    std::fs::remove_dir_all(&tmp).ok();
}
