//! Instruction counts for the scanner on the bench's dense text, which (unlike wall-clock time on
//! a noisy machine) are stable enough to compare two builds. They are not the whole story: the
//! anchored family search runs 4% more instructions than the searches it replaced and is faster
//! (short, predictable walks), so confirm a change with the bench, alternating the two builds.
//!
//! ```text
//! CARGO_PROFILE_RELEASE_DEBUG=true cargo build --release -p warden-protect --example callgrind_dense
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/examples/callgrind_dense [scans]
//! callgrind_annotate callgrind.out.<pid>
//! ```
//!
//! The text is the bench's own `dense` input (`benches/text/mod.rs`, same seed, same order of
//! draws), so the count divided by the number of scans is the bench's cost per
//! 64 KiB.

use std::hint::black_box;

use warden_protect::detect::Scanner;

#[path = "../benches/text/mod.rs"]
mod text;

use text::{Rng, SEED, SIZE, dense, prose};

/// What callgrind counts (`--toggle-collect`): the scans, not the set-up.
#[inline(never)]
fn measured(scanner: &Scanner, text: &str, scans: usize) -> usize {
    (0..scans)
        .map(|_| scanner.scan(black_box(text)).len())
        .sum()
}

fn main() {
    let scans = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let scanner = Scanner::builtin();
    let mut rng = Rng(SEED);
    // The bench draws the prose input first from the same generator.
    let _ = prose(&mut rng, SIZE);
    let text = dense(&mut rng, SIZE);
    // Warm-up: lazy statics and the lazy DFAs' caches fill here, not in the measured scans.
    for _ in 0..2 {
        black_box(scanner.scan(&text));
    }
    let found = measured(&scanner, &text, scans);
    println!("{} bytes, {scans} scans, {found} findings", text.len());
}
