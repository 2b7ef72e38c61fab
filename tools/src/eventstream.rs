//! The AWS event-stream framing (`application/vnd.amazon.eventstream`) that SubscribeToShard
//! streams its events in: an incremental decoder that is fed body bytes as they arrive, and an
//! encoder used by tests. Also owns the CRC-32 (IEEE) both use.
//!
//! ```text
//! message = prelude | headers | payload | message_crc
//! prelude = total_length u32 BE | headers_length u32 BE
//!           | prelude_crc u32 BE (CRC-32 of the 8 bytes before it)
//! header  = name_length u8 | name | value_type u8 | value
//!           (0 true, 1 false, 2 i8, 3 i16, 4 i32, 5 i64, 6 bytes u16-len, 7 string u16-len,
//!            8 timestamp i64 ms, 9 uuid 16 bytes; integers big-endian)
//! message_crc = CRC-32 of everything before it
//! ```

use std::fmt;

/// AWS caps one event-stream message at 16 MiB; a larger length prefix means corruption.
pub const MESSAGE_LENGTH_MAX: usize = 16 * 1024 * 1024;
const PRELUDE_LENGTH: usize = 12;
const MESSAGE_LENGTH_MIN: usize = PRELUDE_LENGTH + 4;

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

/// CRC-32 (IEEE 802.3, as in zlib and the event-stream format).
pub fn crc32(data: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in data {
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xFF) as usize] ^ (c >> 8);
    }
    !c
}

#[derive(Clone, Debug, PartialEq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    Timestamp(i64),
    Uuid([u8; 16]),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// The value of a string header such as `:event-type`, `:message-type`, `:exception-type`.
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

#[derive(Debug, PartialEq)]
pub enum DecodeError {
    LengthOutOfRange(usize),
    PreludeChecksum,
    MessageChecksum,
    Header(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::LengthOutOfRange(n) => write!(f, "event-stream message length {n}"),
            DecodeError::PreludeChecksum => f.write_str("event-stream prelude CRC mismatch"),
            DecodeError::MessageChecksum => f.write_str("event-stream message CRC mismatch"),
            DecodeError::Header(what) => write!(f, "event-stream header: {what}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Accumulates body bytes and yields whole messages.
#[derive(Default)]
pub struct Decoder {
    buffer: Vec<u8>,
    start: usize,
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[..4].try_into().unwrap())
}

impl Decoder {
    pub fn new() -> Decoder {
        Decoder::default()
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.start > 0 && self.start == self.buffer.len() {
            self.buffer.clear();
            self.start = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes received but not yet returned as a message.
    pub fn buffered(&self) -> usize {
        self.buffer.len() - self.start
    }

    /// The next complete message, `Ok(None)` if more bytes are needed.
    pub fn next_message(&mut self) -> Result<Option<Message>, DecodeError> {
        let available = &self.buffer[self.start..];
        if available.len() < PRELUDE_LENGTH {
            return Ok(None);
        }
        // Check the prelude before trusting the lengths it carries.
        if crc32(&available[..8]) != be_u32(&available[8..]) {
            return Err(DecodeError::PreludeChecksum);
        }
        let total_length = be_u32(available) as usize;
        let headers_length = be_u32(&available[4..]) as usize;
        if !(MESSAGE_LENGTH_MIN..=MESSAGE_LENGTH_MAX).contains(&total_length)
            || headers_length > total_length - MESSAGE_LENGTH_MIN
        {
            return Err(DecodeError::LengthOutOfRange(total_length));
        }
        if available.len() < total_length {
            return Ok(None);
        }
        let message = &available[..total_length];
        if crc32(&message[..total_length - 4]) != be_u32(&message[total_length - 4..]) {
            return Err(DecodeError::MessageChecksum);
        }
        let headers_end = PRELUDE_LENGTH + headers_length;
        let headers = decode_headers(&message[PRELUDE_LENGTH..headers_end])?;
        let payload = message[headers_end..total_length - 4].to_vec();
        self.start += total_length;
        if self.start > 1 << 20 {
            self.buffer.drain(..self.start);
            self.start = 0;
        }
        Ok(Some(Message { headers, payload }))
    }
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if bytes.len() < n {
        return Err(DecodeError::Header("truncated"));
    }
    let (head, rest) = bytes.split_at(n);
    *bytes = rest;
    Ok(head)
}

fn decode_headers(mut bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, DecodeError> {
    let mut headers = Vec::new();
    while !bytes.is_empty() {
        let name_length = take(&mut bytes, 1)?[0] as usize;
        let name = std::str::from_utf8(take(&mut bytes, name_length)?)
            .map_err(|_| DecodeError::Header("name is not UTF-8"))?
            .to_string();
        let value = match take(&mut bytes, 1)?[0] {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(take(&mut bytes, 1)?[0] as i8),
            3 => HeaderValue::Short(i16::from_be_bytes(take(&mut bytes, 2)?.try_into().unwrap())),
            4 => HeaderValue::Int(i32::from_be_bytes(take(&mut bytes, 4)?.try_into().unwrap())),
            5 => HeaderValue::Long(i64::from_be_bytes(take(&mut bytes, 8)?.try_into().unwrap())),
            6 => {
                let length = u16::from_be_bytes(take(&mut bytes, 2)?.try_into().unwrap());
                HeaderValue::Bytes(take(&mut bytes, usize::from(length))?.to_vec())
            }
            7 => {
                let length = u16::from_be_bytes(take(&mut bytes, 2)?.try_into().unwrap());
                let raw = take(&mut bytes, usize::from(length))?;
                let text = std::str::from_utf8(raw)
                    .map_err(|_| DecodeError::Header("string value is not UTF-8"))?;
                HeaderValue::String(text.to_string())
            }
            8 => {
                HeaderValue::Timestamp(i64::from_be_bytes(take(&mut bytes, 8)?.try_into().unwrap()))
            }
            9 => HeaderValue::Uuid(take(&mut bytes, 16)?.try_into().unwrap()),
            _ => return Err(DecodeError::Header("unknown value type")),
        };
        headers.push((name, value));
    }
    Ok(headers)
}

/// Encodes one message (tests, and a reference for the server side).
pub fn encode(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut header_bytes = Vec::new();
    for (name, value) in headers {
        header_bytes.push(name.len() as u8);
        header_bytes.extend_from_slice(name.as_bytes());
        match value {
            HeaderValue::Bool(true) => header_bytes.push(0),
            HeaderValue::Bool(false) => header_bytes.push(1),
            HeaderValue::Byte(v) => {
                header_bytes.push(2);
                header_bytes.push(*v as u8);
            }
            HeaderValue::Short(v) => {
                header_bytes.push(3);
                header_bytes.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                header_bytes.push(4);
                header_bytes.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                header_bytes.push(5);
                header_bytes.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(v) => {
                header_bytes.push(6);
                header_bytes.extend_from_slice(&(v.len() as u16).to_be_bytes());
                header_bytes.extend_from_slice(v);
            }
            HeaderValue::String(v) => {
                header_bytes.push(7);
                header_bytes.extend_from_slice(&(v.len() as u16).to_be_bytes());
                header_bytes.extend_from_slice(v.as_bytes());
            }
            HeaderValue::Timestamp(v) => {
                header_bytes.push(8);
                header_bytes.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(v) => {
                header_bytes.push(9);
                header_bytes.extend_from_slice(v);
            }
        }
    }
    let total_length = PRELUDE_LENGTH + header_bytes.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total_length);
    out.extend_from_slice(&(total_length as u32).to_be_bytes());
    out.extend_from_slice(&(header_bytes.len() as u32).to_be_bytes());
    let prelude_crc = crc32(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&header_bytes);
    out.extend_from_slice(payload);
    let message_crc = crc32(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc32_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    /// Builds an `initial-response` message byte by byte, as a server would put it on the wire.
    fn hand_built_initial_response() -> Vec<u8> {
        let mut headers = Vec::new();
        for (name, value) in [(":event-type", "initial-response"), (":message-type", "event")] {
            headers.push(name.len() as u8);
            headers.extend_from_slice(name.as_bytes());
            headers.push(7);
            headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
            headers.extend_from_slice(value.as_bytes());
        }
        let payload = b"{}";
        let total = 12 + headers.len() + payload.len() + 4;
        let mut message = Vec::new();
        message.extend_from_slice(&(total as u32).to_be_bytes());
        message.extend_from_slice(&(headers.len() as u32).to_be_bytes());
        let prelude_crc = crc32(&message);
        message.extend_from_slice(&prelude_crc.to_be_bytes());
        message.extend_from_slice(&headers);
        message.extend_from_slice(payload);
        let message_crc = crc32(&message);
        message.extend_from_slice(&message_crc.to_be_bytes());
        message
    }

    #[test]
    fn decodes_hand_built_message_fed_byte_by_byte() {
        let bytes = hand_built_initial_response();
        // 12 prelude + 2 headers of (1 + 11 + 1 + 2 + 16) and (1 + 13 + 1 + 2 + 5) + 2 + 4.
        assert_eq!(bytes.len(), 12 + 31 + 22 + 2 + 4);
        let mut decoder = Decoder::new();
        for (i, b) in bytes.iter().enumerate() {
            assert_eq!(decoder.next_message().unwrap(), None, "complete too early at {i}");
            decoder.push(std::slice::from_ref(b));
        }
        let message = decoder.next_message().unwrap().unwrap();
        assert_eq!(message.header_str(":event-type"), Some("initial-response"));
        assert_eq!(message.header_str(":message-type"), Some("event"));
        assert_eq!(message.payload, b"{}");
        assert_eq!(decoder.buffered(), 0);
        assert_eq!(decoder.next_message().unwrap(), None);
    }

    #[test]
    fn decodes_consecutive_messages_and_all_header_types() {
        let headers = [
            ("t", HeaderValue::Bool(true)),
            ("f", HeaderValue::Bool(false)),
            ("b", HeaderValue::Byte(-3)),
            ("s", HeaderValue::Short(-300)),
            ("i", HeaderValue::Int(70_000)),
            ("l", HeaderValue::Long(-5_000_000_000)),
            ("y", HeaderValue::Bytes(vec![0, 1, 2])),
            (":event-type", HeaderValue::String("SubscribeToShardEvent".into())),
            ("ts", HeaderValue::Timestamp(1_700_000_000_000)),
            ("u", HeaderValue::Uuid([7; 16])),
        ];
        let payload = br#"{"Records":[],"ContinuationSequenceNumber":"1","MillisBehindLatest":0}"#;
        let mut stream = hand_built_initial_response();
        stream.extend(encode(&headers, payload));
        let mut decoder = Decoder::new();
        decoder.push(&stream);
        let first = decoder.next_message().unwrap().unwrap();
        assert_eq!(first.header_str(":event-type"), Some("initial-response"));
        let second = decoder.next_message().unwrap().unwrap();
        assert_eq!(second.payload, payload);
        let expected: Vec<(String, HeaderValue)> =
            headers.iter().map(|(n, v)| (n.to_string(), v.clone())).collect();
        assert_eq!(second.headers, expected);
        assert_eq!(decoder.next_message().unwrap(), None);
    }

    #[test]
    fn rejects_corruption() {
        let mut bytes = hand_built_initial_response();
        let last = bytes.len() - 5;
        bytes[last] ^= 1;
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        assert_eq!(decoder.next_message(), Err(DecodeError::MessageChecksum));

        let mut bytes = hand_built_initial_response();
        bytes[3] ^= 1;
        let mut decoder = Decoder::new();
        decoder.push(&bytes);
        assert_eq!(decoder.next_message(), Err(DecodeError::PreludeChecksum));
    }
}
