//! `idleTimeout`: a server connection is idle while no request is being
//! handled and no byte goes either way; one idle for the timeout is shut
//! down gracefully. [`Watched`] notes the bytes, [`Busy`] guards the
//! requests, [`Activity::idle`] waits for the timeout. All of it runs on
//! the Luau thread, with the connection; the counters are atomic only
//! because hyper wants an upgradable connection's I/O to be `Send`.

use std::{
    io,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    task::{Context, Poll},
    time::{Duration, Instant},
};

use futures_lite::{AsyncRead, AsyncWrite};

/// What happened last on one connection.
pub(crate) struct Activity {
    busy: AtomicUsize,
    start: Instant,
    /// Nanoseconds from `start` to the last activity.
    last: AtomicU64,
}

/// One request in flight; its end counts as activity.
pub(crate) struct Busy(Arc<Activity>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

impl Activity {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            busy: AtomicUsize::new(0),
            start: Instant::now(),
            last: AtomicU64::new(0),
        })
    }

    fn touch(&self) {
        let since = u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.last.store(since, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_nanos(self.last.load(Ordering::Relaxed))
    }

    /// Marks a request in flight until the guard drops.
    pub(crate) fn busy(self: &Arc<Self>) -> Busy {
        self.busy.fetch_add(1, Ordering::Relaxed);
        self.touch();
        Busy(self.clone())
    }

    /// Resolves once the connection has been idle for `limit`.
    pub(crate) async fn idle(&self, limit: Duration) {
        loop {
            if self.busy.load(Ordering::Relaxed) > 0 {
                // A handler is running; look again later (its end touches
                // `last`, so the idle time counts from there).
                async_io::Timer::after(limit).await;
                continue;
            }
            let due = self.last() + limit;
            if Instant::now() >= due {
                return;
            }
            async_io::Timer::at(due).await;
        }
    }
}

/// An I/O object whose reads and writes count as activity (when watched:
/// without `idleTimeout` it passes straight through).
pub(crate) struct Watched<S> {
    inner: S,
    activity: Option<Arc<Activity>>,
}

impl<S> Watched<S> {
    pub(crate) fn new(inner: S, activity: Option<Arc<Activity>>) -> Self {
        Self { inner, activity }
    }

    fn note<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Some(activity) = &self.activity
            && poll.is_ready()
        {
            activity.touch();
        }
        poll
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Watched<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.note(poll)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Watched<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note(poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::Activity;

    #[test]
    fn idle_waits_out_requests_in_flight() {
        async_io::block_on(async {
            let activity = Activity::new();
            let busy = activity.busy();
            let limit = Duration::from_millis(50);
            let started = Instant::now();
            let idle = futures_lite::future::or(
                async {
                    activity.idle(limit).await;
                    true
                },
                async {
                    async_io::Timer::after(limit * 4).await;
                    false
                },
            )
            .await;
            assert!(!idle, "a connection with a request in flight is not idle");
            drop(busy);
            activity.idle(limit).await;
            assert!(
                started.elapsed() >= limit * 5,
                "idle counts from the request's end"
            );
        });
    }
}
