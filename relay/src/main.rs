//! The `relay` binary: parses the command line (clap), sets up logging (tracing) and runs one
//! command from [`cli`]. Errors end as one line on stderr and a non-zero exit code.

mod cli;
mod cli_certificate;
mod cli_server;
mod cli_sessions;
mod cli_portal;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    init_tracing(args.is_serve());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", one_line(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes on one line, each cause only once: our errors often quote their source
/// in their own message ("cannot open the database: …"), so `{:#}` would repeat it.
fn one_line(error: &anyhow::Error) -> String {
    let mut line = error.to_string();
    for cause in error.chain().skip(1) {
        let text = cause.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// Logs go to stderr (stdout carries only what a person or script must read). `RUST_LOG` overrides
/// the default level: `info` for the server, `warn` for administrative commands.
fn init_tracing(serve: bool) {
    use tracing_subscriber::EnvFilter;
    // sqlx warns about slow statements (e.g. waiting on a locked database): useful in a server's log, noise
    // before a command's one-line error.
    let default = if serve {
        "info,sqlx=warn"
    } else {
        "warn,sqlx=error"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
}
