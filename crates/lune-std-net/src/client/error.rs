//! Why a request failed, as the script reads it.

use std::{fmt, time::Duration};

use super::redirect::RedirectError;
use crate::rt::{connect::ConnectError, tls::CertProblem};
use crate::shared::{body::BodyError, reader::IncomingError};

/// Why a request failed.
#[derive(Debug)]
pub(crate) enum RequestError {
    /// The URL does not parse or is not one a request can go to.
    Url(String),
    /// The request cannot be made as given (its headers, its body's framing).
    InvalidRequest(String),
    Connect(ConnectError),
    Http {
        url: String,
        source: hyper::Error,
    },
    /// The response body could not be read.
    Body(IncomingError),
    Timeout(Duration),
    Redirect(RedirectError),
    /// The script's body function failed: its error, as the script raised it.
    Stream(BodyError),
    /// A 307/308 redirect would need a streamed body sent again.
    StreamRedirect {
        url: String,
        status: u16,
    },
    /// A new TLS connection's server reported a certificate problem after
    /// the handshake (it wants a client certificate, or refused ours).
    Certificate {
        host: String,
        problem: CertProblem,
    },
    /// A proxy variable of the environment is unusable.
    Proxy(String),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Url(message) | Self::InvalidRequest(message) | Self::Proxy(message) => {
                write!(f, "{message}")
            }
            Self::Connect(e) => write!(f, "{e}"),
            Self::Http { url, source } => {
                write!(
                    f,
                    "Request to {url} failed: {}",
                    lune_utils::describe_error(source)
                )
            }
            Self::Body(e) => write!(f, "{e}"),
            Self::Certificate { host, problem } => {
                write!(f, "{}", problem.describe(host, host, false))
            }
            Self::Timeout(d) => write!(f, "Request timed out after {} seconds", d.as_secs_f64()),
            Self::Redirect(e) => write!(f, "{e}"),
            Self::Stream(e) => write!(f, "{e}"),
            Self::StreamRedirect { url, status } => write!(
                f,
                "Cannot follow the {status} redirect from {url}: the request body was streamed by a function and cannot be sent again"
            ),
        }
    }
}

impl std::error::Error for RequestError {}

impl RequestError {
    /// A failed exchange: the script's own body error when that is what
    /// stopped it, otherwise hyper's.
    pub(super) fn from_hyper(url: &url::Url, source: hyper::Error) -> Self {
        let mut cause = std::error::Error::source(&source);
        while let Some(e) = cause {
            if let Some(body) = e.downcast_ref::<BodyError>() {
                return Self::Stream(body.clone());
            }
            cause = e.source();
        }
        Self::Http {
            url: url.to_string(),
            source,
        }
    }
}
