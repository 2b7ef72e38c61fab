//! Shard iterators: opaque, authenticated, expiring tokens.
//!
//! A token is base64 of `version (1) | incarnation (u64) | shard index (u32) | offset (u64) |
//! issued_ms (i64) | nonce (u32)`, little-endian, followed by a 16-byte HMAC-MD5 of those bytes
//! under a per-node secret kept in `<data-dir>/node.key`. Tampered tokens fail the MAC; tokens
//! older than 5 minutes are expired; a token names its stream's incarnation, so it stops
//! working when the stream is deleted and recreated under the same name.

use std::cell::Cell;

use spate_proto::limits::ITERATOR_LIFETIME_MS;

const VERSION: u8 = 1;
const BODY_BYTES: usize = 1 + 8 + 4 + 8 + 8 + 4;
const MAC_BYTES: usize = 16;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IteratorToken {
    pub incarnation: u64,
    pub shard_index: u32,
    pub offset: u64,
    pub issued_ms: i64,
}

pub struct IteratorKeys {
    key: [u8; 32],
    nonce: Cell<u32>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum IteratorError {
    /// Not a token we issued (bad encoding or MAC).
    Invalid,
    /// Issued more than 5 minutes ago.
    Expired { issued_ms: i64 },
}

fn hmac_md5(key: &[u8; 32], message: &[u8]) -> [u8; 16] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let mut inner = md5::Context::new();
    inner.consume(block.map(|b| b ^ 0x36));
    inner.consume(message);
    let inner = inner.compute();
    let mut outer = md5::Context::new();
    outer.consume(block.map(|b| b ^ 0x5c));
    outer.consume(inner.0);
    outer.compute().0
}

impl IteratorKeys {
    pub fn new(key: [u8; 32]) -> IteratorKeys {
        IteratorKeys { key, nonce: Cell::new(0) }
    }

    pub fn encode(&self, token: IteratorToken) -> String {
        let nonce = self.nonce.get().wrapping_add(1);
        self.nonce.set(nonce);
        let mut bytes = Vec::with_capacity(BODY_BYTES + MAC_BYTES);
        bytes.push(VERSION);
        bytes.extend_from_slice(&token.incarnation.to_le_bytes());
        bytes.extend_from_slice(&token.shard_index.to_le_bytes());
        bytes.extend_from_slice(&token.offset.to_le_bytes());
        bytes.extend_from_slice(&token.issued_ms.to_le_bytes());
        bytes.extend_from_slice(&nonce.to_le_bytes());
        let mac = hmac_md5(&self.key, &bytes);
        bytes.extend_from_slice(&mac);
        spate_proto::base64::encode(&bytes)
    }

    pub fn decode(&self, text: &str, now_ms: i64) -> Result<IteratorToken, IteratorError> {
        let bytes = spate_proto::base64::decode(text).map_err(|_| IteratorError::Invalid)?;
        if bytes.len() != BODY_BYTES + MAC_BYTES || bytes[0] != VERSION {
            return Err(IteratorError::Invalid);
        }
        let (body, mac) = bytes.split_at(BODY_BYTES);
        let expected = hmac_md5(&self.key, body);
        // Constant-time comparison.
        if mac.iter().zip(expected.iter()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) != 0 {
            return Err(IteratorError::Invalid);
        }
        let token = IteratorToken {
            incarnation: u64::from_le_bytes(body[1..9].try_into().unwrap()),
            shard_index: u32::from_le_bytes(body[9..13].try_into().unwrap()),
            offset: u64::from_le_bytes(body[13..21].try_into().unwrap()),
            issued_ms: i64::from_le_bytes(body[21..29].try_into().unwrap()),
        };
        if now_ms - token.issued_ms > ITERATOR_LIFETIME_MS {
            return Err(IteratorError::Expired { issued_ms: token.issued_ms });
        }
        Ok(token)
    }
}

/// Loads the node secret from `path`, creating it from /dev/urandom on first start.
pub fn load_or_create_key(path: &std::path::Path) -> std::io::Result<[u8; 32]> {
    use std::io::{Read, Write};
    if let Ok(bytes) = std::fs::read(path)
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut key)?;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(&key)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_tamper_and_expiry() {
        let keys = IteratorKeys::new([7; 32]);
        let token = IteratorToken { incarnation: 5, shard_index: 2, offset: 99, issued_ms: 1000 };
        let a = keys.encode(token);
        let b = keys.encode(token);
        assert_ne!(a, b, "a new token every time");
        assert!(a.len() <= 512);
        assert_eq!(keys.decode(&a, 1000 + ITERATOR_LIFETIME_MS), Ok(token));
        assert_eq!(
            keys.decode(&a, 1001 + ITERATOR_LIFETIME_MS),
            Err(IteratorError::Expired { issued_ms: 1000 })
        );
        let mut raw = spate_proto::base64::decode(&a).unwrap();
        raw[14] ^= 1;
        assert_eq!(
            keys.decode(&spate_proto::base64::encode(&raw), 1000),
            Err(IteratorError::Invalid)
        );
        assert_eq!(keys.decode("not base64!", 1000), Err(IteratorError::Invalid));
        let other = IteratorKeys::new([8; 32]);
        assert_eq!(other.decode(&a, 1000), Err(IteratorError::Invalid));
    }
}
