//! `warden init`: write a commented `warden.toml` and create the data directory.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Parser;

use crate::config::DEFAULT_DATA_DIR;

/// The commented sample config `warden init` writes (every key at its default).
pub const SAMPLE_CONFIG: &str = include_str!("warden.sample.toml");

/// Flags of `warden init`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Where to write the config.
    #[arg(long, default_value = "warden.toml", value_name = "FILE")]
    pub config: PathBuf,
    /// Overwrite an existing config file.
    #[arg(long)]
    pub force: bool,
}

/// Writes the sample config, creates the data dir and the ledger signing key.
pub fn run(base: crate::config::Overrides, args: Args) -> anyhow::Result<()> {
    let data_dir = base.data_dir.clone();
    if args.config.exists() && !args.force {
        bail!(
            "{} already exists; pass --force to overwrite it",
            args.config.display()
        );
    }
    std::fs::write(&args.config, SAMPLE_CONFIG)
        .with_context(|| format!("cannot write {}", args.config.display()))?;
    let data_dir = data_dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
    std::fs::create_dir_all(&data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    println!("wrote {}", args.config.display());
    println!("created data directory {}", data_dir.display());
    let config = crate::config::Config::load(Some(&args.config), &base)?;
    let (signer, created) = crate::audit::signing_key(&config, true)?;
    if created {
        println!(
            "created the ledger signing key {} (mode 0600; back it up, keep it secret)",
            config.key_file().display()
        );
    } else {
        println!(
            "using the existing ledger signing key {}",
            config.key_file().display()
        );
    }
    println!(
        "verifier key (give it to auditors): {}",
        signer.verifier().to_vkey()
    );
    println!("next: `warden config check` to see the effective settings, `warden serve` to start");
    Ok(())
}
