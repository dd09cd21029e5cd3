//! `warden config check [FILE]`: validate and print the effective settings.

use std::path::PathBuf;

use clap::Parser;

use crate::config::{Config, Overrides};

/// Flags of `warden config check`.
#[derive(Debug, Parser)]
pub struct Args {
    /// Config file (default: ./warden.toml if present, else built-in defaults).
    pub file: Option<PathBuf>,
    /// Apply these `--upstream NAME=URL` overrides too, as `warden serve` would.
    #[arg(long = "upstream", value_name = "NAME=URL")]
    pub upstreams: Vec<String>,
}

/// Prints the effective configuration, or the first error (exit 1).
pub fn run(base: Overrides, args: Args) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: std::env::var("WARDEN_LISTEN").ok(),
        upstreams: super::serve::upstream_flags(&args.upstreams)?,
        ..base
    }
    .with_env_upstreams(std::env::vars());
    let config = Config::load(args.file.as_deref(), &overrides)?;
    match &config.file {
        Some(f) => println!("# {}: OK", f.display()),
        None => println!("# no config file: built-in defaults (+ environment): OK"),
    }
    println!("# effective configuration (file < environment < flags)\n");
    print!("{}", config.render());
    Ok(())
}
