//! Standard base64 (RFC 4648 alphabet, `=` padding): encoding for blob members in responses
//! and the strict decoding AWS applies to blob members in requests. Decoding reports the same
//! three failure classes AWS distinguishes (length not a multiple of 4, an invalid character,
//! non-canonical trailing bits) so callers can reproduce AWS's `SerializationException` text.

use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Decoding table: the 6-bit value of each alphabet byte, `INVALID` for anything else.
const INVALID: u8 = 0xFF;
const DECODE: [u8; 256] = {
    let mut table = [INVALID; 256];
    let mut i = 0;
    while i < 64 {
        table[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    table
};

/// Why a base64 string was rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The length (in UTF-16 code units, as Java counts it) is not a multiple of 4.
    InvalidLength(usize),
    /// A character outside the alphabet, or a `=` followed by something other than `=`.
    InvalidCharacter(char),
    /// The last symbol carries non-zero padding bits, or there are more than two `=`.
    InvalidLastSymbol,
}

impl DecodeError {
    /// The message AWS returns (inside a `SerializationException`) for a blob member whose
    /// value `input` failed to decode. The misspelling "dectected" is AWS's own.
    pub fn aws_message(&self, input: &str) -> String {
        match self {
            DecodeError::InvalidLength(n) => format!(
                "'{input}' can not be converted to a Blob: Base64 encoded length is expected a \
                 multiple of 4 bytes but found: {n}"
            ),
            DecodeError::InvalidCharacter(c) => {
                format!("'{input}' can not be converted to a Blob: Invalid Base64 character: '{c}'")
            }
            DecodeError::InvalidLastSymbol => format!(
                "'{input}' can not be converted to a Blob: Invalid last non-pad Base64 character \
                 dectected"
            ),
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::InvalidLength(n) => {
                write!(f, "base64 length {n} is not a multiple of 4")
            }
            DecodeError::InvalidCharacter(c) => write!(f, "invalid base64 character {c:?}"),
            DecodeError::InvalidLastSymbol => write!(f, "invalid last non-pad base64 character"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// Length of the padded encoding of `n` bytes.
pub const fn encoded_len(n: usize) -> usize {
    n.div_ceil(3).saturating_mul(4)
}

/// Every pair of input bytes (first byte low) as the 12 bits its two characters decode to, or
/// 0x8000 if either is not in the alphabet.
static DECODE_PAIRS: [u16; 65536] = {
    let mut table = [0u16; 65536];
    let mut i = 0;
    while i < 65536 {
        let (first, second) = (DECODE[i & 0xFF], DECODE[i >> 8]);
        table[i] = if first == INVALID || second == INVALID {
            0x8000
        } else {
            ((first as u16) << 6) | second as u16
        };
        i += 1;
    }
    table
};

/// Every 12-bit value as its two base64 characters.
static ENCODE_PAIRS: [[u8; 2]; 4096] = {
    let mut table = [[0u8; 2]; 4096];
    let mut i = 0;
    while i < 4096 {
        table[i] = [ALPHABET[i >> 6], ALPHABET[i & 63]];
        i += 1;
    }
    table
};

/// Encodes `input` as padded standard base64.
pub fn encode(input: &[u8]) -> String {
    let mut out = Vec::with_capacity(encoded_len(input.len()));
    encode_to_vec(input, &mut out);
    // Every byte pushed comes from the ASCII alphabet or is `=`.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends the padded standard base64 encoding of `input` to `out`.
pub fn encode_to_vec(input: &[u8], out: &mut Vec<u8>) {
    // Size once and fill in place: no capacity check per quad.
    let start = out.len();
    let full = input.len() / 3;
    out.resize(start + full * 4, 0);
    let mut chunks = input.chunks_exact(3);
    for (c, d) in (&mut chunks).zip(out[start..].chunks_exact_mut(4)) {
        let n = (usize::from(c[0]) << 16) | (usize::from(c[1]) << 8) | usize::from(c[2]);
        // Two output characters per lookup (12 bits each).
        d[0..2].copy_from_slice(&ENCODE_PAIRS[n >> 12]);
        d[2..4].copy_from_slice(&ENCODE_PAIRS[n & 0xFFF]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = (u32::from(a) << 16) | (u32::from(b) << 8);
            out.extend_from_slice(&[
                ALPHABET[(n >> 18) as usize & 63],
                ALPHABET[(n >> 12) as usize & 63],
                ALPHABET[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// Length in UTF-16 code units (what `java.lang.String#length` reports).
pub(crate) fn utf16_len(s: &str) -> usize {
    if s.is_ascii() { s.len() } else { s.encode_utf16().count() }
}

/// Strictly decodes padded standard base64, checking in the order AWS does: length first, then
/// the first invalid character, then canonical trailing bits.
pub fn decode(input: &str) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    decode_inner(input, Some(&mut out))?;
    Ok(out)
}

/// Runs [`decode`]'s checks without producing output.
pub fn decode_check(input: &str) -> Result<(), DecodeError> {
    decode_inner(input, None)
}

fn decode_inner(input: &str, mut out: Option<&mut Vec<u8>>) -> Result<(), DecodeError> {
    let len = utf16_len(input);
    if len % 4 != 0 {
        return Err(DecodeError::InvalidLength(len));
    }
    let bytes = input.as_bytes();
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &bytes[..bytes.len() - pad];
    // Fast path: decode and validate in one pass; only a bad input takes the slow path below,
    // which finds the first offending character the way AWS reports it.
    if pad <= 2 && input.is_ascii() {
        if let Some(out) = out.as_deref_mut() {
            let full = body.len() / 4 * 4;
            let start = out.len();
            out.resize(start + full / 4 * 3, 0);
            let mut bad = 0u16;
            for (q, d) in body[..full].chunks_exact(4).zip(out[start..].chunks_exact_mut(3)) {
                // Two input characters per lookup (12 bits each; invalid pairs set bit 15).
                let high = DECODE_PAIRS[usize::from(u16::from_le_bytes([q[0], q[1]]))];
                let low = DECODE_PAIRS[usize::from(u16::from_le_bytes([q[2], q[3]]))];
                bad |= high | low;
                let n = (u32::from(high) << 12) | u32::from(low);
                d[0] = (n >> 16) as u8;
                d[1] = (n >> 8) as u8;
                d[2] = n as u8;
            }
            let tail_bad = body[full..].iter().any(|&b| DECODE[b as usize] == INVALID);
            if bad & 0x8000 == 0 && !tail_bad {
                return decode_tail(&body[full..], Some(out));
            }
            out.truncate(start);
        }
    }
    if !input.is_ascii() || body.iter().any(|&b| DECODE[b as usize] == INVALID) {
        // Slow path: report the first offending character the way AWS does.
        let mut chars = input.chars().peekable();
        while let Some(c) = chars.next() {
            let in_alphabet = c.is_ascii() && DECODE[c as usize] != INVALID;
            if !in_alphabet && c != '=' {
                return Err(DecodeError::InvalidCharacter(c));
            }
            if c == '=' && chars.peek().is_some_and(|&next| next != '=') {
                return Err(DecodeError::InvalidCharacter('='));
            }
        }
    }
    // Only alphabet characters followed by a (possibly empty) run of '=' remain.
    if pad > 2 {
        return Err(DecodeError::InvalidLastSymbol);
    }
    let full = body.len() / 4 * 4;
    if let Some(out) = out.as_deref_mut() {
        // Size once, then fill in place: no capacity check per quad.
        let start = out.len();
        out.resize(start + full / 4 * 3, 0);
        for (q, d) in body[..full].chunks_exact(4).zip(out[start..].chunks_exact_mut(3)) {
            let n = (u32::from(DECODE[q[0] as usize]) << 18)
                | (u32::from(DECODE[q[1] as usize]) << 12)
                | (u32::from(DECODE[q[2] as usize]) << 6)
                | u32::from(DECODE[q[3] as usize]);
            d[0] = (n >> 16) as u8;
            d[1] = (n >> 8) as u8;
            d[2] = n as u8;
        }
    }
    decode_tail(&body[full..], out)
}

/// Decodes the last 0, 2 or 3 symbols (before padding) and checks their unused bits.
fn decode_tail(rest: &[u8], out: Option<&mut Vec<u8>>) -> Result<(), DecodeError> {
    match *rest {
        [] => {}
        [a, b] => {
            let (a, b) = (DECODE[a as usize], DECODE[b as usize]);
            if b & 0x0F != 0 {
                return Err(DecodeError::InvalidLastSymbol);
            }
            if let Some(out) = out {
                out.push((a << 2) | (b >> 4));
            }
        }
        [a, b, c] => {
            let (a, b, c) = (DECODE[a as usize], DECODE[b as usize], DECODE[c as usize]);
            if c & 0x03 != 0 {
                return Err(DecodeError::InvalidLastSymbol);
            }
            if let Some(out) = out {
                out.push((a << 2) | (b >> 4));
                out.push((b << 4) | (c >> 2));
            }
        }
        // A single trailing symbol cannot carry a whole byte.
        _ => return Err(DecodeError::InvalidLastSymbol),
    }
    Ok(())
}
/// Number of bytes `input` decodes to, assuming it already passed [`decode`]'s checks.
pub(crate) fn decoded_len_unchecked(input: &str) -> usize {
    let bytes = input.as_bytes();
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count().min(2);
    (bytes.len() / 4 * 3).saturating_sub(pad)
}

/// `#[serde(with = "crate::base64::blob")]` for `bytes::Bytes` fields carried as base64 text.
pub mod blob {
    use bytes::Bytes;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serializes bytes as a padded base64 string.
    pub fn serialize<S: Serializer>(data: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::encode(data))
    }

    /// Deserializes a padded base64 string into bytes (strict).
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::decode(&s).map(Bytes::from).map_err(|e| serde::de::Error::custom(e.aws_message(&s)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors() {
        let cases: [(&[u8], &str); 7] = [
            (b"", ""),
            (b"f", "Zg=="),
            (b"fo", "Zm8="),
            (b"foo", "Zm9v"),
            (b"foob", "Zm9vYg=="),
            (b"fooba", "Zm9vYmE="),
            (b"foobar", "Zm9vYmFy"),
        ];
        for (raw, enc) in cases {
            assert_eq!(encode(raw), enc);
            assert_eq!(decode(enc).unwrap(), raw);
            assert_eq!(decoded_len_unchecked(enc), raw.len());
            assert_eq!(encoded_len(raw.len()), enc.len());
        }
    }

    #[test]
    fn all_bytes_round_trip() {
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        for n in 0..data.len() {
            let e = encode(&data[..n]);
            assert_eq!(decode(&e).unwrap(), &data[..n]);
        }
    }

    #[test]
    fn aws_error_classes() {
        // Examples from AWS responses recorded by kinesalite's test suite.
        assert_eq!(decode("23456"), Err(DecodeError::InvalidLength(5)));
        assert_eq!(
            DecodeError::InvalidLength(5).aws_message("23456"),
            "'23456' can not be converted to a Blob: Base64 encoded length is expected a \
             multiple of 4 bytes but found: 5"
        );
        assert_eq!(decode("=+/="), Err(DecodeError::InvalidCharacter('=')));
        assert_eq!(
            decode("=+/=").unwrap_err().aws_message("=+/="),
            "'=+/=' can not be converted to a Blob: Invalid Base64 character: '='"
        );
        assert_eq!(decode("+/+="), Err(DecodeError::InvalidLastSymbol));
        assert_eq!(
            decode("+/+=").unwrap_err().aws_message("+/+="),
            "'+/+=' can not be converted to a Blob: Invalid last non-pad Base64 character \
             dectected"
        );
        assert_eq!(decode("ab!d"), Err(DecodeError::InvalidCharacter('!')));
        assert_eq!(decode("abé="), Err(DecodeError::InvalidCharacter('é')));
        assert_eq!(decode("Zg=a"), Err(DecodeError::InvalidCharacter('=')));
        assert_eq!(decode("A==="), Err(DecodeError::InvalidLastSymbol));
        assert_eq!(decode("===="), Err(DecodeError::InvalidLastSymbol));
        assert_eq!(decode("Zh=="), Err(DecodeError::InvalidLastSymbol));
        assert_eq!(decode("Zm9="), Err(DecodeError::InvalidLastSymbol));
        assert_eq!(decode("Zm8="), Ok(b"fo".to_vec()));
        // UTF-16 length: one astral char counts as 2 units.
        assert_eq!(decode("ab\u{1F600}"), Err(DecodeError::InvalidCharacter('\u{1F600}')));
        assert_eq!(decode("a\u{1F600}"), Err(DecodeError::InvalidLength(3)));
    }
}
