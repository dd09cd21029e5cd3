//! The generated inputs of the scan bench, shared with `examples/callgrind_dense.rs` so the
//! instruction counts are of exactly the bench's text. Draw them in the bench's order from
//! `Rng(SEED)`: each input continues the generator where the one before it stopped.
// Each user draws a subset of the inputs.
#![allow(dead_code)]

/// The seed of the bench's generator.
pub const SEED: u64 = 0x9E37_79B9_7F4A_7C15;

pub const SIZE: usize = 64 * 1024;

/// Deterministic xorshift so every run scans the same bytes.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
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

pub fn prose(rng: &mut Rng, size: usize) -> String {
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

pub fn dense(rng: &mut Rng, size: usize) -> String {
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

pub fn non_ascii(rng: &mut Rng, size: usize) -> String {
    const PARTS: &[&str] = &[
        "Grüße aus München, die Straßenbahn fährt über die Brücke.",
        "서울의 날씨는 오늘 맑고 따뜻합니다.",
        "東京の会議は午後三時に始まります。",
        "Ｅｍａｉｌ ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ",
        "電話 ０３-１２３４-５６７８ です。",
        "Das Büro schließt früh.",
        "ﬁnal résumé naïve café",
    ];
    sentences(rng, PARTS, size)
}

/// Non-ASCII prose already in NFKC (the common case): the normalizer borrows it.
pub fn non_ascii_nfkc(rng: &mut Rng, size: usize) -> String {
    const PARTS: &[&str] = &[
        "Grüße aus München, die Straßenbahn fährt über die Brücke.",
        "서울의 날씨는 오늘 맑고 따뜻합니다.",
        "東京の会議は午後三時に始まります。",
        "Das Büro schließt früh, Frau Müller ruft morgen an.",
        "회의는 내일 오전에 있습니다.",
    ];
    sentences(rng, PARTS, size)
}

/// Parts drawn at random and joined by spaces until the text is `size` bytes or longer.
fn sentences(rng: &mut Rng, parts: &[&str], size: usize) -> String {
    let mut s = String::with_capacity(size + 128);
    while s.len() < size {
        s.push_str(rng.pick(parts));
        s.push(' ');
    }
    s
}
