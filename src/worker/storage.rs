//! The engine's writes to the browser's storage (`worker::idb`): each change saved as it
//! happens, every failure said in a notice (the project stays in memory until a reload).

use std::rc::Rc;

use graft_project::{ImageRecord, ModelRecord};

use crate::protocol::{Event, Level};
use crate::worker::engine::Engine;
use crate::worker::idb::{self, ImageRow, ModelRow, Store};
use crate::worker::link::{notice, post};

pub fn image_row(r: &ImageRecord) -> ImageRow {
    ImageRow { id: r.id, class_id: r.class_id, name: r.name.clone(), jpeg: r.jpeg.to_vec(), thumb: r.thumb.to_vec() }
}

impl Engine {
    pub(super) fn store(&self) -> Option<Rc<Store>> {
        self.store.borrow().clone()
    }

    pub async fn save_meta(&self) {
        let Some(store) = self.store() else { return };
        // Never write an empty string over the saved project: say what failed instead.
        let json = match serde_json::to_string(&self.project.borrow().meta()) {
            Ok(json) => json,
            Err(e) => return notice(Level::Error, format!("the project could not be saved: {e}")),
        };
        if let Err(e) = store.save_meta(&json).await {
            notice(Level::Error, format!("could not save the project's classes and settings: {e}"));
        }
    }

    pub(super) async fn save_images(&self, rows: &[ImageRow], class: &str) {
        let Some(store) = self.store() else { return };
        if let Err(e) = store.put_images(rows).await {
            self.unsaved.set(self.unsaved.get() + rows.len());
            let mut names: Vec<&str> = rows.iter().take(4).map(|r| r.name.as_str()).collect();
            if rows.len() > names.len() {
                names.push("…");
            }
            notice(
                Level::Error,
                format!(
                    "{} picture(s) of class `{class}` could not be saved ({}): {e}. They stay until this page reloads; everything saved before is kept. Free some space or use Save project.",
                    rows.len(),
                    names.join(", ")
                ),
            );
        }
    }

    pub async fn post_storage(&self) {
        let estimate = idb::estimate().await;
        let saved = self.project.borrow().images.len().saturating_sub(self.unsaved.get());
        post(&Event::Storage { used: estimate.map(|e| e.0), quota: estimate.map(|e| e.1), saved_images: saved });
    }

    pub(super) async fn save_model(&self, record: &ModelRecord) {
        let Some(store) = self.store() else { return };
        let (manifest, status) = match (serde_json::to_string(&record.manifest), serde_json::to_string(&record.status))
        {
            (Ok(manifest), Ok(status)) => (manifest, status),
            (Err(e), _) | (_, Err(e)) => {
                return notice(Level::Error, format!("the trained model could not be saved: {e}"));
            }
        };
        let row = ModelRow { manifest, status, weights: record.weights.to_vec() };
        if let Err(e) = store.save_model(&row).await {
            notice(
                Level::Error,
                format!("the trained model could not be saved ({e}); it stays until this page reloads"),
            );
        }
    }
}
