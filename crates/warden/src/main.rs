//! The `warden` binary: parse the command line, run the command, print errors for people.
#![forbid(unsafe_code)]

use clap::Parser;
use warden::cli::{Cli, Command, ConfigCommand};

fn main() {
    let cli = Cli::parse();
    let base = cli.base_overrides();
    let result = match cli.command {
        Command::Serve(args) => warden::cli::serve::run(base, args),
        Command::Demo(args) => warden::demo::run(args),
        Command::MockUpstream(args) => warden::cli::mock::run(args),
        Command::Init(args) => warden::cli::init::run(base, args),
        Command::Config(ConfigCommand::Check(args)) => warden::cli::config_check::run(base, args),
        Command::Audit(cmd) => warden::cli::audit::run(base, cmd),
        Command::Keys(cmd) => warden::cli::keys::run(base, cmd),
        Command::Kill(args) => warden::cli::kill::kill(base, args),
        Command::Unkill(args) => warden::cli::kill::unkill(base, args),
        Command::Approvals(cmd) => warden::cli::approvals::run(base, cmd),
        Command::Status(args) => warden::cli::status::run(base, args),
        Command::Protect(args) => warden::cli::protect::run(base, args),
    };
    if let Err(e) = result {
        // A closed stdout (`warden … | head`) is not an error worth a message.
        if e.chain().any(|c| {
            c.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
        }) {
            std::process::exit(0);
        }
        if let Some(invalid) = e.downcast_ref::<warden::cli::audit::Invalid>() {
            eprintln!("{invalid}");
            std::process::exit(2);
        }
        eprintln!("error: {e}");
        for cause in e.chain().skip(1) {
            eprintln!("  caused by: {cause}");
        }
        std::process::exit(1);
    }
}
