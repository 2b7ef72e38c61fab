//! A small HTTP/1.1 client over `std::net::TcpStream`: enough for a JSON RPC API and the harness.
//! Owns URL parsing (http only), keep-alive connections with one transparent retry when a reused
//! connection turns out to be closed, response heads, `Content-Length`, chunked and
//! read-until-close bodies, streaming bodies (event streams), and socket timeouts.
//! It does not do TLS, redirects, proxies, pipelining or request bodies of unknown length.

use std::io::{self, IoSlice, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// Longest status or header line accepted.
pub const LINE_LENGTH_MAX: usize = 64 * 1024;
/// Most header lines accepted in one response head.
pub const HEADER_COUNT_MAX: usize = 128;
/// Largest body read into memory (GetRecords returns at most 10 MiB of data, ~14 MiB as JSON).
pub const BODY_LENGTH_MAX: usize = 128 * 1024 * 1024;
const READ_BUFFER_LENGTH: usize = 64 * 1024;
// A line must fit in the read buffer, which `read_line` scans without copying.
const _: () = assert!(LINE_LENGTH_MAX <= READ_BUFFER_LENGTH);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Url {
    pub host: String,
    pub port: u16,
    /// Path prefix of the endpoint, `/` unless the URL named one.
    pub path: String,
}

impl Url {
    pub fn parse(text: &str) -> Result<Url, String> {
        let rest = if let Some(rest) = text.strip_prefix("http://") {
            rest
        } else if text.starts_with("https://") {
            return Err(format!("{text}: https is not supported (use http:// on loopback)"));
        } else if text.contains("://") {
            return Err(format!("{text}: only http:// URLs are supported"));
        } else {
            text
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            return Err(format!("{text}: no host"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            // [::1]:port
            let end = bracketed.find(']').ok_or_else(|| format!("{text}: unclosed '['"))?;
            let port = match &bracketed[end + 1..] {
                "" => 80,
                p => p
                    .strip_prefix(':')
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| format!("{text}: bad port"))?,
            };
            (bracketed[..end].to_string(), port)
        } else {
            match authority.rsplit_once(':') {
                Some((host, port)) => {
                    (host.to_string(), port.parse().map_err(|_| format!("{text}: bad port"))?)
                }
                None => (authority.to_string(), 80),
            }
        };
        Ok(Url { host, port, path: path.to_string() })
    }

    /// The `Host` header value.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl std::fmt::Display for Url {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// Applies to each read and each write on the socket, not to a whole request.
    pub io: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts { connect: Duration::from_secs(5), io: Duration::from_secs(30) }
    }
}

/// A buffered reader that counts the bytes it has taken from the socket.
pub struct Reader<S> {
    inner: S,
    buffer: Box<[u8]>,
    start: usize,
    end: usize,
    received: u64,
}

impl<S: Read> Reader<S> {
    pub fn new(inner: S) -> Reader<S> {
        Reader {
            inner,
            buffer: vec![0; READ_BUFFER_LENGTH].into_boxed_slice(),
            start: 0,
            end: 0,
            received: 0,
        }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buffer.len() {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match self.inner.read(&mut self.buffer[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    self.received += n as u64;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// One line without its CRLF (or bare LF). Nothing is consumed until the whole line has
    /// arrived, so a read timeout can be retried without losing bytes.
    pub(crate) fn read_line(&mut self) -> io::Result<String> {
        let mut searched = 0;
        loop {
            let available = &self.buffer[self.start..self.end];
            if let Some(i) = available[searched..].iter().position(|&b| b == b'\n') {
                let mut line = &available[..searched + i];
                self.start += searched + i + 1;
                if line.last() == Some(&b'\r') {
                    line = &line[..line.len() - 1];
                }
                return std::str::from_utf8(line)
                    .map(str::to_string)
                    .map_err(|_| invalid("header line is not UTF-8"));
            }
            searched = available.len();
            if searched >= LINE_LENGTH_MAX {
                return Err(invalid("header line too long"));
            }
            // `fill` may move the unread bytes to the front; `searched` is relative to them.
            if self.fill()? == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
            }
        }
    }

    /// Up to `limit` bytes appended to `out`; `Ok(0)` only at end of stream.
    pub(crate) fn read_some(&mut self, out: &mut Vec<u8>, limit: usize) -> io::Result<usize> {
        if self.start == self.end && self.fill()? == 0 {
            return Ok(0);
        }
        let n = limit.min(self.end - self.start);
        out.extend_from_slice(&self.buffer[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }
}

fn invalid(message: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message.to_string())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyFraming {
    Empty,
    Length(u64),
    Chunked,
    UntilClose,
}

#[derive(Clone, Debug)]
pub struct ResponseHead {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    framing: BodyFraming,
    /// The server will close the connection after this response.
    close: bool,
}

impl ResponseHead {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

fn read_head<S: Read>(reader: &mut Reader<S>) -> io::Result<ResponseHead> {
    loop {
        let status_line = reader.read_line()?;
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| invalid("malformed status line"))?;
        if !version.starts_with("HTTP/1.") {
            return Err(invalid("not an HTTP/1.x response"));
        }
        let mut headers = Vec::new();
        loop {
            let line = reader.read_line()?;
            if line.is_empty() {
                break;
            }
            if headers.len() == HEADER_COUNT_MAX {
                return Err(invalid("too many headers"));
            }
            let (name, value) = line.split_once(':').ok_or_else(|| invalid("malformed header"))?;
            headers.push((name.trim().to_string(), value.trim().to_string()));
        }
        if (100..200).contains(&status) {
            continue; // 100 Continue and friends precede the real response.
        }
        let find = |name: &str| {
            headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
        };
        let connection = find("connection").unwrap_or("").to_ascii_lowercase();
        let close = connection.contains("close")
            || (version == "HTTP/1.0" && !connection.contains("keep-alive"));
        let chunked = find("transfer-encoding")
            .is_some_and(|te| te.to_ascii_lowercase().split(',').any(|t| t.trim() == "chunked"));
        let framing = if status == 204 || status == 304 {
            BodyFraming::Empty
        } else if chunked {
            BodyFraming::Chunked
        } else if let Some(length) = find("content-length") {
            BodyFraming::Length(length.parse().map_err(|_| invalid("bad Content-Length"))?)
        } else {
            BodyFraming::UntilClose
        };
        let close = close || framing == BodyFraming::UntilClose;
        return Ok(ResponseHead { status, headers, framing, close });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BodyState {
    Length(u64),
    ChunkSize,
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers,
    UntilClose,
    Done,
}

/// Reads a response body incrementally, whatever its framing.
pub struct Body<S> {
    reader: Reader<S>,
    state: BodyState,
}

impl<S: Read> Body<S> {
    fn new(reader: Reader<S>, head: &ResponseHead) -> Body<S> {
        let state = match head.framing {
            BodyFraming::Empty | BodyFraming::Length(0) => BodyState::Done,
            BodyFraming::Length(n) => BodyState::Length(n),
            BodyFraming::Chunked => BodyState::ChunkSize,
            BodyFraming::UntilClose => BodyState::UntilClose,
        };
        Body { reader, state }
    }

    pub fn is_done(&self) -> bool {
        self.state == BodyState::Done
    }

    /// Appends the next available body bytes to `out`; `Ok(0)` once the body is complete.
    pub fn read_some(&mut self, out: &mut Vec<u8>) -> io::Result<usize> {
        loop {
            match self.state {
                BodyState::Done => return Ok(0),
                BodyState::Length(remaining) => {
                    let n =
                        self.reader.read_some(out, remaining.min(usize::MAX as u64) as usize)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed inside a Content-Length body",
                        ));
                    }
                    let remaining = remaining - n as u64;
                    self.state =
                        if remaining == 0 { BodyState::Done } else { BodyState::Length(remaining) };
                    return Ok(n);
                }
                BodyState::UntilClose => {
                    let n = self.reader.read_some(out, usize::MAX)?;
                    if n == 0 {
                        self.state = BodyState::Done;
                    }
                    return Ok(n);
                }
                BodyState::ChunkSize => {
                    let line = self.reader.read_line()?;
                    let digits = line.split(';').next().unwrap_or("").trim();
                    let size = u64::from_str_radix(digits, 16)
                        .map_err(|_| invalid("malformed chunk size"))?;
                    self.state =
                        if size == 0 { BodyState::Trailers } else { BodyState::ChunkData(size) };
                }
                BodyState::ChunkData(remaining) => {
                    let n =
                        self.reader.read_some(out, remaining.min(usize::MAX as u64) as usize)?;
                    if n == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "connection closed inside a chunk",
                        ));
                    }
                    let remaining = remaining - n as u64;
                    self.state = if remaining == 0 {
                        BodyState::ChunkEnd
                    } else {
                        BodyState::ChunkData(remaining)
                    };
                    return Ok(n);
                }
                BodyState::ChunkEnd => {
                    if !self.reader.read_line()?.is_empty() {
                        return Err(invalid("chunk not followed by CRLF"));
                    }
                    self.state = BodyState::ChunkSize;
                }
                BodyState::Trailers => {
                    if self.reader.read_line()?.is_empty() {
                        self.state = BodyState::Done;
                    }
                }
            }
        }
    }

    /// Reads the rest of the body into `out`, up to [`BODY_LENGTH_MAX`].
    pub fn read_to_end(&mut self, out: &mut Vec<u8>) -> io::Result<()> {
        if let BodyState::Length(n) = self.state {
            if n > BODY_LENGTH_MAX as u64 {
                return Err(invalid("response body too large"));
            }
            out.reserve(n as usize);
        }
        while self.read_some(out)? > 0 {
            if out.len() > BODY_LENGTH_MAX {
                return Err(invalid("response body too large"));
            }
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Parses one complete response from `reader` (used by the client and by tests).
pub fn read_response<S: Read>(reader: Reader<S>) -> io::Result<(Response, Reader<S>, bool)> {
    let mut reader = reader;
    let head = read_head(&mut reader)?;
    let mut body = Body::new(reader, &head);
    let mut bytes = Vec::new();
    body.read_to_end(&mut bytes)?;
    let response = Response { status: head.status, headers: head.headers, body: bytes };
    Ok((response, body.reader, head.close))
}

fn connect(url: &Url, timeouts: Timeouts) -> io::Result<TcpStream> {
    let mut last_error = None;
    for address in (url.host.as_str(), url.port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&address, timeouts.connect) {
            Ok(stream) => {
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(timeouts.io))?;
                stream.set_write_timeout(Some(timeouts.io))?;
                return Ok(stream);
            }
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| {
        io::Error::new(io::ErrorKind::NotFound, format!("{} resolves to no address", url.host))
    }))
}

fn write_all_vectored(stream: &mut TcpStream, mut slices: &mut [IoSlice<'_>]) -> io::Result<()> {
    while !slices.is_empty() {
        match stream.write_vectored(slices) {
            Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "socket closed")),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

struct Connection {
    stream: TcpStream,
    reader: Reader<TcpStream>,
    responses: u64,
}

/// One keep-alive connection to one endpoint, reopened on demand.
pub struct Client {
    url: Url,
    timeouts: Timeouts,
    connection: Option<Connection>,
    head: Vec<u8>,
}

impl Client {
    pub fn new(url: Url, timeouts: Timeouts) -> Client {
        Client { url, timeouts, connection: None, head: Vec::with_capacity(512) }
    }

    pub fn url(&self) -> &Url {
        &self.url
    }

    fn open(&mut self) -> io::Result<Connection> {
        let stream = connect(&self.url, self.timeouts)?;
        let reader = Reader::new(stream.try_clone()?);
        Ok(Connection { stream, reader, responses: 0 })
    }

    fn send(&mut self, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Connection> {
        let mut retried = false;
        loop {
            let mut connection = match self.connection.take() {
                Some(c) => c,
                None => self.open()?,
            };
            let reused = connection.responses > 0;
            self.head.clear();
            write!(
                self.head,
                "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Length: {}\r\n",
                self.url.path,
                self.url.authority(),
                body.len()
            )?;
            for (name, value) in headers {
                write!(self.head, "{name}: {value}\r\n")?;
            }
            self.head.extend_from_slice(b"\r\n");
            let received_before = connection.reader.received;
            let mut slices = [IoSlice::new(&self.head), IoSlice::new(body)];
            let mut result = write_all_vectored(&mut connection.stream, &mut slices);
            if result.is_ok() && connection.reader.start == connection.reader.end {
                // Wait for the first response byte here so that a stale connection is detected
                // before any of the response is consumed.
                result = match connection.reader.fill() {
                    Ok(0) => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed")),
                    Ok(_) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            match result {
                Ok(()) => return Ok(connection),
                Err(e) => {
                    let nothing_received = connection.reader.received == received_before;
                    let stale = matches!(
                        e.kind(),
                        io::ErrorKind::UnexpectedEof
                            | io::ErrorKind::ConnectionReset
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::BrokenPipe
                    );
                    // A keep-alive connection the server closed while idle: retry once on a
                    // fresh one. The server never saw the request, so this cannot duplicate it.
                    if reused && nothing_received && stale && !retried {
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
            }
        }
    }

    /// POSTs `body` to the endpoint's path and reads the whole response.
    pub fn post(&mut self, headers: &[(&str, &str)], body: &[u8]) -> io::Result<Response> {
        let mut connection = self.send(headers, body)?;
        let head = read_head(&mut connection.reader)?;
        let mut reader_body = Body::new(connection.reader, &head);
        let mut bytes = Vec::new();
        reader_body.read_to_end(&mut bytes)?;
        if !head.close {
            self.connection = Some(Connection {
                stream: connection.stream,
                reader: reader_body.reader,
                responses: connection.responses + 1,
            });
        }
        Ok(Response { status: head.status, headers: head.headers, body: bytes })
    }

    /// POSTs `body` and returns the response head with a body to read incrementally. The
    /// connection belongs to the returned [`Body`]; the client opens a new one next time.
    pub fn post_streaming(
        &mut self,
        headers: &[(&str, &str)],
        body: &[u8],
        read_timeout: Duration,
    ) -> io::Result<(ResponseHead, Body<TcpStream>)> {
        let mut connection = self.send(headers, body)?;
        let head = read_head(&mut connection.reader)?;
        // The reader's socket is a clone of `stream`: the option applies to both.
        connection.stream.set_read_timeout(Some(read_timeout))?;
        let body = Body::new(connection.reader, &head);
        Ok((head, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Hands out its bytes a few at a time, like a slow socket.
    struct Trickle<'a> {
        bytes: &'a [u8],
        step: usize,
    }

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.step.min(self.bytes.len()).min(out.len());
            out[..n].copy_from_slice(&self.bytes[..n]);
            self.bytes = &self.bytes[n..];
            Ok(n)
        }
    }

    fn parse(bytes: &[u8], step: usize) -> io::Result<(Response, bool)> {
        let (response, _, close) = read_response(Reader::new(Trickle { bytes, step }))?;
        Ok((response, close))
    }

    #[test]
    fn url_parsing() {
        let url = Url::parse("http://127.0.0.1:4567").unwrap();
        assert_eq!((url.host.as_str(), url.port, url.path.as_str()), ("127.0.0.1", 4567, "/"));
        let url = Url::parse("localhost:8080/kinesis").unwrap();
        assert_eq!(
            (url.host.as_str(), url.port, url.path.as_str()),
            ("localhost", 8080, "/kinesis")
        );
        let url = Url::parse("http://[::1]:9/").unwrap();
        assert_eq!((url.host.as_str(), url.port), ("::1", 9));
        assert_eq!(url.authority(), "[::1]:9");
        assert!(Url::parse("https://kinesis.us-east-1.amazonaws.com").is_err());
        assert!(Url::parse("http://host:port").is_err());
    }

    #[test]
    fn chunked_body_with_extensions_and_trailers() {
        let wire = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: a/b\r\n\r\n\
            5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: t\r\n\r\n";
        for step in [1, 2, 3, 7, 1000] {
            let (response, close) = parse(wire, step).unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.header("content-type"), Some("a/b"));
            assert_eq!(response.body, b"helloabcdefghijklmnopqrstuvwxyz");
            assert!(!close);
        }
    }

    #[test]
    fn chunked_body_errors() {
        let truncated = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel";
        assert!(parse(truncated, 4).is_err());
        let bad_size = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert!(parse(bad_size, 4).is_err());
        let no_crlf = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n0\r\n\r\n";
        assert!(parse(no_crlf, 4).is_err());
    }

    /// Times out once at every read boundary listed, like a socket with a short read timeout.
    struct Stalling<'a> {
        bytes: &'a [u8],
        stall_at: Vec<usize>,
        position: usize,
    }

    impl Read for Stalling<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if self.stall_at.first() == Some(&self.position) {
                self.stall_at.remove(0);
                return Err(io::Error::new(io::ErrorKind::WouldBlock, "timed out"));
            }
            let end = self.stall_at.first().copied().unwrap_or(self.bytes.len());
            let n = (end - self.position).min(out.len());
            out[..n].copy_from_slice(&self.bytes[self.position..self.position + n]);
            self.position += n;
            Ok(n)
        }
    }

    #[test]
    fn streaming_body_survives_read_timeouts_anywhere() {
        let wire: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
            3\r\nabc\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
        let head_length = wire.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        for stall in head_length + 1..wire.len() {
            let source = Stalling { bytes: wire, stall_at: vec![stall], position: 0 };
            let mut reader = Reader::new(source);
            let head = read_head(&mut reader).unwrap();
            let mut body = Body::new(reader, &head);
            let mut out = Vec::new();
            let mut timeouts = 0;
            loop {
                match body.read_some(&mut out) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => timeouts += 1,
                    Err(e) => panic!("stall at {stall}: {e}"),
                }
            }
            assert_eq!(out, b"abc0123456789abcdef", "stall at {stall}");
            assert!(timeouts <= 1);
        }
    }

    #[test]
    fn content_length_until_close_and_continue() {
        let wire =
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\
            Connection: close\r\n\r\nabcEXTRA";
        let (response, close) = parse(wire, 5).unwrap();
        assert_eq!((response.status, response.body.as_slice(), close), (400, &b"abc"[..], true));
        let wire = b"HTTP/1.0 200 OK\r\n\r\nuntil the end";
        let (response, close) = parse(wire, 3).unwrap();
        assert_eq!((response.body.as_slice(), close), (&b"until the end"[..], true));
        let wire = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert!(parse(wire, 3).unwrap().0.body.is_empty());
    }

    #[test]
    fn keep_alive_client_reuses_and_survives_a_server_side_close() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut accepted = 0;
            // First connection serves two requests then closes while idle; second serves one.
            for served_per_connection in [2, 1] {
                let (mut stream, _) = listener.accept().unwrap();
                accepted += 1;
                let mut reader = Reader::new(stream.try_clone().unwrap());
                for i in 0..served_per_connection {
                    let mut length = 0;
                    loop {
                        let line = reader.read_line().unwrap();
                        if line.is_empty() {
                            break;
                        }
                        if let Some(v) = line.strip_prefix("Content-Length: ") {
                            length = v.parse().unwrap();
                        }
                    }
                    let mut body = Vec::new();
                    while body.len() < length {
                        let wanted = length - body.len();
                        reader.read_some(&mut body, wanted).unwrap();
                    }
                    let reply = format!("{}-{}", String::from_utf8(body).unwrap(), i);
                    write!(
                        stream,
                        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                         {:x}\r\n{}\r\n0\r\n\r\n",
                        reply.len(),
                        reply
                    )
                    .unwrap();
                }
            }
            accepted
        });
        let url = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
        let mut client = Client::new(url, Timeouts::default());
        assert_eq!(client.post(&[], b"a").unwrap().body, b"a-0");
        assert_eq!(client.post(&[], b"b").unwrap().body, b"b-1");
        // The server closed the idle connection: the client retries once on a new one.
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(client.post(&[], b"c").unwrap().body, b"c-0");
        assert_eq!(server.join().unwrap(), 2);
    }
}
