//! The `warden` command line: clap definitions and one module per command.
//!
//! Commands parse flags into [`crate::config::Overrides`] and hand off to the library; they own
//! printing and exit codes, nothing else.

pub mod approvals;
pub mod audit;
pub mod config_check;
pub mod init;
pub mod keys;
pub mod kill;
pub mod live;
pub mod mock;
pub mod protect;
pub mod serve;
pub mod status;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::Overrides;

/// Warden: a governance gateway for AI agents.
///
/// Point an agent's LLM SDK at Warden (OPENAI_BASE_URL=http://127.0.0.1:8474/v1,
/// ANTHROPIC_BASE_URL=http://127.0.0.1:8474, Gemini's http_options.base_url) and every exchange
/// passes through its pipeline. Start with `warden demo`.
#[derive(Debug, Parser)]
#[command(name = "warden", version, propagate_version = true)]
pub struct Cli {
    /// State directory (ledger, keys, gateway.json).
    #[arg(long, global = true, env = "WARDEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Log format on stderr: human or json.
    #[arg(long, global = true, env = "WARDEN_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Every subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway.
    Serve(serve::Args),
    /// Start the built-in mock provider and the gateway, send sample traffic for every provider
    /// (buffered and streaming) and print what went through. No API key, no network.
    Demo(crate::demo::Args),
    /// Run a fake OpenAI/Anthropic/Gemini/Ollama server for tests, demos and benchmarks.
    MockUpstream(mock::Args),
    /// Write a commented warden.toml and create the data directory.
    Init(init::Args),
    /// Validate and inspect configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Read, prove and verify the audit ledger (offline; works while the gateway runs).
    #[command(subcommand)]
    Audit(audit::Command),
    /// Virtual API keys: create (printed once), list, revoke.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Stop a session, agent, tenant, key or everything at once; in-flight streams are cut.
    Kill(kill::Args),
    /// Lift a kill.
    Unkill(kill::Args),
    /// The human-approval queue of tool calls: list, show, approve, deny.
    #[command(subcommand)]
    Approvals(approvals::Command),
    /// What the running gateway is doing: auth, ledger, streams, kills, spend.
    Status(status::Args),
    /// Show what content protection would find and do to a payload (a request or response
    /// body, or plain text); `--corpus` measures the detectors' precision and recall.
    Protect(protect::Args),
}

/// `warden config …`
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config file and print the effective settings (file + environment + defaults).
    Check(config_check::Args),
}

impl Cli {
    /// Overrides common to every command (data dir, log format).
    pub fn base_overrides(&self) -> Overrides {
        Overrides {
            data_dir: self.data_dir.clone(),
            log_format: self.log_format.clone(),
            auth_mode: std::env::var("WARDEN_AUTH_MODE")
                .ok()
                .filter(|m| !m.is_empty()),
            ..Overrides::default()
        }
    }
}
