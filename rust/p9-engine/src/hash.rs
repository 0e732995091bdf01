// SPDX-License-Identifier: GPL-2.0-or-later
//! A cheap keyed hasher for the engine's tables (fids, tags, qids) and the
//! native backend's name cache.
//!
//! `std`'s default SipHash-1-3 costs more than the rest of a fid lookup.
//! Keys here are small integers and short file names, so a multiply-mix
//! per word is enough for distribution; the random seed (taken
//! from `std`'s `RandomState` once per process) keeps a guest
//! from choosing fid numbers or names that all land in one bucket without
//! seeing the seed.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// 2^64 / golden ratio, odd.
const K: u64 = 0x9e37_79b9_7f4a_7c15;

/// Builds [`FastHasher`]s with a seed of its own.
#[derive(Clone, Debug)]
pub struct FastState {
    seed: u64,
}

impl FastState {
    /// The process's random seed (from `std`'s `RandomState`, which
    /// seeds from the OS), taken once: making a table costs an atomic
    /// load.
    #[inline]
    pub fn new() -> Self {
        static SEED: OnceLock<u64> = OnceLock::new();
        FastState {
            seed: *SEED.get_or_init(|| RandomState::new().hash_one(0x9e37_u64)),
        }
    }
}

impl Default for FastState {
    fn default() -> Self {
        FastState::new()
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.seed)
    }
}

/// A multiply-rotate hasher, finished by a 64-bit mixer (murmur3's
/// `fmix64`) so that every input bit reaches the low bits a table indexes
/// by and the top bits it tags entries with.
#[derive(Clone, Debug)]
pub struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn word(&mut self, v: u64) {
        self.0 = (self.0 ^ v).wrapping_mul(K).rotate_left(29);
    }
}

impl Hasher for FastHasher {
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.word(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            // The length keeps "a" and "a\0" apart.
            self.word(u64::from_le_bytes(w) ^ ((rest.len() as u64) << 59));
        }
    }

    #[inline]
    fn write_u8(&mut self, v: u8) {
        self.word(u64::from(v));
    }

    #[inline]
    fn write_u16(&mut self, v: u16) {
        self.word(u64::from(v));
    }

    #[inline]
    fn write_u32(&mut self, v: u32) {
        self.word(u64::from(v));
    }

    #[inline]
    fn write_u64(&mut self, v: u64) {
        self.word(v);
    }

    #[inline]
    fn write_usize(&mut self, v: usize) {
        self.word(v as u64);
    }

    #[inline]
    fn finish(&self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }
}

/// A `HashMap` with [`FastState`].
pub type FastMap<K, V> = std::collections::HashMap<K, V, FastState>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_inputs_hash_apart() {
        let s = FastState::new();
        let mut seen = std::collections::HashSet::new();
        for i in 1u32..10_000 {
            assert!(seen.insert(s.hash_one(i)));
            assert!(seen.insert(s.hash_one(u64::from(i) << 32)));
        }
        assert_ne!(s.hash_one(b"a".as_slice()), s.hash_one(b"a\0".as_slice()));
        assert_ne!(s.hash_one((1u64, 2u64)), s.hash_one((2u64, 1u64)));
    }

    #[test]
    fn map_works() {
        let mut m: FastMap<u32, u32> = FastMap::default();
        for i in 0..1000 {
            m.insert(i << 20, i);
        }
        for i in 0..1000 {
            assert_eq!(m.get(&(i << 20)), Some(&i));
        }
    }
}
