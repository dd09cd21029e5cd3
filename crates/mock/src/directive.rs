//! The mock directive: what a request asks the mock to do, read from the `x-mock-scenario`
//! header or a `[mock:{...}]` marker in the last user message, and validated up front so a
//! malformed script fails loudly instead of silently producing a default reply.

use http::HeaderMap;
use serde::Deserialize;
use serde_json::Value;

/// The request header carrying a mock directive as a JSON object (see the crate docs).
pub const SCENARIO_HEADER: &str = "x-mock-scenario";

const MARKER: &str = "[mock:";
/// Generated replies beyond this many words are refused rather than allocated.
const MAX_WORDS: usize = 1_000_000;

/// A validated directive. `Default` is "no directive": the ordinary reply.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Directive {
    pub(crate) text: Option<String>,
    pub(crate) words: Option<usize>,
    pub(crate) chunks: Option<usize>,
    #[serde(default)]
    pub(crate) tool_calls: Vec<ToolCallSpec>,
    pub(crate) reasoning: Option<String>,
    pub(crate) status: Option<u16>,
    pub(crate) delay_ms: Option<u64>,
    pub(crate) chunk_delay_ms: Option<u64>,
    pub(crate) break_after: Option<usize>,
    #[serde(default)]
    pub(crate) echo: bool,
    pub(crate) usage: Option<UsageSpec>,
}

/// One tool call the scripted model makes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ToolCallSpec {
    pub(crate) name: String,
    #[serde(default = "empty_object")]
    pub(crate) arguments: Value,
}

/// Token counts that replace the computed ones.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UsageSpec {
    pub(crate) input: Option<u64>,
    pub(crate) output: Option<u64>,
}

fn empty_object() -> Value {
    Value::Object(serde_json::Map::new())
}

/// Why a directive was refused; the message is sent back to the caller.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DirectiveError {
    #[error("invalid mock directive in the {SCENARIO_HEADER} header: {0}")]
    Header(String),
    #[error("invalid [mock:...] directive in the last user message: {0}")]
    Message(String),
}

/// The directive for a request: the header wins; otherwise a marker in `last_user_text`;
/// otherwise the default.
pub(crate) fn resolve(
    headers: &HeaderMap,
    last_user_text: Option<&str>,
) -> Result<Directive, DirectiveError> {
    if let Some(value) = headers.get(SCENARIO_HEADER) {
        let text = value
            .to_str()
            .map_err(|_| DirectiveError::Header("the header value is not valid UTF-8".into()))?;
        let directive = serde_json::from_str::<Directive>(text)
            .map_err(|e| DirectiveError::Header(e.to_string()))?;
        return directive.validated().map_err(DirectiveError::Header);
    }
    match last_user_text.and_then(find_in_text) {
        Some(found) => found.map_err(DirectiveError::Message),
        None => Ok(Directive::default()),
    }
}

/// The directive embedded in `text`, if `text` contains the `[mock:` marker at all.
fn find_in_text(text: &str) -> Option<Result<Directive, String>> {
    let start = text.find(MARKER)? + MARKER.len();
    Some(parse_marked(&text[start..]))
}

fn parse_marked(rest: &str) -> Result<Directive, String> {
    // Let the JSON parser find the end of the object, so `]` or `}` inside strings is harmless.
    let mut values = serde_json::Deserializer::from_str(rest).into_iter::<Value>();
    let value = match values.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) => return Err(e.to_string()),
        None => return Err("expected a JSON object after `[mock:`".into()),
    };
    if !rest[values.byte_offset()..].trim_start().starts_with(']') {
        return Err("expected `]` after the directive's JSON object".into());
    }
    if !value.is_object() {
        return Err("the directive must be a JSON object".into());
    }
    serde_json::from_value::<Directive>(value)
        .map_err(|e| e.to_string())?
        .validated()
}

impl Directive {
    fn validated(mut self) -> Result<Self, String> {
        let sources = [self.text.is_some(), self.words.is_some(), self.echo];
        if sources.iter().filter(|&&set| set).count() > 1 {
            return Err("use only one of `text`, `words` and `echo`".into());
        }
        if self.words.is_some_and(|n| n > MAX_WORDS) {
            return Err(format!("`words` must be at most {MAX_WORDS}"));
        }
        if self.chunks == Some(0) {
            return Err("`chunks` must be at least 1".into());
        }
        if let Some(status) = self.status
            && !(400..=599).contains(&status)
        {
            return Err(format!(
                "`status` must be between 400 and 599, got {status}"
            ));
        }
        for (i, call) in self.tool_calls.iter_mut().enumerate() {
            if call.name.is_empty() {
                return Err(format!("`tool_calls[{i}].name` must not be empty"));
            }
            // A string is taken as already-encoded arguments, the way OpenAI sends them.
            if let Value::String(encoded) = &call.arguments {
                call.arguments = serde_json::from_str(encoded).map_err(|e| {
                    format!("`tool_calls[{i}].arguments` is a string but not JSON: {e}")
                })?;
            }
        }
        Ok(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn from_text(text: &str) -> Result<Directive, DirectiveError> {
        resolve(&HeaderMap::new(), Some(text))
    }

    #[test]
    fn no_marker_means_default() {
        let d = from_text("just a question").unwrap();
        assert!(d.text.is_none() && d.status.is_none() && !d.echo);
        assert!(resolve(&HeaderMap::new(), None).unwrap().text.is_none());
    }

    #[test]
    fn marker_in_text_is_parsed_with_brackets_inside_strings() {
        let d = from_text(r#"Hi there [mock:{"text":"a ] b } c","chunks":2}] trailing"#).unwrap();
        assert_eq!(d.text.as_deref(), Some("a ] b } c"));
        assert_eq!(d.chunks, Some(2));
    }

    #[test]
    fn tool_call_arguments_may_be_encoded_strings() {
        let d =
            from_text(r#"[mock: {"tool_calls":[{"name":"f","arguments":"{\"a\":1}"}]} ]"#).unwrap();
        assert_eq!(d.tool_calls[0].arguments, serde_json::json!({"a": 1}));
        let d = from_text(r#"[mock:{"tool_calls":[{"name":"f"}]}]"#).unwrap();
        assert_eq!(d.tool_calls[0].arguments, serde_json::json!({}));
    }

    #[test]
    fn header_wins_over_text() {
        let mut headers = HeaderMap::new();
        headers.insert(
            SCENARIO_HEADER,
            HeaderValue::from_static(r#"{"status":503}"#),
        );
        let d = resolve(&headers, Some(r#"[mock:{"status":429}]"#)).unwrap();
        assert_eq!(d.status, Some(503));
    }

    #[test]
    fn malformed_directives_are_errors() {
        for bad in [
            "[mock:{\"text\":1}]",
            "[mock:{\"txet\":\"typo\"}]",
            "[mock:{\"text\":\"a\"}",
            "[mock:[1,2]]",
            "[mock:",
            "[mock:{\"text\":\"a\",\"words\":3}]",
            "[mock:{\"chunks\":0}]",
            "[mock:{\"status\":200}]",
            "[mock:{\"tool_calls\":[{\"name\":\"\"}]}]",
            "[mock:{\"tool_calls\":[{\"name\":\"f\",\"arguments\":\"{oops\"}]}]",
        ] {
            let err = from_text(bad).expect_err(bad);
            assert!(matches!(err, DirectiveError::Message(_)), "{bad}");
        }
        let mut headers = HeaderMap::new();
        headers.insert(SCENARIO_HEADER, HeaderValue::from_static("not json"));
        assert!(matches!(
            resolve(&headers, None),
            Err(DirectiveError::Header(_))
        ));
    }
}
