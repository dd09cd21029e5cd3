//! End-to-end tests of warden-mock over real TCP: response shapes per provider, buffered and
//! streamed, and the scripting directive.

mod anthropic;
mod common;
mod gemini;
mod ollama;
mod openai;
mod scripting;
