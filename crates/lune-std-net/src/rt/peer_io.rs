//! `idleTimeout`: a server connection is idle while no request is being
//! handled and no byte goes either way; one idle for the timeout is shut
//! down gracefully. [`PeerIo`] notes the bytes (and cuts a peer that takes
//! none for `sendTimeout`), [`Busy`] guards the
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

/// A server connection's I/O as hyper sees it: writes fail with `TimedOut`
/// when the peer takes no bytes for `send_timeout` (a peer that stops
/// reading is cut instead of holding its connection, and the response it
/// pins, forever), and every read and write counts as activity for
/// `idleTimeout` when the server has one.
pub(crate) struct PeerIo<S> {
    inner: S,
    send_timeout: Duration,
    /// Armed while a write waits for the peer.
    stalled: Option<async_io::Timer>,
    activity: Option<Arc<Activity>>,
}

impl<S> PeerIo<S> {
    pub(crate) fn new(inner: S, send_timeout: Duration, activity: Option<Arc<Activity>>) -> Self {
        Self {
            inner,
            send_timeout,
            stalled: None,
            activity,
        }
    }

    fn note<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Some(activity) = &self.activity
            && poll.is_ready()
        {
            activity.touch();
        }
        poll
    }

    /// Passes a ready write through (progress: the timer is disarmed; data
    /// written counts as activity, a flush does not), and on `Pending` arms
    /// the timer, failing once it fires.
    fn watch<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<io::Result<T>>,
        wrote: bool,
    ) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return if wrote { self.note(poll) } else { poll };
        }
        let limit = self.send_timeout;
        let timer = self
            .stalled
            .get_or_insert_with(|| async_io::Timer::after(limit));
        match std::future::Future::poll(Pin::new(timer), cx) {
            Poll::Ready(_) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the peer took no data for {} seconds", limit.as_secs_f64()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: hyper::rt::Read + Unpin> hyper::rt::Read for PeerIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.note(poll)
    }
}

impl<S: hyper::rt::Write + Unpin> hyper::rt::Write for PeerIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.watch(cx, poll, true)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.watch(cx, poll, true)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_flush(cx);
        this.watch(cx, poll, false)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.watch(cx, poll, false)
    }
}
