//! The teaching lab: experiments that let a class *see* why fine-tuning works, computed here and
//! shown by the web app and the CLI — Compare (the lessons as four runs; and the backbones side
//! by side), what the backbone
//! still knows of ImageNet and how far each layer moved, the learning-rate finder,
//! interpretation after training (confusions, top losses, Grad-CAM, a 2-D map) and data checks
//! before it.

mod backbones;
mod checks;
mod compare;
mod features;
mod interpret;
mod layers;
mod lr_finder;
mod pca;
mod runs;
mod saliency;
mod verdict;

pub use backbones::{backbone_verdict, run_backbone_compare, BackboneCompareEvent, BackboneRow};
pub use checks::{check_data, CheckItem, Finding, DUPLICATE_SIMILARITY, FEW_IMAGES, MISLABEL_MARGIN};
pub use compare::{CompareRow, Lesson};
pub use features::{backbone_view, BackboneView};
pub use interpret::{cell_images, most_confused, top_losses, ConfusedPair};
pub use layers::{agreement, layer_changes, with_imagenet_head};
pub use lr_finder::{lr_find_full, lr_find_head, suggest, LrFinderResult, LrSweep};
pub use pca::pca_2d;
pub use runs::{
    backbone_knowledge, data_findings, evaluate, lr_find_for_run, pretrained_imagenet, pretrained_view, run_compare,
    BackboneKnowledge, CompareEvent, KnowledgeStage, LrFindStage,
};
pub use saliency::{cam, grad_cam, Saliency};
pub use verdict::{compare, noise, verdict, Difference};
