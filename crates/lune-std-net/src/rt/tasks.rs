//! [`ConnTasks`]: the tasks of ONE client connection (hyper's connection
//! future, and for HTTP/2 the streams it spawns), run on the Luau thread by
//! whoever waits on that connection ([`ConnTasks::drive`]): a request, a
//! body read, a WebSocket handshake. No thread hop per request.
//!
//! Why not one executor for all of them: an executor wakes ONE waiting
//! runner when a task becomes ready, and a runner inside a Luau thread that
//! was cancelled (`task.cancel`) is never polled again, yet lives until the
//! garbage collector frees it: the wake-up would be lost and every other
//! request would stall. Here a ready task wakes every request waiting on its
//! connection (one for HTTP/1.1), and requests on other connections never
//! depend on it.
//!
//! Nothing drives a connection nobody waits on: an idle pooled connection
//! keeps no script alive. When its last handle goes (the pool let it go),
//! its tasks are dropped, which closes the socket.

use std::{
    cell::RefCell,
    collections::VecDeque,
    future::Future,
    pin::pin,
    rc::{Rc, Weak},
    sync::{Arc, Mutex, MutexGuard},
    task::{Poll, Waker},
};

use async_task::{Runnable, Task};

/// Tasks run per wake-up of a waiting request before it lets other Luau
/// threads run.
const BUDGET: usize = 64;

/// What the wakers of the tasks share (they may be woken on any thread).
#[derive(Default)]
struct Queue {
    ready: VecDeque<Runnable>,
    /// The requests waiting on this connection.
    waiting: Vec<Waker>,
}

fn lock(queue: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
    // Every change under the lock is one push or take: a panic elsewhere
    // leaves it consistent.
    queue
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The tasks of one client connection; see the module docs.
#[derive(Default)]
pub(crate) struct ConnTasks {
    queue: Arc<Mutex<Queue>>,
    /// Every task not yet finished; dropping them drops their futures.
    tasks: RefCell<Vec<Task<()>>>,
}

impl Drop for ConnTasks {
    fn drop(&mut self) {
        // Cancel the tasks here, on the Luau thread, then let go of their
        // queued runs (which hold the queue alive through their wakers).
        self.tasks.get_mut().clear();
        lock(&self.queue).ready.clear();
    }
}

impl ConnTasks {
    pub(crate) fn new() -> Rc<Self> {
        Rc::new(Self::default())
    }

    /// Adds `fut` to this connection's tasks.
    pub(crate) fn spawn(&self, fut: impl Future<Output = ()> + 'static) {
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

    /// Awaits `fut`, running this connection's tasks meanwhile.
    pub(crate) async fn drive<T>(&self, fut: impl Future<Output = T>) -> T {
        let mut fut = pin!(fut);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(value) = fut.as_mut().poll(cx) {
                return Poll::Ready(value);
            }
            let mut ran = false;
            for _ in 0..BUDGET {
                let Some(runnable) = lock(&self.queue).ready.pop_front() else {
                    break;
                };
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

/// hyper's executor for one client connection: spawns into its
/// [`ConnTasks`]. Weak, because the connection's own task holds it.
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

#[cfg(test)]
mod tests {
    use std::{cell::Cell, rc::Rc};

    use super::ConnTasks;

    #[test]
    fn a_stalled_waiter_does_not_hold_up_another() {
        async_io::block_on(async {
            let tasks = ConnTasks::new();
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
        let tasks = ConnTasks::new();
        let flag = Flag(dropped.clone());
        tasks.spawn(async move {
            let _flag = flag;
            futures_lite::future::pending::<()>().await;
        });
        drop(tasks);
        assert!(dropped.get(), "a connection's tasks end with it");
    }
}
