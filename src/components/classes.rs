//! Class cards: name, drop zone / file picker, thumbnails, counts, per-file errors. A folder
//! drop zone turns each dropped subfolder into a class.

use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;
use web_sys::{DragEvent, File, FileList, HtmlInputElement};

use crate::browser::read_folder;
use crate::run::add_files;
use crate::state::{AppState, ClassCard};

fn list_files(list: Option<FileList>) -> Vec<(String, File)> {
    let Some(list) = list else { return Vec::new() };
    (0..list.length()).filter_map(|i| list.get(i)).map(|f| (f.name(), f)).collect()
}

fn new_card(state: AppState, name: &str) -> ClassCard {
    let id = state.next_class_id.get_untracked();
    state.next_class_id.set(id + 1);
    let card = ClassCard::new(id, name);
    state.classes.update(|c| c.push(card));
    card
}

#[component]
pub fn ClassesPanel() -> impl IntoView {
    let state = expect_context::<AppState>();
    let add = move |_| {
        let n = state.classes.with_untracked(|c| c.len()) + 1;
        new_card(state, &format!("class {n}"));
    };
    view! {
        <section class="panel classes">
            <h2>"1 · Your classes"</h2>
            <p class="hint">"Drop pictures on a class, or drop whole folders below: each subfolder becomes a class."</p>
            <FolderDrop/>
            <div class="cards">
                <For each=move || state.classes.get() key=|c| c.id let:card>
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
        let files = list_files(ev.data_transfer().and_then(|d| d.files()));
        spawn_local(add_files(state, card, files));
    };
    let on_pick = move |ev: web_sys::Event| {
        let input: HtmlInputElement = ev.target().unwrap().unchecked_into();
        let files = list_files(input.files());
        input.set_value("");
        spawn_local(add_files(state, card, files));
    };
    let remove = move |_| {
        state.classes.update(|c| c.retain(|x| x.id != card.id));
        state.engine.update_value(|e| {
            e.images.remove(&card.id);
        });
    };
    view! {
        <div class="card" data-testid="class-card">
            <div class="card-head">
                <input data-testid="class-name" prop:value=move || card.name.get() on:change=move |ev| card.name.set(event_target_value(&ev))/>
                <span data-testid="class-count">{move || format!("{} images", card.count.get())}</span>
                <button class="link" title="delete this class" on:click=remove>"✕"</button>
            </div>
            <div class="drop" class:hover=move || hover.get()
                on:dragover=move |ev: DragEvent| { ev.prevent_default(); hover.set(true); }
                on:dragleave=move |_| hover.set(false)
                on:drop=on_drop
                data-testid="class-drop">
                <div class="thumbs">
                    <For each=move || card.thumbs.get() key=|u| u.clone() let:url>
                        <img src=url alt=""/>
                    </For>
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
                            // Reuse an empty default card before adding new ones.
                            let card = state.classes.with_untracked(|c| {
                                c.iter()
                                    .find(|c| {
                                        c.count.get_untracked() == 0
                                            && c.errors.with_untracked(Vec::is_empty)
                                            && c.name.get_untracked().starts_with("class ")
                                    })
                                    .copied()
                            });
                            let card = match card {
                                Some(c) => {
                                    c.name.set(name);
                                    c
                                }
                                None => new_card(state, &name),
                            };
                            add_files(state, card, files.into_iter().map(|f| (f.path, f.file)).collect()).await;
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
