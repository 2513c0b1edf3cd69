//! Small browser helpers for the page: thumbnails as object URLs, reading dropped folders,
//! downloads.

use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{File, FileSystemDirectoryEntry, FileSystemEntry, FileSystemFileEntry};

#[allow(clippy::needless_pass_by_value)] // shaped for `map_err(js_err)`
fn js_err(e: JsValue) -> String {
    e.as_string()
        .or_else(|| e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())))
        .unwrap_or_else(|| format!("{e:?}"))
}

/// An object URL showing JPEG bytes (a thumbnail); `None` if the browser refuses.
pub fn jpeg_url(bytes: &[u8]) -> Option<String> {
    let parts = js_sys::Array::of1(&Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("image/jpeg");
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).ok()?;
    web_sys::Url::create_object_url_with_blob(&blob).ok()
}

/// An object URL for a file the user picked (the picture being classified).
pub fn object_url(file: &File) -> Option<String> {
    web_sys::Url::create_object_url_with_blob(file).ok()
}

pub fn revoke(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}

/// Turns a callback-style API (`f(success, error)`) into a future.
async fn callback_promise(f: impl FnOnce(&Function, &Function)) -> Result<JsValue, String> {
    let mut f = Some(f);
    let promise = Promise::new(&mut |resolve, reject| {
        if let Some(f) = f.take() {
            f(&resolve, &reject)
        }
    });
    JsFuture::from(promise).await.map_err(js_err)
}

/// A file found inside a dropped folder, with its path relative to the folder.
pub struct FolderFile {
    pub path: String,
    pub file: File,
}

/// Every file under a dropped directory entry (recursively).
pub async fn read_folder(entry: FileSystemEntry) -> Result<Vec<FolderFile>, String> {
    let mut out = Vec::new();
    let mut stack = vec![(entry, String::new())];
    while let Some((entry, prefix)) = stack.pop() {
        let path = if prefix.is_empty() { entry.name() } else { format!("{prefix}/{}", entry.name()) };
        if entry.is_directory() {
            let dir: FileSystemDirectoryEntry = entry.unchecked_into();
            let reader = dir.create_reader();
            // readEntries returns batches until an empty one.
            loop {
                let batch = callback_promise(|ok, err| {
                    let _ = reader.read_entries_with_callback_and_callback(ok, err);
                })
                .await?;
                let batch: js_sys::Array = batch.unchecked_into();
                if batch.length() == 0 {
                    break;
                }
                for child in batch.iter() {
                    stack.push((child.unchecked_into(), path.clone()));
                }
            }
        } else if entry.is_file() && !entry.name().starts_with('.') {
            let file_entry: FileSystemFileEntry = entry.unchecked_into();
            let file = callback_promise(|ok, err| file_entry.file_with_callback_and_callback(ok, err)).await?;
            out.push(FolderFile { path, file: file.unchecked_into() });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Offers `bytes` as a file download named `name`.
pub fn download(bytes: &[u8], name: &str, mime: &str) -> Result<(), String> {
    let array = Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(js_err)?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(js_err)?;
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let a: web_sys::HtmlAnchorElement = document.create_element("a").map_err(js_err)?.unchecked_into();
    a.set_href(&url);
    a.set_download(name);
    a.click();
    // Revoke later: revoking at once can cancel the download in some browsers.
    let revoke = Closure::once_into_js(move || {
        let _ = web_sys::Url::revoke_object_url(&url);
    });
    let _ = window.set_timeout_with_callback_and_timeout_and_arguments_0(revoke.unchecked_ref(), 60_000);
    Ok(())
}
