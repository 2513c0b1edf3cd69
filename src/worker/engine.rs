//! The engine worker's state and its command handlers. It owns the project (saved to IndexedDB
//! as it changes), the devices, the kept model and the one running job (`worker::jobs`).
//! Commands are handled one at a time, in order; every long command is a job in its own task, so
//! Stop, Predict and new pictures are answered while it runs, and a second job is refused
//! ("busy: …") instead of queued.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;

use burn::tensor::Device;
use graft_data::rgba_to_rgb;
use graft_model::{Architecture, HeadSpec, ImageClassifier, WeightMap};
use graft_project::{ImageRecord, ModelRecord, ModelStatus, Project};
use graft_train::{export_model, load_exported, onnx::onnx_from_export, predict, FailureReason, Mode, TrainedModel};
use wasm_bindgen_futures::spawn_local;
use web_sys::File;

use crate::protocol::{
    Backend, BackendChoice, ClassView, Command, ComputeInfo, Event, ExportFormat, FileProblem, JobKind, Level,
    ModelInfo, PredictSource, ProjectView, Thumb,
};
use crate::worker::boot::Gpu;
use crate::worker::decode;
use crate::worker::idb::{ImageRow, Store};
use crate::worker::jobs::{stoppable, Jobs};
use crate::worker::link::{notice, post, Incoming};
use crate::worker::starting::StartFile;
use crate::worker::storage::image_row;

/// Pictures saved per IndexedDB transaction while a large drop is ingested.
pub(super) const SAVE_BATCH: usize = 16;
/// Thumbnails restored per class (the page shows the latest ones and the count).
pub const THUMBS_PER_CLASS: usize = 48;

/// The model predictions and exports use, and where it lives.
pub struct Kept {
    pub record: ModelRecord,
    pub model: ImageClassifier,
    pub device: Device,
    pub backend: Backend,
}

#[derive(Default)]
/// The worker's state, owned here: the sibling modules (jobs, storage, training…) change it
/// through the engine; nothing outside `worker` sees it.
pub(super) struct Engine {
    pub(super) project: RefCell<Project>,
    pub(super) store: RefCell<Option<Rc<Store>>>,
    /// The pretrained backbones downloaded so far: MobileNetV2's at start, another when a
    /// project first trains on it.
    pub(super) pretrained: RefCell<HashMap<Architecture, Rc<WeightMap>>>,
    pub(super) compute: RefCell<ComputeInfo>,
    pub(super) gpu: RefCell<Option<Gpu>>,
    pub(super) gpu_lost: Cell<bool>,
    pub(super) kept: RefCell<Option<Rc<Kept>>>,
    /// The one running job (train, Compare, the lab's analyses, the benchmark), its Stop.
    pub(super) jobs: Rc<Jobs>,
    /// Pictures whose save failed (storage full): kept in memory until reload.
    pub(super) unsaved: Cell<usize>,
    /// The models of the last Compare experiment, in lesson order.
    pub(super) compare_models: RefCell<Vec<Option<(TrainedModel, Backend, Device)>>>,
    /// Started by the page only to measure this engine's speed: no project is restored or saved.
    pub(super) measure_only: Cell<bool>,
    /// Bumped whenever the project is replaced (New, Open): a run started on an earlier project
    /// must not keep its model in the new one.
    pub(super) project_generation: Cell<u64>,
    /// The starting checkpoint new runs start from instead of ImageNet (`worker::starting`).
    pub(super) start: RefCell<Option<Rc<StartFile>>>,
}

impl Engine {
    // ---- devices -------------------------------------------------------------------------

    /// The backend a run in `mode` uses: the user's choice, else the measured one for that mode
    /// (the CPU until the page sends one); never a lost or refused GPU.
    pub(super) fn backend_for(&self, mode: Mode) -> Backend {
        let c = self.compute.borrow();
        let wanted = match c.choice {
            BackendChoice::Webgpu => Backend::Webgpu,
            BackendChoice::Cpu => Backend::Cpu,
            BackendChoice::Auto => c.auto.map_or(Backend::Cpu, |a| a.get(mode)),
        };
        if wanted == Backend::Webgpu && (self.gpu_lost.get() || self.gpu.borrow().is_none()) {
            Backend::Cpu
        } else {
            wanted
        }
    }

    /// The backend for the project's mode: what predictions, the lab and the benchmark use.
    pub(super) fn backend(&self) -> Backend {
        let mode = self.project.borrow().settings.train.mode;
        self.backend_for(mode)
    }

    pub(super) fn device(&self, backend: Backend) -> Device {
        match (backend, self.gpu.borrow().as_ref()) {
            (Backend::Webgpu, Some(gpu)) if !self.gpu_lost.get() => gpu.device.clone(),
            _ => Device::flex(),
        }
    }

    pub(super) fn post_compute(&self) {
        let backend = self.backend();
        let mut c = self.compute.borrow_mut();
        c.in_use = Some(backend);
        post(&Event::Compute(c.clone()));
    }

    /// Whether the WebGPU device still computes: one tiny readback. After a device loss
    /// (driver reset, out of memory, destroyed) the readback fails.
    async fn gpu_works(&self) -> bool {
        let Some(device) = self.gpu.borrow().as_ref().map(|g| g.device.clone()) else { return false };
        let probe = burn::tensor::Tensor::<1>::from_floats([1.0], &device).add_scalar(1.0);
        matches!(probe.into_data_async().await.map(|d| d.try_into_vec::<f32>()), Ok(Ok(v)) if v == [2.0])
    }

    /// Called when an operation failed on `backend`: if the WebGPU device stopped working,
    /// switch to the CPU for good and say so.
    async fn check_gpu_loss(&self, backend: Backend, message: &str) -> bool {
        if backend != Backend::Webgpu {
            return false;
        }
        if self.gpu_lost.get() || !self.gpu_works().await {
            if !self.gpu_lost.get() {
                self.gpu_lost.set(true);
                self.compute.borrow_mut().webgpu_error = Some(format!("the WebGPU device was lost ({message})"));
                self.post_compute();
            }
            return true;
        }
        false
    }

    // ---- views ---------------------------------------------------------------------------

    pub(super) fn model_info(&self) -> Option<ModelInfo> {
        let kept = self.kept.borrow().clone()?;
        let manifest = &kept.record.manifest;
        let project = self.project.borrow();
        let names: Vec<String> = project.classes.iter().map(|c| c.name.trim().to_string()).collect();
        let resumable = !matches!(kept.record.status, ModelStatus::Complete) && names == manifest.classes;
        Some(ModelInfo {
            classes: manifest.classes.clone(),
            status: kept.record.status,
            description: kept.record.status.describe(),
            val_accuracy: manifest.metrics.as_ref().and_then(|m| m.evaluation.as_ref()).map(|e| e.accuracy),
            resumable,
        })
    }

    pub(super) fn project_view(&self) -> ProjectView {
        let p = self.project.borrow();
        ProjectView {
            classes: p
                .classes
                .iter()
                .map(|c| ClassView { id: c.id, name: c.name.clone(), count: p.count(c.id) })
                .collect(),
            settings: p.settings.clone(),
            model: None,
            start_from: self.start.borrow().as_ref().map(|s| s.name.clone()),
        }
    }

    /// The whole project to the page: classes, settings, the latest thumbnails, the model.
    pub(super) fn post_project(&self) {
        let mut view = self.project_view();
        view.model = self.model_info();
        post(&Event::Project(view));
        let p = self.project.borrow();
        for class in &p.classes {
            let images: Vec<&ImageRecord> = p.images.iter().filter(|i| i.class_id == class.id).collect();
            let latest = &images[images.len().saturating_sub(THUMBS_PER_CLASS)..];
            let thumbs = latest.iter().map(|i| Thumb { id: i.id, jpeg: i.thumb.to_vec() }).collect();
            post(&Event::Added { class_id: class.id, thumbs, count: images.len() });
        }
    }

    // ---- models --------------------------------------------------------------------------

    /// Loads a stored model onto the device in use.
    pub(super) fn load_kept(&self, record: ModelRecord) -> Result<Kept, String> {
        let backend = self.backend();
        let device = self.device(backend);
        let manifest_json = serde_json::to_vec(&record.manifest).map_err(|e| e.to_string())?;
        let (model, _) = load_exported(record.weights.to_vec(), &manifest_json, &device).map_err(|e| e.to_string())?;
        Ok(Kept { record, model, device, backend })
    }

    /// The kept model on a usable device (reloaded on the CPU if its GPU was lost).
    fn usable_kept(&self) -> Result<Rc<Kept>, String> {
        let kept = self.kept.borrow().clone().ok_or("train a model first")?;
        if kept.backend == Backend::Webgpu && self.gpu_lost.get() {
            let moved = Rc::new(self.load_kept(kept.record.clone())?);
            *self.kept.borrow_mut() = Some(moved.clone());
            return Ok(moved);
        }
        Ok(kept)
    }

    async fn record_of(trained: &TrainedModel, status: ModelStatus) -> Result<ModelRecord, String> {
        let bundle = export_model(trained).await.map_err(|e| e.to_string())?;
        let weights = bundle.file("model.safetensors").ok_or("the export has no weights")?;
        Ok(ModelRecord { manifest: trained.manifest.clone(), weights: Arc::from(weights), status })
    }

    /// Keeps (and saves) a model the engine just trained.
    async fn keep(
        &self,
        trained: TrainedModel,
        status: ModelStatus,
        backend: Backend,
        device: Device,
    ) -> Result<(), String> {
        let record = Self::record_of(&trained, status).await?;
        self.save_model(&record).await;
        *self.kept.borrow_mut() = Some(Rc::new(Kept { record, model: trained.model, device, backend }));
        post(&Event::Model { model: self.model_info() });
        Ok(())
    }

    // ---- commands ------------------------------------------------------------------------

    pub(super) fn stop(&self) {
        self.jobs.stop();
    }

    /// Runs `work` as a job of `kind` (or answers "busy"): its own task, ended by Stop at its
    /// next await.
    fn spawn_job<F, Fut>(self: &Rc<Self>, kind: JobKind, work: F)
    where
        F: FnOnce(Rc<Engine>) -> Fut + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let Some(job) = self.jobs.begin(kind) else { return };
        let engine = self.clone();
        spawn_local(async move {
            if stoppable(work(engine), &job.cancel).await.is_none() {
                notice(Level::Info, format!("stopped {}", kind.label()));
            }
            drop(job);
        });
    }

    pub(super) async fn handle(self: &Rc<Self>, incoming: Incoming) {
        let Incoming { command, files } = incoming;
        match command {
            Command::Stop => self.stop(),
            Command::SelectBackend { backend } => {
                self.compute.borrow_mut().choice = backend;
                self.post_compute();
            }
            Command::AddClass { name } => {
                let id = self.project.borrow_mut().add_class(&name);
                post(&Event::ClassCreated { id, name });
                self.save_meta().await;
            }
            Command::RenameClass { id, name } => {
                self.project.borrow_mut().rename_class(id, &name);
                self.save_meta().await;
                post(&Event::Model { model: self.model_info() });
            }
            Command::RemoveClass { id } => {
                let removed = self.project.borrow_mut().remove_class(id);
                self.save_meta().await;
                if let Some(store) = self.store() {
                    if let Err(e) = store.delete_images(&removed).await {
                        notice(Level::Error, format!("could not delete the class's pictures from storage: {e}"));
                    }
                }
                post(&Event::Model { model: self.model_info() });
                self.post_storage().await;
            }
            Command::AddFiles { class_id, names } => self.add_files(class_id, names, files).await,
            Command::AddFolder { name, names } => {
                let id = self.folder_class(&name);
                post(&Event::ClassCreated { id, name });
                self.save_meta().await;
                self.add_files(id, names, files).await;
            }
            Command::AddFrames { class_id, frames } => {
                let pre = self.project.borrow().settings.train.preprocess();
                let mut prepared = Vec::new();
                let mut problems = Vec::new();
                for (i, f) in frames.into_iter().enumerate() {
                    match graft_project::prepare_rgba(f.width, f.height, f.rgba, &pre) {
                        Ok(p) => prepared.push((format!("webcam-{i}.jpg"), p)),
                        Err(e) => problems.push(FileProblem { file: "webcam frame".into(), reason: e.to_string() }),
                    }
                }
                self.keep_prepared(class_id, prepared, problems).await;
            }
            Command::SetSettings { settings } => {
                let mode_changed = self.project.borrow().settings.train.mode != settings.train.mode;
                self.project.borrow_mut().settings = settings;
                self.save_meta().await;
                if mode_changed {
                    self.post_compute();
                }
            }
            Command::Train { resume } => {
                if let Some(job) = self.jobs.begin(JobKind::Train) {
                    spawn_local(crate::worker::training::run(self.clone(), resume, job));
                }
            }
            Command::Predict { request, source } => self.predict(request, source, files).await,
            Command::Export { format } => match self.usable_kept() {
                Err(e) => notice(Level::Error, format!("export: {e}")),
                Ok(kept) => {
                    let trained = TrainedModel { model: kept.model.clone(), manifest: kept.record.manifest.clone() };
                    let bundle = export_model(&trained).await.map_err(|e| e.to_string());
                    let download = bundle.and_then(|b| match format {
                        ExportFormat::Zip => b
                            .to_zip()
                            .map(|bytes| ("graft-model.zip", "application/zip", bytes))
                            .map_err(|e| e.to_string()),
                        ExportFormat::Onnx => onnx_from_export(&b)
                            .map(|bytes| ("graft-model.onnx", "application/octet-stream", bytes))
                            .map_err(|e| e.to_string()),
                    });
                    match download {
                        Ok((name, mime, bytes)) => {
                            post(&Event::Download { name: name.into(), mime: mime.into(), bytes });
                        }
                        Err(e) => notice(Level::Error, format!("export failed: {e}")),
                    }
                }
            },
            Command::SaveProject => {
                let mut project = self.project.borrow().clone();
                project.model = self.kept.borrow().as_ref().map(|k| k.record.clone());
                match graft_project::write_project(&project) {
                    Ok(bytes) => post(&Event::Download {
                        name: "graft-project.zip".into(),
                        mime: "application/zip".into(),
                        bytes,
                    }),
                    Err(e) => notice(Level::Error, format!("save project failed: {e}")),
                }
            }
            Command::DownloadPictures => match graft_project::pictures_zip(&self.project.borrow()) {
                Ok(bytes) => {
                    post(&Event::Download { name: "graft-pictures.zip".into(), mime: "application/zip".into(), bytes })
                }
                Err(e) => notice(Level::Error, format!("download pictures failed: {e}")),
            },
            Command::OpenProject => self.open_project(files).await,
            Command::StartFrom => self.start_from(files).await,
            Command::StartFromImagenet => self.start_from_imagenet().await,
            Command::NewProject => {
                self.stop(); // whatever job runs belongs to the old project
                self.project_generation.set(self.project_generation.get() + 1);
                *self.project.borrow_mut() = Project::default();
                *self.kept.borrow_mut() = None;
                *self.start.borrow_mut() = None;
                self.unsaved.set(0);
                if let Some(store) = self.store() {
                    if let Err(e) = store.clear().await {
                        notice(Level::Error, format!("could not clear browser storage: {e}"));
                    }
                }
                self.save_meta().await;
                self.post_project();
                post(&Event::Model { model: None });
                self.post_storage().await;
            }
            Command::Bench { batches, iterations } => {
                self.spawn_job(JobKind::Bench, move |e| async move { e.bench(&batches, iterations).await });
            }
            Command::CheckKernels => self.spawn_job(JobKind::CheckKernels, |e| async move { e.check_kernels().await }),
            Command::TimeBackbones => {
                self.spawn_job(JobKind::TimeBackbones, |e| async move { e.time_backbones().await });
            }
            Command::Measure { best_frozen, best_discriminative } => {
                self.measure(best_frozen, best_discriminative).await;
            }
            Command::UseMeasured { backends } => {
                self.compute.borrow_mut().auto = Some(backends);
                self.post_compute();
            }
            Command::CheckData => {
                self.spawn_job(JobKind::CheckData, |e| async move { crate::worker::lab::check_data(&e).await });
            }
            Command::Compare => {
                // Stop ends Compare between steps, keeping the rows it finished.
                if let Some(job) = self.jobs.begin(JobKind::Compare) {
                    let engine = self.clone();
                    spawn_local(async move { crate::worker::lab::compare(&engine, &job.cancel).await });
                }
            }
            Command::UseCompareModel { index } => crate::worker::lab::use_compare_model(self, index).await,
            Command::CompareBackbones => {
                // Stop ends it between steps, keeping the rows it finished.
                if let Some(job) = self.jobs.begin(JobKind::CompareBackbones) {
                    let engine = self.clone();
                    spawn_local(async move { crate::worker::lab::compare_backbones(&engine, &job.cancel).await });
                }
            }
            Command::LrFind => {
                self.spawn_job(JobKind::LrFind, |e| async move { crate::worker::lab::lr_find(&e).await })
            }
            Command::Interpret => {
                self.spawn_job(JobKind::Interpret, |e| async move { crate::worker::lab::interpret(&e).await });
            }
            Command::Saliency { source } => crate::worker::lab::saliency(self, source, files).await,
            Command::Map => self.spawn_job(JobKind::Map, |e| async move { crate::worker::lab::map(&e).await }),
            Command::Knowledge => {
                self.spawn_job(JobKind::Knowledge, |e| async move { crate::worker::lab::knowledge(&e).await });
            }
            Command::DebugLoseGpu => match self.gpu.borrow().as_ref() {
                Some(gpu) => {
                    gpu.destroy();
                    notice(Level::Warning, "WebGPU device destroyed on request (testing aid)");
                }
                None => notice(Level::Warning, "no WebGPU device to destroy"),
            },
        }
    }

    /// A dropped folder's class: an empty default card is reused, else a new class is added.
    async fn predict(&self, request: u32, source: PredictSource, files: Vec<File>) {
        let resize_side = self.kept.borrow().as_ref().map_or(0, |k| k.record.manifest.resize_side);
        let image = match source {
            PredictSource::Frame(f) => rgba_to_rgb(f.width, f.height, f.rgba).map_err(|e| e.to_string()),
            PredictSource::File => match files.first() {
                Some(file) => decode::decode_blob(file, &file.name(), resize_side).await,
                None => Err("no file to classify".to_string()),
            },
        };
        let result = match (image, self.usable_kept()) {
            (Err(e), _) | (_, Err(e)) => Err(e),
            (Ok(image), Ok(kept)) => {
                let pre = kept.record.manifest.preprocess();
                predict(&kept.model, &pre, &[image], &kept.device)
                    .await
                    .map(|p| (kept.record.manifest.classes.clone(), p))
            }
        };
        match result {
            Ok((classes, p)) => {
                let probabilities = p.into_iter().next().map(|p| p.probabilities).unwrap_or_default();
                post(&Event::Prediction { request, classes, probabilities });
            }
            Err(message) => {
                let backend = self.kept.borrow().as_ref().map(|k| k.backend);
                if let Some(backend) = backend {
                    self.check_gpu_loss(backend, &message).await;
                }
                post(&Event::PredictFailed { request, message });
            }
        }
    }

    async fn open_project(&self, files: Vec<File>) {
        let Some(file) = files.first() else { return notice(Level::Error, "no project file given") };
        let bytes = match decode::file_bytes(file).await {
            Ok(b) => b,
            Err(e) => return notice(Level::Error, format!("open project: {e}")),
        };
        let mut project = match graft_project::read_project(&bytes) {
            Ok(p) => p,
            Err(e) => return notice(Level::Error, format!("{}: {e}", file.name())),
        };
        self.stop(); // whatever job runs belongs to the old project
        self.project_generation.set(self.project_generation.get() + 1);
        let model = project.model.take();
        let count = project.images.len();
        let classes = project.classes.len();
        *self.project.borrow_mut() = project;
        *self.kept.borrow_mut() = None;
        *self.start.borrow_mut() = None;
        self.unsaved.set(0);
        // Replace what the browser stored: clear, then save everything.
        if let Some(store) = self.store() {
            if let Err(e) = store.clear().await {
                notice(Level::Error, format!("could not clear browser storage: {e}"));
            }
        }
        self.save_meta().await;
        let rows: Vec<ImageRow> = self.project.borrow().images.iter().map(image_row).collect();
        for chunk in rows.chunks(SAVE_BATCH * 4) {
            self.save_images(chunk, "(opened project)").await;
        }
        if let Some(record) = model {
            self.save_model(&record).await;
            match self.load_kept(record) {
                Ok(kept) => *self.kept.borrow_mut() = Some(Rc::new(kept)),
                Err(e) => notice(Level::Error, format!("the project's model could not be loaded: {e}")),
            }
        }
        self.post_project();
        post(&Event::Model { model: self.model_info() });
        notice(Level::Info, format!("opened {}: {count} images in {classes} classes", file.name()));
        self.post_storage().await;
    }

    /// `arch`'s pretrained weights, downloaded on first use (MobileNetV2's come with the start).
    pub(super) async fn pretrained_for(&self, arch: Architecture) -> Result<Rc<WeightMap>, String> {
        if let Some(weights) = self.pretrained.borrow().get(&arch) {
            return Ok(weights.clone());
        }
        notice(Level::Info, format!("downloading the pretrained {} (once: it is kept for offline use)", arch.title()));
        self.download_pretrained(arch, |_, _| {}).await
    }

    /// Downloads `arch`'s pretrained weights (the bytes so far, and the total when known, to
    /// `progress`) and keeps them; boot takes MobileNetV2's this way, other backbones come on
    /// first use through [`Engine::pretrained_for`].
    pub(super) async fn download_pretrained(
        &self,
        arch: Architecture,
        progress: impl Fn(u64, Option<u64>),
    ) -> Result<Rc<WeightMap>, String> {
        let url = crate::worker::boot::app_url(&crate::worker::boot::weights_url(arch));
        let bytes = crate::worker::boot::fetch_weights(&url, progress)
            .await
            .map_err(|e| format!("could not download the {} backbone: {e}", arch.title()))?;
        let weights = WeightMap::from_safetensors_bytes(bytes)
            .map_err(|e| format!("the {} backbone's weights are invalid: {e}", arch.title()))?;
        let weights = Rc::new(weights);
        self.pretrained.borrow_mut().insert(arch, weights.clone());
        Ok(weights)
    }

    /// Builds the model a run starts from: the kept one (resume) or `arch`'s pretrained
    /// backbone (downloaded by [`Engine::pretrained_for`] first) + a new head.
    pub(super) fn starting_model(
        &self,
        resume: bool,
        arch: Architecture,
        classes: &[String],
        seed: u64,
        device: &Device,
    ) -> Result<ImageClassifier, String> {
        if resume {
            let kept = self.kept.borrow().clone().ok_or("there is no model to continue")?;
            if kept.record.manifest.classes != classes {
                return Err("the classes changed since this model was trained: train a new one".into());
            }
            let json = serde_json::to_vec(&kept.record.manifest).map_err(|e| e.to_string())?;
            return load_exported(kept.record.weights.to_vec(), &json, device)
                .map(|(m, _)| m)
                .map_err(|e| e.to_string());
        }
        let kind = self.project.borrow().settings.head.kind(classes)?;
        let spec = HeadSpec { kind, num_classes: classes.len(), seed };
        if let Some(model) = self.model_from_start(&spec, device) {
            return model;
        }
        let weights = self.pretrained.borrow().get(&arch).cloned().ok_or("the backbone is not loaded yet")?;
        ImageClassifier::from_pretrained(weights.as_ref(), &spec, device).map_err(|e| e.to_string())
    }

    pub(crate) async fn keep_trained(
        &self,
        trained: TrainedModel,
        status: ModelStatus,
        backend: Backend,
        device: Device,
    ) {
        if let Err(e) = self.keep(trained, status, backend, device).await {
            notice(Level::Error, format!("the trained model could not be kept: {e}"));
        }
    }

    pub(crate) async fn note_failure(&self, backend: Backend, reason: FailureReason, message: &str) -> bool {
        // Divergence is the settings' fault and an unreadable picture the data's, not the GPU's.
        match reason {
            FailureReason::Device => self.check_gpu_loss(backend, message).await,
            FailureReason::Diverged | FailureReason::Data | FailureReason::Setup => false,
        }
    }
}
