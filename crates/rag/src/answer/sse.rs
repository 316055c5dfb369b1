//! A small server-sent-events decoder: bytes in, the `data` of each event out.
//!
//! Lenient in the ways chat servers differ: `data:` with or without a space, `\r\n` line ends,
//! comments and other fields ignored, multi-line data joined with `\n`, and a last event without
//! a terminating blank line still delivered by [`SseDecoder::finish`]. Bytes are buffered until a
//! line is complete, so a UTF-8 character split across network reads is decoded whole.

/// Incremental SSE decoder.
#[derive(Debug, Default)]
pub(crate) struct SseDecoder {
    pending: Vec<u8>,
    data: Option<String>,
}

impl SseDecoder {
    /// Feeds bytes; returns the data of every event completed by them.
    pub(super) fn push(&mut self, bytes: &[u8]) -> Vec<String> {
        self.pending.extend_from_slice(bytes);
        let mut events = Vec::new();
        let mut consumed = 0;
        while let Some(newline) = self.pending[consumed..].iter().position(|&b| b == b'\n') {
            let end = consumed + newline;
            let line = String::from_utf8_lossy(&self.pending[consumed..end]).into_owned();
            consumed = end + 1;
            self.line(line.trim_end_matches('\r'), &mut events);
        }
        self.pending.drain(..consumed);
        events
    }

    /// Ends the stream: returns the data of an event that was not terminated by a blank line.
    pub(super) fn finish(&mut self) -> Option<String> {
        let rest = std::mem::take(&mut self.pending);
        let rest = String::from_utf8_lossy(&rest).into_owned();
        let rest = rest.trim_end_matches('\r');
        if !rest.is_empty() {
            // A non-empty line only accumulates data; it never completes an event.
            self.line(rest, &mut Vec::new());
        }
        self.data.take()
    }

    fn line(&mut self, line: &str, events: &mut Vec<String>) {
        if line.is_empty() {
            events.extend(self.data.take());
            return;
        }
        let Some(value) = line.strip_prefix("data:") else {
            return; // Comments (":"), "event:", "id:", "retry:" carry nothing we use.
        };
        let value = value.strip_prefix(' ').unwrap_or(value);
        match &mut self.data {
            Some(data) => {
                data.push('\n');
                data.push_str(value);
            }
            None => self.data = Some(value.to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_events_split_anywhere() {
        let stream = ": keep-alive\r\ndata: {\"a\":\"é\"}\r\n\r\nevent: x\ndata:two\ndata: lines\n\ndata: [DONE]\n\n";
        for chunk_size in 1..stream.len() {
            let mut decoder = SseDecoder::default();
            let mut events = Vec::new();
            for piece in stream.as_bytes().chunks(chunk_size) {
                events.extend(decoder.push(piece));
            }
            assert_eq!(decoder.finish(), None);
            assert_eq!(
                events,
                vec!["{\"a\":\"é\"}", "two\nlines", "[DONE]"],
                "chunk {chunk_size}"
            );
        }
    }

    #[test]
    fn finish_delivers_an_unterminated_event() {
        let mut decoder = SseDecoder::default();
        assert!(decoder.push(b"data: last").is_empty());
        assert_eq!(decoder.finish().as_deref(), Some("last"));
    }
}
