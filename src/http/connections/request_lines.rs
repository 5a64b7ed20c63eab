//! Request lines too long for hyper, cut short so that a handler can refuse
//! them in its own words. hyper refuses a request target over 65,534
//! octets with a bare `414` before any service runs; for OCSP GETs SPEC §16
//! wants `malformedRequest` instead. So a connection's incoming bytes pass
//! through [`CutRequestLines`]: a line that starts with a given prefix (a
//! request line, `GET /ocsp/`) and runs past a length is cut there, with
//! its last word (the protocol version) and its line end put back. The
//! handler then sees a path over its own limit and refuses it, with its
//! usual answer, and the connection carries on.
//!
//! Lines are told apart by LF alone: a body line that happens to start
//! with the prefix and runs past the length is cut as well, which changes
//! only that client's own body.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Octets kept, at most, of the end of a cut line: enough for
/// ` HTTP/1.1\r`.
const TAIL: usize = 16;

/// Which lines to cut, and where.
#[derive(Debug, Clone, Copy)]
pub struct Cut {
    /// Lines that start with these octets are cut.
    pub starts_with: &'static [u8],
    /// The octets of such a line kept (counted from its start, line end
    /// excluded; at least the prefix). A line no more than [`TAIL`] octets
    /// longer passes whole.
    pub keep: usize,
}

/// Where the current line stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At most `keep` octets in: passed on as they come.
    Open,
    /// Past `keep`, by at most `TAIL`: held back until the line ends (it
    /// passes whole) or grows past that (it is cut).
    Holding,
    /// Cut: the rest of the line is dropped but for its last octets.
    Cutting,
}

/// The pure part: which octets of a stream to pass on.
#[derive(Debug)]
struct LineCutter {
    cut: Cut,
    /// Octets of the current line so far (since the last LF).
    len: usize,
    /// Whether the current line starts with the prefix; `None` while it is
    /// shorter than the prefix and matches it so far.
    starts_with: Option<bool>,
    state: Line,
    /// Holding: the octets held back; cutting: the last octets dropped.
    tail: Vec<u8>,
}

impl LineCutter {
    fn new(cut: Cut) -> Self {
        Self {
            cut,
            len: 0,
            starts_with: None,
            state: Line::Open,
            tail: Vec::with_capacity(2 * TAIL),
        }
    }

    /// Whether `chunk` passes unchanged; if so, the state has taken it in.
    /// Cheap for the usual chunk: no line can reach the cut within it, and
    /// only its last line's start is looked at.
    fn passes(&mut self, chunk: &[u8]) -> bool {
        if self.state != Line::Open || self.len + chunk.len() > self.cut.keep {
            return false;
        }
        match chunk.iter().rposition(|b| *b == b'\n') {
            None => self.extend_line(chunk),
            Some(end) => {
                self.new_line();
                self.extend_line(&chunk[end + 1..]);
            }
        }
        true
    }

    /// Passes `chunk` on to `out`, cutting what must be cut.
    fn feed(&mut self, mut chunk: &[u8], out: &mut Vec<u8>) {
        while !chunk.is_empty() {
            let end = chunk.iter().position(|b| *b == b'\n');
            let (part, line_ends) = match end {
                Some(end) => (&chunk[..end], true),
                None => (chunk, false),
            };
            chunk = &chunk[part.len() + usize::from(line_ends)..];
            self.take_part(part, out);
            if line_ends {
                self.end_line(out);
            }
        }
    }

    /// Octets of the current line, without its LF.
    fn take_part(&mut self, mut part: &[u8], out: &mut Vec<u8>) {
        if self.state == Line::Open {
            let room = self.cut.keep.saturating_sub(self.len);
            let open = if self.starts_with_prefix(part) {
                &part[..room.min(part.len())]
            } else {
                part
            };
            out.extend_from_slice(open);
            self.extend_line(open);
            part = &part[open.len()..];
            if part.is_empty() {
                return;
            }
            self.state = Line::Holding;
        }
        self.len += part.len();
        if self.state == Line::Holding && self.len > self.cut.keep + TAIL {
            self.state = Line::Cutting;
        }
        match self.state {
            Line::Cutting => {
                self.tail
                    .extend_from_slice(&part[part.len().saturating_sub(TAIL)..]);
                let excess = self.tail.len().saturating_sub(TAIL);
                self.tail.drain(..excess);
            }
            Line::Open | Line::Holding => self.tail.extend_from_slice(part),
        }
    }

    /// The LF that ends the current line.
    fn end_line(&mut self, out: &mut Vec<u8>) {
        match self.state {
            Line::Open => {}
            Line::Holding => out.extend_from_slice(&self.tail),
            // The last word, ` HTTP/1.1\r` on a request line.
            Line::Cutting => {
                let word = self.tail.iter().rposition(|b| *b == b' ');
                let carriage_return = self.tail.ends_with(b"\r");
                match word {
                    Some(at) => out.extend_from_slice(&self.tail[at..]),
                    None if carriage_return => out.push(b'\r'),
                    None => {}
                }
            }
        }
        out.push(b'\n');
        self.new_line();
    }

    fn new_line(&mut self) {
        self.len = 0;
        self.starts_with = None;
        self.state = Line::Open;
        self.tail.clear();
    }

    /// Takes in octets of an open line.
    fn extend_line(&mut self, octets: &[u8]) {
        self.starts_with_prefix(octets);
        self.len += octets.len();
    }

    /// Whether the current line, with `next` octets added, starts with the
    /// prefix (so far: `true` while a line shorter than it matches it).
    fn starts_with_prefix(&mut self, next: &[u8]) -> bool {
        if self.starts_with.is_none() {
            let prefix = self.cut.starts_with.get(self.len..).unwrap_or_default();
            let n = prefix.len().min(next.len());
            if prefix[..n] != next[..n] {
                self.starts_with = Some(false);
            } else if n == prefix.len() {
                self.starts_with = Some(true);
            }
        }
        self.starts_with != Some(false)
    }
}

/// A connection whose incoming lines are cut by a [`Cut`]; what it sends
/// passes untouched.
#[derive(Debug)]
pub struct CutRequestLines<S> {
    inner: S,
    cutter: LineCutter,
    /// Octets passed on but not yet read, and how many of them were read.
    pending: Vec<u8>,
    read: usize,
}

impl<S> CutRequestLines<S> {
    pub fn new(inner: S, cut: Cut) -> Self {
        Self {
            inner,
            cutter: LineCutter::new(cut),
            pending: Vec::new(),
            read: 0,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for CutRequestLines<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.read < this.pending.len() {
                let n = buf.remaining().min(this.pending.len() - this.read);
                buf.put_slice(&this.pending[this.read..this.read + n]);
                this.read += n;
                return Poll::Ready(Ok(()));
            }
            let before = buf.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
            let received = &buf.filled()[before..];
            if received.is_empty() || this.cutter.passes(received) {
                return Poll::Ready(Ok(()));
            }
            this.pending.clear();
            this.read = 0;
            this.cutter.feed(received, &mut this.pending);
            buf.set_filled(before);
            // Nothing may be left to pass on (all of it cut): read on
            // rather than report an end of stream.
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for CutRequestLines<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    const CUT: Cut = Cut {
        starts_with: b"GET /ocsp/",
        keep: 24,
    };

    /// What the cutter passes on for `input` fed in chunks of `size`.
    fn cut_in_chunks(input: &[u8], size: usize) -> Vec<u8> {
        let mut cutter = LineCutter::new(CUT);
        let mut out = Vec::new();
        for chunk in input.chunks(size) {
            if cutter.passes(chunk) {
                out.extend_from_slice(chunk);
            } else {
                cutter.feed(chunk, &mut out);
            }
        }
        out
    }

    /// The same output whatever the chunking.
    fn cut(input: &[u8]) -> Vec<u8> {
        let whole = cut_in_chunks(input, input.len().max(1));
        for size in 1..=input.len().min(40) {
            assert_eq!(
                String::from_utf8_lossy(&cut_in_chunks(input, size)),
                String::from_utf8_lossy(&whole),
                "chunks of {size}"
            );
        }
        whole
    }

    #[test]
    fn short_lines_pass_untouched() {
        let input = b"GET /ocsp/MAA= HTTP/1.1\r\nHost: x\r\n\r\nPOST /ocsp HTTP/1.1\r\n\r\n";
        assert_eq!(cut(input), input);
    }

    #[test]
    fn a_long_line_with_the_prefix_is_cut_keeping_its_version_and_what_follows() {
        let long = format!("GET /ocsp/{} HTTP/1.1\r\nHost: x\r\n\r\n", "A".repeat(100));
        let expected = format!("GET /ocsp/{} HTTP/1.1\r\nHost: x\r\n\r\n", "A".repeat(14));
        assert_eq!(String::from_utf8(cut(long.as_bytes())).unwrap(), expected);
        // After a short request on the same connection, and before another.
        let short = "GET /ocsp/MAA= HTTP/1.1\r\n\r\n";
        let stream = format!("{short}{long}{short}");
        assert_eq!(
            String::from_utf8(cut(stream.as_bytes())).unwrap(),
            format!("{short}{expected}{short}")
        );
        // HTTP/1.0, and a bare LF.
        let old = format!("GET /ocsp/{} HTTP/1.0\n\n", "A".repeat(100));
        let expected = format!("GET /ocsp/{} HTTP/1.0\n\n", "A".repeat(14));
        assert_eq!(String::from_utf8(cut(old.as_bytes())).unwrap(), expected);
    }

    #[test]
    fn a_line_up_to_the_tail_longer_than_kept_passes_whole() {
        for extra in 0..=TAIL {
            let line = format!(
                "{}\r\n",
                "GET /ocsp/".to_owned() + &"A".repeat(CUT.keep - 10 + extra - 1)
            );
            assert_eq!(line.len(), CUT.keep + extra + 1, "{extra}");
            assert_eq!(cut(line.as_bytes()), line.as_bytes(), "{extra}");
        }
        let one_more = format!("GET /ocsp/{} HTTP/1.1\r\n", "A".repeat(CUT.keep + TAIL));
        assert_ne!(cut(one_more.as_bytes()), one_more.as_bytes());
    }

    #[test]
    fn long_lines_without_the_prefix_pass_untouched() {
        for input in [
            format!("GET /crl/{} HTTP/1.1\r\n\r\n", "A".repeat(100)),
            format!("GET /ocspx{} HTTP/1.1\r\n\r\n", "A".repeat(100)),
            format!(
                "POST /api/v1/x HTTP/1.1\r\n\r\n{{\"a\":\"{}\"}}",
                "A".repeat(100)
            ),
            format!("GET /ocs{}", "A".repeat(100)),
        ] {
            assert_eq!(cut(input.as_bytes()), input.as_bytes(), "{input}");
        }
    }

    #[test]
    fn a_cut_line_without_a_version_keeps_its_line_end() {
        let input = format!("GET /ocsp/{}\r\nHost: x\r\n", "A".repeat(100));
        let expected = format!("GET /ocsp/{}\r\nHost: x\r\n", "A".repeat(14));
        assert_eq!(String::from_utf8(cut(input.as_bytes())).unwrap(), expected);
    }

    #[tokio::test]
    async fn the_connection_reads_cut_lines_and_ends_when_its_input_ends() {
        let long = format!("GET /ocsp/{} HTTP/1.1\r\n\r\n", "A".repeat(10_000));
        let (mut client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            tokio::io::AsyncWriteExt::write_all(&mut client, long.as_bytes())
                .await
                .unwrap();
        });
        let mut connection = CutRequestLines::new(server, CUT);
        let mut received = Vec::new();
        connection.read_to_end(&mut received).await.unwrap();
        writer.await.unwrap();
        let expected = format!("GET /ocsp/{} HTTP/1.1\r\n\r\n", "A".repeat(14));
        assert_eq!(String::from_utf8(received).unwrap(), expected);
    }
}
