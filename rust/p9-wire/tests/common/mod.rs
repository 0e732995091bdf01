// SPDX-License-Identifier: GPL-2.0-or-later
//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod table;

#[allow(unused_imports)]
pub use table::*;

use p9_wire::Proto;

/// All dialects.
pub const ALL_PROTOS: [Proto; 3] = [Proto::Unnegotiated, Proto::DotU, Proto::DotL];

/// The msize used by the vector tests.
pub const MSIZE: u32 = 8192;

/// Parse hex, ignoring whitespace.
pub fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len() % 2 == 0, "odd hex length: {s}");
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// Split `buf` at the given increasing cut points.
pub fn split_at<'a>(buf: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut out = Vec::with_capacity(cuts.len() + 1);
    let mut prev = 0;
    for &c in cuts {
        out.push(&buf[prev..c]);
        prev = c;
    }
    out.push(&buf[prev..]);
    out
}

/// Segmentations of `buf` to try: one segment, every two-way split, one
/// byte per segment, one byte per segment with empty segments between, and
/// a few three-way splits.
pub fn segmentations(buf: &[u8]) -> Vec<Vec<&[u8]>> {
    let n = buf.len();
    let mut all = vec![vec![buf]];
    for cut in 0..=n {
        all.push(split_at(buf, &[cut]));
    }
    all.push(buf.chunks(1).collect());
    let mut with_empty: Vec<&[u8]> = vec![&[]];
    for c in buf.chunks(1) {
        with_empty.push(c);
        with_empty.push(&[]);
    }
    all.push(with_empty);
    for a in (0..=n).step_by(3) {
        for b in (a..=n).step_by(5) {
            all.push(split_at(buf, &[a, b]));
        }
    }
    all
}

/// Deterministic xorshift64* PRNG.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform-ish in `0..n` (`n > 0`).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Cut `buf` into random segments (possibly empty).
pub fn random_segments<'a>(rng: &mut Rng, buf: &'a [u8]) -> Vec<&'a [u8]> {
    let mut cuts = Vec::new();
    let k = rng.below(5);
    for _ in 0..k {
        cuts.push(rng.below(buf.len() + 1));
    }
    cuts.sort_unstable();
    split_at(buf, &cuts)
}
