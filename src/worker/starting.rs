//! The project's starting checkpoint: a file the user gave (a graft export or project file, a
//! PyTorch state_dict as .pth or safetensors) whose backbone new runs start from instead of
//! ImageNet's. Checked when it is given and again when a run starts (the classes may have
//! changed meanwhile); kept in the browser with the project.

use std::rc::Rc;

use graft_model::{HeadSpec, ImageClassifier};
use graft_project::{read_checkpoint, Start};
use web_sys::File;

use crate::protocol::Level;
use crate::worker::decode;
use crate::worker::engine::Engine;
use crate::worker::idb::StartRow;
use crate::worker::link::notice;

/// A starting checkpoint as the user gave it: checked again at every start.
pub(super) struct StartFile {
    pub(super) name: String,
    pub(super) bytes: Vec<u8>,
}

impl Engine {
    /// `Command::StartFrom`: checks the file against the project as it is now, says every
    /// decision, then keeps it (in memory and in the browser's storage).
    pub(super) async fn start_from(&self, files: Vec<File>) {
        let Some(file) = files.first() else { return notice(Level::Error, "no checkpoint given") };
        let name = file.name();
        let bytes = match decode::file_bytes(file).await {
            Ok(b) => b,
            Err(e) => return notice(Level::Error, format!("{name}: {e}")),
        };
        let notes = match self.plan_start(&name, &bytes) {
            Ok(start) => start.notes().to_vec(),
            Err(e) => return notice(Level::Error, format!("{name} cannot be a starting point: {e}")),
        };
        if let Some(store) = self.store() {
            let row = StartRow { name: name.clone(), bytes: bytes.clone() };
            if let Err(e) = store.save_start(&row).await {
                notice(Level::Warning, format!("{name} is used until reload, but could not be saved: {e}"));
            }
        }
        *self.start.borrow_mut() = Some(Rc::new(StartFile { name: name.clone(), bytes }));
        notice(Level::Info, format!("new runs start from {name}: {}", notes.join("; ")));
        self.post_project();
    }

    /// `Command::StartFromImagenet`: back to ImageNet's weights.
    pub(super) async fn start_from_imagenet(&self) {
        if self.start.borrow_mut().take().is_none() {
            return;
        }
        if let Some(store) = self.store() {
            if let Err(e) = store.delete_start().await {
                notice(Level::Warning, format!("the starting checkpoint could not be removed from storage: {e}"));
            }
        }
        notice(Level::Info, "new runs start from ImageNet's weights");
        self.post_project();
    }

    /// What a run of the project's current classes and head would start from.
    fn plan_start(&self, name: &str, bytes: &[u8]) -> Result<Start, String> {
        let project = self.project.borrow();
        let classes = project.class_names();
        let kind = project.settings.head.kind(&classes)?;
        let arch = project.settings.train.backbone;
        read_checkpoint(name, bytes)?.start(arch, &classes, &kind).map_err(|e| e.to_string())
    }

    /// The model a new run starts from when a starting checkpoint is set (`None` when not).
    pub(super) fn model_from_start(
        &self,
        spec: &HeadSpec,
        device: &burn::tensor::Device,
    ) -> Option<Result<ImageClassifier, String>> {
        let start = self.start.borrow().clone()?;
        let built = self.plan_start(&start.name, &start.bytes).and_then(|plan| {
            notice(Level::Info, format!("starting from {}: {}", start.name, plan.notes().join("; ")));
            plan.into_model(spec, device)
        });
        Some(built.map_err(|e| format!("the starting checkpoint {}: {e}", start.name)))
    }
}
