//! The URL analyzer: where a fetch, browse or request tool would send the agent.
//!
//! This module owns URL parsing (WHATWG, the `url` crate: the same rules browsers use, which
//! already turn `http://2130706433/`, `http://0x7f.1/` and `http://0177.0.0.1/` into
//! `127.0.0.1` and drop userinfo so `http://good.com@evil.com/` is judged by `evil.com`) and
//! the address classification. It must not resolve names: a hostname that resolves to a
//! private address (DNS rebinding) is the egress proxy's problem, not a lexical check's.

use std::net::{Ipv4Addr, Ipv6Addr};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use url::{Host, Url};

use crate::Violation;

/// A compiled URL analyzer.
#[derive(Clone, Debug)]
pub(crate) struct UrlCheck {
    allow: Option<GlobSet>,
    deny: Option<GlobSet>,
    deny_private: bool,
}

/// Host globs: case-insensitive, `*` crosses dots (`*.github.com` covers `a.b.github.com`).
pub(crate) fn host_globs(list: &[String], field: &str) -> Result<Option<GlobSet>, String> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut b = GlobSetBuilder::new();
    for (i, g) in list.iter().enumerate() {
        let glob = GlobBuilder::new(&g.to_ascii_lowercase())
            .case_insensitive(true)
            .literal_separator(false)
            .build()
            .map_err(|e| {
                format!(
                    "{field}[{i}]: `{g}` is not a glob ({e}); use `example.com` or `*.example.com`"
                )
            })?;
        b.add(glob);
    }
    b.build().map(Some).map_err(|e| format!("{field}: {e}"))
}

impl UrlCheck {
    pub(crate) fn compile(
        allow: &[String],
        deny: &[String],
        deny_private: bool,
    ) -> Result<UrlCheck, String> {
        Ok(UrlCheck {
            allow: host_globs(allow, "allow_domains")?,
            deny: host_globs(deny, "deny_domains")?,
            deny_private,
        })
    }

    /// The first problem with `raw`, if any.
    pub(crate) fn check(&self, raw: &str) -> Option<Violation> {
        let raw = raw.trim();
        if raw.is_empty() {
            return None;
        }
        let parsed = Url::parse(raw).or_else(|e| match e {
            // A bare `example.com/x`: tools commonly accept it and fetch it over http.
            url::ParseError::RelativeUrlWithoutBase => Url::parse(&format!("http://{raw}")),
            e => Err(e),
        });
        let Ok(u) = parsed else {
            return Some(Violation::unparsable(
                "a URL that could not be parsed",
                "unparsable URL",
            ));
        };
        let scheme = u.scheme();
        if scheme != "http" && scheme != "https" {
            return Some(Violation::new(
                format!("a {scheme}: URL"),
                "only http and https URLs are allowed",
            ));
        }
        let host = match u.host() {
            Some(h) => h,
            None => {
                return Some(Violation::new("a URL without a host", "URL has no host"));
            }
        };
        let host_text = match &host {
            Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            Host::Ipv4(a) => a.to_string(),
            Host::Ipv6(a) => a.to_string(),
        };
        if self.deny_private {
            let private = match &host {
                Host::Domain(_) => private_name(&host_text),
                Host::Ipv4(a) => private_v4(*a),
                Host::Ipv6(a) => private_v6(*a),
            };
            if let Some(kind) = private {
                return Some(Violation::new(
                    format!("URL host \"{host_text}\""),
                    format!("{kind} address"),
                ));
            }
        }
        if let Some(deny) = &self.deny
            && deny.is_match(&host_text)
        {
            return Some(Violation::new(
                format!("URL host \"{host_text}\""),
                "denied domain",
            ));
        }
        if let Some(allow) = &self.allow
            && !allow.is_match(&host_text)
        {
            return Some(Violation::new(
                format!("URL host \"{host_text}\""),
                "domain not in the allowed list",
            ));
        }
        None
    }
}

fn private_name(host: &str) -> Option<&'static str> {
    if host == "localhost" || host.ends_with(".localhost") {
        return Some("loopback");
    }
    if host == "metadata.google.internal" || host == "metadata" || host == "instance-data" {
        return Some("cloud metadata");
    }
    None
}

/// The kind of a non-public IPv4 address, if it is one.
pub(crate) fn private_v4(a: Ipv4Addr) -> Option<&'static str> {
    let o = a.octets();
    Some(match o {
        [169, 254, 169, 254] => "cloud metadata",
        [127, ..] => "loopback",
        [0, ..] => "unspecified",
        [10, ..] | [192, 168, ..] => "private",
        [172, b, ..] if (16..32).contains(&b) => "private",
        [169, 254, ..] => "link-local",
        [100, b, ..] if (64..128).contains(&b) => "carrier-grade NAT",
        [192, 0, 0, _] => "IETF-reserved",
        [198, b, ..] if b == 18 || b == 19 => "benchmarking",
        [a0, ..] if a0 >= 224 => "multicast or reserved",
        _ => return None,
    })
}

/// The kind of a non-public IPv6 address, if it is one. Addresses that embed an IPv4 address
/// (mapped, compatible, NAT64, 6to4) are judged by it; IPv4-mapped ones are refused outright,
/// since nothing public needs them and they are a classic filter bypass.
pub(crate) fn private_v6(a: Ipv6Addr) -> Option<&'static str> {
    let s = a.segments();
    if a.is_loopback() {
        return Some("loopback");
    }
    if a.is_unspecified() {
        return Some("unspecified");
    }
    if let Some(v4) = a.to_ipv4_mapped() {
        return Some(private_v4(v4).unwrap_or("IPv4-mapped"));
    }
    let embedded =
        |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[..6] == [0; 6] {
        // IPv4-compatible (deprecated) `::a.b.c.d`.
        return Some(private_v4(embedded(s[6], s[7])).unwrap_or("IPv4-compatible"));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return private_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return private_v4(embedded(s[1], s[2]));
    }
    match s[0] {
        x if x & 0xfe00 == 0xfc00 => Some("unique-local"),
        x if x & 0xffc0 == 0xfe80 => Some("link-local"),
        x if x & 0xffc0 == 0xfec0 => Some("site-local"),
        x if x & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preset() -> UrlCheck {
        UrlCheck::compile(&[], &[], true).unwrap()
    }

    #[test]
    fn private_and_odd_targets_are_violations() {
        let c = preset();
        let denied = [
            (
                "http://169.254.169.254/latest/meta-data",
                "cloud metadata address",
            ),
            ("http://127.0.0.1:8080", "loopback address"),
            ("http://2130706433/", "loopback address"),
            ("http://0x7f.1/", "loopback address"),
            ("http://0177.0.0.1/", "loopback address"),
            ("http://[::ffff:127.0.0.1]/", "loopback address"),
            ("http://[::ffff:8.8.8.8]/", "IPv4-mapped address"),
            ("http://[::1]:3000/", "loopback address"),
            ("http://[fd00:ec2::254]/", "unique-local address"),
            ("http://[fe80::1]/", "link-local address"),
            ("http://10.1.2.3/", "private address"),
            ("http://172.31.0.1/", "private address"),
            ("http://192.168.1.1/admin", "private address"),
            ("http://100.64.0.1/", "carrier-grade NAT address"),
            ("http://0.0.0.0:8000/", "unspecified address"),
            ("http://localhost/", "loopback address"),
            ("http://app.localhost/", "loopback address"),
            (
                "http://metadata.google.internal/computeMetadata/v1/",
                "cloud metadata address",
            ),
            ("http://good.com@127.0.0.1/", "loopback address"),
            ("file:///etc/passwd", "only http and https URLs are allowed"),
            ("gopher://x/", "only http and https URLs are allowed"),
            ("ftp://example.com/", "only http and https URLs are allowed"),
        ];
        for (u, why) in denied {
            let v = c
                .check(u)
                .unwrap_or_else(|| panic!("{u} should be a violation"));
            assert_eq!(v.why, why, "{u}");
        }
        for u in [
            "https://example.com/docs",
            "http://172.32.0.1/",
            "https://8.8.8.8/",
            "example.com/path",
            "https://[2606:4700::1111]/",
        ] {
            assert_eq!(c.check(u), None, "{u}");
        }
        assert_eq!(
            c.check("http://127.0.0.1/").unwrap().what,
            "URL host \"127.0.0.1\""
        );
    }

    #[test]
    fn domain_lists_match_hosts_not_userinfo() {
        let c = UrlCheck::compile(
            &["github.com".into(), "*.github.com".into()],
            &["*.evil.com".into()],
            true,
        )
        .unwrap();
        assert_eq!(c.check("https://api.github.com/repos"), None);
        assert_eq!(c.check("https://GitHub.com/"), None);
        assert_eq!(
            c.check("https://github.com.evil.net/").unwrap().why,
            "domain not in the allowed list"
        );
        assert_eq!(
            c.check("http://github.com@x.evil.com/").unwrap().why,
            "denied domain"
        );
        let only = UrlCheck::compile(&["github.com".into()], &[], true).unwrap();
        assert!(only.check("https://api.github.com/").is_some());
    }
}
