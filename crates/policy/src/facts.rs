//! What the gateway knows about a request when it asks for a decision ([`Facts`]), and the
//! identity scopes ([`Scope`]) that rate limits and budgets count by.
//!
//! This module owns only the shape of those facts. It must not derive them: the gateway
//! identifies the caller, classifies the route and parses the model before it asks, and this
//! crate never sees a request body or provider JSON.

use std::fmt;

use serde::Serialize;

/// The facts about one request that rules match on, borrowed from the gateway's own state so
/// that evaluating a policy allocates nothing until a decision is made.
pub struct Facts<'a> {
    /// Provider protocol, as `warden_protocol::Provider::name` spells it (`openai`, `anthropic`,
    /// `gemini`, `ollama`).
    pub provider: &'a str,
    /// The operation, as `warden_protocol::Operation::name` spells it (`chat_completions`,
    /// `messages`, `generate_content`, `embeddings`, `list_models`, …).
    pub route: &'a str,
    /// HTTP method (`POST`, `GET`).
    pub method: &'a str,
    /// The configured upstream's host (`api.openai.com`, `127.0.0.1:8000`).
    pub upstream_host: &'a str,
    /// The model the request names, when it names one.
    pub model: Option<&'a str>,
    /// The caller's tenant (`x-warden-tenant` or its virtual key's tenant).
    pub tenant: Option<&'a str>,
    /// The calling agent.
    pub agent: Option<&'a str>,
    /// The virtual key's id, when the caller used one.
    pub key: Option<&'a str>,
    /// The session (`x-warden-session`).
    pub session: Option<&'a str>,
    /// Looks up a request header by its lowercase name (first value).
    pub header: &'a dyn Fn(&str) -> Option<&'a str>,
}

fn no_header<'a>(_: &str) -> Option<&'a str> {
    None
}

impl<'a> Facts<'a> {
    /// Facts with the four always-known values and nothing else: no model, no identity, no
    /// headers. Set the other fields directly.
    pub fn new(
        provider: &'a str,
        route: &'a str,
        method: &'a str,
        upstream_host: &'a str,
    ) -> Facts<'a> {
        Facts {
            provider,
            route,
            method,
            upstream_host,
            model: None,
            tenant: None,
            agent: None,
            key: None,
            session: None,
            header: &no_header,
        }
    }
}

impl fmt::Debug for Facts<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Facts")
            .field("provider", &self.provider)
            .field("route", &self.route)
            .field("method", &self.method)
            .field("upstream_host", &self.upstream_host)
            .field("model", &self.model)
            .field("tenant", &self.tenant)
            .field("agent", &self.agent)
            .field("key", &self.key)
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

/// Whose requests a rate limit or a budget counts together.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Every request counts against one shared counter.
    Global,
    /// One counter per tenant.
    Tenant,
    /// One counter per agent (the default for rule limits).
    #[default]
    Agent,
    /// One counter per session.
    Session,
    /// One counter per virtual key.
    Key,
}

/// The scope of a rule's rate limits (`limits.per`).
pub type LimitScope = Scope;
/// The scope of a budget (`per`).
pub type BudgetScope = Scope;

impl Scope {
    /// Every scope, in the order the docs list them.
    pub const ALL: [Scope; 5] = [
        Scope::Global,
        Scope::Tenant,
        Scope::Agent,
        Scope::Session,
        Scope::Key,
    ];

    /// The name used in config (`global`, `tenant`, `agent`, `session`, `key`).
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Tenant => "tenant",
            Scope::Agent => "agent",
            Scope::Session => "session",
            Scope::Key => "key",
        }
    }

    /// Parses a scope name as written in config.
    pub fn parse(s: &str) -> Result<Scope, String> {
        Scope::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| {
                format!("`{s}` is not a scope; use one of: global, tenant, agent, session, key")
            })
    }

    /// The subject whose counter this request counts against: the request's tenant, agent,
    /// session or key, or `"global"` for [`Scope::Global`]. `None` when the request does not
    /// carry that identity (no session header, no virtual key); the caller decides what an
    /// unidentified request counts against.
    pub fn subject<'f>(self, facts: &Facts<'f>) -> Option<&'f str> {
        match self {
            Scope::Global => Some("global"),
            Scope::Tenant => facts.tenant,
            Scope::Agent => facts.agent,
            Scope::Session => facts.session,
            Scope::Key => facts.key,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
