//! A one-way flag that Luau threads and tasks can wait for.

use std::cell::Cell;

use event_listener::Event;

/// A one-way flag that can be awaited: once set, it stays set.
#[derive(Default)]
pub(crate) struct Signal {
    set: Cell<bool>,
    event: Event,
}

impl Signal {
    pub(crate) fn fire(&self) {
        self.set.set(true);
        self.event.notify(usize::MAX);
    }

    pub(crate) fn is_set(&self) -> bool {
        self.set.get()
    }

    /// Resolves once the flag is set.
    pub(crate) async fn wait(&self) {
        while !self.set.get() {
            let listener = self.event.listen();
            // Checked again after listening, so a `fire` in between is not missed.
            if self.set.get() {
                return;
            }
            listener.await;
        }
    }
}
