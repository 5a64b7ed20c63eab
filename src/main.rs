//! The `eidca` command line (SPEC §9): parses arguments, calls the library,
//! prints. Every error goes to stderr with exit code 1.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Args, Parser, Subcommand};
use eidca::authority::{Actor, Authority, IssueRequest};
use eidca::clock::SystemClock;
use eidca::config::{Config, ConfigSource};
use eidca::domain::{Channel, RevocationReason, Serial, Transition};
use eidca::revocation::CrlKind;

#[derive(Parser)]
#[command(
    name = "eidca",
    version,
    about = "Certificate authority for national eID smart cards"
)]
struct Cli {
    /// Configuration file.
    #[arg(
        long,
        global = true,
        env = "EIDCA_CONFIG",
        default_value = "ca-config/eidca.toml"
    )]
    config: PathBuf,
    /// Data directory (SQLite store, published CRLs).
    #[arg(
        long = "data",
        global = true,
        env = "EIDCA_DATA_DIR",
        default_value = "data"
    )]
    data: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: RA API, OCSP, CRLs, self-service, scheduled publication.
    Serve {
        /// Listen address, e.g. 127.0.0.1:8080.
        #[arg(long, env = "EIDCA_LISTEN")]
        listen: Option<String>,
    },
    /// Issue a certificate from a CSR; prints the certificate PEM.
    Issue(IssueArgs),
    /// Suspend a certificate (certificateHold); prints the record.
    Suspend(StatusArgs),
    /// Resume a suspended certificate; prints the record.
    Resume(StatusArgs),
    /// Revoke a certificate for good; prints the record.
    Revoke {
        #[command(flatten)]
        target: StatusArgs,
        /// unspecified, keyCompromise, affiliationChanged, superseded, cessationOfOperation, privilegeWithdrawn.
        #[arg(long)]
        reason: String,
    },
    /// Print a certificate's record as JSON.
    Status { serial: String },
    /// Publish one CRL now; prints its number.
    Crl {
        #[arg(long, conflicts_with = "delta", required_unless_present = "delta")]
        full: bool,
        #[arg(long)]
        delta: bool,
    },
    /// Audit log operations.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Generate a new development CA hierarchy (never for production).
    DevKeys {
        #[arg(long, default_value = "keys-dev")]
        out: PathBuf,
    },
}

#[derive(Args)]
struct IssueArgs {
    #[arg(long)]
    subscriber: String,
    #[arg(long)]
    name: String,
    #[arg(long)]
    card: String,
    #[arg(long)]
    profile: String,
    /// PEM or DER PKCS#10 file.
    #[arg(long)]
    csr: PathBuf,
}

#[derive(Args)]
struct StatusArgs {
    serial: String,
    /// A note for the status history (never logged).
    #[arg(long)]
    note: Option<String>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain; exit 0 with the count, or 1 naming the first bad record.
    Verify,
}

const CLI_ACTOR: Actor<'static> = Actor {
    name: "cli",
    channel: Channel::Cli,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(cli: &Cli, listen: Option<String>) -> Result<Config, String> {
    let source = ConfigSource {
        path: cli.config.clone(),
        listen,
        data_dir: cli.data.clone(),
    };
    Config::load(&source).map_err(|e| e.to_string())
}

fn open(cli: &Cli) -> Result<Authority, String> {
    let config = load_config(cli, None)?;
    Authority::open(config, Arc::new(SystemClock)).map_err(|e| e.to_string())
}

fn print_json(value: &impl serde::Serialize) -> Result<(), String> {
    println!(
        "{}",
        serde_json::to_string_pretty(value).map_err(|e| e.to_string())?
    );
    Ok(())
}

fn parse_serial(s: &str) -> Result<Serial, String> {
    s.parse().map_err(|e| format!("serial `{s}`: {e}"))
}

fn run(cli: Cli) -> Result<(), String> {
    match &cli.command {
        Command::Serve { listen } => {
            let config = load_config(&cli, listen.clone())?;
            eidca::http::serve(config).map_err(|e| e.to_string())
        }
        Command::Issue(args) => {
            let csr = std::fs::read(&args.csr)
                .map_err(|e| format!("cannot read {}: {e}", args.csr.display()))?;
            let request = IssueRequest {
                subscriber_code: &args.subscriber,
                subscriber_name: &args.name,
                card_number: &args.card,
                profile: &args.profile,
                csr: &csr,
            };
            let record = open(&cli)?
                .issue(&request, CLI_ACTOR)
                .map_err(|e| e.to_string())?;
            print!("{}", record.certificate);
            Ok(())
        }
        Command::Suspend(target) => change(&cli, target, Transition::Suspend),
        Command::Resume(target) => change(&cli, target, Transition::Resume),
        Command::Revoke { target, reason } => {
            let reason: RevocationReason = reason
                .parse()
                .map_err(|e: eidca::domain::reason::RevocationReasonError| e.to_string())?;
            change(&cli, target, Transition::Revoke(reason))
        }
        Command::Status { serial } => {
            let record = open(&cli)?
                .certificate(&parse_serial(serial)?)
                .map_err(|e| e.to_string())?;
            print_json(&record)
        }
        Command::Crl { full, .. } => {
            let kind = if *full { CrlKind::Full } else { CrlKind::Delta };
            let summary = open(&cli)?
                .publish(kind, "cli")
                .map_err(|e| e.to_string())?;
            println!("{}", summary.number);
            Ok(())
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => match open(&cli)?.verify_audit().map_err(|e| e.to_string())? {
            Ok(count) => {
                println!("audit chain intact: {count} records checked");
                Ok(())
            }
            Err(chain_break) => Err(chain_break.to_string()),
        },
        Command::DevKeys { out } => {
            eidca::devkeys::generate(out, time::OffsetDateTime::now_utc())
                .map_err(|e| e.to_string())?;
            println!(
                "development CA hierarchy written to {} (never for production)",
                out.display()
            );
            Ok(())
        }
    }
}

fn change(cli: &Cli, target: &StatusArgs, transition: Transition) -> Result<(), String> {
    let serial = parse_serial(&target.serial)?;
    let record = open(cli)?
        .change_status(&serial, transition, target.note.as_deref(), CLI_ACTOR)
        .map_err(|e| e.to_string())?;
    print_json(&record)
}
