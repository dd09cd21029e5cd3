//! Identify stage: who is calling, for every later stage and the record.
//!
//! In pass-through mode (no virtual keys) identity comes from the caller's `x-warden-session`,
//! `x-warden-tenant` and `x-warden-agent` headers; without an agent header, the agent is a
//! stable fingerprint of the caller's provider credential (`cred:` + 12 hex digits of its
//! SHA-256), so one agent's traffic groups together without the credential ever being stored.
//! With virtual keys in force ([`crate::control::Control::keys_required`]), the caller's API key
//! must be a valid Warden key (`wk_…`) wherever its SDK sends it; the key's record then fixes
//! tenant and agent (headers fill only what the key leaves open), and the forward stage swaps
//! the virtual key for the provider's real key. An invalid, revoked or expired key is refused
//! here, before the body is read.
//! This module reads headers only; it never logs or returns a credential.

use http::HeaderMap;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::refuse::GatewayError;

/// Longest accepted identity value.
const MAX_LEN: usize = 128;

/// The caller of one exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Identity {
    /// Conversation / run the request belongs to (`x-warden-session`).
    pub session: Option<String>,
    /// Organisation or team (`x-warden-tenant`).
    pub tenant: Option<String>,
    /// The agent (`x-warden-agent`, else a credential fingerprint).
    pub agent: Option<String>,
    /// The virtual key's id (`key_…`), when the caller used one.
    pub key: Option<String>,
}

/// Checks the caller's virtual key and merges what it fixes into `id`.
pub fn authenticate(
    store: &dyn warden_state::Store,
    headers: &HeaderMap,
    query: Option<&str>,
    id: &mut Identity,
) -> Result<warden_state::KeyInfo, GatewayError> {
    use warden_state::KeyCheck;
    let presented = credential(headers).or_else(|| query_key(query));
    let Some(presented) = presented else {
        return Err(GatewayError::unauthenticated(
            "this gateway requires a Warden virtual key: send your wk_… key where your SDK sends its API key (Authorization: Bearer, x-api-key or x-goog-api-key)".into(),
        ));
    };
    if !presented.starts_with("wk_") {
        return Err(GatewayError::unauthenticated(
            "this gateway uses Warden virtual keys, and the API key sent is not one (it does not start with wk_); ask your Warden operator for a key (`warden keys create`) — provider keys stay with the gateway".into(),
        ));
    }
    let check = store
        .authenticate(presented, std::time::SystemTime::now())
        .map_err(|e| GatewayError::state_unavailable(e.to_string()))?;
    let info = match check {
        KeyCheck::Valid(info) => info,
        KeyCheck::Unknown => {
            return Err(GatewayError::unauthenticated(
                "the Warden virtual key sent is not valid; check it was copied whole, or create one with `warden keys create`".into(),
            ));
        }
        KeyCheck::Revoked(info) => {
            return Err(GatewayError::unauthenticated(format!(
                "the Warden virtual key {} was revoked; ask your Warden operator for a new one",
                info.id
            )));
        }
        KeyCheck::Expired(info) => {
            return Err(GatewayError::unauthenticated(format!(
                "the Warden virtual key {} has expired; ask your Warden operator for a new one",
                info.id
            )));
        }
    };
    if info.tenant.is_some() {
        id.tenant = info.tenant.clone();
    }
    match &info.agent {
        Some(a) => id.agent = Some(a.clone()),
        // The credential fingerprint would be the virtual key's; the key id names it better.
        None if id.agent.as_deref().is_some_and(|a| a.starts_with("cred:")) => {
            id.agent = Some(info.id.clone());
        }
        None => {}
    }
    id.key = Some(info.id.clone());
    Ok(info)
}

/// Gemini clients may send the key as `?key=…`.
fn query_key(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|p| p.strip_prefix("key="))
        .filter(|k| !k.is_empty())
}

/// Reads the caller's identity from the request headers.
pub fn identify(headers: &HeaderMap) -> Result<Identity, GatewayError> {
    let mut agent = header(headers, "x-warden-agent")?;
    if agent.is_none() {
        agent = credential(headers).map(|c| {
            let hex = warden_ledger::Hash(Sha256::digest(c.as_bytes()).into()).to_hex();
            format!("cred:{}", &hex[..12])
        });
    }
    Ok(Identity {
        session: header(headers, "x-warden-session")?,
        tenant: header(headers, "x-warden-tenant")?,
        agent,
        key: None,
    })
}

/// The provider credential as each SDK sends it (Bearer, `x-api-key`, `x-goog-api-key`).
fn credential(headers: &HeaderMap) -> Option<&str> {
    if let Some(v) = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let token = v
            .strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .unwrap_or(v)
            .trim();
        if !token.is_empty() {
            return Some(token);
        }
    }
    ["x-api-key", "x-goog-api-key"]
        .iter()
        .find_map(|h| headers.get(*h).and_then(|v| v.to_str().ok()))
        .filter(|v| !v.is_empty())
}

fn header(headers: &HeaderMap, name: &str) -> Result<Option<String>, GatewayError> {
    let Some(v) = headers.get(name) else {
        return Ok(None);
    };
    let bad = || {
        GatewayError::invalid_request(format!(
            "header {name} must be 1 to {MAX_LEN} printable ASCII characters (letters, digits and -_.:@/+=)"
        ))
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let ok = !s.is_empty()
        && s.len() <= MAX_LEN
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:@/+=".contains(&b));
    if ok {
        Ok(Some(s.to_string()))
    } else {
        Err(bad())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn headers_name_the_caller() {
        let id = identify(&headers(&[
            ("x-warden-session", "run-42"),
            ("x-warden-tenant", "acme"),
            ("x-warden-agent", "billing-bot"),
            ("authorization", "Bearer sk-secret"),
        ]))
        .unwrap();
        assert_eq!(id.session.as_deref(), Some("run-42"));
        assert_eq!(id.tenant.as_deref(), Some("acme"));
        assert_eq!(id.agent.as_deref(), Some("billing-bot"));
    }

    #[test]
    fn without_an_agent_header_the_credential_fingerprint_stands_in() {
        let a = identify(&headers(&[("authorization", "Bearer sk-secret")])).unwrap();
        let b = identify(&headers(&[("x-api-key", "sk-secret")])).unwrap();
        let c = identify(&headers(&[("x-goog-api-key", "other")])).unwrap();
        let fp = a.agent.clone().unwrap();
        assert!(fp.starts_with("cred:") && fp.len() == 17, "{fp}");
        assert!(!fp.contains("secret"));
        assert_eq!(
            a.agent, b.agent,
            "same key, same agent, whichever header carries it"
        );
        assert_ne!(a.agent, c.agent);
        assert_eq!(identify(&HeaderMap::new()).unwrap(), Identity::default());
    }

    #[test]
    fn malformed_identity_headers_are_refused() {
        let mut h = HeaderMap::new();
        h.insert("x-warden-session", HeaderValue::from_static("has space"));
        assert_eq!(identify(&h).unwrap_err().status, 400);
        let mut h = HeaderMap::new();
        h.insert(
            "x-warden-agent",
            HeaderValue::from_str(&"a".repeat(200)).unwrap(),
        );
        assert!(identify(&h).unwrap_err().message.contains("x-warden-agent"));
    }
}
