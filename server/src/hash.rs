//! The 128-bit hash-key space: MD5 of partition keys, and even splits of the space.

pub use spate_proto::hash_key;

/// Splits `[0, 2^128)` into `count` contiguous ranges as AWS does: range `i` starts at
/// `floor(i * 2^128 / count)`; the last ends at `2^128 - 1`.
pub fn even_ranges(count: u32) -> Vec<(u128, u128)> {
    assert!(count > 0);
    split_range(0, u128::MAX, count)
}

/// Splits the inclusive range `[start, end]` into `count` near-equal contiguous ranges.
pub fn split_range(start: u128, end: u128, count: u32) -> Vec<(u128, u128)> {
    assert!(count > 0 && start <= end);
    if count == 1 {
        return vec![(start, end)];
    }
    let n = count as u128;
    // width = end - start + 1 may be 2^128, which does not fit: compute step = floor(width / n)
    // and remainder without forming width.
    let span = end - start; // width - 1
    let (mut step, mut rem) = (span / n, span % n + 1);
    if rem == n {
        step += 1;
        rem = 0;
    }
    // width = step * n + rem. Range i starts at start + floor(i * width / n)
    //       = start + i * step + floor(i * rem / n).
    let mut ranges = Vec::with_capacity(count as usize);
    for i in 0..n {
        let first = start + i * step + (i * rem) / n;
        let last = if i + 1 == n { end } else { start + (i + 1) * step + ((i + 1) * rem) / n - 1 };
        ranges.push((first, last));
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn even_ranges_match_aws() {
        let r = even_ranges(1);
        assert_eq!(r, vec![(0, u128::MAX)]);
        let r = even_ranges(2);
        assert_eq!(r[0], (0, (1u128 << 127) - 1));
        assert_eq!(r[1], (1u128 << 127, u128::MAX));
        let r = even_ranges(3);
        // AWS: 113427455640312821154458202477256070485 is 2^128/3 floored.
        assert_eq!(r[1].0, 113427455640312821154458202477256070485);
        assert_eq!(r[2].0, 226854911280625642308916404954512140970);
        for n in [1u32, 2, 3, 4, 5, 7, 10, 500] {
            let r = even_ranges(n);
            assert_eq!(r.len(), n as usize);
            assert_eq!(r[0].0, 0);
            assert_eq!(r.last().unwrap().1, u128::MAX);
            for w in r.windows(2) {
                assert_eq!(w[0].1 + 1, w[1].0);
            }
        }
    }
}
