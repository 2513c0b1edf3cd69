//! Reading dropped files in the worker: the Rust decoders first (every refusal named); for a
//! format they do not know (AVIF, HEIC, SVG…), the browser's own decoder through
//! `createImageBitmap` and an `OffscreenCanvas`.

use graft_data::{check_dimensions, decode_image_for_side, rgba_to_rgb, Preprocess};
use graft_project::{prepare_rgb, Prepared};
use image::RgbImage;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, ImageBitmap, OffscreenCanvas, OffscreenCanvasRenderingContext2d, WorkerGlobalScope};

fn js_text(e: &wasm_bindgen::JsValue) -> String {
    e.dyn_ref::<js_sys::Error>().map(|e| String::from(e.message())).unwrap_or_else(|| format!("{e:?}"))
}

pub async fn file_bytes(blob: &Blob) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(blob.array_buffer()).await.map_err(|e| format!("cannot read file: {}", js_text(&e)))?;
    Ok(js_sys::Uint8Array::new(&buffer).to_vec())
}

/// Straight RGBA pixels of a picture, decoded by the browser.
async fn browser_pixels(blob: &Blob) -> Result<(u32, u32, Vec<u8>), String> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let promise = global.create_image_bitmap_with_blob(blob).map_err(|e| js_text(&e))?;
    let bitmap: ImageBitmap = JsFuture::from(promise).await.map_err(|e| js_text(&e))?.unchecked_into();
    let (width, height) = (bitmap.width(), bitmap.height());
    // The same size rules as the Rust decoders, before any pixel buffer is drawn.
    if let Err(e) = check_dimensions(width, height) {
        bitmap.close();
        return Err(e.to_string());
    }
    let canvas = OffscreenCanvas::new(width, height).map_err(|e| js_text(&e))?;
    let context: OffscreenCanvasRenderingContext2d =
        canvas.get_context("2d").map_err(|e| js_text(&e))?.ok_or("no 2D canvas in this worker")?.unchecked_into();
    context.draw_image_with_image_bitmap(&bitmap, 0.0, 0.0).map_err(|e| js_text(&e))?;
    bitmap.close();
    let data = context.get_image_data(0.0, 0.0, f64::from(width), f64::from(height)).map_err(|e| js_text(&e))?;
    Ok((width, height, data.data().0))
}

/// Decodes one dropped file for a preprocessing that resizes its shorter side to `resize_side`
/// (a large JPEG is decoded at reduced scale). Returns the reason when it cannot be used.
pub async fn decode_blob(blob: &Blob, name: &str, resize_side: u32) -> Result<RgbImage, String> {
    let bytes = file_bytes(blob).await?;
    match decode_image_for_side(&bytes, name, resize_side) {
        Ok(image) => Ok(image),
        Err(rust_error) if rust_error.other_decoder_may_read() => match browser_pixels(blob).await {
            Ok((w, h, rgba)) => rgba_to_rgb(w, h, rgba).map_err(|e| e.to_string()),
            // Neither could read it: the Rust decoder's reason is the more specific one.
            Err(_) => Err(rust_error.to_string()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// Decodes and prepares one dropped file.
pub async fn prepare_blob(blob: &Blob, name: &str, preprocess: &Preprocess) -> Result<Prepared, String> {
    prepare_rgb(&decode_blob(blob, name, preprocess.resize_side).await?, preprocess).map_err(|e| e.to_string())
}
