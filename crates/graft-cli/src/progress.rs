//! Renders the trainer's event stream in a terminal.

use std::io::Write;

use graft_train::{PhaseKind, TrainEvent};

pub struct Progress {
    classes: Vec<String>,
    json: bool,
}

fn bar(done: usize, total: usize) -> String {
    let width = 24;
    let filled = (done * width / total.max(1)).min(width);
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

impl Progress {
    pub fn new(json: bool) -> Self {
        Self { classes: Vec::new(), json }
    }

    pub fn show(&mut self, event: &TrainEvent) {
        if self.json {
            println!("{}", serde_json::to_string(event).unwrap_or_default());
            return;
        }
        let mut err = std::io::stderr();
        match event {
            TrainEvent::Loaded { classes, train_counts, val_counts, file_errors, mode, epochs, steps_per_epoch } => {
                self.classes = classes.clone();
                println!("mode {} | {epochs} epochs x {steps_per_epoch} steps", mode.label());
                for (i, c) in classes.iter().enumerate() {
                    println!("  class {c:<16} train {:>4}  val {:>4}", train_counts[i], val_counts[i]);
                }
                for e in file_errors {
                    println!("  skipped {}: {}", e.file, e.reason);
                }
            }
            TrainEvent::Phase { phase } => {
                let text = match phase {
                    PhaseKind::ExtractingFeatures => "extracting backbone features (once per image and view)",
                    PhaseKind::TrainingHead => "training the head on cached features",
                    PhaseKind::WarmUp => "warm-up: head only, backbone locked",
                    PhaseKind::FineTuning => "fine-tuning backbone and head",
                };
                println!("== {text}");
            }
            TrainEvent::Extract { done, total, images_per_sec } => {
                let _ = write!(err, "\r  features {} {done}/{total} {images_per_sec:.1} img/s   ", bar(*done, *total));
                if done == total {
                    let _ = writeln!(err);
                }
            }
            TrainEvent::Step(s) => {
                let _ = write!(
                    err,
                    "\r  epoch {}/{} {} loss {:.3} acc {:.2} lr {:.2e} {:.1} img/s eta {:.0}s   ",
                    s.epoch,
                    s.epochs,
                    bar(s.step, s.steps_per_epoch),
                    s.loss,
                    s.accuracy,
                    s.lr,
                    s.images_per_sec,
                    s.eta_secs
                );
            }
            TrainEvent::Validate { epoch, done, total } => {
                let _ = write!(err, "\r  epoch {epoch} validating {} {done}/{total}   ", bar(*done, *total));
            }
            TrainEvent::Epoch(m) => {
                let _ = write!(err, "\r");
                let val = match (m.val_loss, m.val_accuracy) {
                    (Some(l), Some(a)) => format!("val loss {l:.3} acc {a:.3}"),
                    _ => "no validation".into(),
                };
                println!(
                    "epoch {:>3}: train loss {:.3} acc {:.3} | {val} | {:.1}s{}",
                    m.epoch,
                    m.train_loss,
                    m.train_accuracy,
                    m.seconds,
                    " ".repeat(30)
                );
            }
            TrainEvent::Evaluation(e) => {
                println!("validation accuracy {:.3} (loss {:.3})", e.accuracy, e.loss);
                println!("confusion (rows: true, columns: predicted)");
                for (i, row) in e.confusion.iter().enumerate() {
                    let name = self.classes.get(i).map(String::as_str).unwrap_or("?");
                    let acc = e.per_class_accuracy[i].map(|a| format!("{a:.2}")).unwrap_or("-".into());
                    println!("  {name:<16} {:?} acc {acc}", row);
                }
            }
            TrainEvent::Warning { message } => println!("warning: {message}"),
            TrainEvent::Done(s) => println!("done in {:.1}s ({:.1} img/s overall)", s.seconds, s.images_per_sec),
            TrainEvent::Cancelled { completed_epochs } => {
                println!("cancelled after {completed_epochs} completed epoch(s)")
            }
            TrainEvent::Failed { reason, message } => println!("failed ({reason:?}): {message}"),
        }
    }
}
