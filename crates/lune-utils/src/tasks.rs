//! [`TaskGroup`]: a group of tasks run on the current thread by whoever
//! waits on the group ([`TaskGroup::drive`]). The network library gives each
//! client connection one (hyper's connection future and, for HTTP/2, the
//! streams it spawns: no thread hop per request); [`crate::background`] is
//! one driven by the runtime's `block_on` for the whole run.
//!
//! Why not one executor for all of them: an executor wakes ONE waiting
//! runner when a task becomes ready, and a runner inside a Luau thread that
//! was cancelled (`task.cancel`) is never polled again, yet lives until the
//! garbage collector frees it: the wake-up would be lost and every other
//! waiter would stall. Here a ready task wakes every future waiting on its
//! group, and waiters on other groups never depend on it.
//!
//! Nothing drives a group nobody waits on: an idle pooled connection keeps
//! no script alive. When its last handle goes, its tasks are dropped (for a
//! connection, that closes the socket).

use std::{
    cell::RefCell,
    collections::VecDeque,
    future::Future,
    pin::pin,
    rc::Rc,
    sync::{Arc, Mutex},
    task::{Poll, Waker},
};

use async_task::{Runnable, Task};

use crate::lock;

/// Tasks run per wake-up of a waiter before it lets other work run.
const BUDGET: usize = 64;

/// What the wakers of the tasks share (they may be woken on any thread).
#[derive(Default)]
struct Queue {
    ready: VecDeque<Runnable>,
    /// The futures waiting on this group.
    waiting: Vec<Waker>,
}

/// A group of tasks; see the module docs.
#[derive(Default)]
pub struct TaskGroup {
    queue: Arc<Mutex<Queue>>,
    /// Every task not yet finished; dropping them drops their futures.
    tasks: RefCell<Vec<Task<()>>>,
}

impl Drop for TaskGroup {
    fn drop(&mut self) {
        // Cancel the tasks here, on the Luau thread, then let go of their
        // queued runs (which hold the queue alive through their wakers).
        self.tasks.get_mut().clear();
        lock(&self.queue).ready.clear();
    }
}

impl TaskGroup {
    /// An empty group.
    #[must_use]
    pub fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// Adds `fut` to this group's tasks.
    pub fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
        let queue = self.queue.clone();
        let schedule = move |runnable: Runnable| {
            let waiting = {
                let mut queue = lock(&queue);
                queue.ready.push_back(runnable);
                std::mem::take(&mut queue.waiting)
            };
            for waker in waiting {
                waker.wake();
            }
        };
        let (runnable, task) = async_task::spawn_local(fut, schedule);
        let mut tasks = self.tasks.borrow_mut();
        tasks.retain(|task| !task.is_finished());
        tasks.push(task);
        drop(tasks);
        runnable.schedule();
    }

    /// Awaits `fut`, running this group's tasks meanwhile.
    pub async fn drive<T>(&self, fut: impl Future<Output = T>) -> T {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(value) = fut.as_mut().poll(cx) {
                return Poll::Ready(value);
            }
            let mut ran = false;
            for _ in 0..BUDGET {
                let mut queue = lock(&self.queue);
                let Some(runnable) = queue.ready.pop_front() else {
                    if !ran {
                        // Nothing ran (the common case, e.g. every wake-up of
                        // the runtime's whole run): wait, under this one lock.
                        if !queue.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                            queue.waiting.push(cx.waker().clone());
                        }
                        return Poll::Pending;
                    }
                    break;
                };
                drop(queue);
                runnable.run();
                ran = true;
            }
            if ran && let Poll::Ready(value) = fut.as_mut().poll(cx) {
                return Poll::Ready(value);
            }
            let mut queue = lock(&self.queue);
            if !queue.ready.is_empty() {
                // Out of budget: come back after other Luau threads ran.
                cx.waker().wake_by_ref();
            } else if !queue.waiting.iter().any(|w| w.will_wake(cx.waker())) {
                queue.waiting.push(cx.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, rc::Rc};

    use super::TaskGroup;

    #[test]
    fn a_stalled_waiter_does_not_hold_up_another() {
        async_io::block_on(async {
            let tasks = TaskGroup::new();
            let (tx, rx) = async_channel::bounded::<u32>(1);
            // A waiter that is polled once and then abandoned (as the
            // future of a cancelled Luau thread is) ...
            let mut stalled = Box::pin(tasks.drive(futures_lite::future::pending::<()>()));
            assert!(
                futures_lite::future::poll_once(&mut stalled)
                    .await
                    .is_none()
            );
            // ... then a task becomes ready: another waiter still runs it.
            tasks.spawn(async move {
                let _ = tx.send(7).await;
            });
            let got = tasks.drive(rx.recv()).await;
            assert_eq!(got.ok(), Some(7), "the task ran for the live waiter");
            drop(stalled);
        });
    }

    #[test]
    fn dropping_the_tasks_drops_their_futures() {
        struct Flag(Rc<Cell<bool>>);
        impl Drop for Flag {
            fn drop(&mut self) {
                self.0.set(true);
            }
        }
        let dropped = Rc::new(Cell::new(false));
        let tasks = TaskGroup::new();
        let flag = Flag(dropped.clone());
        tasks.spawn(async move {
            let _flag = flag;
            futures_lite::future::pending::<()>().await;
        });
        drop(tasks);
        assert!(dropped.get(), "a group's tasks end with it");
    }
}
