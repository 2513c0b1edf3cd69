//! Class cards: name, drop zone / file picker, webcam capture, thumbnails, counts, per-file
//! errors. A folder drop zone turns each dropped subfolder into a class. Files go to the engine
//! worker as they are (it decodes them); nothing is decoded on the page.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, FileList, HtmlInputElement};

use graft::protocol::Command;

use crate::page::browser::read_folder;
use crate::page::components::webcam::WebcamPanel;
use crate::page::state::{AppState, ClassCard};

fn list_files(list: Option<FileList>) -> Vec<File> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

fn send_files(state: &AppState, class_id: u32, files: &[File]) {
    if files.is_empty() {
        return;
    }
    let names = files.iter().map(File::name).collect();
    let array: js_sys::Array = files.iter().collect();
    state.send_files(&Command::AddFiles { class_id, names }, &array);
}

#[component]
pub fn ClassesPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let add = move |_| {
        let n = state.classes.with_untracked(|c| c.len()) + 1;
        state.send(&Command::AddClass { name: format!("class {n}") });
    };
    view! {
        <section class="panel classes">
            <h2>"1 · Your classes"</h2>
            <p class="hint">"Drop pictures on a class, record them with your webcam, or drop whole folders below: each subfolder becomes a class."</p>
            <FolderDrop/>
            {move || state.ingest.get().map(|(done, total)| view! {
                <div class="ingest" data-testid="ingest-progress">
                    <progress max=total.to_string() prop:value=done.to_string()></progress>
                    <span>{format!("preparing pictures {done}/{total}")}</span>
                </div>
            })}
            <div class="cards">
                <For each=move || state.classes.get() key=|c| c.key let:card>
                    <ClassCardView card=card/>
                </For>
            </div>
            <button data-testid="add-class" on:click=add>"+ add a class"</button>
        </section>
    }
}

#[component]
fn ClassCardView(card: ClassCard) -> impl IntoView {
    let state = expect_context::<AppState>();
    let hover = RwSignal::new(false);
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        hover.set(false);
        send_files(&state, card.id, &list_files(ev.data_transfer().and_then(|d| d.files())));
    };
    let on_pick = move |ev: web_sys::Event| {
        let Some(input) = ev.target().and_then(|t| t.dyn_into::<HtmlInputElement>().ok()) else { return };
        let files = list_files(input.files());
        input.set_value("");
        send_files(&state, card.id, &files);
    };
    let remove = move |_| {
        card.thumbs.with_untracked(|t| t.iter().for_each(|t| crate::page::browser::revoke(&t.url)));
        state.classes.update(|c| c.retain(|x| x.id != card.id));
        state.send(&Command::RemoveClass { id: card.id });
    };
    let rename = move |ev| {
        let name = event_target_value(&ev);
        card.name.set(name.clone());
        card.name_error.set(None);
        state.send(&Command::RenameClass { id: card.id, name });
    };
    view! {
        <div class="card" data-testid="class-card" data-class-id=card.id.to_string()>
            <div class="card-head">
                <input data-testid="class-name" class:invalid=move || card.name_error.get().is_some()
                    prop:value=move || card.name.get() on:change=rename/>
                <span data-testid="class-count">{move || format!("{} images", card.count.get())}</span>
                <button class="link" title="record with the webcam" data-testid="webcam-button"
                    on:click=move |_| card.camera_open.update(|o| *o = !*o)>"📷"</button>
                <button class="link" title="delete this class" on:click=remove>"✕"</button>
            </div>
            {move || card.name_error.get().map(|e| view! { <p class="error" data-testid="class-name-error">{e}</p> })}
            <Show when=move || card.camera_open.get()>
                <WebcamPanel card=card/>
            </Show>
            <div class="drop" class:hover=move || hover.get()
                on:dragover=move |ev: DragEvent| { ev.prevent_default(); hover.set(true); }
                on:dragleave=move |_| hover.set(false)
                on:drop=on_drop
                data-testid="class-drop">
                <div class="thumbs">
                    <For each=move || card.thumbs.get() key=|t| t.id let:thumb>
                        <img src=thumb.url alt=""/>
                    </For>
                    {move || {
                        let hidden = card.count.get().saturating_sub(card.thumbs.with(Vec::len));
                        (hidden > 0).then(|| view! { <span class="more">{format!("+{hidden}")}</span> })
                    }}
                </div>
                <label class="picker">"drop images here or "
                    <input type="file" accept="image/*" multiple data-testid="class-file-input" on:change=on_pick/>
                </label>
            </div>
            <ul class="errors">
                <For each=move || card.errors.get() key=|e| format!("{}{}", e.file, e.reason) let:err>
                    <li data-testid="file-error">{format!("{}: {}", err.file, err.reason)}</li>
                </For>
            </ul>
        </div>
    }
}

/// Drop zone for folders: `DataTransferItem.webkitGetAsEntry` walks the dropped directories.
#[component]
fn FolderDrop() -> impl IntoView {
    let state = expect_context::<AppState>();
    let hover = RwSignal::new(false);
    let message = RwSignal::new(None::<String>);
    let on_drop = move |ev: DragEvent| {
        ev.prevent_default();
        hover.set(false);
        let Some(items) = ev.data_transfer().map(|d| d.items()) else { return };
        // Entries must be taken during the event; reading them can happen afterwards.
        let entries: Vec<_> = (0..items.length())
            .filter_map(|i| items.get(i))
            .filter_map(|item| item.webkit_get_as_entry().ok().flatten())
            .collect();
        spawn_local(async move {
            let mut loose = Vec::new();
            for entry in entries {
                if entry.is_directory() {
                    let name = entry.name();
                    match read_folder(entry).await {
                        Ok(files) => {
                            let names = files.iter().map(|f| f.path.clone()).collect();
                            let array: js_sys::Array = files.iter().map(|f| f.file.clone()).collect();
                            state.send_files(&Command::AddFolder { name, names }, &array);
                        }
                        Err(e) => message.set(Some(format!("{name}: {e}"))),
                    }
                } else {
                    loose.push(entry.name());
                }
            }
            if !loose.is_empty() {
                message.set(Some(format!(
                    "{} loose file(s) ignored here: drop single images on a class card ({})",
                    loose.len(),
                    loose.join(", ")
                )));
            }
        });
    };
    view! {
        <div class="drop folder" class:hover=move || hover.get() data-testid="folder-drop"
            on:dragover=move |ev: DragEvent| { ev.prevent_default(); hover.set(true); }
            on:dragleave=move |_| hover.set(false)
            on:drop=on_drop>
            "drop class folders here (each subfolder becomes a class)"
            {move || message.get().map(|m| view! { <p class="error">{m}</p> })}
        </div>
    }
}
