use super::*;
use serde_json::json;

fn canon(text: &str) -> String {
    let v: Value = serde_json::from_str(text).unwrap();
    String::from_utf8(canonicalize(&v).unwrap()).unwrap()
}

/// RFC 8785 §3.2.2 (also `testdata/input/values.json` of the reference implementation).
#[test]
fn rfc8785_primitive_values_example() {
    let input = r#"{
      "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
      "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
      "literals": [null, true, false]
    }"#;
    assert_eq!(
        canon(input),
        r#"{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}"#
    );
}

/// RFC 8785 §3.2.3 sorting example (also `testdata/input/weird.json`): keys sort by UTF-16 code
/// units, so U+1F602 (surrogates D83D DE02) sorts before U+FB33.
#[test]
fn rfc8785_sorting_example() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "\r": "Carriage Return",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "1": "One",
      "\ud83d\ude00": "Emoji: Grinning Face",
      "\u0080": "Control\u007f",
      "\u00f6": "Latin Small Letter O With Diaeresis"
    }"#;
    let want = "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u{80}\":\"Control\u{7f}\",\
                \"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
                \"😀\":\"Emoji: Grinning Face\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(canon(input), want);
}

#[test]
fn reference_weird_json() {
    let input = r#"{
      "\u20ac": "Euro Sign",
      "1": "One",
      "\u0080": "Control\u007f",
      "\ud83d\ude02": "Smiley",
      "\u00f6": "Latin Small Letter O With Diaeresis",
      "\ufb33": "Hebrew Letter Dalet With Dagesh",
      "</script>": "Browser Challenge"
    }"#;
    let want = "{\"1\":\"One\",\"</script>\":\"Browser Challenge\",\"\u{80}\":\"Control\u{7f}\",\
                \"ö\":\"Latin Small Letter O With Diaeresis\",\"€\":\"Euro Sign\",\
                \"😂\":\"Smiley\",\"\u{fb33}\":\"Hebrew Letter Dalet With Dagesh\"}";
    assert_eq!(canon(input), want);
}

/// RFC 8785 Appendix B: IEEE 754 bit patterns and the text JCS requires. (NaN and the
/// infinities cannot be JSON values; `write_f64` refuses them.)
#[test]
fn rfc8785_appendix_b_numbers() {
    const SAMPLES: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x0000000000000001, "5e-324"),
        (0x8000000000000001, "-5e-324"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0xffefffffffffffff, "-1.7976931348623157e+308"),
        (0x4340000000000000, "9007199254740992"),
        (0xc340000000000000, "-9007199254740992"),
        (0x4430000000000000, "295147905179352830000"),
        (0x44b52d02c7e14af5, "9.999999999999997e+22"),
        (0x44b52d02c7e14af6, "1e+23"),
        (0x44b52d02c7e14af7, "1.0000000000000001e+23"),
        (0x444b1ae4d6e2ef4e, "999999999999999700000"),
        (0x444b1ae4d6e2ef4f, "999999999999999900000"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x41b3de4355555553, "333333333.3333332"),
        (0x41b3de4355555554, "333333333.33333325"),
        (0x41b3de4355555555, "333333333.3333333"),
        (0x41b3de4355555556, "333333333.3333334"),
        (0x41b3de4355555557, "333333333.33333343"),
        (0xbecbf647612f3696, "-0.0000033333333333333333"),
        (0x43143ff3c1cb0959, "1424953923781206.2"),
    ];
    for &(bits, want) in SAMPLES {
        let mut out = Vec::new();
        write_f64(f64::from_bits(bits), &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want, "{bits:016x}");
        // And through a serde_json float value (integral floats go through the same path).
        if let Some(n) = Number::from_f64(f64::from_bits(bits)) {
            assert_eq!(canonicalize(&Value::Number(n)).unwrap(), want.as_bytes());
        }
    }
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        assert!(matches!(
            write_f64(bad, &mut Vec::new()),
            Err(JcsError::NonFinite(_))
        ));
    }
}

#[test]
fn integers_are_exact_within_the_safe_range_and_refused_beyond() {
    assert_eq!(canon("9007199254740991"), "9007199254740991");
    assert_eq!(canon("-9007199254740991"), "-9007199254740991");
    assert_eq!(canon("-0"), "0");
    assert_eq!(canon("1.0"), "1");
    assert_eq!(canon("100e-2"), "1");
    assert_eq!(
        canonicalize(&json!(9007199254740992u64)),
        Err(JcsError::UnsafeInteger("9007199254740992".into()))
    );
    assert_eq!(
        canonicalize(&json!({"t": [-9007199254740992i64]})),
        Err(JcsError::UnsafeInteger("-9007199254740992".into()))
    );
    // The same magnitude as a float is a JCS number like any other.
    assert_eq!(canon("9007199254740992.0"), "9007199254740992");
}

#[test]
fn strings_escape_like_ecmascript() {
    let s = "\u{0}\u{1}\u{8}\t\n\u{b}\u{c}\r\u{1f} \"\\/\u{7f}\u{2028}é";
    let mut out = Vec::new();
    write_string(s, &mut out);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "\"\\u0000\\u0001\\b\\t\\n\\u000b\\f\\r\\u001f \\\"\\\\/\u{7f}\u{2028}é\""
    );
}

#[test]
fn nested_structures() {
    assert_eq!(
        canon(r#"{ "b" : [ { "z" : 1 , "a" : [ ] } , { } ] , "a" : { "y" : { } } }"#),
        r#"{"a":{"y":{}},"b":[{"a":[],"z":1},{}]}"#
    );
    assert_eq!(canon("[]"), "[]");
    assert_eq!(canon(r#""x""#), r#""x""#);
}

#[test]
fn split_object_assembles_to_the_canonical_form() {
    let reserved = ["index", "prev"];
    let samples = [
        json!({}),
        json!({"a": 1}),
        json!({"zz": 1}),
        json!({"j": true}),
        json!({"a": 1, "j": 2, "q": 3, "z": [1, {"b": 2, "a": 1}]}),
        json!({"index_": 1, "indew": 2, "prev0": 3, "pre": 4, "€": 5, "😀": 6}),
        json!({"A": null, "Z": "index"}),
    ];
    for sample in samples {
        let map = sample.as_object().unwrap();
        let split = SplitObject::new(map, &reserved).unwrap();
        let mut out = Vec::new();
        split.assemble(&[br#""index":42"#, br#""prev":null"#], &mut out);
        let mut full = map.clone();
        full.insert("index".into(), json!(42));
        full.insert("prev".into(), Value::Null);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            String::from_utf8(canonicalize(&Value::Object(full)).unwrap()).unwrap(),
            "{sample}"
        );
    }
}

/// 3000 doubles (random, biased toward the exponent-form boundaries and short mantissas) with
/// the text V8's `JSON.stringify` produced for them (`testdata/es-numbers.txt`).
#[test]
fn numbers_match_v8_differential_corpus() {
    let corpus = include_str!("../../testdata/es-numbers.txt");
    let mut checked = 0;
    for line in corpus.lines().filter(|l| !l.starts_with('#')) {
        let (bits, want) = line.split_once(' ').unwrap();
        let f = f64::from_bits(u64::from_str_radix(bits, 16).unwrap());
        let mut out = Vec::new();
        write_f64(f, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), want, "{bits}");
        checked += 1;
    }
    assert_eq!(checked, 3000);
}

/// A small deterministic PRNG (xorshift64*), so the differential tests need no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const KEYS: &[&str] = &[
    "a", "b", "index", "prev", "session", "kind", "é", "€", "😀", "\u{fb33}", "", "a\"b", "\n",
    "z\u{1}", "A", "Z",
];
const STRINGS: &[&str] = &[
    "",
    "x",
    "hello world",
    "tab\there",
    "quote\"",
    "back\\slash",
    "nul\u{0}",
    "\u{1f}",
    "\u{7f}",
    "é€😀",
    "\u{2028}",
    "/",
    "ab\u{8}\u{c}\r\n",
];

fn random_value(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => Value::Bool(rng.below(2) == 0),
        2 => json!(rng.pick(STRINGS)),
        3 => json!(rng.below(1000) as i64 - 500),
        4 => json!(*rng.pick(&[0u64, 1, 9_007_199_254_740_991, 1 << 40])),
        5 => {
            let f = f64::from_bits(rng.next());
            Number::from_f64(if f.is_finite() { f } else { 0.5 }).map_or(Value::Null, Value::Number)
        }
        6 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let mut map = Map::new();
            for _ in 0..rng.below(5) {
                map.insert((*rng.pick(KEYS)).to_owned(), random_value(rng, depth + 1));
            }
            Value::Object(map)
        }
    }
}

/// JCS reads every number as a double: integers beyond ±(2^53 − 1) become the nearest double.
fn as_doubles(v: Value) -> Value {
    match v {
        Value::Number(n)
            if n.as_f64()
                .is_some_and(|f| f.abs() > MAX_SAFE_INTEGER as f64) =>
        {
            Number::from_f64(n.as_f64().unwrap()).map_or(Value::Null, Value::Number)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(as_doubles).collect()),
        Value::Object(map) => {
            Value::Object(map.into_iter().map(|(k, v)| (k, as_doubles(v))).collect())
        }
        other => other,
    }
}

/// The definition `check_entry` must meet: a JSON object whose canonical form (numbers read as
/// doubles) is itself.
fn reference(bytes: &[u8]) -> Option<Value> {
    match serde_json::from_slice::<Value>(bytes).map(as_doubles) {
        Ok(v @ Value::Object(_)) if canonicalize(&v).ok().as_deref() == Some(bytes) => Some(v),
        _ => None,
    }
}

fn slot(v: Option<&Value>) -> Slot {
    match v {
        None => Slot::Absent,
        Some(Value::Null) => Slot::Null,
        Some(Value::String(s)) => Slot::Text(s.clone()),
        Some(_) => Slot::Other,
    }
}

fn assert_agrees(bytes: &[u8]) {
    let checked = check_entry(bytes);
    let expected = reference(bytes);
    assert_eq!(
        checked.is_ok(),
        expected.is_some(),
        "check_entry disagrees on {:?}: {checked:?}",
        String::from_utf8_lossy(bytes)
    );
    if let (Ok(members), Some(v)) = (checked, expected) {
        assert_eq!(members.index, v.get("index").and_then(Value::as_u64));
        assert_eq!(members.session, slot(v.get("session")));
        assert_eq!(members.prev, slot(v.get("prev")));
    }
}

#[test]
fn check_entry_accepts_exactly_canonical_objects() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let noise: &[u8] = b"{}[]\",:0123456789eE.-+\\u abnrtfl\x01\x7f\xc3\xa9";
    let mut canonical_samples = 0;
    for _ in 0..4000 {
        let mut map = Map::new();
        for _ in 0..1 + rng.below(6) {
            map.insert((*rng.pick(KEYS)).to_owned(), random_value(&mut rng, 1));
        }
        let Ok(bytes) = canonicalize(&Value::Object(map)) else {
            continue;
        };
        canonical_samples += 1;
        assert!(
            check_entry(&bytes).is_ok(),
            "{}",
            String::from_utf8_lossy(&bytes)
        );
        assert_agrees(&bytes);
        for _ in 0..8 {
            let mut m = bytes.clone();
            let at = rng.below(m.len());
            match rng.below(3) {
                0 => m[at] = *rng.pick(noise),
                1 => {
                    m.remove(at);
                }
                _ => m.insert(at, *rng.pick(noise)),
            }
            assert_agrees(&m);
        }
    }
    assert!(canonical_samples > 3000);
}

#[test]
fn check_entry_edge_cases() {
    for (text, ok) in [
        (r#"{}"#, true),
        (r#"{"index":0}"#, true),
        (r#"{"index":-0}"#, false),
        (r#"{"index":1.0}"#, false),
        (r#"{"a":1,"a":2}"#, false),
        (r#"{"b":1,"a":2}"#, false),
        (r#"{"a":"\u0041"}"#, false),
        (r#"{"a":"\u001F"}"#, false),
        (r#"{"a":"\u001f"}"#, true),
        (r#"{"a":"\u000a"}"#, false),
        (r#"{"a":"\/"}"#, false),
        (r#"{"a":1e+30}"#, true),
        (r#"{"a":1E+30}"#, false),
        (r#"{"a":9007199254740992}"#, true),
        (r#"{"a":9007199254740993}"#, false),
        (r#"{"a":-10350730343821558}"#, true),
        (r#"{"a":-10350730343821557}"#, false),
        (r#"{"a":295147905179352830000}"#, true),
        (r#"{"a":18446744073709551616}"#, false),
        (r#"{"a":[1,2,]}"#, false),
        (r#"{"a":1} "#, false),
        (r#"[1]"#, false),
        (r#"{"😀":1,"דּ":2}"#, true),
        (r#"{"דּ":1,"😀":2}"#, false),
    ] {
        assert_eq!(check_entry(text.as_bytes()).is_ok(), ok, "{text}");
        assert_agrees(text.as_bytes());
    }
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
    assert!(check_entry(deep.as_bytes()).is_err());
}
