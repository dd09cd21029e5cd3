//! Small readers over `serde_json::Value` shared by the provider modules.
//!
//! Request readers are strict only where the gateway must read something (a container it walks, a
//! string it inspects) and return [`ProtocolError::Shape`] naming the JSON path; scalars the gateway
//! merely records (`max_tokens`, `stream`) are read leniently, because refusing a request the
//! provider would have accepted is worse than recording `None`. Response readers never fail.

use serde_json::Value;

use crate::ProtocolError;
use crate::exchange::TextPart;

/// A JSON object.
pub(crate) type Map = serde_json::Map<String, Value>;

/// A shape error whose message names `path` (without the leading `$.`).
pub(crate) fn shape_err(path: &str, expected: &str) -> ProtocolError {
    let path = path.strip_prefix("$.").unwrap_or(path);
    ProtocolError::Shape(format!("`{path}` must be {expected}"))
}

/// The request root, which every provider requires to be an object.
pub(crate) fn root(v: &Value) -> Result<&Map, ProtocolError> {
    v.as_object()
        .ok_or_else(|| ProtocolError::Shape("request body must be a JSON object".to_string()))
}

/// `v` as an object, or a shape error naming `path`.
pub(crate) fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map, ProtocolError> {
    v.as_object().ok_or_else(|| shape_err(path, "an object"))
}

/// A present, non-null field. Clients (and the OpenAI SDKs) send `null` for unset optionals.
pub(crate) fn field<'a>(m: &'a Map, key: &str) -> Option<&'a Value> {
    m.get(key).filter(|v| !v.is_null())
}

/// The first present key of `keys`, with the key used: Gemini accepts camelCase and snake_case.
pub(crate) fn field_any<'a, 'k>(m: &'a Map, keys: &[&'k str]) -> Option<(&'k str, &'a Value)> {
    keys.iter().find_map(|k| field(m, k).map(|v| (*k, v)))
}

/// An optional array field; a present field of another type is a shape error.
pub(crate) fn opt_array<'a>(
    m: &'a Map,
    key: &str,
    path: &str,
) -> Result<Option<&'a Vec<Value>>, ProtocolError> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::Array(a)) => Ok(Some(a)),
        Some(_) => Err(shape_err(path, "an array")),
    }
}

/// A string field the gateway must inspect; a present field of another type is a shape error.
pub(crate) fn opt_text<'a>(
    m: &'a Map,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, ProtocolError> {
    match field(m, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(shape_err(path, "a string")),
    }
}

/// A string field read leniently (wrong types read as absent).
pub(crate) fn str_of<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A stream event's type: its `type` field, else the SSE `event:` name it came under, else "".
pub(crate) fn event_type<'a>(event: &'a Value, name: Option<&'a str>) -> &'a str {
    str_of(event, "type").or(name).unwrap_or_default()
}

/// An owned string field read leniently.
pub(crate) fn string_of(v: &Value, key: &str) -> Option<String> {
    str_of(v, key).map(str::to_owned)
}

/// A non-negative integer field read leniently.
pub(crate) fn u64_of(v: &Value, key: &str) -> Option<u64> {
    v.get(key).and_then(Value::as_u64)
}

/// A boolean field read leniently.
pub(crate) fn bool_of(v: &Value, key: &str) -> Option<bool> {
    v.get(key).and_then(Value::as_bool)
}

/// A client string with its path.
pub(crate) fn part(text: &str, path: String) -> TextPart {
    TextPart {
        text: text.to_owned(),
        path,
    }
}

/// Compact JSON text of a value the provider sent as an object (tool arguments, tool results).
pub(crate) fn compact(v: &Value) -> String {
    // Serializing a `Value` cannot fail (its keys are strings); an empty string is a safe fallback.
    serde_json::to_string(v).unwrap_or_default()
}

/// Tool arguments a provider sends as an object, or (leniently) already as JSON text.
pub(crate) fn arguments_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => compact(other),
    }
}

/// The media type of a `data:` URL (`data:image/png;base64,...` → `image/png`).
pub(crate) fn data_url_mime(url: &str) -> Option<String> {
    let rest = url.strip_prefix("data:")?;
    let end = rest.find([';', ',']).unwrap_or(rest.len());
    let mime = rest[..end].trim();
    (!mime.is_empty()).then(|| mime.to_ascii_lowercase())
}

/// The message of an error body in any of the shapes providers and compatible servers use:
/// `{"error":{"message"}}` (OpenAI, Gemini, Anthropic's `{"type":"error","error":{..}}`),
/// `{"error":"text"}` (Ollama, some proxies), `{"object":"error","message"}` (vLLM) and
/// `{"detail":"text"}` (FastAPI-based servers).
pub(crate) fn error_message(v: &Value) -> Option<String> {
    match v.get("error") {
        Some(Value::String(s)) => return Some(s.clone()),
        Some(e @ Value::Object(_)) => {
            return Some(match str_of(e, "message") {
                Some(m) => m.to_owned(),
                None => str_of(e, "type")
                    .or_else(|| str_of(e, "code"))
                    .unwrap_or("unknown error")
                    .to_owned(),
            });
        }
        _ => {}
    }
    if str_of(v, "object") == Some("error") || str_of(v, "type") == Some("error") {
        return Some(string_of(v, "message").unwrap_or_else(|| "unknown error".to_owned()));
    }
    match v.get("detail") {
        Some(Value::String(s)) => Some(s.clone()),
        _ => None,
    }
}

/// Parses one stream event payload; `None` for payloads that are not JSON.
pub(crate) fn parse_event(data: &[u8]) -> Option<Value> {
    serde_json::from_slice(data).ok()
}

/// `data` without leading and trailing ASCII whitespace.
pub(crate) fn trim(data: &[u8]) -> &[u8] {
    data.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_urls() {
        assert_eq!(
            data_url_mime("data:image/PNG;base64,AAAA").as_deref(),
            Some("image/png")
        );
        assert_eq!(data_url_mime("data:,hello"), None);
        assert_eq!(data_url_mime("https://x/y.png"), None);
    }

    #[test]
    fn error_shapes() {
        let cases = [
            (json!({"error": {"message": "m", "type": "t"}}), "m"),
            (
                json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
                "Overloaded",
            ),
            (
                json!({"error": "model 'x' not found"}),
                "model 'x' not found",
            ),
            (
                json!({"object": "error", "message": "bad", "code": 400}),
                "bad",
            ),
            (json!({"detail": "Not Found"}), "Not Found"),
        ];
        for (v, want) in cases {
            assert_eq!(error_message(&v).as_deref(), Some(want), "{v}");
        }
        assert_eq!(error_message(&json!({"choices": []})), None);
    }

    #[test]
    fn shape_messages_drop_the_root() {
        assert_eq!(
            shape_err("$.messages", "an array").to_string(),
            "`messages` must be an array"
        );
    }
}
