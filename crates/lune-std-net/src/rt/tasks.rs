//! hyper's executor for one client connection: its tasks are a
//! [`TaskGroup`] (see `lune_utils::tasks`), run by whoever waits on that
//! connection (a request, a body read, a WebSocket handshake).

use std::{
    future::Future,
    rc::{Rc, Weak},
};

pub(crate) use lune_utils::tasks::TaskGroup as ConnTasks;

/// Spawns into one connection's [`ConnTasks`]. Weak, because the
/// connection's own task holds it.
#[derive(Clone)]
pub(crate) struct ClientExecutor(Weak<ConnTasks>);

impl ClientExecutor {
    pub(crate) fn new(tasks: &Rc<ConnTasks>) -> Self {
        Self(Rc::downgrade(tasks))
    }
}

impl<F> hyper::rt::Executor<F> for ClientExecutor
where
    F: Future + 'static,
{
    fn execute(&self, fut: F) {
        // A connection whose tasks are gone is closed: its streams go too.
        if let Some(tasks) = self.0.upgrade() {
            tasks.spawn(async move {
                fut.await;
            });
        }
    }
}
