//! Projects: classes, their prepared pictures, settings and the kept model — what the browser
//! saves as it changes and what a project file carries between machines. UI-free: the web app's
//! engine worker keeps one, and everything here is tested natively.

mod archive;
mod bench;
mod ingest;
mod project;
mod starting;

pub use archive::{pictures_as_class_folders, pictures_zip, read_project, write_project, ArchiveError};
pub use bench::{bench_ingest, bench_ingest_phone, synthetic_phone_photo, synthetic_photo, with_exif_orientation};
pub use ingest::{
    decode_prepared, prepare_file, prepare_rgb, prepare_rgba, Prepared, PREPARED_JPEG_QUALITY, THUMB_HEIGHT,
};
pub use project::{
    ClassEntry, HeadChoice, ImageInfo, ImageRecord, ModelRecord, ModelStatus, Project, ProjectMeta, Settings,
    PROJECT_FORMAT,
};
pub use starting::{read_checkpoint, Checkpoint, Start};
