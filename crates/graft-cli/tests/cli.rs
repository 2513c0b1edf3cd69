//! The command-line tool end to end: train on a folder of class subfolders (with a bad file),
//! predict with the export, continue training it, pack it as a zip, start from other checkpoints;
//! failed, stopped and mistyped runs exit non-zero and export nothing.

#![allow(clippy::cast_possible_truncation)] // test fixtures build small synthetic values

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn graft_output(args: &[&str]) -> (Output, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_graft")).args(args).current_dir(repo()).output().expect("graft runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text)
}

fn graft(args: &[&str]) -> String {
    let (out, text) = graft_output(args);
    assert!(out.status.success(), "graft {args:?} failed:\n{text}");
    text
}

/// `graft` with a command line written as one string (the scratch paths hold no spaces).
fn graft_line(line: &str) -> String {
    graft(&line.split_whitespace().collect::<Vec<_>>())
}

fn sorted_photos(class: &str) -> Vec<PathBuf> {
    let mut files: Vec<_> =
        std::fs::read_dir(repo().join("data/photos").join(class)).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

fn copy_photos(from: &str, to: &Path, n: usize) {
    std::fs::create_dir_all(to).unwrap();
    for f in sorted_photos(from).into_iter().take(n) {
        std::fs::copy(&f, to.join(f.file_name().unwrap())).unwrap();
    }
}

struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("graft-cli-{name}-{}", std::process::id()));
        std::fs::remove_dir_all(&dir).ok();
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
    fn path(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
    fn data(&self, per_class: usize) -> PathBuf {
        let data = self.path("data");
        copy_photos("fruit", &data.join("fruit"), per_class);
        copy_photos("bird", &data.join("bird"), per_class);
        data
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        std::fs::remove_dir_all(&self.0).ok();
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `(label, probability)` pairs of one `predict` output line, best first.
fn ranking(line: &str) -> Vec<(String, f32)> {
    let (_, ranked) = line.rsplit_once(": ").unwrap_or_else(|| panic!("not a prediction line: {line}"));
    ranked
        .split(", ")
        .map(|pair| {
            let (label, p) = pair.rsplit_once(' ').unwrap();
            (label.to_string(), p.parse().unwrap())
        })
        .collect()
}

#[test]
fn train_predict_continue_export_on_a_folder() {
    let tmp = Scratch::new("main");
    let data = tmp.data(8);
    std::fs::write(data.join("bird/notes.jpg"), b"not an image").unwrap();
    let out = tmp.path("model");
    let data = s(&data).to_string();
    let common = "--input-size 128 --batch 4 --views 1";

    let log = graft_line(&format!("train {data} --out {} --epochs 4 {common}", s(&out)));
    assert!(log.contains("skipped bird/notes.jpg: not an image"), "{log}");
    assert!(log.contains("validation accuracy") && log.contains("finished all 4 epochs"), "{log}");
    for f in ["model.safetensors", "labels.json", "manifest.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["classes"], serde_json::json!(["bird", "fruit"]));
    assert_eq!(manifest["training"]["mode"], "frozen");
    assert_eq!(manifest["input_size"], 128);

    // A held-out fruit photo (not among the 8 trained on) is called fruit.
    let held_out = sorted_photos("fruit")[10].clone();
    let top1 = |model: &Path| ranking(graft(&["predict", s(model), s(&held_out), "--top", "2"]).trim());
    let before = top1(&out);
    assert_eq!(before[0].0, "fruit", "{before:?}");

    // `--from` starts from the export itself: with a vanishing learning rate nothing changes…
    let same = tmp.path("same");
    graft_line(&format!("train {data} --out {} --from {} --epochs 1 --lr 1e-20 {common}", s(&same), s(&out)));
    assert_eq!(top1(&same), before, "--from must load the exported weights");
    // …and real further training (discriminative this time) changes the predictions.
    let more = tmp.path("more");
    let log = graft_line(&format!(
        "train {data} --out {} --from {} --mode discriminative --epochs 1 --warmup 0 --lr 3e-3 {common}",
        s(&more),
        s(&out)
    ));
    assert!(log.contains("fine-tuning backbone and head"), "{log}");
    assert_ne!(top1(&more)[0].1, before[0].1, "further training must change the model");

    let zip = tmp.path("model.zip");
    graft(&["export", s(&out), s(&zip)]);
    let entries = graft_data::read_zip(&std::fs::read(&zip).unwrap()).unwrap();
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["model.safetensors", "labels.json", "manifest.json"]);
    assert_eq!(entries[0].1, std::fs::read(out.join("model.safetensors")).unwrap());
}

/// The second backbone end to end: frozen and discriminative runs, the export names its
/// architecture, normalisation and `efficientnet_pytorch` head, and loads back to predict.
#[test]
fn efficientnet_lite0_trains_both_ways_and_its_export_comes_back() {
    let tmp = Scratch::new("lite0");
    let data = tmp.data(8);
    let data = s(&data).to_string();
    let common = "--backbone efficientnet_lite0 --input-size 128 --batch 4 --views 1";
    let frozen = tmp.path("frozen");
    let log = graft_line(&format!("train {data} --out {} --epochs 4 {common}", s(&frozen)));
    assert!(log.contains("finished all 4 epochs"), "{log}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(frozen.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["architecture"], "efficientnet_lite0");
    assert_eq!(manifest["training"]["backbone"], "efficientnet_lite0");
    let mean = manifest["normalization"]["mean"][0].as_f64().unwrap();
    assert!((mean - 127.0 / 255.0).abs() < 1e-6, "Lite's (x - 127) / 128: {manifest}");
    let weights =
        graft_model::WeightMap::from_safetensors_bytes(std::fs::read(frozen.join("model.safetensors")).unwrap())
            .unwrap();
    assert_eq!(weights.shape("_fc.weight"), Some([2, 1280].as_slice()));
    assert!(weights.contains("_blocks.15._depthwise_conv.weight"));

    let accuracy = log.lines().find_map(|l| l.strip_prefix("validation accuracy ")).expect("a validation result");
    let accuracy: f32 = accuracy.split_whitespace().next().unwrap().parse().unwrap();
    assert!(accuracy >= 0.75, "validation accuracy {accuracy}:\n{log}");
    let held_out = sorted_photos("fruit")[10].clone();
    let top1 = |model: &Path| ranking(graft(&["predict", s(model), s(&held_out), "--top", "2"]).trim());
    assert_eq!(top1(&frozen).len(), 2);

    let tuned = tmp.path("tuned");
    let log = graft_line(&format!(
        "train {data} --out {} --mode discriminative --epochs 2 --warmup 1 --lr 3e-3 {common}",
        s(&tuned)
    ));
    assert!(log.contains("fine-tuning backbone and head") && log.contains("finished all 2 epochs"), "{log}");
    assert_eq!(top1(&tuned).len(), 2);

    // `--from` a Lite0 model trains Lite0 without being told; --backbone against it is refused.
    let small = "--input-size 128 --batch 4 --views 1 --epochs 1";
    let again = tmp.path("again");
    let log = graft_line(&format!("train {data} --out {} --from {} {small}", s(&again), s(&frozen)));
    assert!(log.contains("the checkpoint is EfficientNet-Lite0's, so the run trains EfficientNet-Lite0"), "{log}");
    assert!(log.contains("trained further, its head included"), "{log}");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(again.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["architecture"], "efficientnet_lite0");
    let (out, text) = graft_output(
        &format!("train {data} --out {} --from {} --backbone mobilenet_v2 {small}", s(&tmp.path("y")), s(&frozen))
            .split_whitespace()
            .collect::<Vec<_>>(),
    );
    assert!(!out.status.success());
    assert!(text.contains("a graft model on EfficientNet-Lite0, not MobileNetV2"), "{text}");

    // The backbone and the weights file must agree.
    let mobilenet = format!("--weights {}", s(&repo().join("static/weights/mobilenet_v2.safetensors")));
    let (out, text) = graft_output(
        &format!("train {data} --out {} {mobilenet} {common}", s(&tmp.path("x")))
            .split_whitespace()
            .collect::<Vec<_>>(),
    );
    assert!(!out.status.success());
    assert!(text.contains("the model is MobileNetV2 but the settings train EfficientNet-Lite0"), "{text}");

    // The Lab's backbone comparison: both networks on the same data, a verdict from the numbers.
    let log = graft_line(&format!("compare {data} --backbones --epochs 2 --input-size 128 --batch 4 --views 1"));
    // Table rows are padded to a column; the verdict's sentence starts with a name too.
    let table: Vec<&str> =
        log.lines().filter(|l| l.starts_with("MobileNetV2  ") || l.starts_with("EfficientNet-Lite0  ")).collect();
    assert_eq!(table.len(), 2, "{log}");
    assert!(log.contains("validation pictures") && log.contains("as fast here"), "{log}");
}

#[test]
fn a_diverging_run_exits_non_zero_and_exports_nothing() {
    let tmp = Scratch::new("nan");
    let data = tmp.data(4);
    let out = tmp.path("model");
    let (status, log) =
        graft_output(&["train", s(&data), "--out", s(&out), "--lr", "1e38", "--input-size", "64", "--batch", "4"]);
    assert_eq!(status.status.code(), Some(1), "{log}");
    assert!(log.contains("lower the learning rate") && log.contains("nothing exported"), "{log}");
    assert!(!out.exists(), "a failed run must not export");
}

#[test]
fn mistyped_flags_and_values_are_errors() {
    let (out, text) = graft_output(&["train", "data", "--out", "x", "--epoch", "5"]);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("--epoch"), "{text}");
    let (out, text) = graft_output(&["train", "data", "--out", "x", "--mode", "frozn"]);
    assert!(!out.status.success() && text.contains("unknown mode"), "{text}");
    // Help shows the defaults from TrainConfig::default().
    let help = graft(&["train", "--help"]);
    assert!(help.contains("[default: 10]") && help.contains("[default: frozen]"), "{help}");
}

#[test]
fn ctrl_c_stops_the_run_and_exports_only_when_asked() {
    for keep in [false, true] {
        let tmp = Scratch::new(if keep { "stop-keep" } else { "stop" });
        let data = tmp.data(4);
        let out = tmp.path("model");
        let line = format!(
            "train {} --out {} --mode discriminative --warmup 0 --epochs 500 --input-size 64 --batch 4",
            s(&data),
            s(&out)
        );
        let mut args: Vec<&str> = line.split_whitespace().collect();
        if keep {
            args.push("--keep-partial");
        }
        let mut child = Command::new(env!("CARGO_BIN_EXE_graft"))
            .args(&args)
            .current_dir(repo())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut log = String::new();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        for line in lines.by_ref() {
            let line = line.unwrap();
            log.push_str(&line);
            log.push('\n');
            if line.starts_with("epoch   1:") {
                let sent = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
                assert!(sent.success());
                break;
            }
        }
        log.extend(lines.map(|l| l.unwrap() + "\n"));
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(130), "{log}");
        assert!(log.contains("stopped after") && log.contains("of 500 epochs"), "{log}");
        assert_eq!(out.join("model.safetensors").is_file(), keep, "{log}");
    }
}

#[test]
fn check_tallies_used_and_refused_files() {
    let tmp = Scratch::new("check");
    let data = tmp.data(2);
    std::fs::write(data.join("fruit/empty.jpg"), b"").unwrap();
    std::fs::write(data.join("fruit/notes.png"), b"hello").unwrap();
    let log = graft(&["check", s(&data), "--json"]);
    let tally: serde_json::Value = serde_json::from_str(log.trim()).unwrap();
    assert_eq!(tally["used"], 4);
    assert_eq!(tally["refused_by_reason"], serde_json::json!({"empty file": 1, "not an image": 1}));
    assert_eq!(tally["crashed"], serde_json::json!([]));
}

#[test]
fn lab_commands_compare_find_a_rate_and_report() {
    let tmp = Scratch::new("lab");
    let data = tmp.data(6);
    let data = s(&data).to_string();
    let log = graft_line(&format!("compare {data} --epochs 2 --input-size 96 --batch 4 --views 1"));
    for label in ["frozen, head replaced", "stacked on the old head", "discriminative", "everything at one rate"] {
        assert!(log.contains(label), "{label} missing:\n{log}");
    }
    // The frozen rows keep all of ImageNet's answers.
    let frozen = log.lines().find(|l| l.starts_with("frozen, head replaced") && l.contains('%')).expect("a frozen row");
    assert!(frozen.contains("100.0%"), "{frozen}");

    let log = graft_line(&format!("lr-find {data} --input-size 96 --batch 4 --steps 40 --json"));
    let json = log.lines().find(|l| l.starts_with('{')).expect("a JSON result");
    let result: serde_json::Value = serde_json::from_str(json).unwrap();
    assert_eq!(result["lrs"].as_array().map(Vec::len), result["losses"].as_array().map(Vec::len));
    // The sweep is seeded, so its outcome is fixed: a descent, its rate inside the sweep, printed.
    let suggestion = result["suggestion"].as_f64().unwrap_or_else(|| panic!("no suggestion:\n{log}"));
    let lrs: Vec<f64> = result["lrs"].as_array().unwrap().iter().filter_map(serde_json::Value::as_f64).collect();
    assert!(lrs.first().is_some_and(|&lo| lo <= suggestion) && lrs.last().is_some_and(|&hi| suggestion <= hi));
    assert!(log.contains("suggested learning rate"), "{log}");

    let out = tmp.path("model");
    graft_line(&format!("train {data} --out {} --epochs 2 --input-size 96 --batch 4 --views 1", s(&out)));
    let log = graft_line(&format!("report {data} --model {}", s(&out)));
    assert!(log.contains("== data checks") && log.contains("on its validation split"), "{log}");
    assert!(
        log.contains("what the backbone still knows: ImageNet top-1 unchanged on 100.0%"),
        "a frozen model forgets nothing:\n{log}"
    );
}

#[test]
fn a_project_file_trains_with_its_settings_and_comes_back_with_the_model() {
    let tmp = Scratch::new("project");
    let data = tmp.data(8);
    let packed = tmp.path("packed.graft.zip");
    let log = graft(&["project", "pack", s(&data), s(&packed)]);
    assert!(log.contains("2 classes, 16 pictures"), "{log}");

    // The page's settings travel in the project: the run takes them, the flags given override.
    let mut project = graft_project::read_project(&std::fs::read(&packed).unwrap()).unwrap();
    let train = &mut project.settings.train;
    (train.lr, train.seed, train.input_size, train.batch_size, train.frozen_views) = (2e-3, 5, 128, 4, 1);
    std::fs::write(&packed, graft_project::write_project(&project).unwrap()).unwrap();
    let (model, saved) = (tmp.path("model"), tmp.path("trained.graft.zip"));
    graft(&["train", s(&packed), "--epochs", "2", "--out", s(&model), "--save-project", s(&saved)]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(model.join("manifest.json")).unwrap()).unwrap();
    let t = &manifest["training"];
    assert_eq!((t["lr"].as_f64(), t["seed"].as_u64(), t["epochs"].as_u64()), (Some(2e-3), Some(5), Some(2)));
    assert_eq!(manifest["input_size"], 128);

    // The saved project holds this model and the run's settings; the page opens it.
    let back = graft_project::read_project(&std::fs::read(&saved).unwrap()).unwrap();
    let kept = back.model.as_ref().expect("the saved project keeps the model");
    assert_eq!(kept.status, graft_project::ModelStatus::Complete);
    assert_eq!(&*kept.weights, std::fs::read(model.join("model.safetensors")).unwrap().as_slice());
    assert_eq!(back.settings.train.epochs, 2);
    assert_eq!(back.images, project.images, "the pictures travel unchanged");
    let info = graft(&["project", "info", s(&saved)]);
    assert!(info.contains("8 pictures") && info.contains("model: trained"), "{info}");

    // Unpacked as class folders; and as a PyTorch recipe with graft's split.
    let unpacked = tmp.path("unpacked");
    graft(&["project", "unpack", s(&saved), s(&unpacked)]);
    for class in ["bird", "fruit"] {
        assert_eq!(std::fs::read_dir(unpacked.join(class)).unwrap().count(), 8, "{class}");
    }
    let recipe = tmp.path("recipe");
    graft(&["export", s(&model), s(&recipe), "--format", "pytorch-recipe", "--data", s(&saved)]);
    let count = |split: &str| -> usize {
        ["bird", "fruit"]
            .iter()
            .map(|c| std::fs::read_dir(recipe.join("data").join(split).join(c)).unwrap().count())
            .sum()
    };
    assert_eq!((count("train") + count("val"), count("val") > 0), (16, true));
    for f in ["train.py", "README.md", "recipe.json", "start/model.safetensors", "start/manifest.json"] {
        assert!(recipe.join(f).is_file(), "{f} missing");
    }
    let onnx = tmp.path("model.onnx");
    graft(&["export", s(&model), s(&onnx), "--format", "onnx"]);
    assert_eq!(&std::fs::read(&onnx).unwrap()[..2], [0x08, 0x08]);

    let (out, text) = graft_output(&["train", s(&data), "--out", s(&tmp.path("x")), "--save-project", s(&saved)]);
    assert!(!out.status.success() && text.contains("--save-project needs a project file"), "{text}");
}

/// A safetensors file of f32 tensors `(name, shape)`, all zeros, written by hand.
fn zero_safetensors(tensors: &[(&str, &[usize])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<usize>() * 4;
        header.insert(
            (*name).into(),
            serde_json::json!({ "dtype": "F32", "shape": shape, "data_offsets": [offset, offset + bytes] }),
        );
        offset += bytes;
    }
    let header = serde_json::to_vec(&header).unwrap();
    let mut out = (header.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&header);
    out.resize(out.len() + offset, 0);
    out
}

#[test]
fn starting_checkpoints_are_taken_or_refused_with_named_reasons() {
    let tmp = Scratch::new("start");
    let two = tmp.data(4);
    let common = "--input-size 64 --batch 4 --views 1 --epochs 1";
    let first = tmp.path("first");
    graft_line(&format!("train {} --out {} {common}", s(&two), s(&first)));

    // Three classes from the two-class model: its backbone, a new head, each decision printed.
    let three = tmp.path("three");
    copy_photos("bird", &three.join("bird"), 4);
    copy_photos("flower", &three.join("flower"), 4);
    copy_photos("fruit", &three.join("fruit"), 4);
    let out = tmp.path("out");
    let log = graft_line(&format!("train {} --out {} --from {} {common}", s(&three), s(&out), s(&first)));
    assert!(log.contains("a graft model of other classes (bird, fruit): its backbone"), "{log}");
    assert!(
        log.contains("`classifier.1.weight` is [2, 1280], this project has 3 classes — the head will be replaced"),
        "{log}"
    );
    assert!(log.contains("finished all 1 epochs"), "{log}");

    // torchvision's own ImageNet checkpoint, as PyTorch saved it.
    let pth = repo().join("weights/mobilenet_v2-b0353104.pth");
    let log = graft_line(&format!("train {} --out {} --from {} {common}", s(&two), s(&tmp.path("pth")), s(&pth)));
    assert!(
        log.contains("`classifier.1.weight` is [1000, 1280], this project has 2 classes — the head will be replaced"),
        "{log}"
    );

    // A state_dict of another shape, and a file that is no checkpoint: refused, named, no panic.
    let wrong = tmp.path("wrong.safetensors");
    std::fs::write(
        &wrong,
        zero_safetensors(&[("features.0.0.weight", &[16, 3, 3, 3]), ("features.0.1.weight", &[32])]),
    )
    .unwrap();
    let notes = tmp.path("notes.safetensors");
    std::fs::write(&notes, b"my notes").unwrap();
    for (file, want) in [
        (
            &wrong,
            "`features.0.0.weight` is [16, 3, 3, 3], MobileNetV2 has [32, 3, 3, 3]; `features.0.1.bias` is missing",
        ),
        (&notes, "is not a checkpoint graft reads"),
    ] {
        let args = format!("train {} --out {} --from {} {common}", s(&two), s(&tmp.path("refused")), s(file));
        let (status, text) = graft_output(&args.split_whitespace().collect::<Vec<_>>());
        assert!(!status.status.success(), "{text}");
        assert!(text.contains(want) && !text.contains("panicked"), "{text}");
        assert!(!tmp.path("refused").exists(), "nothing is exported");
    }
}
