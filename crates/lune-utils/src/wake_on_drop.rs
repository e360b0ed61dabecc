//! Futures of async Luau functions that wake their task when dropped.
//!
//! An async Rust function called from Luau keeps its future in a Luau value
//! of the calling thread. When that thread is cancelled (`task.cancel`), the
//! scheduler's task that polls it waits for the future's next wake-up, but
//! the garbage collector may drop the future first, and a dropped future
//! never wakes anyone: the task would stay pending forever, and a script
//! whose threads are all done would never exit. Wrapping the future so that
//! dropping it wakes the last waker lets the task see the thread is gone.

use std::{
    future::Future,
    pin::Pin,
    task::{Context, Poll, Waker},
};

pin_project_lite::pin_project! {
    /// A future that wakes whoever polled it last when it is dropped unfinished.
    pub struct WakeOnDrop<F> {
        #[pin]
        future: F,
        waker: Option<Waker>,
    }

    impl<F> PinnedDrop for WakeOnDrop<F> {
        fn drop(this: Pin<&mut Self>) {
            if let Some(waker) = this.project().waker.take() {
                waker.wake();
            }
        }
    }
}

/// Wraps `future` so that dropping it unfinished wakes its task.
pub fn wake_on_drop<F: Future>(future: F) -> WakeOnDrop<F> {
    WakeOnDrop {
        future,
        waker: None,
    }
}

impl<F: Future> Future for WakeOnDrop<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let poll = this.future.poll(cx);
        if poll.is_ready() {
            *this.waker = None;
        } else if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *this.waker = Some(cx.waker().clone());
        }
        poll
    }
}

#[cfg(test)]
mod tests {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicUsize, Ordering},
        },
        task::Wake,
    };

    use super::*;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn dropping_a_pending_future_wakes_its_task() {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let mut pending = Box::pin(wake_on_drop(std::future::pending::<()>()));
        assert!(pending.as_mut().poll(&mut cx).is_pending());
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        drop(pending);
        assert_eq!(count.0.load(Ordering::SeqCst), 1, "the drop woke the task");

        let mut done = Box::pin(wake_on_drop(std::future::ready(())));
        assert!(done.as_mut().poll(&mut cx).is_ready());
        drop(done);
        assert_eq!(
            count.0.load(Ordering::SeqCst),
            1,
            "a finished future wakes nobody"
        );
    }
}
