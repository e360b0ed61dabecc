//! `net.sse.connect`: Server-Sent Events over the client's streamed
//! responses. The parser follows the WHATWG event-stream rules: lines end in
//! CR, LF or CRLF; a leading BOM is dropped; `data` lines join with `\n`;
//! comments start with `:`; `id` sets the last event id (without NUL);
//! `retry` (digits only) sets the reconnection time in milliseconds; a blank
//! line dispatches the event, unless it has no data.

use std::time::Duration;

/// One event as `stream:next()` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SseEvent {
    pub(super) event: String,
    pub(super) data: String,
    /// The last event id when this event was dispatched.
    pub(super) id: Option<String>,
    /// A `retry` field sent with this event, in milliseconds.
    pub(super) retry: Option<u64>,
}

/// The WHATWG event-stream parser, fed bytes as they arrive.
#[derive(Default)]
pub(super) struct Parser {
    line: Vec<u8>,
    /// The first line was not finished yet (a BOM may start it).
    started: bool,
    /// The previous byte was a CR (a following LF belongs to it).
    after_cr: bool,
    data: String,
    has_data: bool,
    event: String,
    block_retry: Option<u64>,
    /// The last event id buffer.
    pub(super) last_event_id: Option<String>,
    /// The reconnection time the server asked for, in milliseconds.
    pub(super) retry: Option<u64>,
}

impl Parser {
    /// Parses `bytes`; returns the events they completed.
    pub(super) fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut events = Vec::new();
        for &byte in bytes {
            if std::mem::take(&mut self.after_cr) && byte == b'\n' {
                continue;
            }
            match byte {
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut events);
                }
                b'\n' => self.end_line(&mut events),
                other => self.line.push(other),
            }
        }
        events
    }

    fn end_line(&mut self, events: &mut Vec<SseEvent>) {
        let mut line = std::mem::take(&mut self.line);
        if !std::mem::replace(&mut self.started, true) && line.starts_with(b"\xEF\xBB\xBF") {
            line.drain(..3);
        }
        if line.is_empty() {
            if let Some(event) = self.dispatch() {
                events.push(event);
            }
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (&line[..], &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        match field {
            b"event" => self.event = value.into_owned(),
            b"data" => {
                self.data.push_str(&value);
                self.data.push('\n');
                self.has_data = true;
            }
            b"id" if !value.contains('\0') => {
                self.last_event_id = (!value.is_empty()).then(|| value.into_owned());
            }
            b"retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                let ms = value.parse().unwrap_or(u64::MAX);
                self.retry = Some(ms);
                self.block_retry = Some(ms);
            }
            _ => {}
        }
    }

    fn dispatch(&mut self) -> Option<SseEvent> {
        let retry = self.block_retry.take();
        let event = std::mem::take(&mut self.event);
        if !std::mem::take(&mut self.has_data) {
            self.data.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        data.pop();
        Some(SseEvent {
            event: if event.is_empty() {
                "message".to_string()
            } else {
                event
            },
            data,
            id: self.last_event_id.clone(),
            retry,
        })
    }

    /// A parser for a new connection of the same stream: the last event id
    /// and reconnection time carry over, nothing else does.
    pub(super) fn reopened(&self) -> Self {
        Self {
            last_event_id: self.last_event_id.clone(),
            retry: self.retry,
            ..Self::default()
        }
    }

    /// How long to wait before reconnecting: `retry`, or 3 seconds.
    pub(super) fn reconnect_delay(&self) -> Duration {
        self.retry.map_or(Duration::from_secs(3), |ms| {
            Duration::from_millis(ms.min(86_400_000))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(pieces: &[&[u8]]) -> (Vec<SseEvent>, Parser) {
        let mut parser = Parser::default();
        let events = pieces.iter().flat_map(|p| parser.feed(p)).collect();
        (events, parser)
    }

    #[test]
    fn multi_line_data_comments_and_names() {
        let (events, _) = parse(&[b": comment\ndata: a\ndata:b\n\nevent: custom\ndata: c\n\n"]);
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event, "message");
        assert_eq!(events[0].data, "a\nb");
        assert_eq!(events[1].event, "custom");
        assert_eq!(events[1].data, "c");
    }

    #[test]
    fn every_line_ending_and_pieces_split_anywhere() {
        let text = b"\xEF\xBB\xBFdata: one\r\rdata: two\r\n\r\ndata: three\n\n";
        let (whole, _) = parse(&[text]);
        let bytes: Vec<&[u8]> = text.chunks(1).collect();
        let (split, _) = parse(&bytes);
        assert_eq!(whole, split);
        let data: Vec<&str> = whole.iter().map(|e| e.data.as_str()).collect();
        assert_eq!(
            data,
            ["one", "two", "three"],
            "BOM dropped, CR/CRLF/LF all end lines"
        );
    }

    #[test]
    fn ids_retry_and_empty_events() {
        let (events, parser) = parse(&[
            b"id: 7\nretry: 250\ndata: x\n\nid: bad\0id\ndata: y\n\nretry: soon\nevent: e\n\n",
        ]);
        assert_eq!(events.len(), 2, "an event without data is not dispatched");
        assert_eq!(events[0].id.as_deref(), Some("7"));
        assert_eq!(events[0].retry, Some(250));
        assert_eq!(
            events[1].id.as_deref(),
            Some("7"),
            "an id with NUL is ignored"
        );
        assert_eq!(events[1].retry, None);
        assert_eq!(parser.reconnect_delay(), Duration::from_millis(250));
        assert_eq!(parser.last_event_id.as_deref(), Some("7"));
    }

    #[test]
    fn field_without_colon_and_incomplete_event() {
        let (events, _) = parse(&[b"data\n\ndata: tail"]);
        assert_eq!(events.len(), 1);
        assert_eq!(
            events[0].data, "",
            "a bare `data` line is an empty data line"
        );
    }
}
