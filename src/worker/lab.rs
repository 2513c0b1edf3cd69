//! The teaching lab in the worker: data checks, Compare, the LR finder, interpretation, Grad-CAM
//! and the 2-D map, on the project's pictures (the engine's `graft-lab` does the computing).

use std::rc::Rc;

use graft_data::{rgba_to_rgb, Dataset};
use graft_lab::{
    backbone_knowledge, backbone_verdict, backbone_view, grad_cam, layer_changes, lr_find_for_run, most_confused,
    pca_2d, pretrained_view, run_backbone_compare, run_compare, top_losses, CompareEvent, KnowledgeStage, LrFindStage,
};
use graft_model::{Architecture, ImageClassifier, WeightMap};
use graft_project::ModelStatus;
use graft_train::{CancelToken, TrainedModel};
use web_sys::File;

use crate::protocol::{Event, FindingView, Knowledge, LabProgress, Level, MapPoint, PredictSource, ValPicture};
use crate::worker::decode;
use crate::worker::engine::Engine;
use crate::worker::link::{notice, post, yield_now};

fn progress(what: &str, done: usize, total: usize) {
    post(&Event::LabProgress(LabProgress { what: what.into(), done, total }));
}

/// The project's training set with the id of each picture (in dataset order).
fn dataset_with_ids(engine: &Engine) -> Result<(Dataset, Vec<u64>), String> {
    let project = engine.project.borrow();
    let cfg = project.settings.train.clone();
    let dataset = project.dataset(cfg.preprocess()).map_err(|e| e.to_string())?;
    let ids = project
        .classes
        .iter()
        .flat_map(|c| project.images.iter().filter(move |i| i.class_id == c.id).map(|i| i.id))
        .collect();
    Ok((dataset, ids))
}

/// The pretrained weights of `arch`, else of the project's backbone (downloaded on first use);
/// a failed download is said and gives `None`.
async fn project_pretrained(engine: &Rc<Engine>, arch: Option<Architecture>) -> Option<Rc<WeightMap>> {
    let arch = arch.unwrap_or_else(|| engine.project.borrow().settings.train.backbone);
    match engine.pretrained_for(arch).await {
        Ok(weights) => Some(weights),
        Err(e) => {
            notice(Level::Error, e);
            None
        }
    }
}

fn thumb_of(engine: &Engine, id: u64) -> Vec<u8> {
    engine.project.borrow().images.iter().find(|i| i.id == id).map(|i| i.thumb.to_vec()).unwrap_or_default()
}

pub async fn check_data(engine: &Rc<Engine>) {
    let Some(pretrained) = project_pretrained(engine, None).await else { return };
    let (dataset, ids) = match dataset_with_ids(engine) {
        Ok(d) => d,
        Err(e) => return notice(Level::Error, format!("data checks: {e}")),
    };
    let device = engine.device(engine.backend());
    let cfg = engine.project.borrow().settings.train.clone();
    let view = pretrained_view(&pretrained, &dataset, &device, |done, total| {
        progress("checking the pictures", done, total);
        yield_now()
    })
    .await;
    let view = match view {
        Ok(v) => v,
        Err(e) => return notice(Level::Error, format!("data checks: {e}")),
    };
    // Pictures by position, not by name: names repeat (webcam frames).
    let findings = graft_lab::data_findings(&dataset, &view, &cfg)
        .into_iter()
        .map(|f| {
            let thumbs = f.pictures().iter().take(12).filter_map(|&i| ids.get(i)).map(|&id| (id, thumb_of(engine, id)));
            FindingView { text: f.describe(), thumbs: crate::protocol::thumbs(thumbs.collect()) }
        })
        .collect();
    post(&Event::Findings { findings });
}

pub async fn compare(engine: &Rc<Engine>, cancel: &CancelToken) {
    let Some(pretrained) = project_pretrained(engine, None).await else { return };
    let (dataset, _) = match dataset_with_ids(engine) {
        Ok(d) => d,
        Err(e) => return notice(Level::Error, format!("compare: {e}")),
    };
    let backend = engine.backend();
    let device = engine.device(backend);
    let cfg = engine.project.borrow().settings.train.clone();
    let result = run_compare(&dataset, &pretrained, &cfg, &device, cancel, |event: CompareEvent| {
        post(&Event::Compare(event));
        yield_now()
    })
    .await;
    match result {
        Ok(runs) => {
            let models: Vec<Option<TrainedModel>> = runs.into_iter().map(|(_, m)| m).collect();
            *engine.compare_models.borrow_mut() =
                models.into_iter().map(|m| m.map(|m| (m, backend, device.clone()))).collect();
            post(&Event::CompareDone);
        }
        Err(e) => notice(Level::Error, format!("compare: {e}")),
    }
}

/// Both backbones on the project's pictures, split, seed and settings (Lite0's weights are
/// downloaded first if they never were).
pub async fn compare_backbones(engine: &Rc<Engine>, cancel: &CancelToken) {
    let mut pretrained = Vec::new();
    for arch in Architecture::ALL {
        match engine.pretrained_for(arch).await {
            Ok(weights) => pretrained.push(weights),
            Err(e) => return notice(Level::Error, format!("compare backbones: {e}")),
        }
    }
    let (dataset, _) = match dataset_with_ids(engine) {
        Ok(d) => d,
        Err(e) => return notice(Level::Error, format!("compare backbones: {e}")),
    };
    let device = engine.device(engine.backend());
    let cfg = engine.project.borrow().settings.train.clone();
    // The engine's own copies, borrowed (two backbones' weights are ~33 MB).
    let pretrained: Vec<&WeightMap> = pretrained.iter().map(AsRef::as_ref).collect();
    let result = run_backbone_compare(&dataset, &pretrained, &cfg, &device, cancel, |event| {
        post(&Event::BackboneCompare(event));
        yield_now()
    })
    .await;
    match result {
        Ok(rows) => post(&Event::BackboneCompareDone { verdict: backbone_verdict(&rows) }),
        Err(e) => notice(Level::Error, format!("compare backbones: {e}")),
    }
}

/// Makes one Compare run's model the kept one (prediction, export, interpretation).
pub async fn use_compare_model(engine: &Rc<Engine>, index: usize) {
    let chosen = engine.compare_models.borrow().get(index).cloned().flatten();
    match chosen {
        Some((trained, backend, device)) => engine.keep_trained(trained, ModelStatus::Complete, backend, device).await,
        None => notice(Level::Error, "that run left no model"),
    }
}

pub async fn lr_find(engine: &Rc<Engine>) {
    let Some(pretrained) = project_pretrained(engine, None).await else { return };
    let (dataset, _) = match dataset_with_ids(engine) {
        Ok(d) => d,
        Err(e) => return notice(Level::Error, format!("LR finder: {e}")),
    };
    let device = engine.device(engine.backend());
    let cfg = engine.project.borrow().settings.train.clone();
    let result = lr_find_for_run(&pretrained, &dataset, &cfg, None, &device, |stage, done, total| {
        let what = match stage {
            LrFindStage::Features => "computing features",
            LrFindStage::Sweep => "sweeping the learning rate",
        };
        progress(what, done, total);
        yield_now()
    })
    .await;
    match result {
        Ok(r) => post(&Event::LrFinder(r)),
        Err(e) => notice(Level::Error, format!("LR finder: {e}")),
    }
}

/// The kept model on its validation split: every picture's outcome (with thumbnails), the
/// most confused pairs and the top losses.
pub async fn interpret(engine: &Rc<Engine>) {
    let Some(kept) = engine.kept.borrow().clone() else { return notice(Level::Error, "train a model first") };
    let (dataset, ids) = match dataset_with_ids(engine) {
        Ok(d) => d,
        Err(e) => return notice(Level::Error, format!("interpretation: {e}")),
    };
    if kept.record.manifest.classes != dataset.classes {
        return notice(Level::Error, "the classes changed since the model was trained: train it again to interpret it");
    }
    let cfg = kept.record.manifest.training.clone().unwrap_or_default();
    let eval = match graft_lab::evaluate(&kept.model, &dataset, &cfg, &kept.device).await {
        Ok(e) => e,
        Err(e) => return notice(Level::Error, format!("interpretation: {e}")),
    };
    let pairs = most_confused(&eval, 1).iter().map(|p| p.describe(&dataset.classes)).collect();
    let top: Vec<usize> = top_losses(&eval, 8).iter().map(|i| i.index).collect();
    let pictures = eval
        .items
        .iter()
        .map(|i| ValPicture {
            id: ids[i.index],
            name: i.name.clone(),
            label: i.label,
            predicted: i.predicted,
            confidence: i.confidence,
            loss: i.loss,
            top_loss_rank: top.iter().position(|&t| t == i.index),
            thumb: serde_bytes::ByteBuf::from(thumb_of(engine, ids[i.index])),
        })
        .collect();
    post(&Event::Interpretation {
        classes: dataset.classes.clone(),
        accuracy: eval.accuracy,
        confusion: eval.confusion,
        pairs,
        pictures,
    });
}

pub async fn saliency(engine: &Rc<Engine>, source: PredictSource, files: Vec<File>) {
    let Some(kept) = engine.kept.borrow().clone() else { return notice(Level::Error, "train a model first") };
    let image = match source {
        PredictSource::Frame(f) => rgba_to_rgb(f.width, f.height, f.rgba).map_err(|e| e.to_string()),
        PredictSource::File => match files.first() {
            Some(file) => decode::decode_blob(file, &file.name(), kept.record.manifest.resize_side).await,
            None => Err("no picture".to_string()),
        },
    };
    let result = match image {
        Ok(image) => grad_cam(&kept.model, &image, &kept.record.manifest.preprocess(), None, &kept.device).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(s) => post(&Event::Saliency {
            side: s.side,
            heat: s.heat,
            class: kept.record.manifest.classes.get(s.class).cloned().unwrap_or_default(),
            probability: s.probability,
        }),
        Err(e) => notice(Level::Error, format!("saliency: {e}")),
    }
}

/// Every picture on the first two principal axes of the backbone's features: the pretrained
/// backbone's, and the kept model's (they differ once the backbone was fine-tuned).
pub async fn map(engine: &Rc<Engine>) {
    let Some(pretrained) = project_pretrained(engine, None).await else { return };
    let (dataset, ids) = match dataset_with_ids(engine) {
        Ok(d) => d,
        Err(e) => return notice(Level::Error, format!("map: {e}")),
    };
    let device = engine.device(engine.backend());
    let before = match pretrained_view(&pretrained, &dataset, &device, |done, total| {
        progress("features of the pretrained backbone", done, total);
        yield_now()
    })
    .await
    {
        Ok(v) => v,
        Err(e) => return notice(Level::Error, format!("map: {e}")),
    };
    let kept = engine.kept.borrow().clone();
    let after = match kept {
        Some(kept) if kept.record.manifest.classes == dataset.classes => {
            let pictures: Vec<_> = dataset.items.iter().map(|i| &i.image).collect();
            let backbone = ImageClassifier { backbone: kept.model.backbone.clone(), head: kept.model.head.clone() };
            backbone_view(&backbone, &pictures, &dataset.preprocess, &kept.device, 16, |done, total| {
                progress("features of the trained backbone", done, total);
                yield_now()
            })
            .await
            .ok()
        }
        _ => None,
    };
    let d = before.features.len() / before.len().max(1);
    let xy_before = pca_2d(&before.features, before.len(), d);
    let xy_after = after.as_ref().map(|a| pca_2d(&a.features, a.len(), d));
    let points = dataset
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| MapPoint {
            id: ids[i],
            label: item.label,
            before: xy_before[i],
            after: xy_after.as_ref().map(|a| a[i]),
        })
        .collect();
    post(&Event::Map { classes: dataset.classes.clone(), points });
}

/// Pictures the ImageNet-agreement figure is measured on, at most: an even sample of a large
/// set says the same thing in a fraction of the time.
const KNOWLEDGE_SAMPLE: usize = 200;

/// What the kept model's backbone still knows of ImageNet, and how far each layer moved.
pub async fn knowledge(engine: &Rc<Engine>) {
    let Some(kept) = engine.kept.borrow().clone() else { return };
    let Some(pretrained) = project_pretrained(engine, Some(kept.model.arch())).await else { return };
    let Ok((mut dataset, _)) = dataset_with_ids(engine) else { return };
    let step = dataset.items.len().div_ceil(KNOWLEDGE_SAMPLE).max(1);
    dataset.items = dataset.items.into_iter().step_by(step).collect();
    let weights = match kept.model.to_weight_map().await {
        Ok(w) => w,
        Err(e) => return notice(Level::Error, format!("knowledge: {e}")),
    };
    let knowledge = backbone_knowledge(&pretrained, &weights, &dataset, &kept.device, |stage, done, total| {
        let what = match stage {
            KnowledgeStage::Pretrained => "what the pretrained network sees",
            KnowledgeStage::Trained => "what the trained backbone sees",
        };
        progress(what, done, total);
        yield_now()
    })
    .await;
    let (imagenet_agreement, layers) = match knowledge {
        Ok(k) => (Some(k.imagenet_agreement), k.layer_change),
        Err(e) => {
            notice(Level::Warning, format!("what the backbone still knows: {e}"));
            (None, layer_changes(&pretrained, &weights))
        }
    };
    post(&Event::Knowledge(Knowledge { imagenet_agreement, layer_change: layers }));
}
