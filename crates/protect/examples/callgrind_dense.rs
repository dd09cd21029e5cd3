//! Instruction counts for the scanner on the bench's dense text, which (unlike wall-clock time on
//! a noisy machine) are stable enough to decide whether a change helps:
//!
//! ```text
//! CARGO_PROFILE_RELEASE_DEBUG=true cargo build --release -p warden-protect --example callgrind_dense
//! valgrind --tool=callgrind --zero-before=callgrind_dense::measured \
//!     target/release/examples/callgrind_dense [scans]
//! callgrind_annotate callgrind.out.<pid>
//! ```
//!
//! The text is generated exactly as `benches/scan.rs` generates its `dense` input (same seed,
//! same order of draws), so the count divided by the number of scans is the bench's cost per
//! 64 KiB.

use std::hint::black_box;

use warden_protect::detect::Scanner;

const SIZE: usize = 64 * 1024;

/// Deterministic xorshift so every run scans the same bytes.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.next() % items.len()]
    }
}

const WORDS: &[&str] = &[
    "the",
    "quick",
    "model",
    "returned",
    "an",
    "answer",
    "about",
    "gateway",
    "policy",
    "request",
    "response",
    "because",
    "network",
    "latency",
    "was",
    "higher",
    "than",
    "expected",
    "during",
    "deployment",
    "and",
    "users",
    "reported",
    "errors",
    "in",
    "their",
    "dashboards",
    "while",
    "engineers",
    "investigated",
    "configuration",
    "of",
    "regional",
    "clusters",
    "which",
    "had",
    "been",
    "updated",
    "yesterday",
    "afternoon",
    "with",
    "several",
    "improvements",
    "to",
    "caching",
];

fn prose(rng: &mut Rng, size: usize) -> String {
    let mut s = String::with_capacity(size + 64);
    while s.len() < size {
        let n = 8 + rng.next() % 12;
        for i in 0..n {
            let w = rng.pick(WORDS);
            if i == 0 {
                let mut c = w.chars();
                s.extend(c.next().map(|c| c.to_ascii_uppercase()));
                s.push_str(c.as_str());
            } else {
                s.push_str(w);
            }
            s.push(if i + 1 == n { '.' } else { ' ' });
        }
        s.push(if rng.next().is_multiple_of(5) {
            '\n'
        } else {
            ' '
        });
    }
    s
}

fn dense(rng: &mut Rng, size: usize) -> String {
    const ITEMS: &[&str] = &[
        "jane.doe@example.com",
        "+1 415-555-2671",
        "(020) 7946 0958",
        "4532 0151 1283 0366",
        "4111111111111111",
        "GB82 WEST 1234 5698 7654 32",
        "536-90-4399",
        "192.168.1.20",
        "2001:db8:85a3::8a2e:370:7334",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        "password=\"Xk9#mP2$vL7q\"",
        "postgres://admin:S3cr3tPw@db.example.com/app",
        "order 12345-678",
        "v1.2.3",
        "2024-01-15T10:30:00Z",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
    ];
    let mut s = String::with_capacity(size + 128);
    while s.len() < size {
        for _ in 0..(1 + rng.next() % 4) {
            s.push_str(rng.pick(WORDS));
            s.push(' ');
        }
        s.push_str(rng.pick(ITEMS));
        s.push(' ');
    }
    s
}

/// Everything after this call is what callgrind counts (`--zero-before`).
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
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
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
