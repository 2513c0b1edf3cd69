//! Pictures into the project: files and folders dropped on the page, decoded and prepared here,
//! shown as thumbnails, saved.

use web_sys::File;

use crate::protocol::{Event, FileProblem, Thumb};
use crate::worker::decode;
use crate::worker::engine::{Engine, SAVE_BATCH};
use crate::worker::link::{post, wasm_memory_bytes, yield_now};
use crate::worker::storage::image_row;

impl Engine {
    pub(super) fn folder_class(&self, name: &str) -> u32 {
        let mut p = self.project.borrow_mut();
        let reusable = p.classes.iter().find(|c| c.name.starts_with("class ") && p.count(c.id) == 0).map(|c| c.id);
        match reusable {
            Some(id) => {
                p.rename_class(id, name);
                id
            }
            None => p.add_class(name),
        }
    }

    pub(super) async fn add_files(&self, class_id: u32, names: Vec<String>, files: Vec<File>) {
        let pre = self.project.borrow().settings.train.preprocess();
        let total = files.len();
        let mut batch = Vec::new();
        let mut problems = Vec::new();
        post(&Event::Ingest { done: 0, total });
        for (i, file) in files.iter().enumerate() {
            let name = names.get(i).cloned().unwrap_or_else(|| file.name());
            match decode::prepare_blob(file, &name, &pre).await {
                Ok(prepared) => batch.push((name, prepared)),
                Err(reason) => problems.push(FileProblem { file: name, reason }),
            }
            if batch.len() >= SAVE_BATCH || i + 1 == total {
                self.keep_prepared(class_id, std::mem::take(&mut batch), Vec::new()).await;
                post(&Event::Ingest { done: i + 1, total });
            }
            // Decoding is the worker's own time, but Stop and Predict must still get through.
            yield_now().await;
        }
        if !problems.is_empty() {
            post(&Event::Refused { class_id, problems });
        }
        post(&Event::Memory { wasm_bytes: wasm_memory_bytes() });
        self.post_storage().await;
    }

    /// Adds prepared pictures to a class, saves them, shows their thumbnails.
    pub(super) async fn keep_prepared(
        &self,
        class_id: u32,
        prepared: Vec<(String, graft_project::Prepared)>,
        problems: Vec<FileProblem>,
    ) {
        if !problems.is_empty() {
            post(&Event::Refused { class_id, problems });
        }
        if prepared.is_empty() {
            return;
        }
        let (rows, thumbs, count, class) = {
            let mut p = self.project.borrow_mut();
            let Some(class) = p.classes.iter().find(|c| c.id == class_id).map(|c| c.name.clone()) else {
                return; // the class was deleted meanwhile
            };
            let mut rows = Vec::new();
            let mut thumbs = Vec::new();
            for (name, pic) in prepared {
                let record = p.add_image(class_id, name, pic);
                rows.push(image_row(record));
                thumbs.push(Thumb { id: record.id, jpeg: record.thumb.to_vec() });
            }
            (rows, thumbs, p.count(class_id), class)
        };
        self.save_images(&rows, &class).await;
        self.save_meta().await;
        post(&Event::Added { class_id, thumbs, count });
    }
}
