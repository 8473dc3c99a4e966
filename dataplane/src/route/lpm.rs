//! Longest-prefix match over one address family, as used by [`super::RouteTable`].
//!
//! One small open-addressing hash table per prefix length present, probed from the longest
//! length down; the first hit is the longest match. A director's table holds a handful of
//! connected subnets and static routes spread over few distinct lengths (typically /24, /32,
//! /0 and /64, /128, /0), so a lookup is a few multiply-shift hashes and compares over a few
//! cache lines, for IPv4 and IPv6 alike. DIR-24-8 would spend 64 MiB per snapshot to save one or
//! two probes (and does not cover IPv6); a trie chases a pointer per bit or stride. Lookups
//! never allocate and never panic; tables are at most half full, so every probe ends.

/// Marks an empty slot.
const EMPTY: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    key: u128,
    value: u32,
}

#[derive(Debug)]
struct Level {
    mask: u128,
    /// log2 of `slots.len()` (at least 1).
    bits: u32,
    slots: Box<[Slot]>,
}

/// A built longest-prefix-match table mapping prefixes of a `width`-bit key to `u32` values.
#[derive(Debug)]
pub(crate) struct Lpm {
    /// One level per prefix length present but 0, longest first.
    levels: Box<[Level]>,
    /// The value of the zero-length prefix (the default route), checked without hashing.
    default: Option<u32>,
}

/// The network mask of a `len`-bit prefix of a `width`-bit key (`len <= width <= 128`).
#[inline]
pub(crate) fn mask(width: u8, len: u8) -> u128 {
    if len == 0 {
        return 0;
    }
    let full = if width >= 128 {
        u128::MAX
    } else {
        (1u128 << width) - 1
    };
    (full << (width - len)) & full
}

#[inline]
fn hash(key: u128, bits: u32) -> usize {
    let x = (key as u64) ^ ((key >> 64) as u64).rotate_left(31);
    // Fibonacci hashing: the top `bits` bits of the product (1 <= bits <= 32).
    (x.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (64 - bits)) as usize
}

impl Lpm {
    /// Builds the table from `(prefix, len, value)` triples; prefixes must already be masked and
    /// unique per length (the builder checks both), `len <= width`.
    pub(crate) fn build(width: u8, entries: &[(u128, u8, u32)]) -> Lpm {
        let default = entries.iter().find(|e| e.1 == 0).map(|e| e.2);
        let mut lens: Vec<u8> = entries.iter().map(|e| e.1).filter(|&l| l > 0).collect();
        lens.sort_unstable_by(|a, b| b.cmp(a));
        lens.dedup();
        let levels = lens
            .iter()
            .map(|&len| {
                let n = entries.iter().filter(|e| e.1 == len).count();
                let size = (2 * n).next_power_of_two().max(2);
                let bits = size.trailing_zeros();
                let mut slots = vec![
                    Slot {
                        key: 0,
                        value: EMPTY,
                    };
                    size
                ]
                .into_boxed_slice();
                for &(key, _, value) in entries.iter().filter(|e| e.1 == len) {
                    let mut i = hash(key, bits);
                    while slots[i].value != EMPTY {
                        i = (i + 1) & (size - 1);
                    }
                    slots[i] = Slot { key, value };
                }
                Level {
                    mask: mask(width, len),
                    bits,
                    slots,
                }
            })
            .collect();
        Lpm { levels, default }
    }

    /// The value of the longest prefix containing `key`.
    #[inline]
    pub(crate) fn lookup(&self, key: u128) -> Option<u32> {
        for level in self.levels.iter() {
            let k = key & level.mask;
            let wrap = level.slots.len() - 1;
            let mut i = hash(k, level.bits);
            while let Some(s) = level.slots.get(i) {
                if s.value == EMPTY {
                    break;
                }
                if s.key == k {
                    return Some(s.value);
                }
                i = (i + 1) & wrap;
            }
        }
        self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_mask() {
        assert_eq!(mask(32, 0), 0);
        assert_eq!(mask(32, 8), 0xff00_0000);
        assert_eq!(mask(32, 32), 0xffff_ffff);
        assert_eq!(mask(128, 128), u128::MAX);
        assert_eq!(mask(128, 1), 1u128 << 127);
        assert_eq!(mask(128, 64), (u64::MAX as u128) << 64);
    }

    #[test]
    fn test_longest_wins_and_collisions_resolve() {
        // Many /32s in one level force probing chains; a /8 and /0 behind them.
        let mut e: Vec<(u128, u8, u32)> = (0..100u32)
            .map(|i| (0x0a00_0000 | i as u128, 32, i))
            .collect();
        e.push((0x0a00_0000, 8, 1000));
        e.push((0, 0, 2000));
        let t = Lpm::build(32, &e);
        for i in 0..100u32 {
            assert_eq!(t.lookup(0x0a00_0000 | i as u128), Some(i));
        }
        assert_eq!(t.lookup(0x0a00_1000), Some(1000));
        assert_eq!(t.lookup(0x0b00_0000), Some(2000));
        assert_eq!(Lpm::build(32, &[]).lookup(0), None);
    }
}
