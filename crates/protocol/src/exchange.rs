//! The normalized exchange model: what every later pipeline stage (ledger, budgets, content
//! protection, tool governance) reads instead of provider JSON.
//!
//! Provider modules fill these types; nothing here knows a wire format. Strings that came from the
//! client carry the JSON path they were read from, so a stage that rewrites content (redaction)
//! or records a finding can point back into the original body without re-parsing it.

use serde::Serialize;

use crate::route::Route;

/// One request as the client sent it, normalized.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExchangeRequest {
    /// Model named in the body, or in the path for Gemini.
    pub model: Option<String>,
    /// Whether the client asked for a streamed response.
    pub stream: bool,
    /// System prompt / instructions, in order.
    pub system: Vec<TextPart>,
    /// Conversation turns (prompts and embedding inputs become user turns).
    pub messages: Vec<Message>,
    /// Tools the client offers the model.
    pub tools: Vec<ToolDefinition>,
    /// Output-token ceiling the client asked for (`max_tokens`, `max_output_tokens`, …).
    pub max_tokens: Option<u64>,
}

/// A piece of client-supplied text and where it sits in the request body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TextPart {
    /// The text.
    pub text: String,
    /// JSON path of the string in the request body, e.g. `$.messages[0].content`.
    pub path: String,
}

/// Who spoke a turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// System or developer instructions given as a turn.
    System,
    /// The end user (or the agent speaking as one).
    User,
    /// The model.
    Assistant,
    /// A tool result turn (OpenAI `tool`, Gemini `function` role).
    Tool,
    /// Anything else a provider sends, kept verbatim.
    Other(String),
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Message {
    /// Speaker.
    pub role: Role,
    /// Content blocks in order.
    pub content: Vec<Content>,
}

/// One content block of a turn.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Plain text.
    Text(TextPart),
    /// Reasoning / thinking text echoed back by the client.
    Reasoning(TextPart),
    /// A tool call the model made earlier in the conversation.
    ToolCall(ToolCall),
    /// A tool's result sent back by the agent.
    ToolResult {
        /// The call this answers, when the provider links them by id.
        call_id: Option<String>,
        /// Tool name, when the provider sends it (Gemini).
        name: Option<String>,
        /// The result text (JSON results are kept as JSON text).
        content: TextPart,
    },
    /// Image, audio, file or other non-text input; only its media type is kept.
    Media {
        /// MIME type when the provider states it.
        mime_type: Option<String>,
    },
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ToolDefinition {
    /// Tool (function) name.
    pub name: String,
    /// Description shown to the model.
    pub description: Option<String>,
    /// JSON schema of the arguments, as sent.
    pub parameters: Option<serde_json::Value>,
}

/// A tool call the model asks the agent to run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ToolCall {
    /// Provider call id (`call_…`, `toolu_…`); Gemini has none before v1beta ids.
    pub id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments as JSON text, exactly as assembled from the wire (deltas concatenated).
    pub arguments: String,
}

/// Token accounting reported by the provider, normalized so the same field means the same thing
/// whichever provider answered: `input_tokens` and `output_tokens` are what is billed at the
/// input and output rates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Prompt / input tokens, cached ones included. Anthropic reports fresh tokens, cache reads
    /// and cache writes separately; this is their sum. Gemini's tool-use prompt tokens are added.
    pub input_tokens: Option<u64>,
    /// Completion / output tokens, reasoning included. OpenAI and Anthropic already count it there;
    /// for Gemini this is `candidatesTokenCount + thoughtsTokenCount`.
    pub output_tokens: Option<u64>,
    /// Input tokens served from the provider's prompt cache.
    pub cached_input_tokens: Option<u64>,
    /// Reasoning / thinking tokens.
    pub reasoning_tokens: Option<u64>,
}

/// One response (buffered or reassembled from a stream), normalized.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ExchangeResponse {
    /// Provider response id.
    pub id: Option<String>,
    /// Model that answered.
    pub model: Option<String>,
    /// Output text, all choices/candidates/blocks concatenated in order.
    pub output_text: String,
    /// Reasoning / thinking text.
    pub reasoning: String,
    /// Tool calls the model asked for, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Token usage.
    pub usage: Usage,
    /// Finish / stop reason in the provider's own words (`stop`, `end_turn`, `STOP`, `tool_calls`).
    pub finish_reason: Option<String>,
    /// Error message when the upstream answered with an error body or an in-stream error event.
    pub error: Option<String>,
}

/// A whole exchange: what the pipeline knows about one request once it is done.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// Which provider operation was called.
    pub route: Route,
    /// The request, when its body could be parsed (absent for GET routes and unparsable bodies).
    pub request: Option<ExchangeRequest>,
    /// The response, when one came back and could be parsed.
    pub response: Option<ExchangeResponse>,
    /// Upstream HTTP status, when the upstream answered.
    pub upstream_status: Option<u16>,
    /// Time from forwarding the request to the end of the response body, in microseconds.
    pub upstream_latency_us: Option<u64>,
}
