/*!
Warden's content protection: what sensitive values a string holds, and what the gateway does
about them.

The gateway hands this crate strings (every client string of a request, the model's output,
reasoning and tool-call arguments) and gets back [`Detection`]s — a type name and UTF-8 byte
offsets, never a copy of the value for anyone to log — and the strings rewritten by the
configured actions. Everything here is computation over `&str`: no I/O, no provider JSON (the
gateway's `warden-protocol` crate finds the strings), no clock of its own.

- [`detect`] finds values: one pass per string for all detectors, with checksum validators run on
  candidates only (Luhn, mod-97, Verhoeff, mod-11 …). Text is scanned after NFKC normalization
  ([`normalize`]) with offsets mapped back to the original.
- [`inject`] finds prompt-injection phrasing (instruction overrides, role reassignment, fake
  prompt markers, concealment, covert tool-call induction).
- [`policy`] says what to do per type: modes, presets, privacy profiles that only strengthen.
- [`transform`] applies the actions to one string: labels, masks, placeholders, or a block.
- [`vault`] issues tokenize placeholders (`⟦EMAIL_1⟧`), keeps their values encrypted
  (AES-256-GCM) per tenant and session for a bounded time, and restores them in responses.
- [`stream`] scans text that arrives in pieces, holding back a bounded window so a value split
  across stream frames is still caught.
- [`eval`] measures precision and recall per type on the labelled corpus in `corpus/`.

Nothing in this crate logs; a [`Detection`] carries offsets, and a caller that records findings
records types, counts and JSON paths only.
*/
#![forbid(unsafe_code)]

use std::sync::Arc;

use serde::Serialize;

pub mod detect;
pub mod eval;
pub mod inject;
pub mod normalize;
pub mod policy;
pub mod stream;
mod swar;
pub mod transform;
pub mod vault;

/// The family a detected type belongs to; actions can be configured per family as well as per
/// type (`pii`, `secret`, `injection`, `custom`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Personal data: emails, phone numbers, cards, national ids …
    Pii,
    /// Credentials: API keys, tokens, private keys, passwords in assignments …
    Secret,
    /// Prompt-injection phrasing.
    Injection,
    /// A user-defined `[[protect.rules]]` detector.
    Custom,
}

impl Category {
    /// The family's name in config and findings.
    pub fn name(self) -> &'static str {
        match self {
            Category::Pii => "pii",
            Category::Secret => "secret",
            Category::Injection => "injection",
            Category::Custom => "custom",
        }
    }
}

/// One value found in a string.
///
/// `start..end` are UTF-8 byte offsets into the string that was scanned (the original, not its
/// normalized form), always on character boundaries. The value itself is deliberately not
/// carried: whoever needs it slices the string it scanned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Detection {
    /// Type name, e.g. `email`, `credit_card`, `github_token`, `injection_override`, or a custom
    /// rule's name.
    pub kind: Arc<str>,
    /// The type's family.
    pub category: Category,
    /// First byte of the value.
    pub start: usize,
    /// One past the last byte of the value.
    pub end: usize,
}
