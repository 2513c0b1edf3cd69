//! The engine's jobs: everything long (a training run, Compare, the LR finder, the data checks,
//! the interpretation, what the backbone still knows, the map, the benchmark, the kernel checks)
//! runs as a job with a kind, progress (its own events), Stop and one end. One job runs at a time;
//! a command that would start another is answered "busy: <job>" at once, never queued. Commands
//! that are safe beside a job (prediction, adding pictures, settings) keep being handled while it
//! runs, because a job is its own task and the command loop stays free.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use graft_train::CancelToken;

use crate::protocol::{Event, JobKind, Level};
use crate::worker::link::{notice, post};

/// The job running now.
struct Running {
    kind: JobKind,
    /// Stop: a training run or Compare ends at its next step and keeps what it finished; any
    /// other job is dropped at its next await (see [`Stoppable`]).
    cancel: CancelToken,
}

#[derive(Default)]
pub struct Jobs {
    current: RefCell<Option<Running>>,
}

/// Held by a running job; ending it (drop) frees the engine and tells the page.
pub struct JobGuard {
    jobs: Rc<Jobs>,
    pub cancel: CancelToken,
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.jobs.current.borrow_mut().take();
        post(&Event::Job { running: None });
    }
}

impl Jobs {
    /// Starts a job of `kind`, or says which job is in the way (to the page too).
    pub fn begin(self: &Rc<Self>, kind: JobKind) -> Option<JobGuard> {
        if let Some(busy) = self.current() {
            notice(Level::Warning, format!("busy: {} is running (Stop it, or wait for it to end)", busy.label()));
            return None;
        }
        let cancel = CancelToken::default();
        *self.current.borrow_mut() = Some(Running { kind, cancel: cancel.clone() });
        post(&Event::Job { running: Some(kind) });
        Some(JobGuard { jobs: self.clone(), cancel })
    }

    pub fn current(&self) -> Option<JobKind> {
        self.current.borrow().as_ref().map(|r| r.kind)
    }

    /// Stop: the running job ends as soon as it can.
    pub fn stop(&self) {
        if let Some(r) = self.current.borrow().as_ref() {
            r.cancel.cancel();
        }
    }
}

/// A job's work that Stop can end between any two of its awaits: it resolves to `None` once the
/// job's token is cancelled, dropping the work (and every tensor it held).
pub struct Stoppable<F> {
    work: Pin<Box<F>>,
    cancel: CancelToken,
}

pub fn stoppable<F: Future>(work: F, cancel: &CancelToken) -> Stoppable<F> {
    Stoppable { work: Box::pin(work), cancel: cancel.clone() }
}

impl<F: Future> Future for Stoppable<F> {
    type Output = Option<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.cancel.is_cancelled() {
            return Poll::Ready(None);
        }
        self.work.as_mut().poll(cx).map(Some)
    }
}
