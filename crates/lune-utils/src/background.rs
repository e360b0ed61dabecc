//! Background tasks that never keep a script running (Node's `unref`):
//! they run on the script's thread while the runtime's
//! [`crate::reactor::block_on`] drives it, and are dropped, wherever they
//! are, once the future it was given ends. The runtime waits for signals
//! here; the network library pings idle `WebSocket`s here.
//!
//! Under another `block_on` (this library embedded in Lune itself) there is
//! no background: [`spawn`] hands the future back.

use std::{cell::RefCell, future::Future, rc::Rc};

use crate::tasks::TaskGroup;

thread_local! {
    static CURRENT: RefCell<Option<Rc<TaskGroup>>> = const { RefCell::new(None) };
}

/// Runs `fut` in the background of this thread; gives it back when no
/// runtime `block_on` drives this thread.
///
/// # Errors
/// `Err(fut)` when this thread has no background.
pub fn spawn<F: Future<Output = ()> + 'static>(fut: F) -> Result<(), F> {
    let group = CURRENT.with(|current| current.borrow().clone());
    match group {
        Some(group) => {
            group.spawn(fut);
            Ok(())
        }
        None => Err(fut),
    }
}

/// True while this thread has a background ([`spawn`] takes futures).
#[must_use]
pub fn is_available() -> bool {
    CURRENT.with(|current| current.borrow().is_some())
}

/// Takes the background out when the run ends, even by a panic.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        // Taken out first, so that a task's `Drop` that asks for the
        // background finds none instead of a group being torn down.
        let group = CURRENT.with(|current| current.borrow_mut().take());
        drop(group);
    }
}

/// Awaits `fut` with a background for this thread; nested, just `fut`.
pub(crate) async fn run<T>(fut: impl Future<Output = T>) -> T {
    if is_available() {
        return fut.await;
    }
    let group = TaskGroup::new();
    CURRENT.with(|current| *current.borrow_mut() = Some(group.clone()));
    let _installed = Installed;
    group.drive(fut).await
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, rc::Rc};

    use super::{is_available, spawn};
    use crate::reactor::block_on;

    struct Flag(Rc<Cell<bool>>);

    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }

    #[test]
    fn background_tasks_run_and_never_hold_the_run_open() {
        assert!(!is_available(), "no background outside block_on");
        let ran = Rc::new(Cell::new(false));
        let dropped = Rc::new(Cell::new(false));
        let (ran2, flag) = (ran.clone(), Flag(dropped.clone()));
        let (tx, rx) = async_channel::bounded::<()>(1);
        block_on(async move {
            assert!(
                spawn(async move {
                    let _flag = flag;
                    ran2.set(true);
                    let _ = tx.send(()).await;
                    // Would keep the run going forever if it counted.
                    futures_lite::future::pending::<()>().await;
                })
                .is_ok()
            );
            rx.recv().await.expect("the background task ran");
        });
        assert!(ran.get());
        assert!(dropped.get(), "the pending task was dropped with the run");
        assert!(!is_available());
        assert!(spawn(async {}).is_err(), "no background after the run");
    }
}
