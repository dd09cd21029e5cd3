//! Byte-class bit masks of 64-byte blocks, eight bytes per `u64` operation ("SIMD within a
//! register"), for the two passes that run over every byte of scanned text: the detectors'
//! search for candidate bytes and the injection heuristics' search for word starts.
//!
//! Safe code only (the crate forbids `unsafe`, so no `core::arch` intrinsics): each class test
//! is a handful of additions and masks on eight bytes at once, and the per-byte high bits are
//! gathered with one multiplication. A scalar loop building the same masks spent most of its
//! time on variable shifts and measured about half the speed.

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// Eight bytes with their ASCII class tests available as high-bit-per-byte masks.
#[derive(Clone, Copy)]
struct Lanes {
    /// The bytes with bit 7 cleared, so lane arithmetic never carries into a neighbour.
    low: u64,
    /// High bit set in lanes holding an ASCII byte (below 0x80).
    ascii: u64,
}

impl Lanes {
    fn new(bytes: [u8; 8]) -> Lanes {
        let x = u64::from_le_bytes(bytes);
        Lanes {
            low: x & !HI,
            ascii: !x & HI,
        }
    }

    /// Lanes whose low seven bits are at least `c` (`c` ≤ 0x80).
    fn ge(self, c: u8) -> u64 {
        (self.low + LO * u64::from(0x80 - c)) & HI
    }

    /// ASCII lanes in `lo..=hi`.
    fn range(self, lo: u8, hi: u8) -> u64 {
        self.ge(lo) & !self.ge(hi + 1) & self.ascii
    }

    /// ASCII lanes equal to `c` (`c` < 0x80).
    fn eq(self, c: u8) -> u64 {
        let y = self.low ^ (LO * u64::from(c));
        !(y + LO * 0x7F) & HI & self.ascii
    }

    /// ASCII letters, digits and `_`.
    fn word(self) -> u64 {
        let folded = Lanes {
            low: self.low | (LO * 0x20),
            ascii: self.ascii,
        };
        self.range(b'0', b'9') | folded.range(b'a', b'z') | self.eq(b'_')
    }

    /// `u8::is_ascii_whitespace`: space, tab, LF, FF, CR.
    fn space(self) -> u64 {
        self.eq(b' ') | self.eq(b'\t') | self.eq(b'\n') | self.eq(0x0C) | self.eq(b'\r')
    }
}

/// Gathers the high bit of each byte lane into bits 0..8 (lane 0 → bit 0).
fn gather(m: u64) -> u64 {
    ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
}

/// Runs `f` on each group of eight bytes of a block of at most 64 (padded with NUL, which is in
/// no class) and assembles its per-lane results into one mask per class, bit `j` for byte `j`.
fn block_masks<const N: usize>(block: &[u8], f: impl Fn(Lanes) -> [u64; N]) -> [u64; N] {
    debug_assert!(block.len() <= 64);
    let mut out = [0u64; N];
    let mut padded = [0u8; 64];
    let full: &[u8] = if block.len() == 64 {
        block
    } else {
        padded[..block.len()].copy_from_slice(block);
        &padded
    };
    for (k, eight) in full.chunks_exact(8).enumerate() {
        let lanes = Lanes::new(eight.try_into().expect("chunks of eight"));
        for (o, m) in out.iter_mut().zip(f(lanes)) {
            *o |= gather(m) << (8 * k);
        }
    }
    out
}

/// Masks of ASCII word bytes (`[A-Za-z0-9_]`) and of the bytes that may start an injection
/// trigger (`[A-Za-z_]`, `#`, `<`, `[`: no trigger starts with a digit, and on text dense with
/// numbers most word starts are digits) in a block of at most 64 bytes.
pub(crate) fn words_and_trigger_starts(block: &[u8]) -> (u64, u64) {
    let [w, t] = block_masks(block, |l| {
        let digit = l.range(b'0', b'9');
        let word = l.word();
        [word, (word & !digit) | l.eq(b'#') | l.eq(b'<') | l.eq(b'[')]
    });
    (w, t)
}

/// Masks of the bytes that make a chunk a detector candidate (ASCII digits, `@`, `%`, `:`, `=`)
/// and of non-whitespace bytes in a block of at most 64 bytes; padding counts as whitespace.
pub(crate) fn candidates_and_solid(block: &[u8]) -> (u64, u64) {
    let [hot, space] = block_masks(block, |l| {
        [
            l.range(b'0', b'9') | l.eq(b'@') | l.eq(b'%') | l.eq(b':') | l.eq(b'='),
            l.space(),
        ]
    });
    let valid = if block.len() == 64 {
        u64::MAX
    } else {
        (1u64 << block.len()) - 1
    };
    (hot, !space & valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scalar(block: &[u8], class: impl Fn(u8) -> bool) -> u64 {
        block
            .iter()
            .enumerate()
            .fold(0, |m, (j, &c)| m | (u64::from(class(c)) << j))
    }

    #[test]
    fn every_byte_in_every_lane_is_classified_like_the_scalar_tests() {
        for lane in 0..64 {
            for c in 0..=255u8 {
                // The byte under test among neighbours that provoke carries and borrows.
                let mut block = [0xFFu8; 64];
                for (j, b) in block.iter_mut().enumerate() {
                    *b = [0xFF, 0x00, 0x7F, 0x80, b'9', b'z'][j % 6];
                }
                block[lane] = c;
                for len in [64, lane + 1] {
                    let b = &block[..len];
                    let (w, t) = words_and_trigger_starts(b);
                    assert_eq!(
                        w,
                        scalar(b, |c| c.is_ascii_alphanumeric() || c == b'_'),
                        "{c:#x}@{lane}"
                    );
                    assert_eq!(
                        t,
                        scalar(b, |c| c.is_ascii_alphabetic()
                            || matches!(c, b'_' | b'#' | b'<' | b'[')),
                        "{c:#x}@{lane}"
                    );
                    let (hot, solid) = candidates_and_solid(b);
                    assert_eq!(
                        hot,
                        scalar(b, |c| c.is_ascii_digit()
                            || matches!(c, b'@' | b'%' | b':' | b'=')),
                        "{c:#x}@{lane}"
                    );
                    assert_eq!(
                        solid,
                        scalar(b, |c| !c.is_ascii_whitespace()),
                        "{c:#x}@{lane}"
                    );
                }
            }
        }
    }
}
