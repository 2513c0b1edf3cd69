//! Start-up restore: the project the browser saved (classes, pictures, settings, kept model) is
//! read back and shown; a new browser gets a new project.

use std::rc::Rc;
use std::sync::Arc;

use graft_project::{ImageRecord, ModelRecord, Project, ProjectMeta};
use web_time::Instant;

use crate::protocol::{Event, Level};
use crate::worker::engine::Engine;
use crate::worker::idb::{ModelRow, Store};
use crate::worker::link::{notice, post, wasm_memory_bytes};
use crate::worker::starting::StartFile;

fn model_record(row: ModelRow) -> Result<ModelRecord, String> {
    Ok(ModelRecord {
        manifest: serde_json::from_str(&row.manifest).map_err(|e| e.to_string())?,
        status: serde_json::from_str(&row.status).map_err(|e| e.to_string())?,
        weights: Arc::from(row.weights),
    })
}

async fn read(store: &Store) -> Result<Option<(Project, Option<ModelRecord>)>, String> {
    let Some(meta) = store.load_meta().await.map_err(|e| e.to_string())? else { return Ok(None) };
    let meta: ProjectMeta = serde_json::from_str(&meta).map_err(|e| format!("saved project: {e}"))?;
    let (rows, unreadable) = store.load_images().await.map_err(|e| e.to_string())?;
    if !unreadable.is_empty() {
        notice(
            Level::Warning,
            format!(
                "{} stored picture(s) could not be read and were left out: {}",
                unreadable.len(),
                unreadable.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
            ),
        );
    }
    let mut images: Vec<ImageRecord> = rows
        .into_iter()
        .filter(|r| meta.classes.iter().any(|c| c.id == r.class_id))
        .map(|r| ImageRecord {
            id: r.id,
            class_id: r.class_id,
            name: r.name,
            jpeg: r.jpeg.into(),
            thumb: r.thumb.into(),
        })
        .collect();
    images.sort_by_key(|i| i.id);
    let model = match store.load_model().await {
        Ok(Some(row)) => match model_record(row) {
            Ok(record) => Some(record),
            Err(e) => {
                notice(
                    Level::Warning,
                    format!("the saved model could not be read ({e}); the project is restored without it"),
                );
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            notice(Level::Warning, format!("the saved model could not be read: {e}"));
            None
        }
    };
    let project = Project::from_parts(meta, images, None);
    Ok(Some((project, model)))
}

pub async fn restore(engine: &Rc<Engine>) {
    let t0 = Instant::now();
    let store = match Store::open_and_claim().await {
        Ok(s) => Some(Rc::new(s)),
        Err(e) => {
            notice(Level::Warning, format!("projects cannot be saved in this browser: {e}"));
            None
        }
    };
    *engine.store.borrow_mut() = store.clone();
    let restored = match &store {
        Some(store) => read(store).await,
        None => Ok(None),
    };
    match restored {
        Ok(Some((project, model))) => {
            let (images, classes) = (project.images.len(), project.classes.len());
            *engine.project.borrow_mut() = project;
            if let Some(store) = &store {
                match store.load_start().await {
                    Ok(Some(row)) => {
                        *engine.start.borrow_mut() = Some(Rc::new(StartFile { name: row.name, bytes: row.bytes }));
                    }
                    Ok(None) => {}
                    Err(e) => notice(Level::Warning, format!("{e}; new runs start from ImageNet's weights")),
                }
            }
            if let Some(record) = model {
                match engine.load_kept(record) {
                    Ok(kept) => *engine.kept.borrow_mut() = Some(Rc::new(kept)),
                    Err(e) => notice(Level::Warning, format!("the saved model could not be loaded: {e}")),
                }
            }
            engine.post_project();
            let seconds = t0.elapsed().as_secs_f64();
            notice(Level::Info, format!("restored {images} images in {classes} classes ({seconds:.1} s)"));
        }
        Ok(None) => {
            engine.post_project();
            engine.save_meta().await;
        }
        Err(e) => {
            notice(Level::Error, format!("the saved project could not be read ({e}); starting a new one"));
            engine.post_project();
        }
    }
    post(&Event::Model { model: engine.model_info() });
    post(&Event::Memory { wasm_bytes: wasm_memory_bytes() });
    engine.post_storage().await;
}
