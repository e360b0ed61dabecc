//! One stream type for every connection, hiding whether TLS is in use and
//! whether the socket is TCP or a Unix domain socket. It is hyper's I/O
//! object as it is (reads into hyper's buffer without zeroing it, vectored
//! writes on plain sockets) and a futures-io stream for everything else.

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use futures_lite::{AsyncRead, AsyncWrite};

use super::tls::CertProblem;
use crate::rt::{TcpConn, UnixConn};

/// A client TLS connection that remembers a certificate problem its peer
/// reported after the handshake: a server that wants a client certificate
/// says so only then (TLS 1.3), and HTTP/2 keeps the error's kind from the
/// requests it fails, so the client asks here ([`TlsAlert`]).
pub(crate) struct ClientTlsConn {
    tls: futures_rustls::client::TlsStream<TcpConn>,
    alert: TlsAlert,
}

impl ClientTlsConn {
    pub(crate) fn new(tls: futures_rustls::client::TlsStream<TcpConn>) -> Self {
        Self {
            tls,
            alert: TlsAlert::default(),
        }
    }

    pub(crate) fn get_ref(&self) -> (&TcpConn, &rustls::ClientConnection) {
        self.tls.get_ref()
    }

    fn note<T>(&self, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &poll
            && let Some(problem) = CertProblem::of(e)
        {
            self.alert.set(problem);
        }
        poll
    }
}

/// The certificate problem a client TLS connection ran into after its
/// handshake, if any; shared with whoever made the connection.
#[derive(Clone, Default)]
pub(crate) struct TlsAlert(std::sync::Arc<std::sync::OnceLock<CertProblem>>);

impl TlsAlert {
    fn set(&self, problem: CertProblem) {
        // The first problem is the one that broke the connection.
        let _ = self.0.set(problem);
    }

    pub(crate) fn get(&self) -> Option<CertProblem> {
        self.0.get().copied()
    }
}

impl AsyncRead for ClientTlsConn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tls).poll_read(cx, buf);
        this.note(poll)
    }
}

impl AsyncWrite for ClientTlsConn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tls).poll_write(cx, buf);
        this.note(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tls).poll_write_vectored(cx, bufs);
        this.note(poll)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.tls).poll_flush(cx);
        this.note(poll)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().tls).poll_close(cx)
    }
}

/// A TCP connection, plain or wrapped in TLS (as a client or as a server),
/// or a plain Unix domain socket connection.
pub(crate) enum Stream {
    Plain(TcpConn),
    ClientTls(Box<ClientTlsConn>),
    ServerTls(Box<futures_rustls::server::TlsStream<TcpConn>>),
    Unix(UnixConn),
}

impl Stream {
    /// The TCP socket underneath, for socket options; `None` for Unix sockets.
    pub(crate) fn tcp(&self) -> Option<&std::net::TcpStream> {
        match self {
            Self::Plain(s) => Some(s.get_ref()),
            Self::ClientTls(s) => Some(s.get_ref().0.get_ref()),
            Self::ServerTls(s) => Some(s.get_ref().0.get_ref()),
            Self::Unix(_) => None,
        }
    }

    /// The protocol chosen by ALPN, if any.
    pub(crate) fn alpn(&self) -> Option<&[u8]> {
        match self {
            Self::Plain(_) | Self::Unix(_) => None,
            Self::ClientTls(s) => s.get_ref().1.alpn_protocol(),
            Self::ServerTls(s) => s.get_ref().1.alpn_protocol(),
        }
    }

    /// What a client TLS connection's peer reported after the handshake.
    pub(crate) fn tls_alert(&self) -> Option<TlsAlert> {
        match self {
            Self::ClientTls(s) => Some(s.alert.clone()),
            _ => None,
        }
    }

    /// True when ALPN chose HTTP/2.
    pub(crate) fn is_h2(&self) -> bool {
        self.alpn() == Some(b"h2")
    }

    /// What the TLS handshake settled, for a TLS stream.
    pub(crate) fn tls_info(&self) -> Option<TlsInfo> {
        let common: &rustls::CommonState = match self {
            Self::Plain(_) | Self::Unix(_) => return None,
            Self::ClientTls(s) => s.get_ref().1,
            Self::ServerTls(s) => s.get_ref().1,
        };
        let version = match common.protocol_version() {
            Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
            Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
            _ => "TLS",
        };
        Some(TlsInfo {
            version,
            alpn: common
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            peer_certificate: common
                .peer_certificates()
                .and_then(|chain| chain.first())
                .map(|cert| super::tls::pem_of(cert)),
        })
    }
}

/// A TLS connection as scripts see it: `request.tls` in a handler,
/// `peerCertificate` of a `TcpStream`.
#[derive(Debug, Clone)]
pub(crate) struct TlsInfo {
    /// `TLSv1.3` or `TLSv1.2`.
    pub(crate) version: &'static str,
    /// The protocol ALPN chose, if any.
    pub(crate) alpn: Option<String>,
    /// The peer's own certificate (PEM), if it presented one.
    pub(crate) peer_certificate: Option<String>,
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
            Self::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
            Self::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_flush(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_flush(cx),
            Self::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Self::Plain(s) => Pin::new(s).poll_close(cx),
            Self::ClientTls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Self::ServerTls(s) => Pin::new(s.as_mut()).poll_close(cx),
            Self::Unix(s) => Pin::new(s).poll_close(cx),
        }
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        mut buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        // SAFETY: the plain sockets only write into the buffer (`recv`);
        // TLS streams get it zeroed first. `advance` below counts only
        // bytes that were written.
        let unfilled = unsafe { buf.as_mut() };
        let n = match self.get_mut() {
            Self::Plain(s) => ready!(s.poll_read_uninit(cx, unfilled))?,
            Self::Unix(s) => ready!(s.poll_read_uninit(cx, unfilled))?,
            tls => {
                for byte in unfilled.iter_mut() {
                    byte.write(0);
                }
                // SAFETY: every byte was just initialised.
                let init = unsafe { &mut *(std::ptr::from_mut(unfilled) as *mut [u8]) };
                ready!(AsyncRead::poll_read(Pin::new(tls), cx, init))?
            }
        };
        // SAFETY: `n` bytes were read into the buffer.
        unsafe { buf.advance(n) };
        Poll::Ready(Ok(()))
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write(self, cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        AsyncWrite::poll_write_vectored(self, cx, bufs)
    }

    /// Plain sockets take several buffers in one `writev`; TLS streams
    /// would encrypt them one by one, so hyper joins them instead.
    fn is_write_vectored(&self) -> bool {
        matches!(self, Self::Plain(_) | Self::Unix(_))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_flush(self, cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        AsyncWrite::poll_close(self, cx)
    }
}
