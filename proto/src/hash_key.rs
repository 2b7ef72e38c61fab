//! The hash key Kinesis derives from a partition key to route a record to a shard: the MD5 of
//! the key's UTF-8 bytes, read as a big-endian 128-bit integer. The server routes with it and
//! the tools predict routing with it, so both agree by construction.

/// The hash key of `partition_key`.
pub fn hash_key(partition_key: &[u8]) -> u128 {
    u128::from_be_bytes(md5::compute(partition_key).0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_read_big_endian() {
        // md5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(hash_key(b"a"), 0x0cc175b9c0f1b6a831c399e269772661);
    }
}
