//! Byte-class bit masks of 64-byte blocks, for the two passes that run over every byte of
//! scanned text: the detectors' search for candidate bytes and the injection heuristics' search
//! for word starts.
//!
//! Safe code only (the crate forbids `unsafe`). On x86-64 the classes are tested sixteen bytes
//! at a time with SSE2 (part of every x86-64 CPU) through `safe_arch`, whose wrappers are safe
//! functions when the feature is enabled at compile time; a byte's class bit is then one
//! `movemask` away. Elsewhere eight bytes are tested per `u64` operation ("SIMD within a
//! register") and the per-byte high bits gathered with one multiplication. On the bench's
//! dense text the SSE2 pass took a fifth of the SWAR pass's instructions, and the SWAR pass in
//! turn measured twice the speed of a scalar loop building the same masks.

/// A group of bytes with the class tests both passes need, each giving a mask of the lanes
/// in the class.
trait Lanes: Copy {
    /// Bytes per group; divides 64.
    const WIDTH: usize;
    type Mask: Copy + std::ops::BitOr<Output = Self::Mask>;
    /// The group at the start of `bytes` (at least `WIDTH` long).
    fn load(bytes: &[u8]) -> Self;
    /// ASCII digits.
    fn digit(self) -> Self::Mask;
    /// ASCII letters of either case.
    fn letter(self) -> Self::Mask;
    /// Lanes equal to `c` (`c` < 0x80).
    fn eq(self, c: u8) -> Self::Mask;
    /// One bit per lane, lane 0 in bit 0.
    fn bits(m: Self::Mask) -> u64;

    /// `u8::is_ascii_whitespace`: space, tab, LF, FF, CR.
    fn space(self) -> Self::Mask {
        self.eq(b' ') | self.eq(b'\t') | self.eq(b'\n') | self.eq(0x0C) | self.eq(b'\r')
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod sse2 {
    use safe_arch::{
        cmp_eq_mask_i8_m128i, load_unaligned_m128i, m128i, min_u8_m128i, move_mask_i8_m128i,
        set_splat_i8_m128i, sub_i8_m128i,
    };

    /// Sixteen bytes in one SSE2 register.
    #[derive(Clone, Copy)]
    pub(super) struct Sse2(m128i);

    /// Lanes whose byte is in `0..=n` as an unsigned number: `min(x, n) == x`.
    fn at_most(x: m128i, n: u8) -> m128i {
        cmp_eq_mask_i8_m128i(min_u8_m128i(x, set_splat_i8_m128i(n as i8)), x)
    }

    impl super::Lanes for Sse2 {
        const WIDTH: usize = 16;
        type Mask = m128i;

        fn load(bytes: &[u8]) -> Self {
            Sse2(load_unaligned_m128i(
                bytes[..16].try_into().expect("sixteen bytes"),
            ))
        }

        fn digit(self) -> m128i {
            // Bytes below `0` wrap to 0xD0 and above, out of range like those above `9`.
            at_most(sub_i8_m128i(self.0, set_splat_i8_m128i(b'0' as i8)), 9)
        }

        fn letter(self) -> m128i {
            // Setting bit 5 folds upper case onto lower; no other byte lands in `a..=z`
            // (0x80 and above stay at 0xA0 and above).
            let folded = self.0 | set_splat_i8_m128i(0x20);
            at_most(sub_i8_m128i(folded, set_splat_i8_m128i(b'a' as i8)), 25)
        }

        fn eq(self, c: u8) -> m128i {
            cmp_eq_mask_i8_m128i(self.0, set_splat_i8_m128i(c as i8))
        }

        fn bits(m: m128i) -> u64 {
            // The sixteen lane bits, zero-extended.
            u64::from(move_mask_i8_m128i(m) as u16)
        }
    }
}

#[cfg_attr(all(target_arch = "x86_64", target_feature = "sse2"), allow(dead_code))]
mod portable {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;

    /// Eight bytes in a `u64`; masks have the high bit of each selected lane set.
    #[derive(Clone, Copy)]
    pub(super) struct Swar {
        /// The bytes with bit 7 cleared, so lane arithmetic never carries into a neighbour.
        low: u64,
        /// High bit set in lanes holding an ASCII byte (below 0x80).
        ascii: u64,
    }

    impl Swar {
        /// Lanes whose low seven bits are at least `c` (`c` ≤ 0x80).
        fn ge(self, c: u8) -> u64 {
            (self.low + LO * u64::from(0x80 - c)) & HI
        }

        /// ASCII lanes in `lo..=hi`.
        fn range(self, lo: u8, hi: u8) -> u64 {
            self.ge(lo) & !self.ge(hi + 1) & self.ascii
        }
    }

    impl super::Lanes for Swar {
        const WIDTH: usize = 8;
        type Mask = u64;

        fn load(bytes: &[u8]) -> Self {
            let x = u64::from_le_bytes(bytes[..8].try_into().expect("eight bytes"));
            Swar {
                low: x & !HI,
                ascii: !x & HI,
            }
        }

        fn digit(self) -> u64 {
            self.range(b'0', b'9')
        }

        fn letter(self) -> u64 {
            let folded = Swar {
                low: self.low | (LO * 0x20),
                ascii: self.ascii,
            };
            folded.range(b'a', b'z')
        }

        fn eq(self, c: u8) -> u64 {
            let y = self.low ^ (LO * u64::from(c));
            !(y + LO * 0x7F) & HI & self.ascii
        }

        fn bits(m: u64) -> u64 {
            // Gathers the high bit of each lane into bits 0..8 with one multiplication.
            ((m >> 7).wrapping_mul(0x0102_0408_1020_4080)) >> 56
        }
    }
}

#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
type Native = sse2::Sse2;
#[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
type Native = portable::Swar;

/// Runs `f` on each group of a block of at most 64 bytes (padded with NUL, which is in no
/// class) and assembles its per-lane results into one mask per class, bit `j` for byte `j`.
fn block_masks<L: Lanes, const N: usize>(block: &[u8], f: impl Fn(L) -> [L::Mask; N]) -> [u64; N] {
    debug_assert!(block.len() <= 64);
    let mut out = [0u64; N];
    let mut padded = [0u8; 64];
    let full: &[u8] = if block.len() == 64 {
        block
    } else {
        padded[..block.len()].copy_from_slice(block);
        &padded
    };
    for (k, group) in full.chunks_exact(L::WIDTH).enumerate() {
        for (o, m) in out.iter_mut().zip(f(L::load(group))) {
            *o |= L::bits(m) << (L::WIDTH * k);
        }
    }
    out
}

/// Masks of ASCII word bytes (`[A-Za-z0-9_]`) and of the bytes that may start an injection
/// trigger (`[A-Za-z_]`, `#`, `<`, `[`: no trigger starts with a digit, and on text dense with
/// numbers most word starts are digits) in a block of at most 64 bytes.
pub(crate) fn words_and_trigger_starts(block: &[u8]) -> (u64, u64) {
    words_and_trigger_starts_with::<Native>(block)
}

fn words_and_trigger_starts_with<L: Lanes>(block: &[u8]) -> (u64, u64) {
    let [w, t] = block_masks(block, |l: L| {
        let letter_ = l.letter() | l.eq(b'_');
        [
            l.digit() | letter_,
            letter_ | l.eq(b'#') | l.eq(b'<') | l.eq(b'['),
        ]
    });
    (w, t)
}

/// Masks of the bytes that make a chunk a detector candidate (ASCII digits, `@`, `%`, `:`, `=`)
/// and of non-whitespace bytes in a block of at most 64 bytes; padding counts as whitespace.
pub(crate) fn candidates_and_solid(block: &[u8]) -> (u64, u64) {
    candidates_and_solid_with::<Native>(block)
}

fn candidates_and_solid_with<L: Lanes>(block: &[u8]) -> (u64, u64) {
    let [hot, space] = block_masks(block, |l: L| {
        [
            l.digit() | l.eq(b'@') | l.eq(b'%') | l.eq(b':') | l.eq(b'='),
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

    /// Both passes of implementation `L` on `b`, against the scalar class tests.
    fn agrees_with_scalar<L: Lanes>(b: &[u8], what: &str) {
        let (w, t) = words_and_trigger_starts_with::<L>(b);
        assert_eq!(
            w,
            scalar(b, |c| c.is_ascii_alphanumeric() || c == b'_'),
            "{what}"
        );
        let trigger = |c: u8| c.is_ascii_alphabetic() || matches!(c, b'_' | b'#' | b'<' | b'[');
        assert_eq!(t, scalar(b, trigger), "{what}");
        let (hot, solid) = candidates_and_solid_with::<L>(b);
        let candidate = |c: u8| c.is_ascii_digit() || matches!(c, b'@' | b'%' | b':' | b'=');
        assert_eq!(hot, scalar(b, candidate), "{what}");
        assert_eq!(solid, scalar(b, |c| !c.is_ascii_whitespace()), "{what}");
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
                    let what = format!("{c:#x}@{lane} of {len}");
                    // The portable pass is checked on every target, the one in use as well.
                    agrees_with_scalar::<portable::Swar>(b, &what);
                    agrees_with_scalar::<Native>(b, &what);
                }
            }
        }
    }
}
