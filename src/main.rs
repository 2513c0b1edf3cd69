//! graft: fine-tune a pretrained image model on your own pictures, in the browser.
//! A thin Leptos layer over the engine crates; see README.md for the architecture.

mod app;
mod boot;
mod browser;
mod components;
mod run;
mod state;

fn main() {
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
