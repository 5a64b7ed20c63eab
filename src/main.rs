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
use eidca::signer::{KeyRef, Signer, ceremony};

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
        /// Certify this existing key (file or pkcs11: URI) as the issuing CA
        /// instead of making one.
        #[arg(long)]
        issuing_key: Option<String>,
        /// Certify this existing key as the OCSP responder.
        #[arg(long)]
        ocsp_key: Option<String>,
        #[command(flatten)]
        module: ModuleArg,
    },
    /// Key ceremony: generate a CA key pair, or a CSR signed by one (SPEC §11).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Generate a key pair (sensitive, non-extractable in a token) and print its public key.
    Generate {
        /// A pkcs11: URI (with object=) or a file that does not exist yet.
        #[arg(long)]
        key: String,
        /// ec-p256, ec-p384, rsa-2048, rsa-3072 or rsa-4096.
        #[arg(long)]
        algorithm: String,
        #[command(flatten)]
        module: ModuleArg,
    },
    /// Print a PKCS#10 CSR signed by the key, for the root CA to certify.
    Csr {
        #[arg(long)]
        key: String,
        /// e.g. "C=TW,O=Ministry of the Interior,CN=eID Issuing CA 2027".
        #[arg(long)]
        subject: String,
        #[command(flatten)]
        module: ModuleArg,
    },
}

#[derive(Args)]
struct ModuleArg {
    /// The PKCS#11 module of a URI that names no module-path.
    #[arg(long = "pkcs11-module", env = "EIDCA_CA_PKCS11_MODULE")]
    pkcs11_module: Option<PathBuf>,
}

impl ModuleArg {
    fn key(&self, value: &str) -> Result<KeyRef, String> {
        KeyRef::parse(value, self.pkcs11_module.as_deref(), 1).map_err(|e| format!("--key: {e}"))
    }

    fn signer(&self, option: &str, value: &str) -> Result<Signer, String> {
        let key = self.key(value)?;
        Signer::open(option, &key).map_err(|e| format!("{option} {key}: {e}"))
    }
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
        Command::Keys { command } => keys(command),
        Command::DevKeys {
            out,
            issuing_key,
            ocsp_key,
            module,
        } => {
            let open = |option, value: &Option<String>| {
                value
                    .as_deref()
                    .map(|v| module.signer(option, v))
                    .transpose()
            };
            let issuing = open("--issuing-key", issuing_key)?;
            let ocsp = open("--ocsp-key", ocsp_key)?;
            let existing = eidca::devkeys::ExistingKeys {
                issuing: issuing.as_ref(),
                ocsp: ocsp.as_ref(),
            };
            eidca::devkeys::generate_with(
                out,
                eidca::devkeys::ORGANIZATION,
                time::OffsetDateTime::now_utc(),
                existing,
            )
            .map_err(|e| e.to_string())?;
            println!(
                "development CA hierarchy written to {} (never for production)",
                out.display()
            );
            Ok(())
        }
    }
}

fn keys(command: &KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Generate {
            key,
            algorithm,
            module,
        } => {
            let algorithm = ceremony::parse_algorithm(algorithm).map_err(|e| e.to_string())?;
            let signer =
                ceremony::generate(&module.key(key)?, algorithm).map_err(|e| e.to_string())?;
            print!("{}", signer.public_key_pem()?);
            Ok(())
        }
        KeysCommand::Csr {
            key,
            subject,
            module,
        } => {
            let signer = module.signer("--key", key)?;
            print!(
                "{}",
                ceremony::csr(&signer, subject).map_err(|e| e.to_string())?
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
