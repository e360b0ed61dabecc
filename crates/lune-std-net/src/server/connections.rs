//! The open connections of one server, counted: `stop({ drain })` waits for
//! the count to reach zero, and the idle release (`release.rs`) waits for it
//! to stay there.
//!
//! Nothing here spawns or touches Lua when a connection goes: connections
//! are also dropped while the scheduler tears down at the end of a script,
//! when there is no scheduler left to spawn on.

use std::{cell::Cell, rc::Rc, time::Instant};

use event_listener::Event;

/// The count of one server's open connections (upgraded `WebSocket`s among
/// them).
pub(super) struct Connections {
    open: Cell<usize>,
    idle_since: Cell<Instant>,
    /// Notified when the count goes from zero to one and back.
    changed: Event,
}

/// Counts one connection while it lives.
pub(super) struct Open(Rc<Connections>);

impl Connections {
    pub(super) fn new() -> Rc<Self> {
        Rc::new(Self {
            open: Cell::new(0),
            idle_since: Cell::new(Instant::now()),
            changed: Event::new(),
        })
    }

    pub(super) fn open(self: &Rc<Self>) -> Open {
        self.open.set(self.open.get() + 1);
        if self.open.get() == 1 {
            self.changed.notify(usize::MAX);
        }
        Open(self.clone())
    }

    /// When the count last went to zero.
    pub(super) fn idle_since(&self) -> Instant {
        self.idle_since.get()
    }

    /// Resolves once `open` (the number of connections) says true.
    pub(super) async fn until(&self, open: impl Fn(usize) -> bool) {
        loop {
            if open(self.open.get()) {
                return;
            }
            let listener = self.changed.listen();
            if open(self.open.get()) {
                return;
            }
            listener.await;
        }
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        let conns = &self.0;
        conns.open.set(conns.open.get().saturating_sub(1));
        if conns.open.get() == 0 {
            conns.idle_since.set(Instant::now());
            conns.changed.notify(usize::MAX);
        }
    }
}
