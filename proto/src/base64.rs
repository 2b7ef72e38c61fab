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

/// Appends the padded standard base64 encoding of `input` to `out`: SIMD (AVX2/SSSE3, chosen at
/// run time) through `base64-simd`, written into `out`'s spare capacity without zero-filling.
pub fn encode_to_vec(input: &[u8], out: &mut Vec<u8>) {
    base64_simd::STANDARD.encode_append(input, out);
}

/// Appends the padded standard base64 encoding of `input` to `out` (SIMD, like
/// [`encode_to_vec`]).
pub fn encode_into(input: &[u8], out: &mut String) {
    base64_simd::STANDARD.encode_append(input, out);
}

/// Encodes `input` as padded standard base64.
pub fn encode(input: &[u8]) -> String {
    base64_simd::STANDARD.encode_to_string(input)
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
    if !len.is_multiple_of(4) {
        return Err(DecodeError::InvalidLength(len));
    }
    let bytes = input.as_bytes();
    let pad = bytes.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &bytes[..bytes.len() - pad];
    // Fast path: decode and validate in one pass; only a bad input takes the slow path below,
    // which finds the first offending character the way AWS reports it.
    if pad <= 2
        && input.is_ascii()
        && let Some(out) = out.as_deref_mut()
    {
        let full = body.len() / 4 * 4;
        let start = out.len();
        // Whole quads carry no padding, so the SIMD decoder's strict checks are exactly
        // "every character is in the alphabet"; the tail keeps the canonical-bits check.
        let tail_bad = body[full..].iter().any(|&b| DECODE[b as usize] == INVALID);
        if !tail_bad && base64_simd::STANDARD.decode_append(&body[..full], out).is_ok() {
            return decode_tail(&body[full..], Some(out));
        }
        out.truncate(start);
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

/// Number of bytes `input` decodes to, assuming it is valid padded base64 (what [`decode`]
/// accepts); nothing is checked.
pub fn decoded_len(input: &str) -> usize {
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
            assert_eq!(decoded_len(enc), raw.len());
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

    /// The SIMD encoder and decoder against a bit-by-bit reference, across lengths that hit
    /// every vector width and tail, and a bad character at every position of long inputs.
    #[test]
    fn simd_matches_reference() {
        fn reference(data: &[u8]) -> String {
            let mut bits = String::new();
            for b in data {
                bits.push_str(&format!("{b:08b}"));
            }
            while !bits.len().is_multiple_of(6) {
                bits.push('0');
            }
            let mut out: String = (0..bits.len() / 6)
                .map(|i| {
                    ALPHABET[usize::from_str_radix(&bits[i * 6..i * 6 + 6], 2).unwrap()] as char
                })
                .collect();
            while !out.len().is_multiple_of(4) {
                out.push('=');
            }
            out
        }
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let data: Vec<u8> = (0..300)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for n in 0..data.len() {
            let e = encode(&data[..n]);
            assert_eq!(e, reference(&data[..n]), "length {n}");
            let mut appended = b"prefix".to_vec();
            encode_to_vec(&data[..n], &mut appended);
            assert_eq!(&appended[6..], e.as_bytes());
            let mut appended = String::from("prefix");
            encode_into(&data[..n], &mut appended);
            assert_eq!(&appended[6..], e);
            assert_eq!(decode(&e).unwrap(), &data[..n]);
        }
        let good = encode(&data[..240]);
        for at in 0..good.len() {
            for bad in ['*', '=', '-', '\u{e9}'] {
                let mut s = good.clone();
                s.replace_range(at..at + 1, &bad.to_string());
                let expected = if bad == '\u{e9}' {
                    // Two bytes but one UTF-16 unit: the length check still passes.
                    DecodeError::InvalidCharacter(bad)
                } else if bad == '=' && at == good.len() - 1 {
                    // A trailing pad on a full final quad: its last symbol is gone.
                    DecodeError::InvalidLastSymbol
                } else {
                    DecodeError::InvalidCharacter(bad)
                };
                assert_eq!(decode(&s), Err(expected), "{bad:?} at {at}");
            }
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
