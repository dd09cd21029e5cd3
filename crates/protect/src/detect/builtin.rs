//! The built-in detectors: one pattern per type (or family of types), the window features that
//! must be present for it to run, and the check that turns a pattern match into a finding.
//!
//! Patterns are plain `regex` (linear time) with ASCII word boundaries, so the lazy DFA never has
//! to give up on non-ASCII text. Checks see the normalized text and the match span, and may
//! narrow the span or pick a more specific type. Nothing here logs or keeps a value.

use std::sync::LazyLock;

use base64::Engine;
use regex::Regex;

use super::validate;
use crate::Category;

/// Window features (see `super::windows`).
pub(crate) const F_DIGIT: u8 = 1;
pub(crate) const F_AT: u8 = 2;
pub(crate) const F_LONG: u8 = 4;
pub(crate) const F_KEY: u8 = 8;
pub(crate) const F_PCT: u8 = 16;

/// Longest private-key block reported; also bounds how long a stream holds back an open block.
pub(crate) const PEM_CAP: usize = 4096;
/// Longest value any other built-in reports (JWTs, URLs, fine-grained tokens).
pub(crate) const TOKEN_CAP: usize = 4096;
/// A generic assignment value is reported only when at least this long …
pub(crate) const GENERIC_MIN_LEN: usize = 8;
/// … and at least this random (Shannon entropy, bits per character). `S3cr3t-V4lue!` is ~3.4,
/// `changeme1` ~2.9, `aaaaaaaa1` ~0.5.
pub(crate) const GENERIC_MIN_ENTROPY: f64 = 3.0;

macro_rules! types {
    ($($idx:ident = $name:literal, $cat:ident, $desc:literal;)*) => {
        /// Every built-in type: (type name, category, one-line description).
        pub const BUILTIN_TYPES: &[(&str, Category, &str)] = &[$(($name, Category::$cat, $desc)),*];
        #[allow(non_camel_case_types, clippy::upper_case_acronyms, clippy::enum_variant_names)]
        #[derive(Clone, Copy)]
        #[repr(usize)]
        pub(crate) enum K { $($idx),* }
    };
}

types! {
    EMAIL = "email", Pii, "Email address";
    PHONE = "phone", Pii, "Phone number: E.164 (+…) or a common national format (US/CA, UK, DE, FR, KR, JP, IN, SG)";
    CARD = "credit_card", Pii, "Payment card number: known issuer prefix, 13-19 digits, Luhn check";
    CARD_TEST = "credit_card_test", Pii, "Well-known test card number (4111 1111 1111 1111 …)";
    IBAN = "iban", Pii, "International bank account number: per-country length and mod-97 check";
    SSN = "us_ssn", Pii, "US social security number (AAA-GG-SSSS), invalid areas/groups/serials rejected";
    IPV4 = "ipv4", Pii, "IPv4 address (dotted quad, valid octets)";
    IPV6 = "ipv6", Pii, "IPv6 address (full or :: compressed)";
    KR_RRN = "kr_rrn", Pii, "Korean resident registration number: birth date and mod-11 check";
    JP_MY = "jp_my_number", Pii, "Japanese My Number: 12 digits, mod-11 check digit";
    FR_NIR = "fr_nir", Pii, "French social security number (NIR) with its mod-97 key";
    ES_DNI = "es_dni", Pii, "Spanish DNI: 8 digits and the mod-23 letter";
    ES_NIE = "es_nie", Pii, "Spanish NIE: X/Y/Z, 7 digits and the mod-23 letter";
    IT_CF = "it_codice_fiscale", Pii, "Italian codice fiscale with its check character";
    SG_NRIC = "sg_nric", Pii, "Singapore NRIC/FIN with its check letter";
    AADHAAR = "in_aadhaar", Pii, "Indian Aadhaar number: 12 digits, Verhoeff check";
    DE_STEUER = "de_steuer_id", Pii, "German tax id (Steuer-ID): digit rule and ISO 7064 MOD 11,10";
    NL_BSN = "nl_bsn", Pii, "Dutch citizen service number (BSN), 11-proef";
    UK_NINO = "uk_nino", Pii, "UK National Insurance number";
    AWS_KEY = "aws_access_key_id", Secret, "AWS access key id (AKIA…/ASIA…)";
    AWS_SECRET = "aws_secret_access_key", Secret, "AWS secret access key, in an assignment to an AWS secret key name";
    GITHUB = "github_token", Secret, "GitHub token (ghp_/gho_/ghu_/ghs_/ghr_, github_pat_)";
    SLACK = "slack_token", Secret, "Slack token (xoxb-, xoxp-, …)";
    OPENAI = "openai_api_key", Secret, "OpenAI API key (sk-…, sk-proj-…)";
    ANTHROPIC = "anthropic_api_key", Secret, "Anthropic API key (sk-ant-…)";
    GOOGLE = "google_api_key", Secret, "Google API key (AIza…)";
    STRIPE = "stripe_key", Secret, "Stripe secret or restricted key (sk_live_, rk_live_, sk_test_ …)";
    SENDGRID = "sendgrid_api_key", Secret, "SendGrid API key (SG.x.y)";
    TWILIO = "twilio_api_key", Secret, "Twilio API key (SK…) or account SID in an assignment";
    NPM = "npm_token", Secret, "npm access token (npm_…)";
    JWT = "jwt", Secret, "JSON Web Token (header declares `alg`)";
    PRIVATE_KEY = "private_key", Secret, "PEM private key block, BEGIN through END";
    GENERIC = "generic_secret", Secret, "Value assigned to password/secret/token/api_key … (code, env, JSON, YAML): at least 8 bytes, ≥ 3.0 bits/char Shannon entropy, two character classes, not a placeholder or reference";
    DB_URL = "database_url", Secret, "Database/broker URL with an inline password (postgres://user:pass@host …)";
}

/// A check's verdict: the type (index into [`BUILTIN_TYPES`]) and the span to report.
pub(crate) type Found = Option<(usize, usize, usize)>;
type Check = fn(&str, usize, usize) -> Found;
/// The next match in `hay` at or after `pos` (see [`Builtin::find`]).
pub(crate) type Find = fn(&str, usize) -> Option<(usize, usize)>;
/// Locates a value group's start in a match (see [`Builtin::value_at`]).
pub(crate) type ValueAt = fn(&str, usize, usize) -> Option<usize>;

/// Built-ins sharing one window feature, as one multi-pattern regex: one pass over the text
/// instead of one per type. `members[i]` is the index in [`BUILTINS`] of pattern `i`.
pub(crate) struct Family {
    /// The window feature all members need.
    pub need: u8,
    /// Leftmost-first search for the next candidate of any member: the definition the anchored
    /// search below is tested against, and its fallback should that search ever fail.
    pub first: regex_automata::meta::Regex,
    /// The same patterns as a lazy DFA, leftmost-first, run anchored at each position where
    /// [`Family::may_start`] allows a match: a candidate's start is then known without the
    /// reverse search the unanchored search needs, and prose between candidates is never fed
    /// to the DFA.
    pub dfa: regex_automata::hybrid::dfa::DFA,
    /// Per-thread caches of `dfa`'s lazily built states.
    pub caches: DfaCaches,
    /// Which bytes can begin a match after which bytes, read off `dfa` (see [`StartTable`]).
    pub starts: StartTable,
    /// Anchored overlapping check: which members also match at a candidate's start.
    pub all: regex_automata::meta::Regex,
    pub members: Vec<usize>,
    /// Longest match of any member in bytes (`usize::MAX` when unbounded).
    pub max_len: usize,
}

impl Family {
    /// The leftmost-first match of any member starting exactly at `a` in `hay` (end, member),
    /// walking `dfa` byte by byte from its anchored start state until it dies. `Err` when the
    /// lazy DFA cannot go on (a quit byte or a cache failure; neither is expected of these
    /// patterns), and the caller asks the meta regex instead.
    pub fn match_at(
        &self,
        cache: &mut regex_automata::hybrid::dfa::Cache,
        hay: &[u8],
        a: usize,
    ) -> Result<Option<(usize, regex_automata::PatternID)>, ()> {
        use regex_automata::{Anchored, util::start};
        let dfa = &self.dfa;
        let config = start::Config::new()
            .anchored(Anchored::Yes)
            .look_behind(a.checked_sub(1).map(|i| hay[i]));
        let mut sid = dfa.start_state(cache, &config).map_err(drop)?;
        let mut found = None;
        for (i, &c) in hay.iter().enumerate().skip(a) {
            sid = dfa.next_state(cache, sid, c).map_err(drop)?;
            if sid.is_tagged() {
                if sid.is_match() {
                    // Matches are reported one byte late: this one ends before `c`.
                    found = Some((i, dfa.match_pattern(cache, sid, 0)));
                } else if sid.is_dead() {
                    return Ok(found);
                } else {
                    return Err(());
                }
            }
        }
        sid = dfa.next_eoi_state(cache, sid).map_err(drop)?;
        if sid.is_match() {
            found = Some((hay.len(), dfa.match_pattern(cache, sid, 0)));
        }
        Ok(found)
    }
}

type NewCache = Box<dyn Fn() -> regex_automata::hybrid::dfa::Cache + Send + Sync>;
pub(crate) type DfaCaches =
    regex_automata::util::pool::Pool<regex_automata::hybrid::dfa::Cache, NewCache>;

/// For every look-behind (no byte, or any byte) and every byte, whether an anchored search of
/// the family's DFA can get past that first byte: where it cannot, no member can match, so the
/// search is not started. Read off the DFA itself (its anchored start state's transitions), so
/// it holds for whatever the patterns are; the look-behinds fall into a few classes (the DFA
/// distinguishes only word bytes, line terminators, others and the start of text).
pub(crate) struct StartTable {
    /// Class of each look-behind: index 256 is "no byte" (start of text).
    class_of: [u8; 257],
    /// Per class, a 256-bit set of the bytes a match can begin with.
    firsts: Vec<[u64; 4]>,
    /// The bytes a match can begin with after some byte: the quick test before the exact one.
    any: [bool; 256],
}

impl StartTable {
    fn of(dfa: &regex_automata::hybrid::dfa::DFA) -> StartTable {
        use regex_automata::{Anchored, util::start};
        let mut cache = dfa.create_cache();
        let mut class_of = [0u8; 257];
        let mut firsts: Vec<[u64; 4]> = Vec::new();
        for (prev, class_slot) in class_of.iter_mut().enumerate() {
            let look_behind = u8::try_from(prev).ok();
            let config = start::Config::new()
                .anchored(Anchored::Yes)
                .look_behind(look_behind);
            let start = dfa
                .start_state(&mut cache, &config)
                .expect("built-in families have no quit bytes");
            let mut set = [0u64; 4];
            for c in 0..=255u8 {
                let next = dfa
                    .next_state(&mut cache, start, c)
                    .expect("the cache has room for the start states and their successors");
                if !next.is_dead() {
                    set[usize::from(c >> 6)] |= 1 << (c & 63);
                }
            }
            let class = match firsts.iter().position(|f| *f == set) {
                Some(k) => k,
                None => {
                    firsts.push(set);
                    firsts.len() - 1
                }
            };
            *class_slot = u8::try_from(class).expect("a few look-behind classes");
        }
        let mut any = [false; 256];
        for (c, slot) in any.iter_mut().enumerate() {
            *slot = firsts.iter().any(|f| holds_byte(f, c as u8));
        }
        StartTable {
            class_of,
            firsts,
            any,
        }
    }

    /// The first position in `from..to` where a match can begin.
    pub fn next(&self, b: &[u8], from: usize, to: usize) -> Option<usize> {
        let mut i = from;
        loop {
            i += b
                .get(i..to)?
                .iter()
                .position(|&c| self.any[usize::from(c)])?;
            if self.may_start(b, i) {
                return Some(i);
            }
            i += 1;
        }
    }

    /// Whether a match can begin at `b[i]`, given the byte before it.
    fn may_start(&self, b: &[u8], i: usize) -> bool {
        let prev = if i == 0 { 256 } else { usize::from(b[i - 1]) };
        holds_byte(&self.firsts[usize::from(self.class_of[prev])], b[i])
    }
}

/// Whether the 256-bit set holds byte `c`.
fn holds_byte(set: &[u64; 4], c: u8) -> bool {
    set[usize::from(c >> 6)] >> (c & 63) & 1 != 0
}

fn family(need: u8, prefilter: bool) -> Family {
    use regex_automata::{MatchKind, hybrid, meta};
    let members: Vec<usize> = (0..BUILTINS.len())
        .filter(|&i| BUILTINS[i].need == need && BUILTINS[i].group == 0)
        .collect();
    let pats: Vec<&str> = members.iter().map(|&i| BUILTINS[i].re.as_str()).collect();
    let build = |kind: MatchKind| {
        meta::Regex::builder()
            .configure(
                meta::Config::new()
                    .auto_prefilter(prefilter)
                    .match_kind(kind),
            )
            .build_many(&pats)
            .expect("built-in family")
    };
    let dfa = hybrid::dfa::DFA::builder()
        .configure(hybrid::dfa::Config::new().match_kind(MatchKind::LeftmostFirst))
        .build_many(&pats)
        .expect("built-in family as a lazy DFA");
    let for_caches = dfa.clone();
    let caches = DfaCaches::new(Box::new(move || for_caches.create_cache()) as NewCache);
    // The longest match any member can make, so the re-check of a member at a known start
    // searches a bounded slice instead of running on to the next match elsewhere.
    let max_len = pats
        .iter()
        .map(|p| {
            regex_syntax::parse(p)
                .ok()
                .and_then(|h| h.properties().maximum_len())
                .unwrap_or(usize::MAX)
        })
        .max()
        .unwrap_or(usize::MAX);
    Family {
        need,
        first: build(MatchKind::LeftmostFirst),
        starts: StartTable::of(&dfa),
        dfa,
        caches,
        all: build(MatchKind::All),
        members,
        max_len,
    }
}

/// The two families. Their unanchored meta regexes (the reference and the fallback of the
/// anchored search) differ in one setting: the digit-run family's runs without a literal
/// prefilter, because digits are everywhere in dense text and a prefilter would restart the
/// search at every one of them, while token prefixes (`ghp_`, `AKIA`, `sk-` …) are rare.
pub(crate) static FAMILIES: LazyLock<[Family; 2]> =
    LazyLock::new(|| [family(F_DIGIT, false), family(F_LONG, true)]);

pub(crate) struct Builtin {
    pub re: Regex,
    /// Runs only in windows having one of these features.
    pub need: u8,
    /// Capture group holding the value (0: the whole match). Every pattern with a value group
    /// ends with it, so the value ends where the match ends.
    pub group: usize,
    /// Where the value group starts in a match `[a, e)`, found by walking the match (`None`
    /// when the walk cannot tell, and the capture search decides). A capture search runs a
    /// backtracker over the case-insensitive keyword NFA and cost more per candidate than
    /// finding the match.
    pub value_at: Option<ValueAt>,
    /// A hand-written search giving exactly the regex's next match at or after a position
    /// (start, end), used instead of the regex; the regex stays the definition, and a test
    /// compares the two.
    pub find: Option<Find>,
    /// The capture group takes at most this many characters (0: no cap). The pattern writes the
    /// value as an unbounded `+` and the cap is applied after the match: a `{1,256}` repetition
    /// over a large class compiles to hundreds of NFA states, and the capture search (a bounded
    /// backtracker whose visited set is states × span) then cleared kilobytes per candidate.
    pub value_cap: usize,
    pub check: Check,
}

/// Longest value, in characters, of a generic `password=`/`token=` assignment.
pub(crate) const GENERIC_VALUE_CAP: usize = 256;

impl Builtin {
    fn capped(mut self, chars: usize) -> Builtin {
        self.value_cap = chars;
        self
    }

    fn find(mut self, f: Find) -> Builtin {
        self.find = Some(f);
        self
    }

    fn value_at(mut self, f: ValueAt) -> Builtin {
        self.value_at = Some(f);
        self
    }
}

/// The email pattern's next match, by hand: every `@` found by `memchr`, the local part walked
/// back, the domain's labels walked forward. The regex (`local@label(.label)*.tld\b`) found
/// the same spans through a reverse and a forward lazy-DFA search per `@`, which cost more than
/// the address check itself on text full of addresses.
///
/// Leftmost-first semantics, worked out: a match holds exactly one `@` (neither part admits
/// one), so matches are ordered by their `@`, and the start is the beginning of the run of
/// local-part characters before it (not before `pos`). Greedy repetition prefers the most
/// labels, so the end is after the *last* label of the chain (consecutive non-empty
/// `[A-Za-z0-9-]` labels after the first) whose leading letters are 2–24 long and followed by
/// a non-word byte or the end of `hay` (the `\b`).
pub(crate) fn find_email(hay: &str, pos: usize) -> Option<(usize, usize)> {
    let b = hay.as_bytes();
    let local = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'%' | b'+' | b'-');
    let label = |c: u8| c.is_ascii_alphanumeric() || c == b'-';
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    let mut from = pos;
    while let Some(i) = memchr::memchr(b'@', &b[from.min(b.len())..]) {
        let at = from + i;
        from = at + 1;
        let mut start = at;
        while start > pos && local(b[start - 1]) {
            start -= 1;
        }
        if start == at {
            continue;
        }
        // The first label, then `.label` as long as the chain goes on.
        let mut j = at + 1;
        while j < b.len() && label(b[j]) {
            j += 1;
        }
        if j == at + 1 {
            continue;
        }
        let mut end = None;
        while j < b.len() && b[j] == b'.' {
            let ls = j + 1;
            let mut le = ls;
            while le < b.len() && label(b[le]) {
                le += 1;
            }
            if le == ls {
                break;
            }
            let letters = b[ls..le]
                .iter()
                .take_while(|c| c.is_ascii_alphabetic())
                .count();
            let t = ls + letters;
            if (2..=24).contains(&letters) && (t == b.len() || !word(b[t])) {
                end = Some(t);
            }
            j = le;
        }
        if let Some(e) = end {
            return Some((start, e));
        }
    }
    None
}

/// A value of exactly `n` ASCII bytes ending the match.
fn last_bytes<const N: usize>(_: &str, a: usize, e: usize) -> Option<usize> {
    (e - a > N).then_some(e - N)
}

/// The value of a `keyword ["'] sep ["'`] value` match: the keyword part is a run of
/// `[A-Za-z0-9_.-]`, the separators (`:=`, `=>`, `=`, `:`, tried in that order), spaces and
/// quotes are never value characters, so the first reading that leaves a value is the regex's.
fn assignment_value(s: &str, a: usize, e: usize) -> Option<usize> {
    let b = &s.as_bytes()[..e];
    let mut i = a;
    while i < e && (b[i].is_ascii_alphanumeric() || matches!(b[i], b'_' | b'.' | b'-')) {
        i += 1;
    }
    if i < e && matches!(b[i], b'"' | b'\'') {
        i += 1;
    }
    while i < e && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    i += match b.get(i..i + 2) {
        Some(b":=" | b"=>") => 2,
        _ if i < e && matches!(b[i], b'=' | b':') => 1,
        _ => return None,
    };
    while i < e && matches!(b[i], b' ' | b'\t') {
        i += 1;
    }
    if i < e && matches!(b[i], b'"' | b'\'' | b'`') {
        i += 1;
    }
    // `password:= "` leaves nothing after `:=`, and the regex reads `:` then the value `=`:
    // let the capture search settle such cases.
    (i < e).then_some(i)
}

const B: &str = r"(?-u:\b)";

fn b(pattern: &str) -> String {
    pattern.replace(r"\b", B)
}

pub(crate) static BUILTINS: LazyLock<Vec<Builtin>> = LazyLock::new(|| {
    let mk = |p: &str, need: u8, group: usize, check: Check| Builtin {
        re: Regex::new(&b(p)).unwrap_or_else(|e| panic!("built-in pattern {p}: {e}")),
        need,
        group,
        value_at: None,
        find: None,
        value_cap: 0,
        check,
    };
    vec![
        mk(
            r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}\b",
            F_AT,
            0,
            email,
        )
        .find(find_email),
        mk(
            r"(?i)\b(?:postgres(?:ql)?|mysql|mariadb|mongodb(?:\+srv)?|rediss?|amqps?|mssql|sqlserver|cockroachdb|clickhouse)://[^\s:/@\x22'<>]*:[^\s@/\x22'<>]+@[^\s/\x22'<>?#]+(?:[/?#][^\s\x22'<>]*)?",
            F_AT,
            0,
            db_url,
        ),
        mk(r"\b[0-9](?:[ -]?[0-9]){12,18}\b", F_DIGIT, 0, card),
        mk(
            concat!(
                r"\+[1-9][0-9]{0,3}(?:[ .-]?\(?[0-9]{1,5}\)?){2,6}\b",
                r"|(?:\b1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b",
                r"|\b0[0-9]{1,3}-[0-9]{2,4}-[0-9]{4}\b",
                r"|\b0[1-9](?:[ .][0-9]{2}){4}\b",
                r"|\b0(?:[1-9][0-9] [0-9]{4} [0-9]{4}|[1-9][0-9]{2} [0-9]{3} [0-9]{4}|[1-9][0-9]{3} [0-9]{5,6})\b",
                r"|(?:\b0[1-9][0-9]{1,4}[ /-]|\(0[1-9][0-9]{1,4}\) ?)[0-9]{4,8}\b",
                r"|\b[6-9][0-9]{4}[ -][0-9]{5}\b",
                r"|\b[689][0-9]{3}[ -][0-9]{4}\b",
            ),
            F_DIGIT,
            0,
            phone,
        ),
        mk(
            r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
            F_DIGIT,
            0,
            iban,
        ),
        mk(r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b", F_DIGIT, 0, ssn),
        mk(r"\b(?:[0-9]{1,3}\.){3}[0-9]{1,3}\b", F_DIGIT, 0, ipv4),
        mk(
            r"(?:\b[0-9A-Fa-f]{1,4}|:)(?::[0-9A-Fa-f]{0,4}){1,7}(?:(?:\.[0-9]{1,3}){3})?",
            F_DIGIT,
            0,
            ipv6,
        ),
        mk(r"\b[0-9]{6}-[0-9]{7}\b", F_DIGIT, 0, kr_rrn),
        mk(
            r"\b[0-9]{4}[ -]?[0-9]{4}[ -]?[0-9]{4}\b",
            F_DIGIT,
            0,
            twelve_digits,
        ),
        mk(
            r"\b[12] ?[0-9]{2} ?[0-9]{2} ?(?:[0-9]{2}|2[AB]) ?[0-9]{3} ?[0-9]{3} ?[0-9]{2}\b",
            F_DIGIT,
            0,
            fr_nir,
        ),
        mk(r"\b[0-9]{8}-?[A-Z]\b", F_DIGIT, 0, es_dni),
        mk(r"\b[XYZ]-?[0-9]{7}-?[A-Z]\b", F_DIGIT, 0, es_nie),
        mk(
            r"\b[A-Z]{6}[0-9LMNPQRSTUV]{2}[ABCDEHLMPRST][0-9LMNPQRSTUV]{2}[A-Z][0-9LMNPQRSTUV]{3}[A-Z]\b",
            F_DIGIT,
            0,
            it_cf,
        ),
        mk(r"\b[STFGM][0-9]{7}[A-Z]\b", F_DIGIT, 0, sg_nric),
        mk(r"\b[1-9][0-9](?: ?[0-9]{3}){3}\b", F_DIGIT, 0, de_steuer),
        mk(
            r"\b(?:[0-9]{9}|[0-9]{4}\.[0-9]{2}\.[0-9]{3})\b",
            F_DIGIT,
            0,
            nl_bsn,
        ),
        mk(
            r"\b[A-Z]{2} ?[0-9]{2} ?[0-9]{2} ?[0-9]{2} ?[A-D]\b",
            F_DIGIT,
            0,
            uk_nino,
        ),
        mk(
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z0-9]{16}\b",
            F_LONG,
            0,
            aws_key,
        ),
        mk(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})\b",
            F_LONG,
            0,
            github,
        ),
        mk(
            r"\bxox[abposr]-[A-Za-z0-9]+(?:-[A-Za-z0-9]+)+",
            F_LONG,
            0,
            slack,
        ),
        mk(r"\bsk-[A-Za-z0-9_-]{20,}", F_LONG, 0, sk_dash),
        mk(r"\bAIza[0-9A-Za-z_-]{35}", F_LONG, 0, google),
        mk(
            r"\b[sr]k_(?:live|test)_[0-9A-Za-z]{10,247}\b",
            F_LONG,
            0,
            stripe,
        ),
        mk(
            r"\bSG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}",
            F_LONG,
            0,
            sendgrid,
        ),
        mk(r"\bSK[0-9a-fA-F]{32}\b", F_LONG, 0, twilio),
        mk(r"\bnpm_[A-Za-z0-9]{36}\b", F_LONG, 0, npm),
        mk(
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
            F_LONG,
            0,
            jwt,
        ),
        mk(
            r#"(?i)(?:aws_?secret_?access_?key|aws_?secret_?key|secret_?access_?key)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?([A-Za-z0-9/+]{40})"#,
            F_KEY,
            1,
            aws_secret,
        )
        .value_at(last_bytes::<40>),
        mk(
            r#"(?i)(?:account_?sid|twilio[a-z_]*sid)["']?[ \t]*(?::=|=>|=|:)[ \t]*["']?(AC[0-9a-f]{32})\b"#,
            F_KEY,
            1,
            twilio_sid,
        )
        .value_at(last_bytes::<34>),
        mk(
            r#"(?i)\b[a-z0-9_.-]*(?:password|passwd|pwd|passphrase|secret|token|api[_-]?key|access[_-]?key|auth|credentials?)[a-z0-9_]*["']?[ \t]*(?::=|=>|=|:)[ \t]*["'`]?([^\s"'`<>,;(){}\[\]]+)"#,
            F_KEY,
            1,
            generic,
        )
        .value_at(assignment_value)
        .capped(GENERIC_VALUE_CAP),
    ]
});

/// Lower-case keywords that open a keyword window (assignment-context detectors).
pub(crate) const KEYWORDS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "passphrase",
    "secret",
    "token",
    "api_key",
    "apikey",
    "api-key",
    "access_key",
    "accesskey",
    "auth",
    "credential",
    "account_sid",
    "twilio",
];

fn byte_at(s: &str, i: usize) -> u8 {
    s.as_bytes().get(i).copied().unwrap_or(b' ')
}

fn before(s: &str, i: usize) -> u8 {
    if i == 0 { b' ' } else { s.as_bytes()[i - 1] }
}

/// A candidate's significant characters, on the stack (validators run per candidate, so no
/// allocation). Longer input yields an empty value, which no validator accepts.
pub(crate) struct Stripped {
    buf: [u8; 64],
    len: usize,
}

impl std::ops::Deref for Stripped {
    type Target = str;
    fn deref(&self) -> &str {
        // Only ASCII bytes are ever stored.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or("")
    }
}

fn stripped(s: &str, keep: impl Fn(u8) -> bool) -> Stripped {
    let mut out = Stripped {
        buf: [0; 64],
        len: 0,
    };
    for c in s.bytes().filter(|&c| keep(c)) {
        if out.len == out.buf.len() {
            out.len = 0;
            return out;
        }
        out.buf[out.len] = c;
        out.len += 1;
    }
    out
}

/// Whether `needle` occurs in `hay`: a plain scan, since checks look for two to five bytes in
/// a candidate of a few dozen, where `str::contains` spent more building its searcher.
fn has_bytes(hay: &str, needle: &[u8]) -> bool {
    hay.as_bytes().windows(needle.len()).any(|w| w == needle)
}

fn digits_of(s: &str) -> Stripped {
    stripped(s, |c| c.is_ascii_digit())
}

fn alnum_of(s: &str) -> Stripped {
    stripped(s, |c| c.is_ascii_alphanumeric())
}

/// Separators, if any, are all the same character.
fn uniform_separators(s: &str) -> bool {
    let mut sep = None;
    for c in s.bytes().filter(|c| !c.is_ascii_alphanumeric()) {
        match sep {
            None => sep = Some(c),
            Some(x) if x != c => return false,
            _ => {}
        }
    }
    true
}

fn email(s: &str, mut a: usize, e: usize) -> Found {
    // The local part may not start with punctuation; start at its first alphanumeric.
    while a < e && !s.as_bytes()[a].is_ascii_alphanumeric() {
        a += 1;
    }
    let v = &s[a..e];
    let at = memchr::memchr(b'@', v.as_bytes())?;
    if at == 0 || at > 64 || v.len() > 254 || has_bytes(&v[..at], b"..") {
        return None;
    }
    let domain = &v[at + 1..];
    if domain
        .split('.')
        .any(|l| l.is_empty() || l.starts_with('-') || l.ends_with('-'))
    {
        return None;
    }
    Some((K::EMAIL as usize, a, e))
}

fn db_url(s: &str, a: usize, mut e: usize) -> Found {
    while e > a && matches!(s.as_bytes()[e - 1], b'.' | b',' | b';' | b')' | b']' | b'}') {
        e -= 1;
    }
    let v = &s[a..e];
    if v.len() > TOKEN_CAP {
        return None;
    }
    let vb = v.as_bytes();
    let scheme_end = vb.windows(3).position(|w| w == b"://")? + 3;
    let creds = &v[scheme_end..memchr::memchr(b'@', vb)?];
    let pass = &creds[memchr::memchr(b':', creds.as_bytes())? + 1..];
    let placeholder = pass.starts_with(['$', '<', '{', '*', '%'])
        || ["password", "pass", "changeme", "xxx", "secret"]
            .iter()
            .any(|p| pass.eq_ignore_ascii_case(p));
    (!pass.is_empty() && !placeholder).then_some((K::DB_URL as usize, a, e))
}

const TEST_CARDS: &[&str] = &[
    "4111111111111111",
    "4242424242424242",
    "4012888888881881",
    "4000056655665556",
    "4222222222222",
    "4000000000000002",
    "4000000000000077",
    "4000000000003220",
    "5555555555554444",
    "5105105105105100",
    "2223003122003222",
    "5200828282828210",
    "5454545454545454",
    "378282246310005",
    "371449635398431",
    "378734493671000",
    "6011111111111117",
    "6011000990139424",
    "6011000000000004",
    "3530111333300000",
    "3566002020360505",
    "30569309025904",
    "38520000023237",
    "36227206271667",
    "6200000000000005",
    "6250941006528599",
    "6759649826438453",
    "5019717010103742",
];

/// [`TEST_CARDS`] as (digit count, value): a candidate is compared as one number instead of by
/// a string comparison with each.
static TEST_CARD_VALUES: LazyLock<Vec<(usize, u64)>> = LazyLock::new(|| {
    TEST_CARDS
        .iter()
        .map(|t| (t.len(), digit_value(t)))
        .collect()
});

/// The value of at most 19 ASCII digits.
fn digit_value(d: &str) -> u64 {
    d.bytes()
        .fold(0u64, |v, c| v * 10 + u64::from(c.wrapping_sub(b'0')))
}

fn is_test_card(d: &str) -> bool {
    let key = (d.len(), digit_value(d));
    TEST_CARD_VALUES.contains(&key)
}

fn card_issuer_ok(d: &str) -> bool {
    let n = d.len();
    let p = |k: usize| d[..k].parse::<u32>().unwrap_or(0);
    match d.as_bytes()[0] {
        b'4' => matches!(n, 13 | 16 | 19),
        b'5' => {
            (n == 16 && (51..=55).contains(&p(2)))
                || ((12..=19).contains(&n) && matches!(p(4), 5018 | 5020 | 5038 | 5893))
                || ((12..=19).contains(&n) && (p(2) == 50 || (56..=58).contains(&p(2))))
        }
        b'2' => n == 16 && (2221..=2720).contains(&p(4)),
        b'3' => {
            (n == 15 && matches!(p(2), 34 | 37))
                || ((16..=19).contains(&n) && (3528..=3589).contains(&p(4)))
                || ((14..=19).contains(&n)
                    && ((300..=305).contains(&p(3)) || matches!(p(2), 36 | 38 | 39)))
        }
        b'6' => {
            (13..=19).contains(&n) && n >= 16
                || (n >= 12 && matches!(p(4), 6304 | 6759 | 6761 | 6762 | 6763))
        }
        _ => false,
    }
}

fn card_ok(s: &str, a: usize, e: usize) -> Option<usize> {
    let v = &s[a..e];
    if !uniform_separators(v) {
        return None;
    }
    let d = digits_of(v);
    let d: &str = &d;
    if !(13..=19).contains(&d.len()) || !card_issuer_ok(d) || !validate::luhn(d) {
        return None;
    }
    // Grouped numbers start with a group of 4 and never have a group longer than 6.
    if v.len() != d.len() {
        let mut groups = v.split([' ', '-']);
        if groups.next().map(str::len) != Some(4) || groups.any(|g| g.len() > 6) {
            return None;
        }
    }
    let uniform = d.bytes().all(|c| c == d.as_bytes()[0]);
    if uniform {
        return None;
    }
    Some(if is_test_card(d) {
        K::CARD_TEST as usize
    } else {
        K::CARD as usize
    })
}

fn card(s: &str, a: usize, e: usize) -> Found {
    if matches!(before(s, a), b'-' | b'.' | b'/' | b'#')
        || matches!(byte_at(s, e), b'-' | b'.' | b'/')
    {
        // Part of a longer dotted/dashed identifier (order numbers, versions, ISBNs).
        if byte_at(s, e) != b'.' || byte_at(s, e + 1).is_ascii_alphanumeric() {
            return None;
        }
    }
    if let Some(k) = card_ok(s, a, e) {
        return Some((k, a, e));
    }
    // The greedy match may have swallowed a neighbouring number: try sub-runs on group edges.
    let v = &s[a..e];
    let cuts: Vec<usize> = std::iter::once(0)
        .chain(
            v.bytes()
                .enumerate()
                .filter(|(_, c)| !c.is_ascii_digit())
                .map(|(i, _)| i),
        )
        .chain(std::iter::once(v.len()))
        .collect();
    if cuts.len() <= 2 {
        return None;
    }
    let mut best: Option<(usize, usize, usize)> = None;
    for (i, &x) in cuts.iter().enumerate() {
        let start = if x == 0 { 0 } else { x + 1 };
        for &y in cuts[i + 1..].iter().rev() {
            if start == 0 && y == v.len() {
                continue;
            }
            if best.is_some_and(|(_, bs, be)| be - bs >= y - start) {
                break;
            }
            if let Some(k) = card_ok(s, a + start, a + y) {
                best = Some((k, a + start, a + y));
                break;
            }
        }
    }
    best
}

fn looks_like_date(d: &str) -> bool {
    // Three all-digit parts, their lengths kept on the stack (this runs for every phone-shaped
    // candidate).
    let mut lens = [0usize; 3];
    let mut n = 0;
    for part in d.split(['-', '.', '/', ' ']) {
        if n == 3 || !part.bytes().all(|c| c.is_ascii_digit()) {
            return false;
        }
        lens[n] = part.len();
        n += 1;
    }
    n == 3
        && ((lens[0] == 4 && lens[1] <= 2 && lens[2] <= 2)
            || (lens[0] <= 2 && lens[1] <= 2 && matches!(lens[2], 2 | 4)))
}

fn phone(s: &str, a: usize, e: usize) -> Found {
    let v = &s[a..e];
    let prev = before(s, a);
    if prev.is_ascii_alphanumeric()
        || matches!(prev, b'+' | b'-' | b'.' | b'/' | b'_' | b'#' | b':' | b'$')
    {
        return None;
    }
    let next = byte_at(s, e);
    if next.is_ascii_alphanumeric()
        || matches!(next, b'-' | b'/' | b'_' | b'%')
        || (next == b'.' && byte_at(s, e + 1).is_ascii_digit())
    {
        return None;
    }
    // One group of a longer run of digit groups (a card, an account number).
    if (prev == b' ' && before(s, a.saturating_sub(1)).is_ascii_digit() && a >= 2)
        || (next == b' ' && byte_at(s, e + 1).is_ascii_digit())
    {
        return None;
    }
    let n = v.bytes().filter(u8::is_ascii_digit).count();
    if !(8..=15).contains(&n) || looks_like_date(v) {
        return None;
    }
    if v.as_bytes()
        .windows(2)
        .any(|w| w[0] == w[1] && matches!(w[0], b' ' | b'-' | b'.'))
    {
        return None;
    }
    if v.starts_with('+') {
        // E.164: country code plus subscriber number, at least one separator-free run of 2+.
        let d = digits_of(v);
        let d: &str = &d;
        if d.len() < 8 || d.bytes().all(|c| c == d.as_bytes()[0]) {
            return None;
        }
    } else if v.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    Some((K::PHONE as usize, a, e))
}

fn iban(s: &str, a: usize, e: usize) -> Found {
    let v = &s[a..e];
    let len = validate::iban_length(&v[..2])?;
    // Stop at the country's length so a following word in capitals is not swallowed.
    let mut count = 0;
    let mut end = None;
    for (i, c) in v.bytes().enumerate() {
        if c.is_ascii_alphanumeric() {
            count += 1;
            if count == len {
                end = Some(i + 1);
                break;
            }
        }
    }
    let end = end?;
    if byte_at(v, end).is_ascii_alphanumeric() {
        return None;
    }
    validate::iban(&alnum_of(&v[..end])).then_some((K::IBAN as usize, a, a + end))
}

fn no_dash_neighbours(s: &str, a: usize, e: usize) -> bool {
    let glued_before = matches!(before(s, a), b'-' | b'.' | b'/' | b'#' | b'_');
    let glued_after = matches!(byte_at(s, e), b'-' | b'/' | b'_')
        || (byte_at(s, e) == b'.' && byte_at(s, e + 1).is_ascii_digit());
    !glued_before && !glued_after
}

fn ssn(s: &str, a: usize, e: usize) -> Found {
    (no_dash_neighbours(s, a, e) && validate::us_ssn(&digits_of(&s[a..e]))).then_some((
        K::SSN as usize,
        a,
        e,
    ))
}

fn ipv4(s: &str, a: usize, e: usize) -> Found {
    // 1.2.3.4.5 and 10.0.0.1.2 are versions or OIDs, not addresses.
    if matches!(before(s, a), b'.') || (byte_at(s, e) == b'.' && byte_at(s, e + 1).is_ascii_digit())
    {
        return None;
    }
    // "version 2.4.1.17", "v10.0.19045.3693", "firmware 1.2.3.4": a version, not an address.
    if preceded_by_word(
        s,
        a,
        &["version", "ver", "v", "firmware", "build", "release", "fw"],
    ) {
        return None;
    }
    let ok = s[a..e]
        .split('.')
        .all(|o| o.parse::<u8>().is_ok() && (o == "0" || !o.starts_with('0')));
    ok.then_some((K::IPV4 as usize, a, e))
}

fn ipv6(s: &str, a: usize, e: usize) -> Found {
    let v = &s[a..e];
    let prev = before(s, a);
    let next = byte_at(s, e);
    if prev.is_ascii_alphanumeric()
        || matches!(prev, b':' | b'.' | b'_')
        || next.is_ascii_alphanumeric()
        || next == b':'
        || next == b'_'
    {
        return None;
    }
    let groups = v.split(':').filter(|g| !g.is_empty()).count();
    let compressed = has_bytes(v, b"::");
    if (compressed && groups < 3) || !v.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    v.parse::<std::net::Ipv6Addr>()
        .is_ok()
        .then_some((K::IPV6 as usize, a, e))
}

fn kr_rrn(s: &str, a: usize, e: usize) -> Found {
    (no_dash_neighbours(s, a, e) && validate::kr_rrn(&digits_of(&s[a..e]))).then_some((
        K::KR_RRN as usize,
        a,
        e,
    ))
}

fn twelve_digits(s: &str, a: usize, e: usize) -> Found {
    let v = &s[a..e];
    if !no_dash_neighbours(s, a, e) || !uniform_separators(v) {
        return None;
    }
    let d = digits_of(v);
    let d: &str = &d;
    if d.bytes().all(|c| c == d.as_bytes()[0]) {
        return None;
    }
    let aadhaar = d.as_bytes()[0] >= b'2' && validate::verhoeff(d);
    let my_number = validate::jp_my_number(d);
    // Both checks pass for about one number in eleven; the words before it decide.
    if aadhaar
        && my_number
        && mentions(
            s,
            a,
            &[
                "my number",
                "my_number",
                "my-number",
                "mynumber",
                "マイナンバー",
                "個人番号",
            ],
        )
    {
        return Some((K::JP_MY as usize, a, e));
    }
    if aadhaar {
        return Some((K::AADHAAR as usize, a, e));
    }
    my_number.then_some((K::JP_MY as usize, a, e))
}

/// Whether the word just before `at` (skipping spaces, `:` and `#`) is one of `words`
/// (ASCII, case-insensitive; `v` also matches glued, as in `v1.2.3.4`).
fn preceded_by_word(s: &str, at: usize, words: &[&str]) -> bool {
    let head = s[..at].trim_end_matches([' ', ':', '#', '=']);
    let glued = head.len() == at;
    let word_start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !c.is_ascii_alphabetic())
        .map_or(0, |(i, c)| i + c.len_utf8());
    let word = &head[word_start..];
    if glued {
        return word.eq_ignore_ascii_case("v");
    }
    words.iter().any(|w| word.eq_ignore_ascii_case(w))
}

/// Whether one of `words` (ASCII case-insensitive) appears in the 64 bytes before `at`.
fn mentions(s: &str, at: usize, words: &[&str]) -> bool {
    let mut from = at.saturating_sub(64);
    while !s.is_char_boundary(from) {
        from -= 1;
    }
    let window = s[from..at].to_lowercase();
    words.iter().any(|w| window.contains(&w.to_lowercase()))
}

fn fr_nir(s: &str, a: usize, e: usize) -> Found {
    validate::fr_nir(&alnum_of(&s[a..e])).then_some((K::FR_NIR as usize, a, e))
}

fn es_dni(s: &str, a: usize, e: usize) -> Found {
    validate::es_dni(&alnum_of(&s[a..e])).then_some((K::ES_DNI as usize, a, e))
}

fn es_nie(s: &str, a: usize, e: usize) -> Found {
    validate::es_nie(&alnum_of(&s[a..e])).then_some((K::ES_NIE as usize, a, e))
}

fn it_cf(s: &str, a: usize, e: usize) -> Found {
    validate::it_codice_fiscale(&s[a..e]).then_some((K::IT_CF as usize, a, e))
}

fn sg_nric(s: &str, a: usize, e: usize) -> Found {
    validate::sg_nric(&s[a..e]).then_some((K::SG_NRIC as usize, a, e))
}

fn de_steuer(s: &str, a: usize, e: usize) -> Found {
    (no_dash_neighbours(s, a, e) && validate::de_steuer_id(&digits_of(&s[a..e]))).then_some((
        K::DE_STEUER as usize,
        a,
        e,
    ))
}

fn nl_bsn(s: &str, a: usize, e: usize) -> Found {
    let d = digits_of(&s[a..e]);
    let d: &str = &d;
    (no_dash_neighbours(s, a, e)
        && !d.bytes().all(|c| c == d.as_bytes()[0])
        && validate::elfproef(d))
    .then_some((K::NL_BSN as usize, a, e))
}

fn uk_nino(s: &str, a: usize, e: usize) -> Found {
    let v = &s[a..e];
    if !uniform_separators(v) {
        return None;
    }
    validate::uk_nino(&alnum_of(v)).then_some((K::UK_NINO as usize, a, e))
}

/// Random-looking: not one repeated character, and mixes at least two character classes.
fn random_enough(v: &str, min_entropy: f64) -> bool {
    let classes = [
        v.bytes().any(|c| c.is_ascii_lowercase()),
        v.bytes().any(|c| c.is_ascii_uppercase()),
        v.bytes().any(|c| c.is_ascii_digit()),
        v.bytes().any(|c| !c.is_ascii_alphanumeric()),
    ];
    classes.iter().filter(|&&x| x).count() >= 2 && validate::shannon_entropy(v) >= min_entropy
}

fn aws_key(s: &str, a: usize, e: usize) -> Found {
    random_enough(&s[a + 4..e], 2.5).then_some((K::AWS_KEY as usize, a, e))
}

fn github(_: &str, a: usize, e: usize) -> Found {
    Some((K::GITHUB as usize, a, e))
}

fn slack(s: &str, a: usize, e: usize) -> Found {
    (e - a >= 20 && e - a <= TOKEN_CAP && s[a..e].bytes().any(|c| c.is_ascii_digit())).then_some((
        K::SLACK as usize,
        a,
        e,
    ))
}

fn sk_dash(s: &str, a: usize, e: usize) -> Found {
    let v = &s[a..e];
    let body = &v[3..];
    let mixed = body.bytes().any(|c| c.is_ascii_digit())
        && body.bytes().any(|c| c.is_ascii_uppercase())
        && body.bytes().any(|c| c.is_ascii_lowercase());
    if v.len() > TOKEN_CAP || !mixed || !random_enough(body, 3.0) {
        return None;
    }
    let k = if v.starts_with("sk-ant-") {
        K::ANTHROPIC
    } else {
        K::OPENAI
    };
    Some((k as usize, a, e))
}

fn word_char_or_dash(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c == b'-'
}

fn google(s: &str, a: usize, e: usize) -> Found {
    (!word_char_or_dash(byte_at(s, e))).then_some((K::GOOGLE as usize, a, e))
}

fn stripe(s: &str, a: usize, e: usize) -> Found {
    random_enough(&s[a + 8..e], 2.5).then_some((K::STRIPE as usize, a, e))
}

fn sendgrid(s: &str, a: usize, e: usize) -> Found {
    (!word_char_or_dash(byte_at(s, e))).then_some((K::SENDGRID as usize, a, e))
}

fn twilio(s: &str, a: usize, e: usize) -> Found {
    random_enough(&s[a + 2..e], 2.5).then_some((K::TWILIO as usize, a, e))
}

fn twilio_sid(_: &str, a: usize, e: usize) -> Found {
    Some((K::TWILIO as usize, a, e))
}

fn npm(s: &str, a: usize, e: usize) -> Found {
    random_enough(&s[a + 4..e], 2.5).then_some((K::NPM as usize, a, e))
}

fn jwt(s: &str, a: usize, e: usize) -> Found {
    let v = &s[a..e];
    if v.len() > TOKEN_CAP {
        return None;
    }
    let header = v.split('.').next()?;
    let decoded = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(header.trim_end_matches('='))
        .ok()?;
    let json = std::str::from_utf8(&decoded).ok()?;
    (json.trim_start().starts_with('{') && has_bytes(json, b"\"alg\"")).then_some((
        K::JWT as usize,
        a,
        e,
    ))
}

fn aws_secret(s: &str, a: usize, e: usize) -> Found {
    let next = byte_at(s, e);
    if next.is_ascii_alphanumeric() || matches!(next, b'/' | b'+') {
        return None;
    }
    random_enough(&s[a..e], 3.5).then_some((K::AWS_SECRET as usize, a, e))
}

static PLACEHOLDERS: LazyLock<aho_corasick::AhoCorasick> = LazyLock::new(|| {
    aho_corasick::AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build([
            "your",
            "example",
            "placeholder",
            "changeme",
            "change_me",
            "change-me",
            "dummy",
            "redacted",
            "xxxx",
            "****",
            "...",
            "todo",
            "sample",
            "insert",
            "replace",
            "password",
            "secret",
            "process.env",
            "os.environ",
            "getenv",
            "none",
            "null",
            "undefined",
            "true",
            "false",
        ])
        .expect("placeholder automaton")
});

/// Whether an assignment value is a real-looking secret rather than a placeholder, reference or
/// ordinary word: at least [`GENERIC_MIN_LEN`] bytes, [`GENERIC_MIN_ENTROPY`] bits per character,
/// two character classes, and none of the usual placeholder spellings.
pub(crate) fn generic_value_ok(v: &str) -> bool {
    if v.len() < GENERIC_MIN_LEN || !random_enough(v, GENERIC_MIN_ENTROPY) {
        return false;
    }
    if v.starts_with(['$', '%', '<', '{', '[', '@', '&', '*', '#'])
        || has_bytes(v, b"${")
        || has_bytes(v, b"{{")
    {
        return false;
    }
    if PLACEHOLDERS.is_match(v) {
        return false;
    }
    // A dotted identifier is a reference to where the secret lives (`config.db.password`).
    let is_ref = v.split('.').count() > 1
        && v.split('.').all(|p| {
            p.bytes()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
                && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
        });
    !is_ref
}

fn generic(s: &str, a: usize, e: usize) -> Found {
    if matches!(byte_at(s, e), b'(' | b'[') {
        return None;
    }
    generic_value_ok(&s[a..e]).then_some((K::GENERIC as usize, a, e))
}

/// Private key blocks: found with a substring search for the BEGIN line, not a regex, so the
/// block length bound costs nothing. Returns (start, end) of each block.
pub(crate) fn private_keys(s: &str, out: &mut Vec<(usize, usize)>) {
    let finder = memchr::memmem::Finder::new("-----BEGIN ");
    let mut from = 0;
    while let Some(i) = finder.find(&s.as_bytes()[from..]) {
        let a = from + i;
        from = a + 11;
        if let Some(e) = private_key_at(s, a) {
            out.push((a, e));
            from = e;
        }
    }
}

/// The end of the private key block starting at `a`: its END line, or when that is missing
/// within [`PEM_CAP`], the end of the base64 body (so a truncated key is still covered).
pub(crate) fn private_key_at(s: &str, a: usize) -> Option<usize> {
    let rest = &s[a + 11..];
    let label_end = rest.find("-----")?;
    let label = &rest[..label_end];
    if label.len() > 40 || !label.ends_with("PRIVATE KEY") && !label.ends_with("PRIVATE KEY BLOCK")
    {
        return None;
    }
    if !label
        .bytes()
        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b' ')
    {
        return None;
    }
    let body_start = a + 11 + label_end + 5;
    let mut limit = (a + PEM_CAP).min(s.len());
    while !s.is_char_boundary(limit) {
        limit -= 1;
    }
    if body_start > limit {
        return None;
    }
    let window = &s[body_start..limit];
    let end_line = format!("-----END {label}-----");
    if let Some(i) = window.find(&end_line) {
        return Some(body_start + i + end_line.len());
    }
    // No END within the cap: cover the body's base64 lines.
    let mut end = body_start;
    for line in window.split_inclusive('\n') {
        let t = line.trim();
        let body_like = t.bytes().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, b'+' | b'/' | b'=' | b':' | b'-' | b' ' | b',')
        });
        if !body_like || t.starts_with("-----") {
            break;
        }
        end += line.len();
    }
    let trimmed = s[body_start..end].trim_end();
    Some(body_start + trimmed.len())
}
