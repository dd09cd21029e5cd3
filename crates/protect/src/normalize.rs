//! NFKC view of a string with a map back to the original's byte offsets.
//!
//! Detectors run on the NFKC form so fullwidth digits (`４１１１…`), ligatures and other
//! compatibility variants cannot hide a value; findings are reported against the original string,
//! so every normalized range maps back to a range on original character boundaries.
//!
//! This module owns only the text transformation. It never logs and keeps nothing beyond the
//! [`Normalized`] value its caller holds.

use std::borrow::Cow;
use std::ops::Range;

use unicode_normalization::char::canonical_combining_class;
use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfkc_quick};

/// The NFKC form of a string plus the offset map back to the original.
///
/// Input that is already NFKC (all ASCII, and most prose in any script) is borrowed and carries
/// no map, so the common case costs one quick check and no allocation.
#[derive(Debug, Clone)]
pub struct Normalized<'a> {
    original: &'a str,
    text: Cow<'a, str>,
    /// Segment starts as `(normalized offset, original offset, byte-identical)`, sorted, with a
    /// sentinel `(text.len(), original.len(), _)` at the end. Empty when borrowed.
    map: Vec<(usize, usize, bool)>,
}

impl<'a> Normalized<'a> {
    /// Normalizes `text`.
    pub fn new(text: &'a str) -> Self {
        if text.is_ascii() || already_nfkc(text) {
            return Normalized {
                original: text,
                text: Cow::Borrowed(text),
                map: Vec::new(),
            };
        }
        let mut out = String::with_capacity(text.len() + text.len() / 8);
        let mut map: Vec<(usize, usize, bool)> = Vec::new();
        let push = |out: &mut String,
                    map: &mut Vec<(usize, usize, bool)>,
                    seg: &str,
                    at: usize,
                    same: bool| {
            let n_start = out.len();
            if same {
                out.push_str(seg);
            } else {
                out.extend(seg.nfkc());
            }
            match map.last() {
                Some(&(_, _, true)) if same => {}
                _ => map.push((n_start, at, same)),
            }
        };
        // Words (split before ASCII whitespace, which never composes with anything) are checked
        // whole; only a word that is not already NFKC is cut into segments.
        let bytes = text.as_bytes();
        let mut w = 0;
        while w < text.len() {
            let mut we = w + 1;
            while we < text.len() && !bytes[we].is_ascii_whitespace() {
                we += 1;
            }
            while !text.is_char_boundary(we) {
                we += 1;
            }
            let word = &text[w..we];
            if word.is_ascii() || already_nfkc(word) {
                push(&mut out, &mut map, word, w, true);
                w = we;
                continue;
            }
            let mut seg_start = w;
            let mut iter = word.char_indices().peekable();
            while iter.next().is_some() {
                // A segment is a starter plus everything that may combine with it; segments
                // normalize independently, which is what makes the map exact at their edges.
                let mut end = we;
                while let Some(&(j, c)) = iter.peek() {
                    if is_boundary(c) {
                        end = w + j;
                        break;
                    }
                    iter.next();
                }
                let seg = &text[seg_start..end];
                // Fullwidth ASCII (the usual way to dodge a detector) maps by offset; the general
                // NFKC path is far slower.
                let mut cs = seg.chars();
                if let (Some(c @ '\u{FF01}'..='\u{FF5E}'), None) = (cs.next(), cs.next()) {
                    let ascii = char::from_u32(c as u32 - 0xFEE0).unwrap_or(c);
                    map.push((out.len(), seg_start, false));
                    out.push(ascii);
                    seg_start = end;
                    continue;
                }
                let same = seg.is_ascii() || is_nfkc_quick(seg.chars()) == IsNormalized::Yes;
                push(&mut out, &mut map, seg, seg_start, same);
                seg_start = end;
            }
            w = we;
        }
        map.push((out.len(), text.len(), true));
        Normalized {
            original: text,
            text: Cow::Owned(out),
            map,
        }
    }

    /// The normalized text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether the normalized text is the original itself.
    pub fn is_identity(&self) -> bool {
        self.map.is_empty()
    }

    /// Maps a range of the normalized text to the smallest range of the original covering it,
    /// on original character boundaries.
    pub fn to_original(&self, range: Range<usize>) -> Range<usize> {
        if self.map.is_empty() {
            return range;
        }
        let start = self.map_start(range.start);
        let end = self.map_end(range.end).max(start);
        start..end
    }

    fn map_start(&self, pos: usize) -> usize {
        if pos >= self.text.len() {
            return self.original.len();
        }
        // Last segment starting at or before `pos`.
        let i = self.map.partition_point(|&(n, _, _)| n <= pos) - 1;
        let (n, o, same) = self.map[i];
        if same { o + (pos - n) } else { o }
    }

    fn map_end(&self, pos: usize) -> usize {
        if pos == 0 {
            return 0;
        }
        // Last segment starting strictly before `pos`.
        let i = self.map.partition_point(|&(n, _, _)| n < pos) - 1;
        let (n, o, same) = self.map[i];
        if same {
            o + (pos - n)
        } else {
            self.map[i + 1].1
        }
    }
}

/// NFKC quick check with the common scripts answered without a table lookup: Latin-1
/// letters, kana, CJK ideographs and Hangul syllables are stable starters.
fn already_nfkc(text: &str) -> bool {
    for c in text.chars() {
        if matches!(c, '\0'..='\u{7F}' | '\u{C0}'..='\u{FF}' | '\u{3001}'..='\u{3002}' | '\u{3041}'..='\u{3096}'
            | '\u{30A1}'..='\u{30FA}' | '\u{3400}'..='\u{4DBF}' | '\u{4E00}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7A3}')
        {
            continue;
        }
        if canonical_combining_class(c) != 0 {
            // Combining marks: their order matters, so check the whole text properly.
            return is_nfkc_quick(text.chars()) == IsNormalized::Yes;
        }
        if is_nfkc_quick(std::iter::once(c)) != IsNormalized::Yes {
            return false;
        }
    }
    true
}

fn is_boundary(c: char) -> bool {
    c.is_ascii()
        || (canonical_combining_class(c) == 0
            && is_nfkc_quick(std::iter::once(c)) != IsNormalized::Maybe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_borrowed() {
        let n = Normalized::new("plain ascii 4111");
        assert!(matches!(n.text, Cow::Borrowed(_)));
        assert_eq!(n.to_original(6..11), 6..11);
    }

    #[test]
    fn nfkc_prose_is_borrowed() {
        let n = Normalized::new("Grüße aus Köln, 안녕하세요, こんにちは");
        assert!(n.is_identity());
    }

    #[test]
    fn fullwidth_digits_map_back() {
        let s = "card ４１１１ end";
        let n = Normalized::new(s);
        assert_eq!(n.as_str(), "card 4111 end");
        let r = n.to_original(5..9);
        assert_eq!(&s[r], "４１１１");
        let r = n.to_original(6..8);
        assert_eq!(&s[r], "１１");
        let r = n.to_original(10..13);
        assert_eq!(&s[r], "end");
    }

    #[test]
    fn ligature_and_combining_marks() {
        let s = "ﬁle e\u{301}t 한";
        let n = Normalized::new(s);
        assert_eq!(n.as_str(), "file ét 한");
        // Part of a ligature maps to the whole ligature.
        assert_eq!(&s[n.to_original(1..2)], "ﬁ");
        assert_eq!(&s[n.to_original(0..4)], "ﬁle");
        let e = n.as_str().find('é').unwrap();
        assert_eq!(&s[n.to_original(e..e + 2)], "e\u{301}");
        let h = n.as_str().find('한').unwrap();
        assert_eq!(&s[n.to_original(h..n.as_str().len())], "한");
    }

    #[test]
    fn every_mapped_range_is_on_char_boundaries() {
        let s = "Ａｂｃ ①② ｶﾞ x\u{0308}y ㎏ end";
        let n = Normalized::new(s);
        let t = n.as_str();
        for a in 0..=t.len() {
            for b in a..=t.len() {
                if t.is_char_boundary(a) && t.is_char_boundary(b) {
                    let r = n.to_original(a..b);
                    assert!(s.is_char_boundary(r.start) && s.is_char_boundary(r.end));
                    assert!(r.start <= r.end);
                }
            }
        }
    }
}
