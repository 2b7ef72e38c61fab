//! What the producers send: record-size and partition-key distributions, the 24-byte record
//! header that lets consumers recognise and time the harness's own records, and the request body
//! builder. Bodies are assembled by hand from a pre-encoded filler so that producing costs a
//! memcpy per record, not a base64 pass.
//!
//! ```text
//! header = magic "SPT1" | run_id u32 LE | record_id u64 LE | send_time u64 LE (ns since epoch)
//! record_id = producer_index << 48 | sequence within that producer
//! ```
//! 24 bytes is a multiple of 3, so base64(header ++ filler) = base64(header) ++ base64(filler).

use std::fmt;
use std::sync::Arc;

use spate_proto::base64;
use spate_proto::limits::{PUT_RECORDS_BYTES_MAX, PUT_RECORDS_ENTRIES_MAX, RECORD_DATA_BYTES_MAX};

use crate::rng::{Rng, Zipf};

pub const MAGIC: [u8; 4] = *b"SPT1";
pub const HEADER_LENGTH: usize = 24;
/// Base64 characters of the header.
pub const HEADER_ENCODED_LENGTH: usize = 32;
pub const PRODUCER_SHIFT: u32 = 48;
pub const PRODUCERS_MAX: usize = 1 << 16;
const _: () = assert!(HEADER_LENGTH.is_multiple_of(3));
const _: () = assert!(HEADER_ENCODED_LENGTH == HEADER_LENGTH / 3 * 4);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub run_id: u32,
    pub record_id: u64,
    pub send_epoch_ns: u64,
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LENGTH] {
        let mut out = [0u8; HEADER_LENGTH];
        out[..4].copy_from_slice(&MAGIC);
        out[4..8].copy_from_slice(&self.run_id.to_le_bytes());
        out[8..16].copy_from_slice(&self.record_id.to_le_bytes());
        out[16..24].copy_from_slice(&self.send_epoch_ns.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Option<Header> {
        if bytes.len() < HEADER_LENGTH || bytes[..4] != MAGIC {
            return None;
        }
        Some(Header {
            run_id: u32::from_le_bytes(bytes[4..8].try_into().unwrap()),
            record_id: u64::from_le_bytes(bytes[8..16].try_into().unwrap()),
            send_epoch_ns: u64::from_le_bytes(bytes[16..24].try_into().unwrap()),
        })
    }

    /// Decodes the header from the start of a base64 `Data` field without decoding the rest.
    pub fn decode_base64(data: &str) -> Option<Header> {
        let prefix = data.get(..HEADER_ENCODED_LENGTH)?;
        Header::decode(&base64::decode(prefix).ok()?)
    }
}

/// Parses `512`, `1KiB`, `1k`, `2MiB`, `1m` into bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let number: usize =
        text[..split].parse().map_err(|_| format!("bad size {text:?}: use e.g. 1024 or 1KiB"))?;
    let multiplier = match text[split..].to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1024,
        "m" | "mb" | "mib" => 1024 * 1024,
        _ => return Err(format!("bad size unit in {text:?}: use B, KiB or MiB")),
    };
    number.checked_mul(multiplier).ok_or_else(|| format!("size {text:?} too large"))
}

#[derive(Clone, Debug, PartialEq)]
pub enum SizeDistribution {
    Fixed(usize),
    Uniform { low: usize, high: usize },
}

impl SizeDistribution {
    /// `1024`, `1KiB`, `fixed:1024` or `uniform:100-2000`.
    pub fn parse(text: &str) -> Result<SizeDistribution, String> {
        let distribution = if let Some(range) = text.strip_prefix("uniform:") {
            let (low, high) = range
                .split_once('-')
                .ok_or_else(|| format!("bad size range {text:?}: use uniform:LOW-HIGH"))?;
            let (low, high) = (parse_size(low)?, parse_size(high)?);
            if low > high {
                return Err(format!("bad size range {text:?}: low above high"));
            }
            SizeDistribution::Uniform { low, high }
        } else {
            SizeDistribution::Fixed(parse_size(text.strip_prefix("fixed:").unwrap_or(text))?)
        };
        let (low, high) = distribution.bounds();
        if low < HEADER_LENGTH {
            return Err(format!(
                "record size {low} is below the {HEADER_LENGTH}-byte header every bench \
                 record carries"
            ));
        }
        if high > RECORD_DATA_BYTES_MAX {
            return Err(format!("record size {high} is above the Kinesis limit of 1 MiB"));
        }
        Ok(distribution)
    }

    pub fn bounds(&self) -> (usize, usize) {
        match *self {
            SizeDistribution::Fixed(n) => (n, n),
            SizeDistribution::Uniform { low, high } => (low, high),
        }
    }

    pub fn mean(&self) -> f64 {
        let (low, high) = self.bounds();
        (low + high) as f64 / 2.0
    }

    pub fn sample(&self, rng: &mut Rng) -> usize {
        match *self {
            SizeDistribution::Fixed(n) => n,
            SizeDistribution::Uniform { low, high } => {
                rng.range_inclusive(low as u64, high as u64) as usize
            }
        }
    }
}

impl fmt::Display for SizeDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeDistribution::Fixed(n) => write!(f, "{n}"),
            SizeDistribution::Uniform { low, high } => write!(f, "uniform:{low}-{high}"),
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum KeyDistribution {
    /// A fresh random 64-bit key per record: spreads evenly over the hash-key space.
    Uniform,
    /// `key_count` keys with Zipf-distributed popularity of exponent `s`: hot shards.
    Zipf(f64),
    /// One key: every record goes to one shard.
    Single,
}

impl KeyDistribution {
    pub fn parse(text: &str) -> Result<KeyDistribution, String> {
        match text {
            "uniform" | "random" => Ok(KeyDistribution::Uniform),
            "single" => Ok(KeyDistribution::Single),
            _ => {
                let exponent = text
                    .strip_prefix("zipf:")
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .ok_or_else(|| {
                        format!("bad key distribution {text:?}: use uniform, zipf:S or single")
                    })?;
                Ok(KeyDistribution::Zipf(exponent))
            }
        }
    }
}

impl fmt::Display for KeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDistribution::Uniform => f.write_str("uniform"),
            KeyDistribution::Zipf(s) => write!(f, "zipf:{s}"),
            KeyDistribution::Single => f.write_str("single"),
        }
    }
}

/// Draws partition keys.
pub struct KeySource {
    distribution: KeyDistribution,
    keys: Arc<Vec<String>>,
    zipf: Option<Arc<Zipf>>,
}

impl KeySource {
    pub fn new(distribution: &KeyDistribution, key_count: usize) -> KeySource {
        let (keys, zipf) = match distribution {
            KeyDistribution::Zipf(s) => (
                (0..key_count).map(|i| format!("key-{i}")).collect(),
                Some(Arc::new(Zipf::new(key_count, *s))),
            ),
            _ => (vec!["key-0".to_string()], None),
        };
        KeySource { distribution: distribution.clone(), keys: Arc::new(keys), zipf }
    }

    /// A cheap copy for another producer thread.
    pub fn share(&self) -> KeySource {
        KeySource {
            distribution: self.distribution.clone(),
            keys: Arc::clone(&self.keys),
            zipf: self.zipf.clone(),
        }
    }

    /// Appends the next key to `out` (keys are `[0-9a-z-]`, so no JSON escaping is needed).
    pub fn push_key(&self, rng: &mut Rng, out: &mut String) {
        match &self.distribution {
            KeyDistribution::Uniform => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                let x = rng.next_u64();
                for shift in (0..16).rev() {
                    out.push(HEX[(x >> (shift * 4) & 15) as usize] as char);
                }
            }
            KeyDistribution::Single => out.push_str(&self.keys[0]),
            KeyDistribution::Zipf(_) => {
                let zipf = self.zipf.as_ref().expect("zipf sampler");
                out.push_str(&self.keys[zipf.sample(rng)]);
            }
        }
    }
}

/// Random filler shared by all producers, with its base64 encoding.
pub struct Filler {
    bytes: Vec<u8>,
    encoded: String,
}

impl Filler {
    pub fn new(length: usize, seed: u64) -> Filler {
        let mut bytes = vec![0u8; length];
        Rng::new(seed).fill(&mut bytes);
        let encoded = base64::encode(&bytes);
        Filler { bytes, encoded }
    }
}

/// Checks a batch shape against the PutRecords limits.
pub fn check_batch(batch_size: usize, sizes: &SizeDistribution) -> Result<(), String> {
    if batch_size == 0 || batch_size > PUT_RECORDS_ENTRIES_MAX {
        return Err(format!("--batch-size must be 1..={PUT_RECORDS_ENTRIES_MAX}"));
    }
    // Keys are at most 16 bytes here and count against the 5 MiB limit too.
    let worst = batch_size * (sizes.bounds().1 + 16);
    if worst > PUT_RECORDS_BYTES_MAX {
        return Err(format!(
            "a batch of {batch_size} records of up to {} bytes may exceed the 5 MiB \
             PutRecords limit",
            sizes.bounds().1
        ));
    }
    Ok(())
}

/// Appends the base64 of `source[..length_bytes]` to `out`, given `source_encoded`, the base64
/// of all of `source`. Whole 3-byte groups are copied from `source_encoded`; only the last one or
/// two bytes are encoded here. This makes a record of any size a memcpy.
fn encode_prefix_into(source: &[u8], source_encoded: &str, length_bytes: usize, out: &mut String) {
    assert!(length_bytes <= source.len());
    assert_eq!(source_encoded.len(), base64::encoded_len(source.len()));
    let whole = length_bytes / 3;
    out.push_str(&source_encoded[..whole * 4]);
    base64::encode_into(&source[whole * 3..length_bytes], out);
}

/// Builds PutRecord and PutRecords bodies into a reused buffer.
pub struct BodyBuilder {
    stream_json: String,
    filler: Arc<Filler>,
    pub body: String,
}

impl BodyBuilder {
    pub fn new(stream: &str, filler: Arc<Filler>) -> BodyBuilder {
        BodyBuilder {
            stream_json: serde_json::to_string(stream).expect("a string serializes"),
            filler,
            body: String::new(),
        }
    }

    fn push_data(&mut self, header: &Header, size: usize) {
        base64::encode_into(&header.encode(), &mut self.body);
        let filler = &self.filler;
        encode_prefix_into(&filler.bytes, &filler.encoded, size - HEADER_LENGTH, &mut self.body);
    }

    /// A PutRecords body with one entry per `(header, size)`; keys come from `keys`.
    pub fn put_records(
        &mut self,
        records: &[(Header, usize)],
        keys: &KeySource,
        rng: &mut Rng,
    ) -> &[u8] {
        self.body.clear();
        self.body.push_str("{\"StreamName\":");
        self.body.push_str(&self.stream_json);
        self.body.push_str(",\"Records\":[");
        for (i, (header, size)) in records.iter().enumerate() {
            if i > 0 {
                self.body.push(',');
            }
            self.body.push_str("{\"Data\":\"");
            self.push_data(header, *size);
            self.body.push_str("\",\"PartitionKey\":\"");
            keys.push_key(rng, &mut self.body);
            self.body.push_str("\"}");
        }
        self.body.push_str("]}");
        self.body.as_bytes()
    }

    /// A PutRecord body.
    pub fn put_record(
        &mut self,
        header: &Header,
        size: usize,
        keys: &KeySource,
        rng: &mut Rng,
    ) -> &[u8] {
        self.body.clear();
        self.body.push_str("{\"StreamName\":");
        self.body.push_str(&self.stream_json);
        self.body.push_str(",\"Data\":\"");
        self.push_data(header, size);
        self.body.push_str("\",\"PartitionKey\":\"");
        keys.push_key(rng, &mut self.body);
        self.body.push_str("\"}");
        self.body.as_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn sizes_and_distributions_parse() {
        assert_eq!(parse_size("1KiB"), Ok(1024));
        assert_eq!(parse_size("2m"), Ok(2 << 20));
        assert_eq!(SizeDistribution::parse("1024"), Ok(SizeDistribution::Fixed(1024)));
        assert_eq!(
            SizeDistribution::parse("uniform:100-2000"),
            Ok(SizeDistribution::Uniform { low: 100, high: 2000 })
        );
        assert!(SizeDistribution::parse("uniform:2000-100").is_err());
        assert!(SizeDistribution::parse("10").is_err(), "below the header");
        assert!(SizeDistribution::parse("2MiB").is_err(), "above 1 MiB");
        assert_eq!(KeyDistribution::parse("zipf:1.1"), Ok(KeyDistribution::Zipf(1.1)));
        assert!(KeyDistribution::parse("zipf:x").is_err());
        assert!(check_batch(500, &SizeDistribution::Fixed(1024)).is_ok());
        assert!(check_batch(500, &SizeDistribution::Fixed(20_000)).is_err());
        assert!(check_batch(501, &SizeDistribution::Fixed(100)).is_err());
    }

    #[test]
    fn prefix_encoding_matches_full_encoding() {
        let source: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let encoded = base64::encode(&source);
        for length in [0, 1, 2, 3, 4, 5, 299, 300, 301, 1000] {
            let mut out = String::new();
            encode_prefix_into(&source, &encoded, length, &mut out);
            assert_eq!(out, base64::encode(&source[..length]), "length {length}");
        }
    }

    #[test]
    fn bodies_are_valid_json_with_decodable_headers() {
        let filler = Arc::new(Filler::new(4096, 1));
        let mut builder = BodyBuilder::new("s\"1", filler);
        let keys = KeySource::new(&KeyDistribution::Zipf(1.0), 10);
        let mut rng = Rng::new(5);
        let records: Vec<(Header, usize)> = (0..5)
            .map(|i| (Header { run_id: 9, record_id: i, send_epoch_ns: 1000 + i }, 24 + i as usize))
            .collect();
        let body: Value = serde_json::from_slice(builder.put_records(&records, &keys, &mut rng))
            .expect("valid JSON");
        assert_eq!(body["StreamName"], "s\"1");
        let entries = body["Records"].as_array().unwrap();
        assert_eq!(entries.len(), 5);
        for (i, entry) in entries.iter().enumerate() {
            let data = entry["Data"].as_str().unwrap();
            let decoded = base64::decode(data).unwrap();
            assert_eq!(decoded.len(), 24 + i);
            assert_eq!(Header::decode_base64(data), Some(records[i].0));
            assert!(entry["PartitionKey"].as_str().unwrap().starts_with("key-"));
        }
        let single: Value = serde_json::from_slice(builder.put_record(
            &records[1].0,
            1000,
            &KeySource::new(&KeyDistribution::Uniform, 1),
            &mut rng,
        ))
        .unwrap();
        assert_eq!(single["PartitionKey"].as_str().unwrap().len(), 16);
        assert_eq!(base64::decode(single["Data"].as_str().unwrap()).unwrap().len(), 1000);
    }
}
