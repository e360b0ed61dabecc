//! The runtime's own reactor for network sockets, and the [`block_on`] that
//! drives it.
//!
//! async-io's reactor costs, per wait, five system calls (polling's epoll
//! backend re-arms a timerfd and an eventfd around every `epoll_wait`) and
//! one `epoll_ctl` per socket per wait (one-shot interest); and while the
//! Luau thread is busy, async-io's helper thread takes the reactor over and
//! hands every event back across threads (a futex wake and a context switch
//! per batch). This reactor registers each socket ONCE, edge-triggered, and
//! the thread that runs [`block_on`] waits in a plain `epoll_wait` on it: a
//! request costs its `recv` and its `writev`, and one `epoll_wait` serves
//! every connection that became ready meanwhile.
//!
//! Everything else (timers, listeners, pipes, UDP) stays on async-io, whose
//! reactor is then driven by its own thread and wakes this one through an
//! eventfd. A socket made on a thread that [`block_on`] does not drive (a
//! library embedding the runtime under `async_io::block_on`) is registered
//! with async-io instead ([`Registration::new`] says `None`).
//!
//! Only Linux has it; elsewhere [`block_on`] is async-io's.

#[cfg(target_os = "linux")]
mod epoll;

#[cfg(target_os = "linux")]
pub use epoll::Registration;

/// Runs `fut` to completion on this thread, with this thread's reactor
/// (where the platform has one) and a [`crate::background`] for the run.
pub fn block_on<T>(fut: impl std::future::Future<Output = T>) -> T {
    let fut = crate::background::run(fut);
    #[cfg(target_os = "linux")]
    return epoll::drive(fut);
    #[cfg(not(target_os = "linux"))]
    return async_io::block_on(fut);
}

/// A socket's place in the runtime's reactor: never on this platform.
#[cfg(not(target_os = "linux"))]
pub struct Registration(());

#[cfg(not(target_os = "linux"))]
impl Registration {
    /// Always `None`: sockets use async-io here.
    #[must_use]
    pub fn new(_fd: std::os::fd::BorrowedFd<'_>) -> Option<std::io::Result<Self>> {
        None
    }

    /// Never called: there are no registrations here.
    pub fn poll_ready(
        &self,
        _cx: &mut std::task::Context<'_>,
        _write: bool,
    ) -> std::task::Poll<u64> {
        std::task::Poll::Pending
    }

    /// Never called: there are no registrations here.
    pub fn clear_ready(&self, _write: bool, _tick: u64) {}
}
