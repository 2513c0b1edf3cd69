//! The page: renders the engine worker's events and sends it the user's commands. Nothing
//! here computes — decoding, training and prediction happen in the worker.

pub mod app;
pub mod browser;
pub mod choice;
pub mod client;
pub mod components;
pub mod events;
pub mod lab_events;
pub mod offline;
pub mod predict;
pub mod state;
pub mod tab;
pub mod webcam;

/// Thumbnails shown per class card (the count says how many pictures there are).
pub const THUMBS_SHOWN: usize = 48;
