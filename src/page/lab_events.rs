//! The teaching lab's events from the worker, as signal updates.

use graft_lab::{BackboneCompareEvent, CompareEvent};
use graft_train::TrainEvent;
use leptos::prelude::*;

use graft::protocol::Event;

use crate::page::browser::{jpeg_url, revoke};
use crate::page::state::{AppState, InterpretationView, SaliencyView, ThumbUrl, ValPictureView};

pub fn apply(state: &AppState, event: Event) {
    let lab = state.lab;
    match event {
        Event::LabProgress(p) => lab.progress.set((p.done < p.total).then_some(p)),
        Event::Findings { findings } => {
            lab.progress.set(None);
            let views = findings
                .into_iter()
                .map(|f| {
                    let thumbs = f
                        .thumbs
                        .iter()
                        .filter_map(|t| jpeg_url(&t.jpeg).map(|url| ThumbUrl { id: t.id, url }))
                        .collect();
                    (f.text, thumbs)
                })
                .collect();
            lab.findings.set(Some(views));
        }
        Event::Compare(CompareEvent::Started { index, of, label, .. }) => {
            lab.compare_status.set(Some(format!("run {} of {of}: {label}", index + 1)));
        }
        Event::Compare(CompareEvent::Train { index, run_event: TrainEvent::Epoch(m) }) => {
            lab.compare_status.update(|s| {
                let base = s.as_deref().unwrap_or("").split(" · ").next().unwrap_or("").to_string();
                *s = Some(format!("{base} · epoch {} done (run {})", m.epoch, index + 1));
            });
        }
        Event::Compare(CompareEvent::Row { row, .. }) => lab.compare_rows.update(|rows| rows.push(row)),
        Event::CompareDone => {
            lab.compare_running.set(false);
            lab.compare_status.set(Some("done: pick a row's model to try it".into()));
        }
        Event::BackboneCompare(BackboneCompareEvent::Started { index, of, arch }) => {
            lab.backbone_status.set(Some(format!("run {} of {of}: {}", index + 1, arch.title())));
        }
        Event::BackboneCompare(BackboneCompareEvent::Train { index, run_event: TrainEvent::Epoch(m) }) => {
            lab.backbone_status.update(|s| {
                let base = s.as_deref().unwrap_or("").split(" · ").next().unwrap_or("").to_string();
                *s = Some(format!("{base} · epoch {} done (run {})", m.epoch, index + 1));
            });
        }
        Event::BackboneCompare(BackboneCompareEvent::Row { row, .. }) => {
            lab.backbone_rows.update(|rows| rows.push(row))
        }
        Event::BackboneCompareDone { verdict } => {
            lab.backbone_running.set(false);
            lab.backbone_status.set(Some(verdict));
        }
        Event::LrFinder(result) => {
            lab.progress.set(None);
            lab.lr_finder.set(Some(result));
        }
        Event::Interpretation { classes, accuracy, confusion, pairs, pictures } => {
            if let Some(old) = lab.interpretation.get_untracked() {
                old.pictures.iter().filter_map(|p| p.url.as_deref()).for_each(revoke);
            }
            let pictures = pictures
                .into_iter()
                .map(|p| ValPictureView {
                    id: p.id,
                    url: jpeg_url(&p.thumb),
                    name: p.name,
                    label: p.label,
                    predicted: p.predicted,
                    confidence: p.confidence,
                    top_loss_rank: p.top_loss_rank,
                })
                .collect();
            lab.selected_cell.set(None);
            lab.interpretation.set(Some(InterpretationView { classes, accuracy, confusion, pairs, pictures }));
        }
        Event::Saliency { side, heat, class, probability } => {
            let picture = lab.saliency.get_untracked().and_then(|s| s.picture);
            lab.saliency.set(Some(SaliencyView { side, heat, class, probability, picture }));
        }
        Event::Map { classes, points } => {
            lab.progress.set(None);
            lab.map.set(Some((classes, points)));
        }
        Event::Knowledge(k) => {
            lab.progress.set(None);
            lab.knowledge.set(Some(k));
        }
        _ => {}
    }
}
