//! Thin IndexedDB over web-sys: the project is saved as it changes, one transaction per change,
//! so a failed write (quota) loses only that change. Stores: `meta` (the project's JSON, and
//! which engine owns the project), `images` (prepared copies and thumbnails by id) and `model`
//! (the kept model).
//!
//! One engine writes at a time. Each engine claims the project when it opens the store (its own
//! token under `meta/owner`), and every write transaction first reads that token and aborts
//! itself if another engine (another tab) has claimed the project since: a stale tab can never
//! overwrite what a newer one saved. The page's tab lock (`page::tab`) keeps a second tab from
//! starting an engine at all; this is the guarantee underneath it.

use js_sys::{Array, Promise};
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{IdbDatabase, IdbObjectStore, IdbOpenDbRequest, IdbRequest, IdbTransaction, IdbTransactionMode};

const DB_NAME: &str = "graft";
const DB_VERSION: u32 = 1;
pub const META: &str = "meta";
pub const IMAGES: &str = "images";
pub const MODEL: &str = "model";
const PROJECT_KEY: &str = "project";
const OWNER_KEY: &str = "owner";
const MODEL_KEY: &str = "current";
/// The starting checkpoint, beside the kept model (cleared with it by New and Open).
const START_KEY: &str = "start";

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("browser storage is full{}", if .0.is_empty() { String::new() } else { format!(" ({})", .0) })]
    QuotaExceeded(String),
    #[error("browser storage is unavailable: {0}")]
    Unavailable(String),
    #[error("browser storage failed: {0}")]
    Failed(String),
    #[error("this project is now open in another tab, which saves it; this change was not saved here")]
    TakenOver,
}

fn describe(value: &JsValue) -> (String, String) {
    if let Some(e) = value.dyn_ref::<web_sys::DomException>() {
        return (e.name(), e.message());
    }
    if let Some(e) = value.dyn_ref::<js_sys::Error>() {
        return (String::from(e.name()), String::from(e.message()));
    }
    (String::new(), format!("{value:?}"))
}

fn store_error(value: &JsValue) -> StoreError {
    let (name, message) = describe(value);
    if name == "QuotaExceededError" {
        StoreError::QuotaExceeded(message)
    } else if message.is_empty() {
        StoreError::Failed(name)
    } else {
        StoreError::Failed(format!("{name}: {message}"))
    }
}

/// Waits for a request; returns its result.
async fn request(req: &IdbRequest) -> Result<JsValue, StoreError> {
    let promise = Promise::new(&mut |resolve, reject| {
        req.set_onsuccess(Some(&resolve));
        req.set_onerror(Some(&reject));
    });
    match JsFuture::from(promise).await {
        Ok(_) => req.result().map_err(|e| store_error(&e)),
        Err(_) => Err(req
            .error()
            .ok()
            .flatten()
            .map(|e| store_error(&e.into()))
            .unwrap_or(StoreError::Failed("request failed".into()))),
    }
}

/// Waits until a transaction commits (or reports why it aborted).
async fn committed(tx: &IdbTransaction) -> Result<(), StoreError> {
    let promise = Promise::new(&mut |resolve, reject| {
        tx.set_oncomplete(Some(&resolve));
        tx.set_onerror(Some(&reject));
        tx.set_onabort(Some(&reject));
    });
    match JsFuture::from(promise).await {
        Ok(_) => Ok(()),
        Err(_) => {
            Err(tx.error().map(|e| store_error(&e.into())).unwrap_or(StoreError::Failed("transaction aborted".into())))
        }
    }
}

/// A picture as stored.
#[derive(Serialize, Deserialize)]
pub struct ImageRow {
    pub id: u64,
    pub class_id: u32,
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub jpeg: Vec<u8>,
    #[serde(with = "serde_bytes")]
    pub thumb: Vec<u8>,
}

/// The kept model as stored.
#[derive(Serialize, Deserialize)]
pub struct ModelRow {
    pub manifest: String,
    pub status: String,
    #[serde(with = "serde_bytes")]
    pub weights: Vec<u8>,
}

/// The starting checkpoint as stored: its file name and bytes.
#[derive(Serialize, Deserialize)]
pub struct StartRow {
    pub name: String,
    #[serde(with = "serde_bytes")]
    pub bytes: Vec<u8>,
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, StoreError> {
    serde_wasm_bindgen::to_value(value).map_err(|e| StoreError::Failed(e.to_string()))
}

pub struct Store {
    db: IdbDatabase,
    /// This engine's claim on the project (see the module's comment); `None` when the claim
    /// could not be written (storage full): writes are then not checked, as before claims.
    owner: Option<String>,
    /// Set once a write found the project claimed by another engine.
    taken_over: std::cell::Cell<bool>,
}

/// A token no other engine will draw: the time and a random number.
fn new_owner_token() -> String {
    format!("{:.0}-{:.0}", js_sys::Date::now(), js_sys::Math::random() * 2f64.powi(53))
}

impl Store {
    /// Opens (creating on first use) the project database and claims the project for this
    /// engine: from now on, writes of any engine that opened it before fail with
    /// [`StoreError::TakenOver`].
    pub async fn open_and_claim() -> Result<Self, StoreError> {
        let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
        let factory = global
            .indexed_db()
            .map_err(|e| StoreError::Unavailable(describe(&e).1))?
            .ok_or_else(|| StoreError::Unavailable("IndexedDB is not available here".into()))?;
        let open: IdbOpenDbRequest =
            factory.open_with_u32(DB_NAME, DB_VERSION).map_err(|e| StoreError::Unavailable(describe(&e).1))?;
        let upgrade =
            Closure::<dyn FnMut(web_sys::IdbVersionChangeEvent)>::new(move |ev: web_sys::IdbVersionChangeEvent| {
                let Some(req) = ev.target().and_then(|t| t.dyn_into::<IdbOpenDbRequest>().ok()) else { return };
                let Ok(db) = req.result().and_then(|r| r.dyn_into::<IdbDatabase>()) else { return };
                for name in [META, IMAGES, MODEL] {
                    if !db.object_store_names().contains(name) {
                        let _ = db.create_object_store(name);
                    }
                }
            });
        open.set_onupgradeneeded(Some(upgrade.as_ref().unchecked_ref()));
        let db = request(&open).await?;
        drop(upgrade);
        let db = db.dyn_into::<IdbDatabase>().map_err(|_| StoreError::Failed("not a database".into()))?;
        let mut store = Self { db, owner: Some(new_owner_token()), taken_over: std::cell::Cell::new(false) };
        let claimed = match store.tx(&[META], true) {
            Ok(tx) => match store.put_owner(&tx) {
                Ok(()) => committed(&tx).await,
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        if let Err(e) = claimed {
            // A full quota refuses even this small write; the project must still be restored.
            web_sys::console::warn_1(
                &format!("graft: the project could not be claimed ({e}); writes unchecked").into(),
            );
            store.owner = None;
        }
        Ok(store)
    }

    fn put_owner(&self, tx: &IdbTransaction) -> Result<(), StoreError> {
        let Some(owner) = &self.owner else { return Ok(()) };
        Self::store(tx, META)?
            .put_with_key(&owner.as_str().into(), &OWNER_KEY.into())
            .map(drop)
            .map_err(|e| store_error(&e))
    }

    /// A write transaction over `stores` that aborts itself, before anything it writes becomes
    /// visible, when the project's owner token is not this engine's. Requests of a transaction
    /// run in order, so the token is read before the writes queued after it; the check runs
    /// synchronously in the read's success event, while the transaction is still active.
    fn write_tx(&self, stores: &[&str]) -> Result<(IdbTransaction, Option<OwnerCheck>), StoreError> {
        let Some(owner) = self.owner.clone() else { return Ok((self.tx(stores, true)?, None)) };
        let mut scope: Vec<&str> = stores.to_vec();
        if !scope.contains(&META) {
            scope.push(META);
        }
        let tx = self.tx(&scope, true)?;
        let read = Self::store(&tx, META)?.get(&OWNER_KEY.into()).map_err(|e| store_error(&e))?;
        let refused = std::rc::Rc::new(std::cell::Cell::new(false));
        let (flag, tx_in) = (refused.clone(), tx.clone());
        let check = Closure::<dyn FnMut(web_sys::Event)>::new(move |ev: web_sys::Event| {
            let current = ev
                .target()
                .and_then(|t| t.dyn_into::<IdbRequest>().ok())
                .and_then(|r| r.result().ok())
                .and_then(|v| v.as_string());
            if current.as_deref() != Some(owner.as_str()) {
                flag.set(true);
                let _ = tx_in.abort();
            }
        });
        read.set_onsuccess(Some(check.as_ref().unchecked_ref()));
        Ok((tx, Some(OwnerCheck { refused, _check: check })))
    }

    /// Waits for a write transaction made by [`Self::write_tx`]; an abort by the owner check is
    /// [`StoreError::TakenOver`], reported to the page once.
    async fn commit(&self, tx: &IdbTransaction, check: Option<OwnerCheck>) -> Result<(), StoreError> {
        let result = committed(tx).await;
        if check.is_some_and(|c| c.refused.get()) {
            if !self.taken_over.replace(true) {
                crate::worker::link::post(&crate::protocol::Event::TakenOver);
            }
            return Err(StoreError::TakenOver);
        }
        result
    }

    fn tx(&self, stores: &[&str], write: bool) -> Result<IdbTransaction, StoreError> {
        let names = Array::new();
        stores.iter().for_each(|s| {
            names.push(&JsValue::from_str(s));
        });
        let mode = if write { IdbTransactionMode::Readwrite } else { IdbTransactionMode::Readonly };
        self.db.transaction_with_str_sequence_and_mode(&names, mode).map_err(|e| store_error(&e))
    }

    fn store(tx: &IdbTransaction, name: &str) -> Result<IdbObjectStore, StoreError> {
        tx.object_store(name).map_err(|e| store_error(&e))
    }

    pub async fn load_meta(&self) -> Result<Option<String>, StoreError> {
        let tx = self.tx(&[META], false)?;
        let value = request(&Self::store(&tx, META)?.get(&PROJECT_KEY.into()).map_err(|e| store_error(&e))?).await?;
        Ok(value.as_string())
    }

    pub async fn save_meta(&self, json: &str) -> Result<(), StoreError> {
        let (tx, check) = self.write_tx(&[META])?;
        Self::store(&tx, META)?.put_with_key(&json.into(), &PROJECT_KEY.into()).map_err(|e| store_error(&e))?;
        self.commit(&tx, check).await
    }

    /// Saves pictures in one transaction: all of them or none.
    pub async fn put_images(&self, rows: &[ImageRow]) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let (tx, check) = self.write_tx(&[IMAGES])?;
        let store = Self::store(&tx, IMAGES)?;
        for row in rows {
            #[allow(clippy::cast_precision_loss)] // ids count pictures: far below 2^53
            let key = JsValue::from_f64(row.id as f64);
            store.put_with_key(&to_js(row)?, &key).map_err(|e| store_error(&e))?;
        }
        self.commit(&tx, check).await
    }

    pub async fn delete_images(&self, ids: &[u64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let (tx, check) = self.write_tx(&[IMAGES])?;
        let store = Self::store(&tx, IMAGES)?;
        for &id in ids {
            #[allow(clippy::cast_precision_loss)]
            let key = JsValue::from_f64(id as f64);
            store.delete(&key).map_err(|e| store_error(&e))?;
        }
        self.commit(&tx, check).await
    }

    /// Every stored picture that can be read, and a description of each one that cannot (its
    /// name if it has one): one damaged row must not cost the others.
    pub async fn load_images(&self) -> Result<(Vec<ImageRow>, Vec<String>), StoreError> {
        let tx = self.tx(&[IMAGES], false)?;
        let all = request(&Self::store(&tx, IMAGES)?.get_all().map_err(|e| store_error(&e))?).await?;
        let all: Array = all.unchecked_into();
        let (mut rows, mut unreadable) = (Vec::new(), Vec::new());
        for (index, row) in all.iter().enumerate() {
            let name = js_sys::Reflect::get(&row, &"name".into()).ok().and_then(|n| n.as_string());
            match serde_wasm_bindgen::from_value::<ImageRow>(row) {
                Ok(row) => rows.push(row),
                Err(e) => {
                    unreadable.push(format!("{} ({e})", name.unwrap_or_else(|| format!("stored picture #{index}"))))
                }
            }
        }
        Ok((rows, unreadable))
    }

    pub async fn save_model(&self, row: &ModelRow) -> Result<(), StoreError> {
        self.put_row(MODEL_KEY, row).await
    }

    pub async fn load_model(&self) -> Result<Option<ModelRow>, StoreError> {
        self.get_row(MODEL_KEY, "the stored model").await
    }

    pub async fn save_start(&self, row: &StartRow) -> Result<(), StoreError> {
        self.put_row(START_KEY, row).await
    }

    pub async fn delete_start(&self) -> Result<(), StoreError> {
        let (tx, check) = self.write_tx(&[MODEL])?;
        Self::store(&tx, MODEL)?.delete(&START_KEY.into()).map_err(|e| store_error(&e))?;
        self.commit(&tx, check).await
    }

    pub async fn load_start(&self) -> Result<Option<StartRow>, StoreError> {
        self.get_row(START_KEY, "the stored starting checkpoint").await
    }

    /// One row of the model store (the kept model, the starting checkpoint) under `key`.
    async fn put_row<T: Serialize>(&self, key: &str, row: &T) -> Result<(), StoreError> {
        let (tx, check) = self.write_tx(&[MODEL])?;
        Self::store(&tx, MODEL)?.put_with_key(&to_js(row)?, &key.into()).map_err(|e| store_error(&e))?;
        self.commit(&tx, check).await
    }

    /// The row under `key`, if any; `what` names it when it cannot be read.
    async fn get_row<T: serde::de::DeserializeOwned>(&self, key: &str, what: &str) -> Result<Option<T>, StoreError> {
        let tx = self.tx(&[MODEL], false)?;
        let value = request(&Self::store(&tx, MODEL)?.get(&key.into()).map_err(|e| store_error(&e))?).await?;
        if value.is_undefined() || value.is_null() {
            return Ok(None);
        }
        serde_wasm_bindgen::from_value(value).map(Some).map_err(|e| StoreError::Failed(format!("{what}: {e}")))
    }

    /// Empties every store (a new project); the project stays this engine's.
    pub async fn clear(&self) -> Result<(), StoreError> {
        let (tx, check) = self.write_tx(&[META, IMAGES, MODEL])?;
        for name in [META, IMAGES, MODEL] {
            Self::store(&tx, name)?.clear().map_err(|e| store_error(&e))?;
        }
        self.put_owner(&tx)?;
        self.commit(&tx, check).await
    }
}

/// The owner check of one write transaction: whether it refused the write, and its handler
/// (kept alive until the transaction ends).
struct OwnerCheck {
    refused: std::rc::Rc<std::cell::Cell<bool>>,
    _check: Closure<dyn FnMut(web_sys::Event)>,
}

/// Bytes used and available to this origin (`navigator.storage.estimate()`).
pub async fn estimate() -> Option<(f64, f64)> {
    let global: web_sys::WorkerGlobalScope = js_sys::global().unchecked_into();
    let storage = global.navigator().storage();
    let estimate = JsFuture::from(storage.estimate().ok()?).await.ok()?;
    let get = |key: &str| js_sys::Reflect::get(&estimate, &key.into()).ok().and_then(|v| v.as_f64());
    Some((get("usage")?, get("quota")?))
}
