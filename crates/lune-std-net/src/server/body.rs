//! Request bodies as a handler receives them: read within `maxBodySize`
//! (413, from `Content-Length` or while reading) and `bodyTimeout` (408 when
//! no byte comes for that long), decompressed within the same limit, either
//! whole before the handler runs or, with `streamBodies`, by the handler
//! through a `BodyReader` as the bytes arrive. hyper answers
//! `Expect: 100-continue` when the body is first read: a streaming handler
//! that refuses without reading never asks the client for the body.

use std::{cell::Cell, rc::Rc, time::Duration};

use bytes::Bytes;
use http::{HeaderValue, StatusCode, header};
use hyper::body::Incoming;

use super::response::{HttpResponse, closing, plain};
use crate::shared::{
    decode,
    reader::{BodyFault, BodyName, BodyReader, IncomingBody, IncomingError, OnEnd},
};

/// The limits a request body is read under.
#[derive(Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_size: usize,
    pub(super) timeout: Duration,
}

/// How far a streamed request body got, as its `BodyReader` reports it.
#[derive(Clone, Copy)]
enum Reached {
    /// Not read to its end (yet).
    Unfinished,
    Ended,
    /// The limits (or the peer) ended it: this is the answer.
    Failed(Refusal),
}

/// What a body's end means for the response.
#[derive(Clone, Copy)]
pub(super) enum Refusal {
    TooLarge(usize),
    Stalled(Duration),
    Broken,
    Undecodable,
}

/// The progress of a streamed body, shared with its `BodyReader`.
pub(super) struct Progress {
    reached: Rc<Cell<Reached>>,
    reader: BodyReader,
}

impl Progress {
    /// True when the body's own end (limits, a broken peer) decides the
    /// answer.
    pub(super) fn failed(&self) -> bool {
        matches!(self.reached.get(), Reached::Failed(_))
    }

    /// The answer to a request whose handler returned `response`: 413 or
    /// 408 (closing) when the limits ended the body, 400 when it was
    /// broken or undecodable; the handler's own response otherwise,
    /// closing the connection when the body was left unread (its rest is
    /// not drained: the reader lets go of it, so hyper can end the
    /// connection after the response).
    pub(super) async fn settle(self, mut response: HttpResponse) -> HttpResponse {
        match self.reached.get() {
            Reached::Ended => response,
            Reached::Failed(refusal) => refusal.response(),
            Reached::Unfinished => {
                self.reader.close().await;
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
                response
            }
        }
    }
}

impl Refusal {
    fn of(fault: &BodyFault) -> Self {
        match fault {
            BodyFault::TooLarge { limit } => Self::TooLarge(*limit),
            BodyFault::Stalled(after) => Self::Stalled(*after),
            BodyFault::Broken(_) => Self::Broken,
            BodyFault::Decompress(_) => Self::Undecodable,
        }
    }

    pub(super) fn response(self) -> HttpResponse {
        match self {
            Self::TooLarge(limit) => too_large(limit),
            Self::Stalled(after) => stalled(after),
            Self::Broken => closing(
                StatusCode::BAD_REQUEST,
                "Failed to read the request body: the connection broke",
            ),
            Self::Undecodable => plain(
                StatusCode::BAD_REQUEST,
                "Failed to decompress the request body",
            ),
        }
    }
}

/// The body as a handler reads it (`streamBodies`), and its progress; or
/// the response that refuses it when `Content-Length` is over the limit.
pub(super) fn stream(
    headers: &http::HeaderMap,
    body: Incoming,
    limits: Limits,
) -> Result<(BodyReader, Progress), Refusal> {
    over_declared(headers, limits)?;
    let reading = incoming(headers, body, limits).map_err(|e| Refusal::of(&e.fault))?;
    let reached = Rc::new(Cell::new(Reached::Unfinished));
    let report = reached.clone();
    let on_end: OnEnd = Box::new(move |ended| {
        report.set(match ended {
            Ok(()) => Reached::Ended,
            Err(e) => Reached::Failed(Refusal::of(&e.fault)),
        });
    });
    let reader = BodyReader::new(reading, Some(on_end));
    Ok((reader.clone(), Progress { reached, reader }))
}

/// The refusal of a body whose declared length is over the limit.
fn over_declared(headers: &http::HeaderMap, limits: Limits) -> Result<(), Refusal> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limits.max_size as u64) {
        return Err(Refusal::TooLarge(limits.max_size));
    }
    Ok(())
}

/// A request body on the one incoming-body path: decoded as its
/// `Content-Encoding` says, within `maxBodySize` and `bodyTimeout`.
fn incoming(
    headers: &http::HeaderMap,
    body: Incoming,
    limits: Limits,
) -> Result<IncomingBody, IncomingError> {
    let format = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .and_then(decode::format_of);
    IncomingBody::new(
        body,
        None,
        format,
        Some(limits.max_size),
        Some(limits.timeout),
        BodyName::plain("request body"),
    )
}

fn too_large(limit: usize) -> HttpResponse {
    closing(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("Request body is larger than the server's limit of {limit} bytes"),
    )
}

fn stalled(after: Duration) -> HttpResponse {
    closing(
        StatusCode::REQUEST_TIMEOUT,
        &format!(
            "Request body stalled: no data for {} seconds",
            after.as_secs_f64()
        ),
    )
}

/// Reads the whole body, or the response that refuses it.
pub(super) async fn read(
    headers: &http::HeaderMap,
    body: Incoming,
    limits: Limits,
) -> Result<Bytes, HttpResponse> {
    // Most requests have no body: nothing to read, time or decode.
    if hyper::body::Body::is_end_stream(&body) {
        return Ok(Bytes::new());
    }
    over_declared(headers, limits).map_err(Refusal::response)?;
    let bytes = match incoming(headers, body, limits) {
        Ok(mut reading) => reading.read_to_end().await,
        Err(e) => Err(e),
    };
    bytes.map_err(|e| refusal(&e.fault))
}

/// The one status rule for a request body the server cannot take: too
/// large 413 and stalled 408 (both closing: the rest of the body is not
/// read), broken 400 (closing), not valid for its encoding 400.
fn refusal(fault: &BodyFault) -> HttpResponse {
    match fault {
        BodyFault::Broken(e) => closing(
            StatusCode::BAD_REQUEST,
            &format!("Failed to read the request body: {e}"),
        ),
        BodyFault::Decompress(e) => plain(
            StatusCode::BAD_REQUEST,
            &format!("Failed to decompress the request body: {e}"),
        ),
        other => Refusal::of(other).response(),
    }
}
