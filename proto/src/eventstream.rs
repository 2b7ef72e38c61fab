//! The AWS event-stream binary codec (`application/vnd.amazon.eventstream`) that carries
//! SubscribeToShard's HTTP/2 response: encoding of events and exceptions, and a bounded
//! incremental [`Decoder`].
//!
//! Wire format of one message (all integers big-endian):
//!
//! ```text
//! prelude:  u32 total length | u32 headers length | u32 CRC32 of the previous 8 bytes
//! headers:  repeated { u8 name length, name, u8 value type, value }
//! payload:  total - headers - 16 bytes
//! trailer:  u32 CRC32 of everything before it
//! ```
//!
//! Header value types: 0 bool true, 1 bool false, 2 byte, 3 i16, 4 i32, 5 i64, 6 byte array
//! (u16 length), 7 string (u16 length, UTF-8), 8 timestamp (i64 epoch millis), 9 UUID (16 bytes).

use std::fmt;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::ApiError;
use crate::responses::SubscribeToShardEvent;

/// Largest message (total length) the decoder accepts and the encoder produces: 16 MiB.
pub const MAX_MESSAGE_LEN: usize = 16 * 1024 * 1024;
/// Largest headers section: 128 KiB.
pub const MAX_HEADERS_LEN: usize = 128 * 1024;
/// Prelude (12 bytes) + trailing CRC (4 bytes).
pub const OVERHEAD: usize = 16;
/// The HTTP content type of an event stream.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// A header value.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HeaderValue {
    /// Types 0 (true) and 1 (false).
    Bool(bool),
    /// Type 2.
    Byte(i8),
    /// Type 3.
    Int16(i16),
    /// Type 4.
    Int32(i32),
    /// Type 5.
    Int64(i64),
    /// Type 6 (at most 65535 bytes).
    ByteArray(Bytes),
    /// Type 7 (at most 65535 bytes of UTF-8).
    String(String),
    /// Type 8: milliseconds since the epoch.
    Timestamp(i64),
    /// Type 9.
    Uuid([u8; 16]),
}

impl HeaderValue {
    /// A string header value.
    pub fn string(s: impl Into<String>) -> Self {
        HeaderValue::String(s.into())
    }

    /// The string, for type-7 values.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    fn type_id(&self) -> u8 {
        match self {
            HeaderValue::Bool(true) => 0,
            HeaderValue::Bool(false) => 1,
            HeaderValue::Byte(_) => 2,
            HeaderValue::Int16(_) => 3,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) => 5,
            HeaderValue::ByteArray(_) => 6,
            HeaderValue::String(_) => 7,
            HeaderValue::Timestamp(_) => 8,
            HeaderValue::Uuid(_) => 9,
        }
    }

    fn encoded_len(&self) -> usize {
        1 + match self {
            HeaderValue::Bool(_) => 0,
            HeaderValue::Byte(_) => 1,
            HeaderValue::Int16(_) => 2,
            HeaderValue::Int32(_) => 4,
            HeaderValue::Int64(_) | HeaderValue::Timestamp(_) => 8,
            HeaderValue::ByteArray(b) => 2 + b.len(),
            HeaderValue::String(s) => 2 + s.len(),
            HeaderValue::Uuid(_) => 16,
        }
    }
}

/// A decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// Headers in wire order.
    pub headers: Vec<(String, HeaderValue)>,
    /// The payload.
    pub payload: Bytes,
}

impl Message {
    /// The first header named `name`.
    pub fn header(&self, name: &str) -> Option<&HeaderValue> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// The first header named `name`, if it is a string.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.header(name).and_then(HeaderValue::as_str)
    }

    /// Re-encodes this message.
    pub fn encode(&self) -> Result<Bytes, EncodeError> {
        let headers: Vec<(&str, HeaderValue)> =
            self.headers.iter().map(|(n, v)| (n.as_str(), v.clone())).collect();
        try_encode_message(&headers, &self.payload)
    }
}

/// Why a message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EncodeError {
    /// Header names are 1..=255 bytes.
    InvalidHeaderName(usize),
    /// String and byte-array values are at most 65535 bytes.
    HeaderValueTooLong(usize),
    /// The headers section exceeds [`MAX_HEADERS_LEN`].
    HeadersTooLong(usize),
    /// The message exceeds [`MAX_MESSAGE_LEN`].
    MessageTooLong(usize),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EncodeError::InvalidHeaderName(n) => write!(f, "header name length {n} not in 1..=255"),
            EncodeError::HeaderValueTooLong(n) => write!(f, "header value length {n} > 65535"),
            EncodeError::HeadersTooLong(n) => write!(f, "headers length {n} > {MAX_HEADERS_LEN}"),
            EncodeError::MessageTooLong(n) => write!(f, "message length {n} > {MAX_MESSAGE_LEN}"),
        }
    }
}

impl std::error::Error for EncodeError {}

/// Encodes one message, validating every length.
pub fn try_encode_message(
    headers: &[(&str, HeaderValue)],
    payload: &[u8],
) -> Result<Bytes, EncodeError> {
    let mut headers_len = 0usize;
    for (name, value) in headers {
        if name.is_empty() || name.len() > 255 {
            return Err(EncodeError::InvalidHeaderName(name.len()));
        }
        match value {
            HeaderValue::ByteArray(b) if b.len() > usize::from(u16::MAX) => {
                return Err(EncodeError::HeaderValueTooLong(b.len()));
            }
            HeaderValue::String(s) if s.len() > usize::from(u16::MAX) => {
                return Err(EncodeError::HeaderValueTooLong(s.len()));
            }
            _ => {}
        }
        headers_len += 1 + name.len() + value.encoded_len();
    }
    if headers_len > MAX_HEADERS_LEN {
        return Err(EncodeError::HeadersTooLong(headers_len));
    }
    let total = OVERHEAD.saturating_add(headers_len).saturating_add(payload.len());
    if total > MAX_MESSAGE_LEN {
        return Err(EncodeError::MessageTooLong(total));
    }
    let mut buf = BytesMut::with_capacity(total);
    // Both fit in u32: total <= 16 MiB.
    buf.put_u32(total as u32);
    buf.put_u32(headers_len as u32);
    let prelude_crc = crc32fast::hash(&buf[..8]);
    buf.put_u32(prelude_crc);
    for (name, value) in headers {
        buf.put_u8(name.len() as u8);
        buf.put_slice(name.as_bytes());
        buf.put_u8(value.type_id());
        match value {
            HeaderValue::Bool(_) => {}
            HeaderValue::Byte(v) => buf.put_i8(*v),
            HeaderValue::Int16(v) => buf.put_i16(*v),
            HeaderValue::Int32(v) => buf.put_i32(*v),
            HeaderValue::Int64(v) | HeaderValue::Timestamp(v) => buf.put_i64(*v),
            HeaderValue::ByteArray(b) => {
                buf.put_u16(b.len() as u16);
                buf.put_slice(b);
            }
            HeaderValue::String(s) => {
                buf.put_u16(s.len() as u16);
                buf.put_slice(s.as_bytes());
            }
            HeaderValue::Uuid(u) => buf.put_slice(u),
        }
    }
    buf.put_slice(payload);
    let crc = crc32fast::hash(&buf);
    buf.put_u32(crc);
    Ok(buf.freeze())
}

/// Encodes one message. Never panics: if the headers or payload exceed the format's limits
/// (impossible for the server's own events), an `InternalFailure` exception message is
/// produced instead.
pub fn encode_message(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Bytes {
    try_encode_message(headers, payload).unwrap_or_else(|e| {
        let err = ApiError::internal(format!("event encoding failed: {e}"));
        encode_exception(err.type_name(), &err.to_event_payload())
    })
}

/// An event: headers `:event-type` = `event_type`, `:content-type` = `application/json`,
/// `:message-type` = `event`.
pub fn encode_event(event_type: &str, payload: &[u8]) -> Bytes {
    encode_message(
        &[
            (":event-type", HeaderValue::string(event_type)),
            (":content-type", HeaderValue::string("application/json")),
            (":message-type", HeaderValue::string("event")),
        ],
        payload,
    )
}

/// An exception: headers `:exception-type` = `exception_type`, `:content-type` =
/// `application/json`, `:message-type` = `exception`.
pub fn encode_exception(exception_type: &str, payload: &[u8]) -> Bytes {
    // Bounded inputs by construction in every caller; fall back to an empty payload rather
    // than recurse through encode_message.
    let headers = [
        (":exception-type", HeaderValue::string(exception_type)),
        (":content-type", HeaderValue::string("application/json")),
        (":message-type", HeaderValue::string("exception")),
    ];
    try_encode_message(&headers, payload)
        .or_else(|_| try_encode_message(&headers[1..], b"{}"))
        .unwrap_or_default()
}

/// The exception message for `err`: `:exception-type` = its `__type` as the model's
/// `SubscribeToShardEventStream` union names it (`InternalFailure` is `InternalFailureException`
/// there), payload `{"message":"..."}`.
pub fn encode_error(err: &ApiError) -> Bytes {
    let exception_type = match err.type_name() {
        "InternalFailure" => "InternalFailureException",
        other => other,
    };
    encode_exception(exception_type, &err.to_event_payload())
}

/// The first SubscribeToShard event: `:event-type` = `initial-response`, payload `{}`.
pub fn encode_initial_response() -> Bytes {
    encode_event("initial-response", b"{}")
}

/// A `SubscribeToShardEvent` event carrying `event` as JSON.
pub fn encode_subscribe_event(event: &SubscribeToShardEvent) -> Bytes {
    encode_event("SubscribeToShardEvent", &crate::responses::subscribe_event_to_json(event))
}

/// Why bytes could not be decoded. After any error the stream is unusable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The prelude CRC did not match.
    PreludeCrc {
        /// CRC carried in the prelude.
        expected: u32,
        /// CRC computed over the first 8 bytes.
        actual: u32,
    },
    /// The message CRC did not match.
    MessageCrc {
        /// CRC carried at the end of the message.
        expected: u32,
        /// CRC computed over the message.
        actual: u32,
    },
    /// Total length below 16 or above the decoder's maximum.
    InvalidTotalLength(u32),
    /// Headers length larger than the message allows or above [`MAX_HEADERS_LEN`].
    InvalidHeadersLength(u32),
    /// A header ran past the end of the headers section.
    TruncatedHeader,
    /// A header name was empty or not UTF-8, or a string value was not UTF-8.
    InvalidUtf8,
    /// An unknown header value type.
    UnknownHeaderType(u8),
    /// [`decode_message`] got bytes after the message, or fewer than the prelude announces.
    LengthMismatch {
        /// Bytes the prelude announced.
        expected: usize,
        /// Bytes supplied.
        actual: usize,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::PreludeCrc { expected, actual } => {
                write!(f, "prelude CRC mismatch: expected {expected:#010x}, got {actual:#010x}")
            }
            DecodeError::MessageCrc { expected, actual } => {
                write!(f, "message CRC mismatch: expected {expected:#010x}, got {actual:#010x}")
            }
            DecodeError::InvalidTotalLength(n) => write!(f, "invalid message length {n}"),
            DecodeError::InvalidHeadersLength(n) => write!(f, "invalid headers length {n}"),
            DecodeError::TruncatedHeader => f.write_str("truncated header"),
            DecodeError::InvalidUtf8 => f.write_str("invalid header name or string value"),
            DecodeError::UnknownHeaderType(t) => write!(f, "unknown header value type {t}"),
            DecodeError::LengthMismatch { expected, actual } => {
                write!(f, "message is {expected} bytes but {actual} were supplied")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Validates a prelude; returns (total, headers length). Nothing is allocated here.
fn check_prelude(prelude: &[u8], max_len: usize) -> Result<(usize, usize), DecodeError> {
    let total = u32::from_be_bytes([prelude[0], prelude[1], prelude[2], prelude[3]]);
    let headers_len = u32::from_be_bytes([prelude[4], prelude[5], prelude[6], prelude[7]]);
    let expected = u32::from_be_bytes([prelude[8], prelude[9], prelude[10], prelude[11]]);
    let actual = crc32fast::hash(&prelude[..8]);
    if expected != actual {
        return Err(DecodeError::PreludeCrc { expected, actual });
    }
    let total_usize = total as usize;
    if total_usize < OVERHEAD || total_usize > max_len {
        return Err(DecodeError::InvalidTotalLength(total));
    }
    let h = headers_len as usize;
    if h > total_usize - OVERHEAD || h > MAX_HEADERS_LEN {
        return Err(DecodeError::InvalidHeadersLength(headers_len));
    }
    Ok((total_usize, h))
}

fn parse_headers(mut b: &[u8]) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
        if b.len() < n {
            return Err(DecodeError::TruncatedHeader);
        }
        let (head, tail) = b.split_at(n);
        *b = tail;
        Ok(head)
    }
    fn utf8(bytes: &[u8]) -> Result<String, DecodeError> {
        std::str::from_utf8(bytes).map(str::to_owned).map_err(|_| DecodeError::InvalidUtf8)
    }
    let mut headers = Vec::new();
    while !b.is_empty() {
        let name_len = usize::from(take(&mut b, 1)?[0]);
        if name_len == 0 {
            return Err(DecodeError::InvalidUtf8);
        }
        let name = utf8(take(&mut b, name_len)?)?;
        let ty = take(&mut b, 1)?[0];
        let value = match ty {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(take(&mut b, 1)?.get_i8()),
            3 => HeaderValue::Int16(take(&mut b, 2)?.get_i16()),
            4 => HeaderValue::Int32(take(&mut b, 4)?.get_i32()),
            5 => HeaderValue::Int64(take(&mut b, 8)?.get_i64()),
            6 | 7 => {
                let len = usize::from(take(&mut b, 2)?.get_u16());
                let raw = take(&mut b, len)?;
                if ty == 6 {
                    HeaderValue::ByteArray(Bytes::copy_from_slice(raw))
                } else {
                    HeaderValue::String(utf8(raw)?)
                }
            }
            8 => HeaderValue::Timestamp(take(&mut b, 8)?.get_i64()),
            9 => {
                let mut u = [0u8; 16];
                u.copy_from_slice(take(&mut b, 16)?);
                HeaderValue::Uuid(u)
            }
            other => return Err(DecodeError::UnknownHeaderType(other)),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Decodes a complete message whose length has been validated (`msg.len() == total`).
fn decode_validated(msg: Bytes, headers_len: usize) -> Result<Message, DecodeError> {
    let body_end = msg.len() - 4;
    let expected = u32::from_be_bytes([
        msg[body_end],
        msg[body_end + 1],
        msg[body_end + 2],
        msg[body_end + 3],
    ]);
    let actual = crc32fast::hash(&msg[..body_end]);
    if expected != actual {
        return Err(DecodeError::MessageCrc { expected, actual });
    }
    let headers = parse_headers(&msg[12..12 + headers_len])?;
    let payload = msg.slice(12 + headers_len..body_end);
    Ok(Message { headers, payload })
}

/// Decodes exactly one complete message.
pub fn decode_message(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() < 12 {
        return Err(DecodeError::LengthMismatch { expected: OVERHEAD, actual: bytes.len() });
    }
    let (total, headers_len) = check_prelude(&bytes[..12], MAX_MESSAGE_LEN)?;
    if bytes.len() != total {
        return Err(DecodeError::LengthMismatch { expected: total, actual: bytes.len() });
    }
    decode_validated(Bytes::copy_from_slice(bytes), headers_len)
}

/// Incremental decoder: [`push`](Decoder::push) bytes as they arrive, then call
/// [`next_message`](Decoder::next_message) until it returns `Ok(None)`.
///
/// The prelude is CRC-checked and its lengths bounded (total <= the configured maximum,
/// 16 MiB by default) before the decoder waits for the rest of a message, and it never
/// reserves memory on the strength of a claimed length: it only holds what was pushed.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    max_len: usize,
    failed: Option<DecodeError>,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new()
    }
}

impl Decoder {
    /// A decoder accepting messages up to [`MAX_MESSAGE_LEN`].
    pub fn new() -> Self {
        Decoder { buf: BytesMut::new(), max_len: MAX_MESSAGE_LEN, failed: None }
    }

    /// A decoder accepting messages up to `max_len` bytes (capped at [`MAX_MESSAGE_LEN`]).
    pub fn with_max_message_len(max_len: usize) -> Self {
        Decoder { max_len: max_len.min(MAX_MESSAGE_LEN), ..Decoder::new() }
    }

    /// Appends received bytes.
    pub fn push(&mut self, data: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(data);
        }
    }

    /// Bytes buffered but not yet consumed.
    pub fn buffered_len(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if more bytes are needed. Once an error is
    /// returned the decoder stays failed and returns it again.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if self.buf.len() < 12 {
            return Ok(None);
        }
        let (total, headers_len) = match check_prelude(&self.buf[..12], self.max_len) {
            Ok(v) => v,
            Err(e) => return Err(self.fail(e)),
        };
        if self.buf.len() < total {
            return Ok(None);
        }
        let msg = self.buf.split_to(total).freeze();
        decode_validated(msg, headers_len).map(Some).map_err(|e| self.fail(e))
    }

    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.failed = Some(e.clone());
        self.buf = BytesMut::new();
        e
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Test vectors from awslabs/aws-c-event-stream tests/message_deserializer_test.c and
    // tests/message_serializer_test.c.
    const NO_OP: [u8; 16] = [
        0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8,
        0xff,
    ];

    const NO_HEADERS: [u8; 29] = [
        0x00, 0x00, 0x00, 0x1D, 0x00, 0x00, 0x00, 0x00, 0xfd, 0x52, 0x8c, 0x5a, 0x7b, 0x27, 0x66,
        0x6f, 0x6f, 0x27, 0x3a, 0x27, 0x62, 0x61, 0x72, 0x27, 0x7d, 0xc3, 0x65, 0x39, 0x36,
    ];

    fn one_string_header() -> Vec<u8> {
        let mut v = vec![0x00, 0x00, 0x00, 0x3D, 0x00, 0x00, 0x00, 0x20, 0x07, 0xFD, 0x83, 0x96];
        v.push(0x0C);
        v.extend_from_slice(b"content-type");
        v.extend_from_slice(&[0x07, 0x00, 0x10]);
        v.extend_from_slice(b"application/json");
        v.extend_from_slice(b"{'foo':'bar'}");
        v.extend_from_slice(&[0x8D, 0x9C, 0x08, 0xB1]);
        v
    }

    fn one_int32_header() -> Vec<u8> {
        let mut v = vec![0x00, 0x00, 0x00, 0x2B, 0x00, 0x00, 0x00, 0x0E, 0x34, 0x8B, 0xEC, 0x7B];
        v.push(0x08);
        v.extend_from_slice(b"event-id");
        v.extend_from_slice(&[0x04, 0x00, 0x00, 0xA0, 0x0C]);
        v.extend_from_slice(b"{'foo':'bar'}");
        v.extend_from_slice(&[0xD3, 0x89, 0x02, 0x85]);
        v
    }

    #[test]
    fn reference_vectors_encode() {
        assert_eq!(&encode_message(&[], b"")[..], &NO_OP[..]);
        assert_eq!(&encode_message(&[], b"{'foo':'bar'}")[..], &NO_HEADERS[..]);
        assert_eq!(
            &encode_message(
                &[("content-type", HeaderValue::string("application/json"))],
                b"{'foo':'bar'}"
            )[..],
            &one_string_header()[..]
        );
        assert_eq!(
            &encode_message(&[("event-id", HeaderValue::Int32(0x0000A00C))], b"{'foo':'bar'}")[..],
            &one_int32_header()[..]
        );
    }

    #[test]
    fn reference_vectors_decode() {
        let m = decode_message(&NO_OP).unwrap();
        assert!(m.headers.is_empty() && m.payload.is_empty());
        let m = decode_message(&NO_HEADERS).unwrap();
        assert_eq!(&m.payload[..], b"{'foo':'bar'}");
        let m = decode_message(&one_string_header()).unwrap();
        assert_eq!(m.header_str("content-type"), Some("application/json"));
        assert_eq!(&m.payload[..], b"{'foo':'bar'}");
        let m = decode_message(&one_int32_header()).unwrap();
        assert_eq!(m.header("event-id"), Some(&HeaderValue::Int32(0xA00C)));
        assert_eq!(m.header_str("event-id"), None);
    }

    #[test]
    fn corrupted_vectors_are_rejected() {
        let mut bad = NO_HEADERS;
        bad[10] ^= 1; // prelude CRC
        assert!(matches!(decode_message(&bad), Err(DecodeError::PreludeCrc { .. })));
        let mut bad = NO_HEADERS;
        bad[15] ^= 1; // payload
        assert!(matches!(decode_message(&bad), Err(DecodeError::MessageCrc { .. })));
        assert!(matches!(
            decode_message(&NO_HEADERS[..20]),
            Err(DecodeError::LengthMismatch { .. })
        ));
        assert!(matches!(
            decode_message(&NO_HEADERS[..5]),
            Err(DecodeError::LengthMismatch { .. })
        ));
    }

    fn prelude(total: u32, headers: u32) -> Vec<u8> {
        let mut p = Vec::new();
        p.extend_from_slice(&total.to_be_bytes());
        p.extend_from_slice(&headers.to_be_bytes());
        let crc = crc32fast::hash(&p);
        p.extend_from_slice(&crc.to_be_bytes());
        p
    }

    #[test]
    fn decoder_bounds_claimed_lengths() {
        // A valid prelude claiming 4 GiB is rejected as soon as the prelude arrives.
        let mut d = Decoder::new();
        d.push(&prelude(u32::MAX, 0));
        assert_eq!(d.next_message(), Err(DecodeError::InvalidTotalLength(u32::MAX)));
        assert_eq!(d.next_message(), Err(DecodeError::InvalidTotalLength(u32::MAX)));
        assert_eq!(d.buffered_len(), 0);

        let mut d = Decoder::new();
        d.push(&prelude(MAX_MESSAGE_LEN as u32 + 1, 0));
        assert!(matches!(d.next_message(), Err(DecodeError::InvalidTotalLength(_))));

        let mut d = Decoder::new();
        d.push(&prelude(10, 0));
        assert_eq!(d.next_message(), Err(DecodeError::InvalidTotalLength(10)));

        let mut d = Decoder::new();
        d.push(&prelude(32, 17));
        assert_eq!(d.next_message(), Err(DecodeError::InvalidHeadersLength(17)));

        // A plausible claim just waits, holding only what was pushed.
        let mut d = Decoder::new();
        d.push(&prelude(1_000_000, 0));
        assert_eq!(d.next_message(), Ok(None));
        assert_eq!(d.buffered_len(), 12);

        let mut d = Decoder::with_max_message_len(100);
        d.push(&prelude(101, 0));
        assert_eq!(d.next_message(), Err(DecodeError::InvalidTotalLength(101)));
    }

    #[test]
    fn decoder_rejects_bad_headers() {
        let build = |headers: &[u8]| {
            let total = (OVERHEAD + headers.len()) as u32;
            let mut m = prelude(total, headers.len() as u32);
            m.extend_from_slice(headers);
            let crc = crc32fast::hash(&m);
            m.extend_from_slice(&crc.to_be_bytes());
            m
        };
        assert_eq!(decode_message(&build(&[3, b'a', b'b'])), Err(DecodeError::TruncatedHeader));
        assert_eq!(decode_message(&build(&[1, b'a', 42])), Err(DecodeError::UnknownHeaderType(42)));
        assert_eq!(
            decode_message(&build(&[1, b'a', 7, 0, 5, b'x'])),
            Err(DecodeError::TruncatedHeader)
        );
        assert_eq!(
            decode_message(&build(&[1, b'a', 7, 0, 1, 0xFF])),
            Err(DecodeError::InvalidUtf8)
        );
        assert_eq!(decode_message(&build(&[0])), Err(DecodeError::InvalidUtf8));
        assert_eq!(decode_message(&build(&[1, 0xC3, 0])), Err(DecodeError::InvalidUtf8));
    }

    /// xorshift64* — a tiny deterministic PRNG for the property tests.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
        fn bytes(&mut self, n: usize) -> Vec<u8> {
            (0..n).map(|_| self.next() as u8).collect()
        }
        fn string(&mut self, n: usize) -> String {
            const POOL: &[char] = &['a', 'Z', '0', ':', '-', ' ', 'é', '漢', '😀'];
            (0..n).map(|_| POOL[self.below(POOL.len() as u64) as usize]).collect()
        }
        fn header_value(&mut self) -> HeaderValue {
            match self.below(10) {
                0 => HeaderValue::Bool(true),
                1 => HeaderValue::Bool(false),
                2 => HeaderValue::Byte(self.next() as i8),
                3 => HeaderValue::Int16(self.next() as i16),
                4 => HeaderValue::Int32(self.next() as i32),
                5 => HeaderValue::Int64(self.next() as i64),
                6 => {
                    let n = self.below(300) as usize;
                    HeaderValue::ByteArray(Bytes::from(self.bytes(n)))
                }
                7 => {
                    let n = self.below(100) as usize;
                    HeaderValue::String(self.string(n))
                }
                8 => HeaderValue::Timestamp(self.next() as i64),
                _ => {
                    let mut u = [0u8; 16];
                    u.copy_from_slice(&self.bytes(16));
                    HeaderValue::Uuid(u)
                }
            }
        }
    }

    #[test]
    fn round_trip_property() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let mut stream = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..300 {
            let n_headers = rng.below(8) as usize;
            let names: Vec<String> = (0..n_headers)
                .map(|_| {
                    let len = 1 + rng.below(20) as usize;
                    format!("h-{}", rng.string(len))
                })
                .collect();
            let headers: Vec<(&str, HeaderValue)> =
                names.iter().map(|n| (n.as_str(), rng.header_value())).collect();
            let payload_len = rng.below(2000) as usize;
            let payload = rng.bytes(payload_len);
            let encoded = try_encode_message(&headers, &payload).unwrap();
            let decoded = decode_message(&encoded).unwrap();
            assert_eq!(decoded.payload, payload);
            assert_eq!(decoded.headers.len(), headers.len());
            for ((dn, dv), (n, v)) in decoded.headers.iter().zip(&headers) {
                assert_eq!((dn.as_str(), dv), (*n, v));
            }
            assert_eq!(decoded.encode().unwrap(), encoded);
            stream.extend_from_slice(&encoded);
            expected.push(decoded);
        }
        // Feed the concatenated stream in random-sized chunks.
        let mut d = Decoder::new();
        let mut got = Vec::new();
        let mut pos = 0;
        while pos < stream.len() {
            let step = 1 + rng.below(700) as usize;
            let end = (pos + step).min(stream.len());
            d.push(&stream[pos..end]);
            pos = end;
            while let Some(m) = d.next_message().unwrap() {
                got.push(m);
            }
        }
        assert_eq!(d.buffered_len(), 0);
        assert_eq!(got, expected);
    }

    #[test]
    fn random_garbage_never_panics() {
        let mut rng = Rng(42);
        for _ in 0..2000 {
            let n = rng.below(64) as usize;
            let mut junk = rng.bytes(n);
            if n >= 12 && rng.below(2) == 0 {
                // Make the prelude valid so header parsing gets exercised.
                let total = n as u32;
                let h = rng.below(n as u64) as u32;
                junk[..12].copy_from_slice(&prelude(total, h));
                if rng.below(2) == 0 {
                    let crc = crc32fast::hash(&junk[..n - 4]);
                    junk[n - 4..].copy_from_slice(&crc.to_be_bytes());
                }
            }
            let _ = decode_message(&junk);
            let mut d = Decoder::new();
            d.push(&junk);
            let _ = d.next_message();
        }
    }

    #[test]
    fn kinesis_events() {
        let m = decode_message(&encode_initial_response()).unwrap();
        assert_eq!(m.header_str(":event-type"), Some("initial-response"));
        assert_eq!(m.header_str(":message-type"), Some("event"));
        assert_eq!(m.header_str(":content-type"), Some("application/json"));
        assert_eq!(&m.payload[..], b"{}");

        let ev = SubscribeToShardEvent {
            records: vec![],
            continuation_sequence_number: Some("1".into()),
            millis_behind_latest: 0,
            child_shards: None,
        };
        let m = decode_message(&encode_subscribe_event(&ev)).unwrap();
        assert_eq!(m.header_str(":event-type"), Some("SubscribeToShardEvent"));
        assert_eq!(
            &m.payload[..],
            br#"{"Records":[],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}"#
        );

        let err = ApiError::resource_in_use("busy");
        let m = decode_message(&encode_error(&err)).unwrap();
        assert_eq!(m.header_str(":message-type"), Some("exception"));
        assert_eq!(m.header_str(":exception-type"), Some("ResourceInUseException"));
        assert_eq!(&m.payload[..], br#"{"message":"busy"}"#);
        let m = decode_message(&encode_error(&ApiError::internal("disk"))).unwrap();
        assert_eq!(m.header_str(":exception-type"), Some("InternalFailureException"));

        // Oversized input degrades to an InternalFailure exception instead of panicking.
        let long_name = "x".repeat(300);
        let m =
            decode_message(&encode_message(&[(&long_name, HeaderValue::Bool(true))], b"")).unwrap();
        assert_eq!(m.header_str(":exception-type"), Some("InternalFailure"));
    }
}
