//! graft: fine-tune a pretrained image model on your own pictures, in the browser.
//! This binary is the page: a thin Leptos layer that renders what the engine worker
//! (`src/bin/engine.rs`) reports and sends it the user's commands. See README.md.

// The page must never abort on a DOM call that failed: handle it and say so.
#![warn(clippy::unwrap_used)]

mod page;

fn main() {
    graft::run_static_constructors_once();
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(page::app::App);
}
