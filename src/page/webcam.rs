//! The camera: listing cameras, opening one into a `<video>`, and grabbing frames as RGBA at the
//! size training keeps (shorter side 256), so a frame is small to send and needs no upscaling.

use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{HtmlCanvasElement, HtmlVideoElement, MediaStream, MediaStreamConstraints};

use graft::protocol::Frame;

/// Shorter side of a captured frame (the prepared size of a 224 input).
const FRAME_SHORT_SIDE: u32 = 256;

fn reason(e: &wasm_bindgen::JsValue) -> String {
    let (name, message) = match e.dyn_ref::<web_sys::DomException>() {
        Some(d) => (d.name(), d.message()),
        None => (String::new(), format!("{e:?}")),
    };
    match name.as_str() {
        "NotAllowedError" | "SecurityError" => {
            "camera permission was denied (allow it in the address bar to use the webcam)".into()
        }
        "NotFoundError" | "OverconstrainedError" => "no camera found".into(),
        "NotReadableError" | "AbortError" => "the camera is in use by another program".into(),
        _ => format!("the camera could not start: {name} {message}"),
    }
}

fn media_devices() -> Result<web_sys::MediaDevices, String> {
    web_sys::window()
        .ok_or("no window")?
        .navigator()
        .media_devices()
        .map_err(|_| "this page cannot use a camera here (it needs https or localhost)".to_string())
}

/// The video inputs: `(device id, label)`; labels appear once permission was given.
pub async fn cameras() -> Result<Vec<(String, String)>, String> {
    let devices =
        JsFuture::from(media_devices()?.enumerate_devices().map_err(|e| reason(&e))?).await.map_err(|e| reason(&e))?;
    let list: js_sys::Array = devices.unchecked_into();
    Ok(list
        .iter()
        .filter_map(|d| d.dyn_into::<web_sys::MediaDeviceInfo>().ok())
        .filter(|d| d.kind() == web_sys::MediaDeviceKind::Videoinput)
        .enumerate()
        .map(|(i, d)| {
            let label = if d.label().is_empty() { format!("camera {}", i + 1) } else { d.label() };
            (d.device_id(), label)
        })
        .collect())
}

/// Opens a camera (the default one, or `device_id`) into `video`.
pub async fn open(video: &HtmlVideoElement, device_id: Option<&str>) -> Result<MediaStream, String> {
    let constraints = MediaStreamConstraints::new();
    let video_constraints = js_sys::Object::new();
    if let Some(id) = device_id.filter(|id| !id.is_empty()) {
        let exact = js_sys::Object::new();
        let _ = js_sys::Reflect::set(&exact, &"exact".into(), &id.into());
        let _ = js_sys::Reflect::set(&video_constraints, &"deviceId".into(), &exact);
    }
    constraints.set_video(&video_constraints);
    let promise = media_devices()?.get_user_media_with_constraints(&constraints).map_err(|e| reason(&e))?;
    let stream: MediaStream = JsFuture::from(promise).await.map_err(|e| reason(&e))?.unchecked_into();
    video.set_src_object(Some(&stream));
    video.set_muted(true);
    if let Ok(p) = video.play() {
        JsFuture::from(p).await.map_err(|e| reason(&e))?;
    }
    Ok(stream)
}

pub fn close(stream: &MediaStream) {
    for track in stream.get_tracks().iter() {
        if let Ok(track) = track.dyn_into::<web_sys::MediaStreamTrack>() {
            track.stop();
        }
    }
}

/// The current video frame, scaled so its shorter side is 256 pixels. `None` until the camera
/// delivers frames.
pub fn grab(video: &HtmlVideoElement) -> Option<Frame> {
    let (vw, vh) = (video.video_width(), video.video_height());
    if vw == 0 || vh == 0 {
        return None;
    }
    let short = vw.min(vh);
    let scale = |v: u32| (u64::from(v) * u64::from(FRAME_SHORT_SIDE) / u64::from(short)).max(1);
    let (w, h) = (u32::try_from(scale(vw)).ok()?, u32::try_from(scale(vh)).ok()?);
    let document = web_sys::window()?.document()?;
    let canvas: HtmlCanvasElement = document.create_element("canvas").ok()?.dyn_into().ok()?;
    canvas.set_width(w);
    canvas.set_height(h);
    let ctx: web_sys::CanvasRenderingContext2d = canvas.get_context("2d").ok()??.dyn_into().ok()?;
    ctx.draw_image_with_html_video_element_and_dw_and_dh(video, 0.0, 0.0, f64::from(w), f64::from(h)).ok()?;
    let data = ctx.get_image_data(0.0, 0.0, f64::from(w), f64::from(h)).ok()?;
    Some(Frame { width: w, height: h, rgba: data.data().0 })
}
