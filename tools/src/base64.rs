//! Standard base64 (RFC 4648, `+/` alphabet, `=` padding): the encoding of every Kinesis blob
//! (`Data`) on the JSON wire. Kept local because it is forty lines and sits on the harness's hot
//! path, where [`encode_prefix_into`] lets producers reuse one pre-encoded filler for every record.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Number of base64 characters for `length_bytes` input bytes, padding included.
pub fn encoded_len(length_bytes: usize) -> usize {
    length_bytes.div_ceil(3) * 4
}

/// Number of bytes that `encoded` decodes to (it must be padded base64).
pub fn decoded_len(encoded: &[u8]) -> usize {
    let padding = encoded.iter().rev().take(2).filter(|&&c| c == b'=').count();
    (encoded.len() / 4 * 3).saturating_sub(padding)
}

pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(encoded_len(input.len()));
    encode_into(input, &mut out);
    out
}

/// Appends the base64 encoding of `input` to `out`.
pub fn encode_into(input: &[u8], out: &mut String) {
    let mut chunks = input.chunks_exact(3);
    for chunk in &mut chunks {
        let n = (u32::from(chunk[0]) << 16) | (u32::from(chunk[1]) << 8) | u32::from(chunk[2]);
        for shift in [18, 12, 6, 0] {
            out.push(ALPHABET[(n >> shift & 63) as usize] as char);
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let b1 = rest.get(1).copied().unwrap_or(0);
        let n = (u32::from(rest[0]) << 16) | (u32::from(b1) << 8);
        out.push(ALPHABET[(n >> 18 & 63) as usize] as char);
        out.push(ALPHABET[(n >> 12 & 63) as usize] as char);
        out.push(if rest.len() == 2 { ALPHABET[(n >> 6 & 63) as usize] as char } else { '=' });
        out.push('=');
    }
}

/// Appends the encoding of `source[..length_bytes]` to `out`, given `source_encoded`, the
/// encoding of all of `source`. Whole 3-byte groups are copied from `source_encoded`; only the
/// last one or two bytes are encoded here. This makes a record of any size a memcpy.
pub fn encode_prefix_into(
    source: &[u8],
    source_encoded: &str,
    length_bytes: usize,
    out: &mut String,
) {
    assert!(length_bytes <= source.len());
    assert_eq!(source_encoded.len(), encoded_len(source.len()));
    let whole = length_bytes / 3;
    out.push_str(&source_encoded[..whole * 4]);
    encode_into(&source[whole * 3..length_bytes], out);
}

#[derive(Debug, PartialEq, Eq)]
pub struct DecodeError;

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid base64")
    }
}

fn value_of(c: u8) -> Result<u32, DecodeError> {
    match c {
        b'A'..=b'Z' => Ok(u32::from(c - b'A')),
        b'a'..=b'z' => Ok(u32::from(c - b'a') + 26),
        b'0'..=b'9' => Ok(u32::from(c - b'0') + 52),
        b'+' => Ok(62),
        b'/' => Ok(63),
        _ => Err(DecodeError),
    }
}

/// Decodes padded or unpadded base64.
pub fn decode(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    let trimmed = match input {
        [rest @ .., b'=', b'='] | [rest @ .., b'='] => rest,
        _ => input,
    };
    if trimmed.len() % 4 == 1 {
        return Err(DecodeError);
    }
    let mut out = Vec::with_capacity(trimmed.len() / 4 * 3 + 2);
    for group in trimmed.chunks(4) {
        let mut n = 0u32;
        for (i, &c) in group.iter().enumerate() {
            n |= value_of(c)? << (18 - 6 * i);
        }
        let bytes = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&bytes[..group.len() - 1]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_rfc4648_vectors() {
        let cases = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, encoded) in cases {
            assert_eq!(encode(plain.as_bytes()), encoded);
            assert_eq!(decode(encoded.as_bytes()).unwrap(), plain.as_bytes());
            assert_eq!(decoded_len(encoded.as_bytes()), plain.len());
        }
        assert_eq!(decode(b"Zm9vYg").unwrap(), b"foob");
        assert!(decode(b"Zm9v!").is_err());
    }

    #[test]
    fn prefix_encoding_matches_full_encoding() {
        let source: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let encoded = encode(&source);
        for length in [0, 1, 2, 3, 4, 5, 299, 300, 301, 1000] {
            let mut out = String::new();
            encode_prefix_into(&source, &encoded, length, &mut out);
            assert_eq!(out, encode(&source[..length]), "length {length}");
        }
    }
}
