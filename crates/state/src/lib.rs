/*!
Warden's state store for the identity and policy stage: virtual API keys, the kill switch, USD
spend with atomic budget reservation, GCRA rate limits, and the queue of tool calls waiting for a
human's approval.

Callers see only the [`Store`] trait and the record types in this module. [`SqliteStore`] is the
embedded implementation: one SQLite file (`<data-dir>/state.db`, WAL) that the gateway and the
CLI may open at the same time, and that keeps working correctly when they do, because every
multi-row change is one `BEGIN IMMEDIATE` transaction. A Redis implementation with atomic
scripts can follow behind the same trait so that replicas share budgets, rate limits and kills.

What each part guarantees:

- **Keys.** A secret (`wk_…`) is shown once by [`Store::create_key`]; only its HMAC-SHA256 under
  a per-data-dir pepper (`<data-dir>/key-pepper`, mode 0600) is stored, and
  [`Store::authenticate`] looks keys up by that MAC. [`SqliteStore`] remembers a key it looked up
  for [`Options::key_refresh`] (250 ms by default): a revocation through the same store applies
  at once, one by another process within that bound.
- **Kills** persist and are answered on the hot path ([`Store::killed`]) from memory; a kill
  written by another process is seen within [`Options::kill_refresh`] (250 ms by default).
- **Budgets.** [`Store::reserve`] checks every cap and reserves an estimate in one transaction,
  so concurrent requests, in one process or several, cannot together overspend a cap;
  [`Store::reserve_batch`] judges several in one transaction exactly as one call each would;
  [`Store::settle`] swaps the reservation for the actual cost and records spend for every subject.
- **Rate limits** are GCRA ([`Store::rate_acquire`]): no fixed windows, exact `retry_after`.
  Embedded state is in memory (see the `gcra` module notes for why and what a restart costs).
- **Approvals** persist, so a held tool call's approval survives a gateway restart and can be
  decided from another process (the CLI) while the gateway waits. Ids (`apr_…`) are random and
  exact-match only. [`Store::decide_approval`] is one transaction that changes only a pending,
  unexpired approval, so of two concurrent deciders exactly one wins, and an approval decided
  after its deadline stays expired: a late approve never becomes an approval. Every read reports
  an overdue pending approval as expired, whether or not [`Store::expire_approvals`] has swept it
  yet. Reads always go to the database (no cache): they are rare, and another process may have
  decided.

Money is integer micro-USD ([`Micros`]) everywhere; periods are UTC calendar days and months.

The crate owns keeping those numbers and flags correct under concurrency. It must not make
policy (which caps and rates apply to a request, what it is estimated to cost, what a refusal
looks like: all the caller's), and it must not depend on an async runtime or the network, so
the CLI can use it directly and every call is plain blocking code that finishes in microseconds.

```
use std::time::SystemTime;
use warden_state::{Cap, Charge, NewKey, Period, ReserveOutcome, Scope, SqliteStore, Store, Subjects};

# let dir = std::env::temp_dir().join(format!("warden-state-doc-{}", std::process::id()));
# let _ = std::fs::remove_dir_all(&dir);
let store = SqliteStore::open(&dir)?;
let now = SystemTime::now();

let created = store.create_key(NewKey { agent: Some("billing-bot".into()), ..NewKey::default() }, now)?;
let info = match store.authenticate(&created.secret, now)? {
    warden_state::KeyCheck::Valid(info) => info,
    other => panic!("{other:?}"),
};

let cap = Cap {
    name: "agents-daily".into(),
    scope: Scope::Agent,
    subject: "billing-bot".into(),
    period: Period::Day,
    limit_micros: 5_000_000, // $5
    soft_micros: None,
};
let ReserveOutcome::Reserved(reservation) = store.reserve(&[cap], 20_000, now)? else {
    panic!("a fresh cap has room");
};
let subjects = Subjects { agent: Some("billing-bot".into()), key_id: Some(info.id), ..Subjects::default() };
let charge = Charge { micros: Some(12_345), input_tokens: 1_000, output_tokens: 200, model: None };
let after = store.settle(Some(reservation), &subjects, &charge, now)?;
assert_eq!(after[0].spent_micros, 12_345);
assert_eq!(after[0].reserved_micros, 0);
# drop(store);
# std::fs::remove_dir_all(&dir).unwrap();
# Ok::<(), warden_state::StoreError>(())
```
*/
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod gcra;
mod keys;
mod sqlite;
mod time;

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

pub use sqlite::{Options, SqliteStore};

/// Money, in integer micro-USD (1 USD = 1 000 000). Integers so that sums are exact and
/// comparisons against a cap never round the wrong way.
pub type Micros = i64;

/// What a spend row or a cap is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Everything through this gateway; its subject is `""`.
    Global,
    /// One tenant.
    Tenant,
    /// One agent.
    Agent,
    /// One session.
    Session,
    /// One virtual key (subject is the key id, never the secret).
    Key,
}

impl Scope {
    /// Every scope, broadest first.
    pub const ALL: [Scope; 5] = [
        Scope::Global,
        Scope::Tenant,
        Scope::Agent,
        Scope::Session,
        Scope::Key,
    ];

    /// The lowercase name used in config, JSON and the database.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Tenant => "tenant",
            Scope::Agent => "agent",
            Scope::Session => "session",
            Scope::Key => "key",
        }
    }

    /// The scope named `s` (as [`Scope::name`] spells it).
    pub fn parse(s: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.name() == s)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The period a budget or a spend row covers. Buckets are UTC: `"total"`, `"2026-11-21"`,
/// `"2026-11"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// All time.
    Total,
    /// One UTC calendar day.
    Day,
    /// One UTC calendar month.
    Month,
}

impl Period {
    /// Every period.
    pub const ALL: [Period; 3] = [Period::Total, Period::Day, Period::Month];

    /// The lowercase name used in config, JSON and the database.
    pub fn name(self) -> &'static str {
        match self {
            Period::Total => "total",
            Period::Day => "day",
            Period::Month => "month",
        }
    }

    /// The period named `s` (as [`Period::name`] spells it).
    pub fn parse(s: &str) -> Option<Period> {
        Period::ALL.into_iter().find(|p| p.name() == s)
    }

    /// The bucket of this period that contains `now`: `"total"`, `"YYYY-MM-DD"` or `"YYYY-MM"`
    /// (UTC).
    pub fn bucket(self, now: SystemTime) -> String {
        time::bucket(self, time::unix_secs(now))
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Who an exchange belongs to, for kills and spend. `None` and empty strings both mean unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subjects {
    /// The tenant, if known.
    pub tenant: Option<String>,
    /// The agent, if known.
    pub agent: Option<String>,
    /// The session, if known.
    pub session: Option<String>,
    /// The virtual key's id (`key_…`), if the caller used one.
    pub key_id: Option<String>,
}

impl Subjects {
    /// The known subjects as (scope, id) pairs, always starting with (`Global`, `""`).
    fn known(&self) -> impl Iterator<Item = (Scope, &str)> {
        fn some(scope: Scope, v: &Option<String>) -> Option<(Scope, &str)> {
            v.as_deref().filter(|s| !s.is_empty()).map(|s| (scope, s))
        }
        [
            Some((Scope::Global, "")),
            some(Scope::Tenant, &self.tenant),
            some(Scope::Agent, &self.agent),
            some(Scope::Session, &self.session),
            some(Scope::Key, &self.key_id),
        ]
        .into_iter()
        .flatten()
    }
}

// ---------- virtual keys

/// What to create a virtual key with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewKey {
    /// Tenant every request with this key belongs to (empty = none).
    pub tenant: Option<String>,
    /// Agent every request with this key belongs to (empty = none).
    pub agent: Option<String>,
    /// A human label (empty = none).
    pub name: Option<String>,
    /// Model globs this key may use; empty means any model.
    pub models: Vec<String>,
    /// Requests per minute allowed for this key.
    pub rpm: Option<u32>,
    /// Tokens per minute allowed for this key.
    pub tpm: Option<u32>,
    /// Spend cap for this key, per `budget_period`.
    pub budget_micros: Option<Micros>,
    /// The period `budget_micros` applies to.
    pub budget_period: Period,
    /// When the key stops working (second granularity).
    pub expires_at: Option<SystemTime>,
}

impl Default for NewKey {
    fn default() -> Self {
        Self {
            tenant: None,
            agent: None,
            name: None,
            models: Vec::new(),
            rpm: None,
            tpm: None,
            budget_micros: None,
            budget_period: Period::Total,
            expires_at: None,
        }
    }
}

/// A virtual key's public record: everything but the secret (and its hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyInfo {
    /// Public id: `key_` + 16 lowercase hex digits.
    pub id: String,
    /// Tenant the key's requests belong to.
    pub tenant: Option<String>,
    /// Agent the key's requests belong to.
    pub agent: Option<String>,
    /// Human label.
    pub name: Option<String>,
    /// Model globs this key may use; empty means any model.
    pub models: Vec<String>,
    /// Requests per minute.
    pub rpm: Option<u32>,
    /// Tokens per minute.
    pub tpm: Option<u32>,
    /// Spend cap per `budget_period`.
    pub budget_micros: Option<Micros>,
    /// The period `budget_micros` applies to.
    pub budget_period: Period,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; the key is expired from this second on.
    pub expires_at: Option<u64>,
    /// Unix seconds of the first revocation.
    pub revoked_at: Option<u64>,
}

/// A newly created key: the only time its secret exists outside the caller's hands.
pub struct CreatedKey {
    /// `wk_` + 43 base62 characters (32 random bytes). Shown once; the store keeps only a
    /// keyed hash.
    pub secret: String,
    /// The key's public record.
    pub info: KeyInfo,
}

impl fmt::Debug for CreatedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedKey")
            .field("secret", &"<redacted>")
            .field("info", &self.info)
            .finish()
    }
}

/// The result of presenting a secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyCheck {
    /// A live key.
    Valid(KeyInfo),
    /// No key has this secret (including anything not shaped like a Warden secret).
    Unknown,
    /// The key was revoked (takes precedence over expiry).
    Revoked(KeyInfo),
    /// The key's `expires_at` has passed.
    Expired(KeyInfo),
}

// ---------- kills

/// What a kill applies to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "lowercase")]
pub enum KillTarget {
    /// Every request.
    All,
    /// One tenant.
    Tenant(String),
    /// One agent.
    Agent(String),
    /// One session.
    Session(String),
    /// One virtual key, by id.
    Key(String),
}

impl KillTarget {
    /// Builds a target from its kind (`all`, `tenant`, `agent`, `session`, `key`) and id; `None`
    /// for an unknown kind, a missing or empty id, or an id given for `all`.
    pub fn new(kind: &str, id: Option<&str>) -> Option<KillTarget> {
        let id = id.map(str::to_owned);
        match (kind, id) {
            ("all", None) => Some(KillTarget::All),
            (_, Some(id)) if id.is_empty() => None,
            ("tenant", Some(id)) => Some(KillTarget::Tenant(id)),
            ("agent", Some(id)) => Some(KillTarget::Agent(id)),
            ("session", Some(id)) => Some(KillTarget::Session(id)),
            ("key", Some(id)) => Some(KillTarget::Key(id)),
            _ => None,
        }
    }

    /// `all`, `tenant`, `agent`, `session` or `key`.
    pub fn kind(&self) -> &'static str {
        match self {
            KillTarget::All => "all",
            KillTarget::Tenant(_) => "tenant",
            KillTarget::Agent(_) => "agent",
            KillTarget::Session(_) => "session",
            KillTarget::Key(_) => "key",
        }
    }

    /// The id, `None` for [`KillTarget::All`].
    pub fn id(&self) -> Option<&str> {
        match self {
            KillTarget::All => None,
            KillTarget::Tenant(id)
            | KillTarget::Agent(id)
            | KillTarget::Session(id)
            | KillTarget::Key(id) => Some(id),
        }
    }

    /// Whether a request with these subjects is covered by this kill. Unknown subjects match
    /// nothing but [`KillTarget::All`].
    pub fn matches(&self, subjects: &Subjects) -> bool {
        let is = |field: &Option<String>, id: &str| field.as_deref() == Some(id) && !id.is_empty();
        match self {
            KillTarget::All => true,
            KillTarget::Tenant(id) => is(&subjects.tenant, id),
            KillTarget::Agent(id) => is(&subjects.agent, id),
            KillTarget::Session(id) => is(&subjects.session, id),
            KillTarget::Key(id) => is(&subjects.key_id, id),
        }
    }
}

impl fmt::Display for KillTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.id() {
            None => f.write_str(self.kind()),
            Some(id) => write!(f, "{} {id}", self.kind()),
        }
    }
}

/// An active kill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KillRecord {
    /// What is killed.
    pub target: KillTarget,
    /// Why, as given by the actor.
    pub reason: String,
    /// Who killed it (an operator name, `cli`, `admin-api`, a policy rule…).
    pub actor: String,
    /// Unix seconds when it was killed.
    pub at: u64,
}

// ---------- budgets

/// One budget to enforce on a request: a limit on the spend of one subject in one period.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cap {
    /// Budget name for messages, e.g. `agents-daily` or `key key_ab12… budget`.
    pub name: String,
    /// What the cap is about.
    pub scope: Scope,
    /// The tenant/agent/session/key id; `""` for [`Scope::Global`].
    pub subject: String,
    /// The period the limit applies to.
    pub period: Period,
    /// Hard limit: a reservation that would take spent + reserved above it is refused.
    pub limit_micros: Micros,
    /// Soft limit: reported (for warnings), never enforced.
    pub soft_micros: Option<Micros>,
}

/// The answer of [`Store::reserve`].
#[derive(Debug)]
pub enum ReserveOutcome {
    /// Every cap had room; hand the reservation to [`Store::settle`] or [`Store::release`].
    Reserved(Reservation),
    /// The first cap (in the order given) that the amount would cross; nothing was reserved.
    Exceeded(CapStatus),
}

/// Money set aside on some caps for one in-flight exchange.
///
/// It pins the period buckets that were current when it was made, so an exchange that
/// straddles midnight settles into the day it started in. It is deliberately not `Clone`: it
/// must be consumed exactly once, by [`Store::settle`] or [`Store::release`]. One that is
/// dropped instead stays reserved until [`Store::clear_reservations`]. Settle it on the store
/// that made it.
#[derive(Debug)]
pub struct Reservation {
    id: u64,
    amount: Micros,
    /// Unix seconds when reserved: the time the exchange is attributed to.
    at: u64,
    caps: Vec<ReservedCap>,
}

#[derive(Debug)]
struct ReservedCap {
    cap: Cap,
    bucket: String,
}

impl Reservation {
    /// The micro-USD set aside on each of its caps.
    pub fn amount(&self) -> Micros {
        self.amount
    }

    /// An id unique within the process that made it, for logs.
    pub fn id(&self) -> u64 {
        self.id
    }
}

/// A cap and where its bucket stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapStatus {
    /// The cap's name.
    pub name: String,
    /// The cap's scope.
    pub scope: Scope,
    /// The cap's subject.
    pub subject: String,
    /// The cap's period.
    pub period: Period,
    /// The bucket the numbers are for.
    pub bucket: String,
    /// The hard limit.
    pub limit_micros: Micros,
    /// The soft limit.
    pub soft_micros: Option<Micros>,
    /// Settled spend in the bucket.
    pub spent_micros: Micros,
    /// Reserved by in-flight exchanges.
    pub reserved_micros: Micros,
}

impl CapStatus {
    /// What is left under the hard limit after spend and reservations (never negative).
    pub fn remaining_micros(&self) -> Micros {
        (self.limit_micros - self.spent_micros - self.reserved_micros).max(0)
    }

    /// Whether settled spend has reached the soft limit.
    pub fn soft_reached(&self) -> bool {
        self.soft_micros
            .is_some_and(|soft| self.spent_micros >= soft)
    }
}

/// What one exchange actually cost, charged to every known subject (for reporting) and to its
/// caps (via the reservation).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Charge {
    /// The cost; `None` when the price is unknown (counted in `unpriced_requests`, charged as 0).
    pub micros: Option<Micros>,
    /// Input (prompt) tokens.
    pub input_tokens: u64,
    /// Output (completion) tokens.
    pub output_tokens: u64,
    /// The model, for the caller's records (the store does not aggregate by model).
    pub model: Option<String>,
}

/// Spend of one subject in one period bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpendRow {
    /// Scope of the subject.
    pub scope: Scope,
    /// The subject's id; `""` for global.
    pub subject: String,
    /// The period.
    pub period: Period,
    /// The period's bucket.
    pub bucket: String,
    /// Settled spend.
    pub spent_micros: Micros,
    /// Reserved by in-flight exchanges.
    pub reserved_micros: Micros,
    /// Settled exchanges.
    pub requests: u64,
    /// Input tokens of settled exchanges.
    pub input_tokens: u64,
    /// Output tokens of settled exchanges.
    pub output_tokens: u64,
    /// Settled exchanges whose price was unknown.
    pub unpriced_requests: u64,
    /// Unix seconds of the last settle or reservation.
    pub last_at: u64,
}

/// Which spend rows [`Store::spend`] returns. Rows come back `total` first, then newest
/// bucket first, largest spend first within a bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SpendFilter {
    /// Only this scope.
    pub scope: Option<Scope>,
    /// Only this subject id.
    pub subject: Option<String>,
    /// Only this period.
    pub period: Option<Period>,
    /// At most this many rows; 0 means no limit.
    pub limit: usize,
}

// ---------- rate limits

/// A GCRA limit: `per_minute` sustained, up to `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Sustained cost admitted per minute. 0 admits nothing.
    pub per_minute: u64,
    /// Cost admitted at once from an idle bucket (at least 1 is assumed).
    pub burst: u64,
}

impl Rate {
    /// `per_minute` sustained with the default burst of one minute's worth.
    pub fn new(per_minute: u64) -> Rate {
        Rate {
            per_minute,
            burst: per_minute,
        }
    }

    /// The same rate with another burst.
    pub fn with_burst(self, burst: u64) -> Rate {
        Rate { burst, ..self }
    }
}

/// The answer of [`Store::rate_acquire`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateOutcome {
    /// Admitted and charged.
    Allowed,
    /// Not admitted (and not charged); the same cost would be admitted after `retry_after`.
    Limited {
        /// The exact wait.
        retry_after: Duration,
    },
}

/// One reservation of [`Store::reserve_batch`]: the arguments of [`Store::reserve`].
#[derive(Debug, Clone)]
pub struct ReserveRequest {
    /// The caps to reserve on.
    pub caps: Vec<Cap>,
    /// The amount to set aside on each.
    pub amount: Micros,
    /// When: picks the period buckets.
    pub at: SystemTime,
}

/// One exchange's settlement, for [`Store::settle_batch`].
#[derive(Debug)]
pub struct Settlement {
    /// The reservation made at admission, if any.
    pub reservation: Option<Reservation>,
    /// Who spent it.
    pub subjects: Subjects,
    /// What it cost.
    pub charge: Charge,
    /// When it ended.
    pub at: SystemTime,
}

// ---------- approvals

/// Where an approval stands. Every state but `Pending` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApprovalStatus {
    /// Waiting for a human, and not yet past its deadline.
    Pending,
    /// A human approved it.
    Approved,
    /// A human denied it.
    Denied,
    /// Nobody decided before its deadline: treated as denied.
    Expired,
}

impl ApprovalStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ApprovalStatus; 4] = [
        ApprovalStatus::Pending,
        ApprovalStatus::Approved,
        ApprovalStatus::Denied,
        ApprovalStatus::Expired,
    ];

    /// The lowercase name used in JSON, the CLI and the database.
    pub fn name(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
        }
    }

    /// The status named `s` (as [`ApprovalStatus::name`] spells it).
    pub fn parse(s: &str) -> Option<ApprovalStatus> {
        ApprovalStatus::ALL.into_iter().find(|st| st.name() == s)
    }
}

impl fmt::Display for ApprovalStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A human's answer to a pending approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Let the tool call through.
    Approve,
    /// Refuse the tool call.
    Deny,
}

impl Decision {
    /// The status an approval decided this way ends in.
    pub fn status(self) -> ApprovalStatus {
        match self {
            Decision::Approve => ApprovalStatus::Approved,
            Decision::Deny => ApprovalStatus::Denied,
        }
    }
}

/// A tool call to hold for a human, as [`Store::create_approval`] takes it.
///
/// Text is bounded rather than refused: a field longer than its limit is cut at a character
/// boundary and ends in `…[truncated from N bytes]`, so the whole stored field stays within the
/// limit (and `arguments` may then no longer be valid JSON). Empty optional fields are stored as
/// `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApproval {
    /// Tenant of the exchange, if known.
    pub tenant: Option<String>,
    /// Agent of the exchange, if known.
    pub agent: Option<String>,
    /// Session of the exchange, if known.
    pub session: Option<String>,
    /// The virtual key's id (`key_…`), if the caller used one.
    pub key_id: Option<String>,
    /// The provider that produced the tool call.
    pub provider: String,
    /// The model that produced the tool call.
    pub model: String,
    /// The tool's name.
    pub tool: String,
    /// The call's arguments as JSON text, already redacted by the caller: the store keeps
    /// exactly this text and never sees the original.
    pub arguments: String,
    /// The policy rule that requires approval.
    pub rule: String,
    /// Why approval is required, for the human deciding.
    pub reason: String,
    /// How long a human has to decide (must be positive; rounded up to whole milliseconds).
    pub ttl: Duration,
}

impl NewApproval {
    /// Byte limit of `arguments`.
    pub const MAX_ARGUMENTS: usize = 64 * 1024;
    /// Byte limit of `reason` and of a decision's reason.
    pub const MAX_REASON: usize = 4 * 1024;
    /// Byte limit of every other text field (names and ids, the tool, the rule, the approver).
    pub const MAX_LABEL: usize = 256;
}

/// A held tool call and, once decided, its decision.
///
/// Times are serialized as integer Unix milliseconds (the store's precision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// Public id: `apr_` + 16 lowercase hex digits (64 random bits), unguessable.
    pub id: String,
    /// When it was created.
    #[serde(with = "time::millis")]
    pub created_at: SystemTime,
    /// Its deadline: from this millisecond on it is expired.
    #[serde(with = "time::millis")]
    pub expires_at: SystemTime,
    /// Where it stands, as of the time it was read.
    pub status: ApprovalStatus,
    /// Tenant of the exchange.
    pub tenant: Option<String>,
    /// Agent of the exchange.
    pub agent: Option<String>,
    /// Session of the exchange.
    pub session: Option<String>,
    /// The virtual key's id.
    pub key_id: Option<String>,
    /// The provider that produced the tool call.
    pub provider: String,
    /// The model that produced the tool call.
    pub model: String,
    /// The tool's name.
    pub tool: String,
    /// The call's arguments: the redacted JSON text the caller gave.
    pub arguments: String,
    /// The policy rule that requires approval.
    pub rule: String,
    /// Why approval is required.
    pub reason: String,
    /// Ledger index of the entry that recorded the request, once set by
    /// [`Store::set_approval_entry`].
    pub entry: Option<u64>,
    /// When it was decided; for an expired approval, its deadline.
    #[serde(with = "time::opt_millis")]
    pub decided_at: Option<SystemTime>,
    /// Who decided (`None` while pending and when expired).
    pub approver: Option<String>,
    /// The decider's reason; `"timed out"` when expired.
    pub decision_reason: Option<String>,
}

/// Which approvals [`Store::list_approvals`] returns, newest first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApprovalFilter {
    /// Only approvals in this status, as of `now` (so `Pending` leaves out overdue ones and
    /// `Expired` includes them).
    pub status: Option<ApprovalStatus>,
    /// At most this many; `None` means no limit.
    pub limit: Option<usize>,
}

/// The answer of [`Store::decide_approval`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecideOutcome {
    /// This call decided it; the approval as it now stands.
    Decided(Approval),
    /// It was no longer pending: decided before, or past its deadline (then it is `Expired`,
    /// and stays so). Nothing about it was changed but, when overdue, its expiry.
    AlreadyDecided(Approval),
    /// No approval has this id.
    NotFound,
}

/// Warden's state: keys, kills, spend, rate limits and approvals.
///
/// Implementations are shared by every request thread. Every method that takes `now` uses it
/// instead of the clock, so callers (and tests) decide what time it is.
pub trait Store: Send + Sync + 'static {
    /// Creates a key and returns its secret, which is not stored and cannot be shown again.
    fn create_key(&self, new: NewKey, now: SystemTime) -> Result<CreatedKey, StoreError>;
    /// All keys, revoked and expired included, oldest first.
    fn list_keys(&self) -> Result<Vec<KeyInfo>, StoreError>;
    /// Ok(None) when no such id; revoking twice keeps the first revocation time.
    fn revoke_key(&self, id: &str, now: SystemTime) -> Result<Option<KeyInfo>, StoreError>;
    /// Constant-time on the secret: look up by keyed hash, never by the secret itself.
    fn authenticate(&self, presented: &str, now: SystemTime) -> Result<KeyCheck, StoreError>;
    /// True once any virtual key was ever created (revoked ones count): auth mode `auto`
    /// switches on this.
    fn has_keys(&self) -> Result<bool, StoreError>;

    /// Kills `target`. Killing an already-killed target keeps (and returns) the first record,
    /// so `at` says when the block began.
    fn kill(
        &self,
        target: KillTarget,
        reason: &str,
        actor: &str,
        now: SystemTime,
    ) -> Result<KillRecord, StoreError>;
    /// Ok(None) when the target was not killed.
    fn unkill(&self, target: &KillTarget) -> Result<Option<KillRecord>, StoreError>;
    /// Every active kill, oldest first.
    fn kills(&self) -> Result<Vec<KillRecord>, StoreError>;
    /// Hot path (every request): answers from an in-memory mirror; at most one call per refresh
    /// interval also asks the database (microseconds) whether another process changed the kills.
    /// Returns the first kill matching the subjects, broadest first (all, tenant, agent,
    /// session, key).
    fn killed(&self, subjects: &Subjects) -> Option<KillRecord>;

    /// Atomically: for every cap, spent + reserved + amount <= limit (and spent + reserved <
    /// limit, so a zero estimate is refused once a cap is used up), else Exceeded(status of
    /// the first cap that would be crossed) and nothing is reserved; otherwise add `amount` to
    /// each cap's reserved in its current period bucket. Caps naming the same bucket share one
    /// reservation of `amount`.
    fn reserve(
        &self,
        caps: &[Cap],
        amount: Micros,
        now: SystemTime,
    ) -> Result<ReserveOutcome, StoreError>;
    /// [`Store::reserve`] for several requests at once, answered in order and judged as if one
    /// call each were made in that order (each sees what the ones before it reserved). Stores
    /// that can judge them in one transaction (one lock, one commit) should. An invalid item
    /// fails alone; `Err` means the store failed and none of them was reserved.
    #[allow(clippy::type_complexity)]
    fn reserve_batch(
        &self,
        items: &[ReserveRequest],
    ) -> Result<Vec<Result<ReserveOutcome, StoreError>>, StoreError> {
        Ok(items
            .iter()
            .map(|r| self.reserve(&r.caps, r.amount, r.at))
            .collect())
    }
    /// Atomically: release the reservation (if any), add the actual charge to each reserved
    /// cap's bucket, and add spend/tokens/request counts for every known subject (global,
    /// tenant, agent, session, key) in the total, day and month buckets, each row once.
    /// Buckets are those of the reservation's time when there is one, else of `now`. Returns
    /// the post-settle status of the reserved caps (for soft-cap warnings).
    fn settle(
        &self,
        reservation: Option<Reservation>,
        subjects: &Subjects,
        charge: &Charge,
        now: SystemTime,
    ) -> Result<Vec<CapStatus>, StoreError>;
    /// Gives a reservation back without charging anything or counting a request (the exchange
    /// never reached the provider).
    fn release(&self, reservation: Reservation) -> Result<(), StoreError>;
    /// [`Store::settle`] for several exchanges at once; stores that can apply them in one
    /// transaction (one lock, one commit) should. All or nothing: on error none was applied.
    fn settle_batch(&self, items: Vec<Settlement>) -> Result<Vec<Vec<CapStatus>>, StoreError> {
        items
            .into_iter()
            .map(|s| self.settle(s.reservation, &s.subjects, &s.charge, s.at))
            .collect()
    }
    /// Current status of caps without reserving (admin API "budget remaining").
    fn cap_status(&self, caps: &[Cap], now: SystemTime) -> Result<Vec<CapStatus>, StoreError>;
    /// Spend rows matching the filter.
    fn spend(&self, filter: &SpendFilter) -> Result<Vec<SpendRow>, StoreError>;
    /// Drops every outstanding reservation and returns how many budget buckets held one.
    /// Reservations left by a process that died are dead money: the gateway calls this once at
    /// start, which assumes no other live process holds reservations in the same store.
    fn clear_reservations(&self) -> Result<u64, StoreError>;

    /// GCRA check-and-charge: admit `cost` against `bucket` (a caller-chosen string such as
    /// `"rule:3:agent:bob:rpm"`) if it conforms, else Limited with the exact wait. A cost above
    /// `rate.burst` is admitted only from an idle bucket and then charged in full.
    fn rate_acquire(&self, bucket: &str, rate: Rate, cost: u64, now: Instant) -> RateOutcome;
    /// Charge after the fact (e.g. output tokens learned at the end), without a check; may
    /// push the bucket into debt so the next acquire waits.
    fn rate_charge(&self, bucket: &str, rate: Rate, cost: u64, now: Instant);

    /// Queues a tool call for a human: a new pending approval with a fresh random id, expiring
    /// `new.ttl` after `now`. Refuses a zero ttl; bounds oversized text (see [`NewApproval`]).
    fn create_approval(&self, new: NewApproval, now: SystemTime) -> Result<Approval, StoreError>;
    /// The approval with exactly this id, Ok(None) if there is none. A pending one past its
    /// deadline (by the system clock) is reported as expired.
    fn approval(&self, id: &str) -> Result<Option<Approval>, StoreError>;
    /// Approvals matching the filter, newest first; pending ones past their deadline at `now`
    /// are reported (and filtered) as expired.
    fn list_approvals(
        &self,
        filter: &ApprovalFilter,
        now: SystemTime,
    ) -> Result<Vec<Approval>, StoreError>;
    /// Atomically: decides the approval if it is pending and `now` is before its deadline
    /// (Decided); if it is pending but overdue, marks it expired (AlreadyDecided, status
    /// `Expired`: a late approve never turns into an approval); if it was already decided,
    /// changes nothing (AlreadyDecided). Of concurrent deciders, in any processes, exactly one
    /// gets Decided. `approver` must not be empty; an empty reason is stored as `None`.
    fn decide_approval(
        &self,
        id: &str,
        decision: Decision,
        approver: &str,
        reason: Option<&str>,
        now: SystemTime,
    ) -> Result<DecideOutcome, StoreError>;
    /// Marks every pending approval whose deadline is at or before `now` as expired (decision
    /// reason `"timed out"`, decided at its deadline) and returns exactly those, oldest deadline
    /// first, so the caller can record each timeout once. One that a decider found overdue
    /// first was marked by that call instead and is not returned here.
    fn expire_approvals(&self, now: SystemTime) -> Result<Vec<Approval>, StoreError>;
    /// Records the ledger index of the entry for the approval's request (overwriting any
    /// earlier one). An unknown id is an [`StoreError::InvalidArgument`].
    fn set_approval_entry(&self, id: &str, entry: u64) -> Result<(), StoreError>;
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// SQLite reported an error on the state database.
    #[error("state database {}: {source}", path.display())]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// What SQLite said.
        #[source]
        source: rusqlite::Error,
    },
    /// A file beside the database (the directory, the pepper) could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Stored state is not what this version wrote.
    #[error("corrupt state: {0}")]
    Corrupt(String),
    /// The database was written by a newer Warden.
    #[error(
        "state database {} has schema version {found}, newer than this build's {supported}: upgrade warden",
        path.display()
    )]
    SchemaTooNew {
        /// The database file.
        path: PathBuf,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The operating system's random number generator failed.
    #[error("no randomness available: {0}")]
    Random(String),
    /// The caller passed something the store refuses (a negative amount, an empty kill id…).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for scope in Scope::ALL {
            assert_eq!(Scope::parse(scope.name()), Some(scope));
            assert_eq!(
                serde_json::to_string(&scope).unwrap(),
                format!("\"{scope}\"")
            );
        }
        for period in Period::ALL {
            assert_eq!(Period::parse(period.name()), Some(period));
            assert_eq!(
                serde_json::to_string(&period).unwrap(),
                format!("\"{period}\"")
            );
        }
        assert_eq!(Scope::parse("Global"), None);
        assert_eq!(Period::parse("week"), None);
        for status in ApprovalStatus::ALL {
            assert_eq!(ApprovalStatus::parse(status.name()), Some(status));
            assert_eq!(
                serde_json::to_string(&status).unwrap(),
                format!("\"{status}\"")
            );
        }
        assert_eq!(ApprovalStatus::parse("Pending"), None);
        assert_eq!(
            serde_json::to_string(&[Decision::Approve, Decision::Deny]).unwrap(),
            r#"["approve","deny"]"#
        );
        assert_eq!(Decision::Approve.status(), ApprovalStatus::Approved);
        assert_eq!(Decision::Deny.status(), ApprovalStatus::Denied);
    }

    #[test]
    fn approvals_serialize_times_as_unix_millis() {
        let at = |ms| std::time::UNIX_EPOCH + Duration::from_millis(ms);
        let approval = Approval {
            id: "apr_0123456789abcdef".into(),
            created_at: at(1_795_262_400_000),
            expires_at: at(1_795_262_700_500),
            status: ApprovalStatus::Expired,
            tenant: None,
            agent: Some("billing-bot".into()),
            session: None,
            key_id: None,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            tool: "execute_sql".into(),
            arguments: r#"{"query":"DELETE FROM orders"}"#.into(),
            rule: "sql-writes".into(),
            reason: "deletes rows".into(),
            entry: Some(7),
            decided_at: Some(at(1_795_262_700_500)),
            approver: None,
            decision_reason: Some("timed out".into()),
        };
        let json = serde_json::to_value(&approval).unwrap();
        assert_eq!(json["created_at"], 1_795_262_400_000_u64);
        assert_eq!(json["expires_at"], 1_795_262_700_500_u64);
        assert_eq!(json["decided_at"], 1_795_262_700_500_u64);
        assert_eq!(json["status"], "expired");
        assert_eq!(json["approver"], serde_json::Value::Null);
        let back: Approval = serde_json::from_value(json).unwrap();
        assert_eq!(back, approval);
        let pending = Approval {
            decided_at: None,
            ..approval
        };
        let json = serde_json::to_value(&pending).unwrap();
        assert_eq!(json["decided_at"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<Approval>(json).unwrap(), pending);
    }

    #[test]
    fn kill_targets_display_serialize_and_match() {
        let agent = KillTarget::Agent("billing-bot".into());
        assert_eq!(agent.to_string(), "agent billing-bot");
        assert_eq!(KillTarget::All.to_string(), "all");
        assert_eq!(
            serde_json::to_string(&agent).unwrap(),
            r#"{"kind":"agent","id":"billing-bot"}"#
        );
        assert_eq!(
            serde_json::to_string(&KillTarget::All).unwrap(),
            r#"{"kind":"all"}"#
        );
        for t in [
            KillTarget::All,
            KillTarget::Tenant("t".into()),
            agent.clone(),
            KillTarget::Session("s".into()),
            KillTarget::Key("key_1".into()),
        ] {
            assert_eq!(KillTarget::new(t.kind(), t.id()), Some(t.clone()));
            let back: KillTarget =
                serde_json::from_str(&serde_json::to_string(&t).unwrap()).unwrap();
            assert_eq!(back, t);
        }
        assert_eq!(KillTarget::new("agent", Some("")), None);
        assert_eq!(KillTarget::new("agent", None), None);
        assert_eq!(KillTarget::new("all", Some("x")), None);
        assert_eq!(KillTarget::new("planet", Some("x")), None);

        let s = Subjects {
            tenant: Some("acme".into()),
            agent: Some("billing-bot".into()),
            session: None,
            key_id: Some(String::new()),
        };
        assert!(agent.matches(&s));
        assert!(KillTarget::All.matches(&Subjects::default()));
        assert!(KillTarget::Tenant("acme".into()).matches(&s));
        assert!(!KillTarget::Tenant("other".into()).matches(&s));
        assert!(!KillTarget::Session("s".into()).matches(&s));
        assert!(!KillTarget::Key(String::new()).matches(&s));
    }

    #[test]
    fn known_subjects_skip_empty_fields() {
        let s = Subjects {
            tenant: Some(String::new()),
            agent: Some("a".into()),
            session: None,
            key_id: Some("key_1".into()),
        };
        let known: Vec<_> = s.known().collect();
        assert_eq!(
            known,
            [
                (Scope::Global, ""),
                (Scope::Agent, "a"),
                (Scope::Key, "key_1")
            ]
        );
    }

    #[test]
    fn created_key_debug_redacts_the_secret() {
        let created = CreatedKey {
            secret: "wk_supersecret".into(),
            info: KeyInfo {
                id: "key_0".into(),
                tenant: None,
                agent: None,
                name: None,
                models: vec![],
                rpm: None,
                tpm: None,
                budget_micros: None,
                budget_period: Period::Total,
                created_at: 0,
                expires_at: None,
                revoked_at: None,
            },
        };
        let dbg = format!("{created:?}");
        assert!(!dbg.contains("supersecret"), "{dbg}");
        assert!(dbg.contains("key_0"));
    }

    #[test]
    fn cap_status_helpers() {
        let st = CapStatus {
            name: "n".into(),
            scope: Scope::Global,
            subject: String::new(),
            period: Period::Day,
            bucket: "2026-01-01".into(),
            limit_micros: 100,
            soft_micros: Some(50),
            spent_micros: 60,
            reserved_micros: 50,
        };
        assert_eq!(st.remaining_micros(), 0);
        assert!(st.soft_reached());
    }
}
