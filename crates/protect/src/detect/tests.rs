use super::*;

fn found(text: &str) -> Vec<(String, String)> {
    found_with(&Scanner::builtin(), text)
}

fn found_with(sc: &Scanner, text: &str) -> Vec<(String, String)> {
    sc.scan(text)
        .into_iter()
        .map(|d| (d.kind.to_string(), text[d.start..d.end].to_string()))
        .collect()
}

fn has(text: &str, kind: &str, value: &str) {
    let f = found(text);
    assert!(
        f.iter().any(|(k, v)| k == kind && v == value),
        "expected {kind} `{value}` in {text:?}, got {f:?}"
    );
}

fn none_of(text: &str, kind: &str) {
    let f = found(text);
    assert!(
        !f.iter().any(|(k, _)| k == kind),
        "unexpected {kind} in {text:?}: {f:?}"
    );
}

fn clean(text: &str) {
    let f = found(text);
    assert!(f.is_empty(), "expected nothing in {text:?}, got {f:?}");
}

const JWT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
const PEM: &str = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi\nZ1BjP5CE/Wm/Rr500P\n-----END RSA PRIVATE KEY-----";

fn ghp() -> String {
    format!("ghp_{}", "1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz")
}
fn google_key() -> String {
    format!("AIza{}", &"SyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW"[..35])
}
fn sendgrid_key() -> String {
    format!(
        "SG.{}.{}",
        &"aB3dE6gH9jK2mN5pQ8sT1vW4"[..22],
        &"xY7zA0bC3dE6fG9hI2jK5lM8nO1pQ4rS7tU0vW3xY6zA9bC2"[..43]
    )
}
fn npm_token() -> String {
    format!("npm_{}", &"a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8s9"[..36])
}

#[test]
fn emails() {
    has(
        "write to jane.doe+tag@example.co.uk today",
        "email",
        "jane.doe+tag@example.co.uk",
    );
    has("<bob@mail.example.org>", "email", "bob@mail.example.org");
    has("Mail: .bob@example.com.", "email", "bob@example.com");
    clean("follow @someone on social, or user@localhost");
    clean("price is 5 @ 3 each");
}

#[test]
fn phones() {
    for (t, v) in [
        ("call +1 415-555-2671 now", "+1 415-555-2671"),
        ("call +14155552671 now", "+14155552671"),
        ("tel (415) 555-2671.", "(415) 555-2671"),
        ("tel 415.555.2671", "415.555.2671"),
        ("UK 020 7946 0958 office", "020 7946 0958"),
        ("mobile 07700 900123", "07700 900123"),
        ("+44 20 7946 0958", "+44 20 7946 0958"),
        ("Berlin 030 12345678", "030 12345678"),
        ("Handy 0151/23456789", "0151/23456789"),
        ("+49 30 12345678", "+49 30 12345678"),
        ("Paris 01 23 45 67 89", "01 23 45 67 89"),
        ("Seoul 010-1234-5678", "010-1234-5678"),
        ("Tokyo 03-1234-5678", "03-1234-5678"),
        ("India 98765 43210", "98765 43210"),
        ("Singapore 6123 4567", "6123 4567"),
        ("+82 10-1234-5678", "+82 10-1234-5678"),
    ] {
        has(t, "phone", v);
    }
    for t in [
        "released 2024-01-15 at 10:30",
        "on 01-15-2024 and 15.01.2024",
        "version 1.2.3.4.5 or 10.2.3",
        "order #123-456-7890 shipped",
        "order 123-456-7890",
        "ISBN 978-3-16-148410-0",
        "uuid 123e4567-e89b-12d3-a456-426614174000",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8",
        "id 12345678901234567890",
        "ts 1700000000123",
        "SKU 555-1234",
    ] {
        none_of(t, "phone");
    }
}

#[test]
fn cards() {
    has(
        "card 4532 0151 1283 0366 exp",
        "credit_card",
        "4532 0151 1283 0366",
    );
    has(
        "card 4532-0151-1283-0366",
        "credit_card",
        "4532-0151-1283-0366",
    );
    has("4532015112830366", "credit_card", "4532015112830366");
    has("mc 2223000000000007", "credit_card", "2223000000000007");
    has(
        "test 4111 1111 1111 1111",
        "credit_card_test",
        "4111 1111 1111 1111",
    );
    has("4242424242424242", "credit_card_test", "4242424242424242");
    has(
        "amex 3782 822463 10005",
        "credit_card_test",
        "3782 822463 10005",
    );
    has("5555555555554444,", "credit_card_test", "5555555555554444");
    has(
        "cards 4532015112830366 2024",
        "credit_card",
        "4532015112830366",
    );
    has(
        "pay 4532 0151 1283 0366 123",
        "credit_card",
        "4532 0151 1283 0366",
    );
    // Luhn failure, unknown issuer, ISBN-13, mixed separators, long ids.
    clean("card 4532 0151 1283 0367");
    clean("num 9532015112830366");
    clean("ISBN 9783161484100");
    clean("4532-0151 1283-0366");
    clean("id 45320151128303661234");
    clean("0000000000000000");
}

#[test]
fn ibans() {
    has(
        "IBAN GB82 WEST 1234 5698 7654 32 please",
        "iban",
        "GB82 WEST 1234 5698 7654 32",
    );
    has("DE89370400440532013000", "iban", "DE89370400440532013000");
    has(
        "to DE89 3704 0044 0532 0130 00 THANKS",
        "iban",
        "DE89 3704 0044 0532 0130 00",
    );
    clean("GB82 WEST 1234 5698 7654 33");
    clean("XX82WEST12345698765432");
}

#[test]
fn ssn_ip() {
    has("SSN 536-90-4399.", "us_ssn", "536-90-4399");
    for t in [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "536-00-4399",
        "536-90-0000",
        "078-05-1120",
        "123-45-6789",
    ] {
        none_of(t, "us_ssn");
    }
    none_of("part 536-90-4399-12", "us_ssn");
    has("host 192.168.1.20 up", "ipv4", "192.168.1.20");
    has("10.0.0.1:8080", "ipv4", "10.0.0.1");
    for t in [
        "v 1.2.3",
        "1.2.3.4.5",
        "256.1.1.1",
        "01.2.3.4",
        "OID 1.3.6.1.4.1",
    ] {
        none_of(t, "ipv4");
    }
    has(
        "addr 2001:db8:85a3::8a2e:370:7334 ok",
        "ipv6",
        "2001:db8:85a3::8a2e:370:7334",
    );
    has(
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
        "ipv6",
        "2001:0db8:0000:0000:0000:ff00:0042:8329",
    );
    has(
        "fe80::1ff:fe23:4567:890a",
        "ipv6",
        "fe80::1ff:fe23:4567:890a",
    );
    for t in [
        "at 12:30:45",
        "mac 00:1A:2B:3C:4D:5E",
        "std::net::Ipv6Addr",
        "a::b",
    ] {
        none_of(t, "ipv6");
    }
}

#[test]
fn national_ids() {
    has("RRN 850315-1234566", "kr_rrn", "850315-1234566");
    none_of("RRN 850315-1234567", "kr_rrn");
    has("My Number 1234 5678 9018", "jp_my_number", "1234 5678 9018");
    has("aadhaar 2345 6789 0124", "in_aadhaar", "2345 6789 0124");
    none_of("aadhaar 2345 6789 0125", "in_aadhaar");
    has(
        "NIR 2 55 08 14 168 025 38",
        "fr_nir",
        "2 55 08 14 168 025 38",
    );
    has("NIR 185072A00608467", "fr_nir", "185072A00608467");
    none_of("NIR 2 55 08 14 168 025 39", "fr_nir");
    has("DNI 12345678Z", "es_dni", "12345678Z");
    none_of("DNI 12345678A", "es_dni");
    has("NIE X-1234567-L", "es_nie", "X-1234567-L");
    has(
        "CF RSSMRA85T10A562S",
        "it_codice_fiscale",
        "RSSMRA85T10A562S",
    );
    has(
        "CF RSSMRA85T10A56NH",
        "it_codice_fiscale",
        "RSSMRA85T10A56NH",
    );
    none_of("CF RSSMRA85T10A562T", "it_codice_fiscale");
    has("NRIC S1234567D", "sg_nric", "S1234567D");
    has("FIN M1234567K", "sg_nric", "M1234567K");
    none_of("NRIC S1234567A", "sg_nric");
    has("Steuer-ID 86095742719", "de_steuer_id", "86095742719");
    has("IdNr 86 095 742 719", "de_steuer_id", "86 095 742 719");
    none_of("12345678903", "de_steuer_id");
    has("BSN 111222333", "nl_bsn", "111222333");
    none_of("BSN 111222334", "nl_bsn");
    has("NINO AB 12 34 56 C", "uk_nino", "AB 12 34 56 C");
    has("NI: JG103759A", "uk_nino", "JG103759A");
    none_of("NI: QQ123456A", "uk_nino");
    none_of("GB123456A", "uk_nino");
}

#[test]
fn secrets() {
    has(
        "key AKIAIOSFODNN7EXAMPLE",
        "aws_access_key_id",
        "AKIAIOSFODNN7EXAMPLE",
    );
    has(
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "aws_secret_access_key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    has(
        r#"{"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}"#,
        "aws_secret_access_key",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    );
    none_of(
        "random wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY here",
        "aws_secret_access_key",
    );
    has(&format!("token {}", ghp()), "github_token", &ghp());
    let pat = "github_pat_11ABCDEFG0abcdefghijkl_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefghijklmnopqrstu";
    has(pat, "github_token", pat);
    let slack = "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx";
    has(slack, "slack_token", slack);
    let oa = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";
    has(&format!("OPENAI_API_KEY={oa}"), "openai_api_key", oa);
    let an = "sk-ant-api03-Xy9zAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z-AbCdEf";
    has(an, "anthropic_api_key", an);
    none_of(an, "openai_api_key");
    has(&google_key(), "google_api_key", &google_key());
    has(
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "stripe_key",
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    );
    has(
        "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "stripe_key",
        "rk_test_4eC39HqLyjWDarjtT1zdp7dc",
    );
    has(&sendgrid_key(), "sendgrid_api_key", &sendgrid_key());
    has(
        "SK0123456789abcdef0123456789abcdef",
        "twilio_api_key",
        "SK0123456789abcdef0123456789abcdef",
    );
    has(
        "TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef",
        "twilio_api_key",
        "AC0123456789abcdef0123456789abcdef",
    );
    clean("AC0123456789abcdef0123456789abcdef");
    has(&npm_token(), "npm_token", &npm_token());
    has(&format!("Bearer {JWT}"), "jwt", JWT);
    clean("eyJub3RqdXN0IjoxfQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.abcdefghijklmnop");
    has(&format!("x\n{PEM}\ny"), "private_key", PEM);
    none_of(
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEF\n-----END PUBLIC KEY-----",
        "private_key",
    );
    // A truncated block is still covered.
    let open = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\nAAAAMwAAAAtzc2gtZW";
    has(open, "private_key", open);
    clean("sk-this-is-not-a-key-at-all-really");
}

#[test]
fn generic_secrets() {
    has(
        "password = \"Xk9#mP2$vL7q\"",
        "generic_secret",
        "Xk9#mP2$vL7q",
    );
    has("DB_PASSWORD=Xk9mP2vL7qZ", "generic_secret", "Xk9mP2vL7qZ");
    has(
        "  api_key: 'a8F3kL0pQ9zX2mN7'",
        "generic_secret",
        "a8F3kL0pQ9zX2mN7",
    );
    has(
        r#"{"client_secret": "a8F3kL0pQ9zX2mN7"}"#,
        "generic_secret",
        "a8F3kL0pQ9zX2mN7",
    );
    has(
        "export AUTH_TOKEN=9f8e7d6c5b4a3f2e1d",
        "generic_secret",
        "9f8e7d6c5b4a3f2e1d",
    );
    for t in [
        "password=password",
        "token=<your-token>",
        "secret=changeme",
        "password = get_password()",
        "password = config.db.password",
        "api_key = ${API_KEY}",
        "token: {{ secrets.TOKEN }}",
        "password: hunter2",
        "the token: it is here",
        "password=aaaaaaaaaaaa",
        "api_key=YOUR_API_KEY_HERE",
    ] {
        none_of(t, "generic_secret");
    }
    // A specific type wins over the generic one on the same value.
    has(&format!("token={JWT}"), "jwt", JWT);
}

#[test]
fn database_urls() {
    let u = "postgres://admin:S3cr3tPw@db.example.com:5432/app";
    has(&format!("DATABASE_URL={u}."), "database_url", u);
    let m = "mongodb+srv://user:pa55w0rd@cluster0.abcde.mongodb.net/test?retryWrites=true";
    has(m, "database_url", m);
    has(
        "redis://:S3cr3tPw@cache:6379/0",
        "database_url",
        "redis://:S3cr3tPw@cache:6379/0",
    );
    clean("postgres://db.example.com:5432/app");
    none_of("postgres://user:${DB_PASS}@db/app", "database_url");
    none_of("https://user:pw@example.com", "database_url");
}

#[test]
fn prose_and_code_are_clean() {
    clean("The quick brown fox jumps over the lazy dog. It was 2024, and 42 people came at 10:30.");
    clean("Version 1.2.3 was released on 2024-01-15; see build 20240115-3 and order no. 1234567.");
    clean("uuid 550e8400-e29b-41d4-a716-446655440000 sha 9fceb02d0ae598e95dc970b74767f19372d61af8");
    clean("let token = tokens.next(); // parse the password field");
    clean("timestamp 1700000000 and 1700000000123, port 8080, pid 31337");
    clean("Grüße aus Köln! 서울에서 만나요. 東京は晴れです。");
}

#[test]
fn normalization_offsets() {
    let t = "カード ４１１１ １１１１ １１１１ １１１１ です";
    let d = Scanner::builtin().scan(t);
    assert_eq!(d.len(), 1);
    assert_eq!(&*d[0].kind, "credit_card_test");
    assert_eq!(
        &t[d[0].start..d[0].end],
        "４１１１ １１１１ １１１１ １１１１"
    );
    let t = "연락처: ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ 감사합니다";
    let d = Scanner::builtin().scan(t);
    assert_eq!(d.len(), 1);
    assert_eq!(&t[d[0].start..d[0].end], "ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ");
    let t = "Grüße — mail jörg@example.de or ＋４９ ３０ １２３４５６７８";
    let f = found(t);
    assert!(
        f.contains(&("phone".into(), "＋４９ ３０ １２３４５６７８".into())),
        "{f:?}"
    );
    assert!(f.iter().all(|(_, v)| !v.is_empty()));
}

#[test]
fn overlap_keeps_longer() {
    // The URL contains an email-like `pw@host`; the URL wins.
    let u = "mysql://root:Zq8vR2xW@db.internal.example.com/shop";
    assert_eq!(found(u), vec![("database_url".to_string(), u.to_string())]);
    // A card inside a longer IBAN-like run is not reported twice.
    let d = Scanner::builtin().scan("x 4532015112830366 y jane@example.com 4111111111111111");
    for w in d.windows(2) {
        assert!(w[0].end <= w[1].start);
    }
    assert_eq!(d.len(), 3);
}

#[test]
fn decode_option() {
    use base64::Engine;
    let sc = Scanner::new(
        ScanOptions {
            decode: true,
            injection: true,
        },
        vec![],
    )
    .unwrap();
    let b64 =
        base64::engine::general_purpose::STANDARD.encode("contact jane.doe@example.com please");
    let t = format!("payload {b64} end");
    assert_eq!(
        found_with(&sc, &t),
        vec![("email".to_string(), b64.clone())]
    );
    // Several findings inside one run: the run is reported once, under the most specific type.
    let b64 = base64::engine::general_purpose::STANDARD
        .encode("mail jane.doe@example.com key AKIAIOSFODNN7EXAMPLE");
    let t = format!("payload {b64} end");
    assert_eq!(
        found_with(&sc, &t),
        vec![("aws_access_key_id".to_string(), b64.clone())]
    );
    // Binary that happens to be valid base64 is not rescanned into noise.
    clean("blob AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
    assert!(found(&t).is_empty(), "decode is off by default");
    let t = "q=jane.doe%40example.com&x=1";
    let f = found_with(&sc, t);
    assert_eq!(f, vec![("email".to_string(), t.to_string())]);
}

#[test]
fn custom_rules() {
    let rule = |name: &str, pattern: &str, validator: Option<&str>| CustomRule {
        name: name.into(),
        pattern: pattern.into(),
        validator: validator.map(Into::into),
    };
    let sc = Scanner::new(
        ScanOptions::default(),
        vec![
            rule("emp_id", r"\bEMP-[0-9]{6}\b", None),
            rule("acct", r"\bACCT[0-9]{16}\b", Some("luhn")),
        ],
    )
    .unwrap();
    let t = "staff EMP-123456 acct ACCT4532015112830366 bad ACCT4532015112830367";
    let d = sc.scan(t);
    let f: Vec<_> = d
        .iter()
        .map(|d| (&*d.kind, &t[d.start..d.end], d.category))
        .collect();
    assert_eq!(
        f,
        vec![
            ("emp_id", "EMP-123456", Category::Custom),
            ("acct", "ACCT4532015112830366", Category::Custom)
        ]
    );
    assert!(
        sc.kinds()
            .iter()
            .any(|(k, c)| &**k == "emp_id" && *c == Category::Custom)
    );
    assert!(sc.max_match_len() >= 4096);

    let err = |r: CustomRule| {
        Scanner::new(ScanOptions::default(), vec![r])
            .unwrap_err()
            .to_string()
    };
    let e = err(rule("emp_id", r"EMP(?=[0-9])", None));
    assert!(
        e.contains("rule `emp_id`") && e.contains("look-around `(?=`") && e.contains("rewrite"),
        "{e}"
    );
    let e = err(rule("twice", r"(a)\1", None));
    assert!(
        e.contains("rule `twice`") && e.contains("backreference"),
        "{e}"
    );
    let e = err(rule("empty", r"[0-9]*", None));
    assert!(e.contains("empty string"), "{e}");
    let e = err(rule("email", r"x+", None));
    assert!(e.contains("already taken"), "{e}");
    let e = err(rule("Bad-Name", r"x+", None));
    assert!(e.contains("lower-case"), "{e}");
    let e = err(rule("v", r"x+", Some("crc32")));
    assert!(
        e.contains("unknown validator `crc32`") && e.contains("luhn, iban"),
        "{e}"
    );
    let e = err(rule("p", r"(unclosed", None));
    assert!(e.contains("rule `p`: invalid pattern"), "{e}");
}

#[test]
fn kinds_and_tables() {
    let sc = Scanner::builtin();
    let kinds = sc.kinds();
    assert_eq!(
        kinds.len(),
        BUILTIN_TYPES.len() + crate::inject::TYPES.len()
    );
    for (name, _, desc) in BUILTIN_TYPES {
        assert!(
            name.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_')
        );
        assert!(!desc.is_empty());
    }
    for v in VALIDATORS {
        assert!(validator_fn(v).is_some(), "{v}");
    }
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Scanner>();
}

#[test]
fn stable_prefix_holds_back_only_what_can_grow() {
    let sc = Scanner::builtin();
    let t = "Hello there, how are you";
    assert_eq!(sc.stable_prefix_with(t, false), t.find("you").unwrap());
    let t = "Hello there, how are you ";
    assert_eq!(sc.stable_prefix_with(t, false), t.len());
    let t = "my card is 4532 0151 ";
    assert_eq!(sc.stable_prefix_with(t, false), t.find("4532").unwrap());
    let t = "the password = ";
    assert_eq!(sc.stable_prefix_with(t, false), t.find("password").unwrap());
    let t = "key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIE\n";
    assert_eq!(
        sc.stable_prefix_with(t, false),
        t.find("-----BEGIN").unwrap()
    );
    // With injection phrases held too, short text is held whole.
    assert!(sc.stable_prefix("Hello there, how are you ") < 25);
    let t = format!("key:\n{PEM}\n");
    assert_eq!(sc.stable_prefix_with(&t, false), t.len());
}

fn corpus() -> Vec<String> {
    vec![
        format!("Mail jane.doe@example.com or call +1 415-555-2671. Card 4532 0151 1283 0366 and test 4111 1111 1111 1111 ok."),
        "IBAN GB82 WEST 1234 5698 7654 32 THEN SSN 536-90-4399, ip 192.168.1.20 and 2001:db8:85a3::8a2e:370:7334.".to_string(),
        "ids 850315-1234566 / 1234 5678 9018 / 2345 6789 0124 / 2 55 08 14 168 025 38 / 12345678Z / X1234567L end".to_string(),
        "more RSSMRA85T10A562S S1234567D 86 095 742 719 111222333 AB 12 34 56 C (020) 7946 0958 030 12345678".to_string(),
        format!("keys AKIAIOSFODNN7EXAMPLE {} sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z {} {} {}", ghp(), google_key(), sendgrid_key(), npm_token()),
        format!("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\npassword: \"Xk9#mP2$vL7q\"\nurl postgres://admin:S3cr3tPw@db.example.com/app\n"),
        format!("jwt {JWT} then\n{PEM}\nafter the key xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"),
        "全角 ４１１１ １１１１ １１１１ １１１１ と ｊａｎｅ＠ｅｘａｍｐｌｅ．ｃｏｍ、Grüße SK0123456789abcdef0123456789abcdef".to_string(),
        "{\"client_secret\": \"a8F3kL0pQ9zX2mN7\", \"key\": \"sk-ant-api03-Xy9zAb3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z-AbCdEf\"} sk_live_4eC39HqLyjWDarjtT1zdp7dc".to_string(),
        "TWILIO_ACCOUNT_SID=AC0123456789abcdef0123456789abcdef\nexport API_TOKEN = 9f8e7d6c5b4a3f2e1d\nNI JG103759A NIR 185072A00608467".to_string(),
        "Plain prose with nothing to find, version 1.2.3 on 2024-01-15 and an order 123-456-7890.".to_string(),
    ]
}

fn check_streaming(sc: &Scanner, t: &str) {
    let full = sc.scan(t);
    for k in (0..=t.len()).filter(|&k| t.is_char_boundary(k)) {
        let head_text = &t[..k];
        let p = sc.stable_prefix(head_text);
        assert!(p <= k && t.is_char_boundary(p), "p={p} k={k}");
        let head = sc.scan(head_text);
        for d in head.iter().filter(|d| d.start < p) {
            assert!(
                d.end <= p,
                "detection {d:?} crosses p={p} at k={k} in {t:?}"
            );
        }
        let mut got: Vec<Detection> = head.into_iter().filter(|d| d.end <= p).collect();
        got.extend(sc.scan(&t[p..]).into_iter().map(|d| Detection {
            start: d.start + p,
            end: d.end + p,
            ..d
        }));
        assert_eq!(got, full, "split at k={k} (p={p}) of {t:?}");
    }
}

#[test]
fn streaming_split_equivalence() {
    let sc = Scanner::builtin();
    let all: Vec<String> = corpus();
    let mut seen = std::collections::BTreeSet::new();
    for t in &all {
        check_streaming(&sc, t);
        for d in sc.scan(t) {
            seen.insert(d.kind.to_string());
        }
    }
    let sc = Scanner::new(
        ScanOptions {
            decode: true,
            injection: true,
        },
        vec![CustomRule {
            name: "emp_id".into(),
            pattern: r"\bEMP-[0-9]{6}\b".into(),
            validator: None,
        }],
    )
    .unwrap();
    check_streaming(
        &sc,
        "staff EMP-123456 and payload Y29udGFjdCBqYW5lLmRvZUBleGFtcGxlLmNvbSBwbGVhc2U= q=a%40b.example.com done",
    );
    let missing: Vec<_> = BUILTIN_TYPES
        .iter()
        .map(|t| t.0)
        .filter(|k| !seen.contains(*k))
        .collect();
    assert!(missing.is_empty(), "corpus lacks {missing:?}");
}

/// Deterministic xorshift for the property tests.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }
}

const FRAGMENTS: &[&str] = &[
    "jane.doe@example.com",
    "+1 415-555-2671",
    "(020) 7946 0958",
    "4532 0151 1283 0366",
    "4111111111111111",
    "GB82 WEST 1234 5698 7654 32",
    "536-90-4399",
    "192.168.1.20",
    "2001:db8::8a2e:370:7334",
    "850315-1234566",
    "2345 6789 0124",
    "12345678Z",
    "S1234567D",
    "AB 12 34 56 C",
    "AKIAIOSFODNN7EXAMPLE",
    "password = \"Xk9#mP2$vL7q\"",
    "token:",
    "postgres://admin:S3cr3tPw@db.example.com/app",
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oeR\n-----END EC PRIVATE KEY-----",
    "-----BEGIN",
    "the",
    "and a",
    "2024-01-15",
    "v1.2.3",
    "order 12345",
    "１２３",
    "ﬁ",
    "e\u{301}",
    "서울",
    "東京",
    " ",
    "  ",
    "\n",
    ", ",
    ".",
    "42",
    "=",
    ":",
    "-",
    "+",
    "(",
    "@",
    "ghp_",
    "sk-",
];

fn random_text(rng: &mut Rng, parts: usize) -> String {
    let mut t = String::new();
    for _ in 0..parts {
        t.push_str(FRAGMENTS[rng.next() % FRAGMENTS.len()]);
        if !rng.next().is_multiple_of(3) {
            t.push(' ');
        }
    }
    t
}

#[test]
fn random_streaming_split_equivalence() {
    let sc = Scanner::builtin();
    let seed = std::env::var("STREAM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x2545_F491_4F6C_DD1D);
    let mut rng = Rng(seed);
    let n = std::env::var("STREAM_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for _ in 0..n {
        let t = random_text(&mut rng, 12);
        check_streaming(&sc, &t);
    }
    let sc = Scanner::new(
        ScanOptions {
            decode: true,
            injection: true,
        },
        vec![CustomRule {
            name: "emp_id".into(),
            pattern: r"\bEMP-[0-9]{6}\b".into(),
            validator: None,
        }],
    )
    .unwrap();
    for _ in 0..n / 4 {
        let mut t = random_text(&mut rng, 8);
        t.push_str(
            [
                "EMP-123456 ",
                "Y29udGFjdCBqYW5lLmRvZUBleGFtcGxlLmNvbSBwbGVhc2U= ",
                "q=a%40b.example.com ",
            ][rng.next() % 3],
        );
        t.push_str(&random_text(&mut rng, 4));
        check_streaming(&sc, &t);
    }
}

#[test]
fn findings_are_sorted_disjoint_and_on_char_boundaries() {
    let sc = Scanner::new(
        ScanOptions {
            decode: true,
            injection: true,
        },
        vec![],
    )
    .unwrap();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..300 {
        let t = random_text(&mut rng, 20);
        let d = sc.scan(&t);
        for x in &d {
            assert!(x.start < x.end && x.end <= t.len(), "{x:?} in {t:?}");
            assert!(
                t.is_char_boundary(x.start) && t.is_char_boundary(x.end),
                "{x:?} in {t:?}"
            );
        }
        for w in d.windows(2) {
            assert!(w[0].end <= w[1].start, "{w:?} in {t:?}");
        }
        let p = sc.stable_prefix(&t);
        assert!(p <= t.len() && t.is_char_boundary(p));
    }
}

#[test]
fn hard_negatives() {
    for t in [
        "ISBN 978-0-306-40615-7 and ISBN-13 9780306406157",
        "SKU AB-1234-XY, part no. 1234-5678-90, invoice INV-2024-000123",
        "build 2024.01.15.1234 at 2024-01-15T10:30:00Z (unix 1705314600)",
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "uuid 6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "coordinates 52.5200, 13.4050 and 48.8566, 2.3522",
        "versions 10.0.19045.3803 and 1.2.3.4.5.6",
        "price $1,234,567.89 or 1 234 567,89 €",
        "call me maybe, my password is strong",
    ] {
        clean(t);
    }
}

#[test]
fn a_number_that_is_an_ssn_is_not_a_phone_number() {
    let sc = Scanner::builtin();
    let t = "the SSN on file is 052-75-1408. Let me know";
    let f = sc.scan(t);
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(&*f[0].kind, "us_ssn");
    // Versions are not addresses; a My Number named as such is not an Aadhaar number.
    assert!(sc.scan("firmware 10.2.1.17 is out").is_empty());
    assert!(sc.scan("upgrade to v10.0.19045.3693").is_empty());
    let ip = sc.scan("connect to 10.2.1.17 now");
    assert_eq!(&*ip[0].kind, "ipv4");
}

/// The chunk loop's jump over prose to the next candidate byte must find exactly the windows
/// the plain chunk-by-chunk walk finds, on text mixing every kind of chunk and gap.
#[test]
fn skipping_to_candidates_finds_the_same_windows() {
    const PIECES: &[&str] = &[
        "the",
        "Model",
        "users",
        "a",
        "-",
        "+1",
        "(020)",
        "#",
        "::",
        "=",
        "password",
        "token:",
        "key =",
        "415-555-2671",
        "jane@example.com",
        "%41%42",
        "x9",
        "v1.2.3",
        "AKIAIOSFODNN7EXAMPLE",
        "abcdefghijklmnopqrstuvwxyz",
        "ABCDEFGHIJKLMNOPQRST",
        "é",
        "東京",
        "--",
        "()",
    ];
    const GAPS: &[&str] = &[" ", "  ", "    ", "\n", "\t", " \n ", "", "     "];
    let mut rng = Rng(0x2545_F491_4F6C_DD1Du64);
    let mut next = || rng.next();
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..(1 + next() % 40) {
            text.push_str(PIECES[next() % PIECES.len()]);
            text.push_str(GAPS[next() % GAPS.len()]);
        }
        for decode in [false, true] {
            assert_eq!(
                windows_with(&text, decode, true),
                windows_with(&text, decode, false),
                "windows differ on {text:?}"
            );
        }
    }
}

/// The assignment detectors locate their value by walking the match instead of a capture
/// search, and cap the generic value at 256 characters after matching an unbounded run. Both
/// must give exactly what the capture group of the original bounded pattern gives.
#[test]
fn walked_values_equal_the_capture_groups() {
    const PIECES: &[&str] = &[
        "password",
        "db.password",
        "API-KEY",
        "my_token",
        "aws_secret_access_key",
        "AWS_SECRET_KEY",
        "account_sid",
        "twilioAccountSid",
        "\"",
        "'",
        "`",
        " ",
        "\t",
        "=",
        ":",
        ":=",
        "=>",
        ">",
        "=\"",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "AC0123456789abcdef0123456789abcdef",
        "hunter2",
        "s3cr3t=value:x",
        "é",
        "東京",
        ",",
        "(",
        "\n",
    ];
    let long: String = "x".repeat(300) + "é".repeat(10).as_str();
    let generic = builtin::BUILTINS
        .iter()
        .find(|d| d.value_cap > 0)
        .expect("the generic assignment detector");
    let unbounded = r#"([^\s"'`<>,;(){}\[\]]+)"#;
    assert!(generic.re.as_str().ends_with(unbounded));
    let generic_bounded = Regex::new(
        &generic
            .re
            .as_str()
            .replace(unbounded, r#"([^\s"'`<>,;(){}\[\]]{1,256})"#),
    )
    .expect("bounded pattern");
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15u64);
    let mut next = || rng.next();
    let mut checked = 0;
    for round in 0..8000 {
        let mut text = String::new();
        for _ in 0..(1 + next() % 12) {
            text.push_str(PIECES[next() % PIECES.len()]);
        }
        if round % 50 == 0 {
            text.push_str(&long);
        }
        for det in builtin::BUILTINS.iter().filter(|d| d.value_at.is_some()) {
            let bounded = if det.value_cap > 0 {
                &generic_bounded
            } else {
                &det.re
            };
            let mut pos = 0;
            while pos < text.len() {
                let Some(m) = det.re.find_at(&text, pos) else {
                    break;
                };
                let walked = (det.value_at.unwrap())(&text, m.start(), m.end());
                let captured = det.re.captures_at(&text, m.start()).unwrap();
                let g = captured.get(det.group).unwrap();
                assert_eq!(g.end(), m.end(), "value ends the match in {text:?}");
                if let Some(v) = walked {
                    assert_eq!(v, g.start(), "value start in {text:?}");
                    checked += 1;
                }
                pos = m.end().max(m.start() + 1);
                while !text.is_char_boundary(pos) {
                    pos += 1;
                }
            }
            // Capping after the match reports what the bounded pattern reports.
            let capped: Vec<(usize, usize)> = {
                let mut raw = Vec::new();
                Scanner::builtin().run_builtin(&text, det, 0, text.len(), &|_, _| true, &mut raw);
                raw.iter().map(|r| (r.start, r.end)).collect()
            };
            let expected: Vec<(usize, usize)> = bounded
                .captures_iter(&text)
                .filter_map(|c| c.get(det.group))
                .filter_map(|g| (det.check)(&text, g.start(), g.end()))
                .map(|(_, a, e)| (a, e))
                .collect();
            assert_eq!(capped, expected, "{text:?}");
        }
    }
    assert!(checked > 1000, "only {checked} walked values were compared");
}

/// The hand-written email search returns exactly the regex's matches, from every start
/// position, on text mixing local parts, labels, dots, dashes, underscores, `@`s and long
/// letter runs.
#[test]
fn email_search_equals_the_regex() {
    const PIECES: &[&str] = &[
        "jane",
        "j.doe",
        "a",
        "x_y",
        "+tag",
        "%",
        "-",
        ".",
        "..",
        "@",
        "@@",
        "example",
        "com",
        "co",
        "c",
        "uk",
        "io1",
        "x-y",
        "_",
        " ",
        "\n",
        "é",
        "東京",
        "1",
        "abcdefghijklmnopqrstuvwxyz",
        ",",
        "(",
        ")",
        "mailto:",
        ":",
        "/",
    ];
    let det = builtin::BUILTINS
        .iter()
        .find(|d| d.find.is_some())
        .expect("the email detector");
    let mut rng = Rng(0x2545_F491_4F6C_DD1Du64);
    let mut next = || rng.next();
    let mut matches = 0;
    for _ in 0..20000 {
        let mut text = String::new();
        for _ in 0..(1 + next() % 16) {
            text.push_str(PIECES[next() % PIECES.len()]);
        }
        for pos in (0..=text.len()).filter(|&p| text.is_char_boundary(p)) {
            let want = det.re.find_at(&text, pos).map(|m| (m.start(), m.end()));
            let got = (det.find.unwrap())(&text, pos);
            assert_eq!(got, want, "{text:?} from {pos}");
            matches += usize::from(want.is_some());
        }
    }
    assert!(matches > 1500, "only {matches} matches were compared");
}

/// A family's search runs anchored at the starts its DFA allows inside its windows; it must
/// report exactly what unanchored leftmost-first searches from the group's start report, on
/// text mixing candidates of both families with prose, glue and near-misses.
#[test]
fn anchored_family_search_finds_what_the_unanchored_search_finds() {
    const PIECES: &[&str] = &[
        "+1 415-555-2671",
        "(020) 7946 0958",
        "(415) 555-2671",
        "::ffff:10.0.0.1",
        "::8a2e:370:7334",
        "fe80::1ff:fe23:4567:890a",
        "4532 0151 1283 0366",
        "GB82 WEST 1234 5698 7654 32",
        "ABCDEF",
        "536-90-4399",
        "192.168.1.20",
        "2001:db8::8a2e:370:7334",
        "2024-01-15T10:30:00Z",
        "AB 12 34 56 C",
        "12345678Z",
        "AKIAIOSFODNN7EXAMPLE",
        "ghp_1A2b3C4d5E6f7G8h9I0jKlMnOpQrStUvWxYz",
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
        "v1.2.3",
        "12345-678",
        "the",
        "model",
        "-",
        "+1",
        "1",
        "#",
        "::",
        "é",
        "東京",
    ];
    const GAPS: &[&str] = &[" ", " ", "  ", "    ", "\n", ""];
    let mut rng = Rng(0x2545_F491_4F6C_DD1Du64);
    let mut next = || rng.next();
    let mut found = 0;
    for _ in 0..3000 {
        let mut text = String::new();
        for _ in 0..(1 + next() % 24) {
            text.push_str(PIECES[next() % PIECES.len()]);
            text.push_str(GAPS[next() % GAPS.len()]);
        }
        let wins = windows(&text, false);
        for group in groups(&wins) {
            let (gs, ge) = (group[0].start, group[group.len() - 1].end);
            for fam in FAMILIES.iter() {
                let mut runs = [Vec::new(), Vec::new()];
                let [anchored, unanchored] = &mut runs;
                run_family(fam, &text, &text[..ge], group, ge, &mut |k, a, e| {
                    anchored.push((k, a, e))
                });
                run_family_unanchored(fam, &text, &text[..ge], group, gs, ge, &mut |k, a, e| {
                    unanchored.push((k, a, e))
                });
                assert_eq!(runs[0], runs[1], "{text:?}");
                found += runs[0].len();
            }
        }
    }
    assert!(found > 10_000, "only {found} values were compared");
}
