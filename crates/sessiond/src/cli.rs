//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

#[derive(Debug, Parser)]
#[command(
    name = "sessiond",
    version,
    about = "Self-hosted sessions server speaking the Clerk, Trinsic and Equisoft session APIs",
    long_about = "sessiond manages login sessions and identity-verification sessions for other software.\n\
                  With no configuration it serves on 127.0.0.1:7300 and keeps an embedded SQLite database\n\
                  in ./sessiond-data; a postgres:// database URL switches to PostgreSQL.",
    after_help = "Examples:\n  sessiond serve\n  sessiond apps create \"My app\" --json\n  \
                  SESSIOND_DATABASE_URL=postgres://127.0.0.1/sessiond sessiond serve --listen 0.0.0.0:7300\n  \
                  sessiond config example > sessiond.toml"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// TOML configuration file (see `sessiond config example`).
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "SESSIOND_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Directory of the embedded database and the master key file [default: ./sessiond-data].
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: sqlite:… or postgres://… [default: SQLite in the data directory].
    #[arg(long, global = true, value_name = "URL")]
    pub database_url: Option<String>,
    /// Log format [default: json].
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormatArg>,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum LogFormatArg {
    Json,
    Pretty,
}

impl From<LogFormatArg> for LogFormat {
    fn from(v: LogFormatArg) -> Self {
        match v {
            LogFormatArg::Json => LogFormat::Json,
            LogFormatArg::Pretty => LogFormat::Pretty,
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (migrates the database first).
    #[command(
        after_help = "Examples:\n  sessiond serve\n  sessiond serve --listen 0.0.0.0:7300 --log-format pretty\n  \
                            sessiond serve --database-url postgres://sessiond@db/sessiond"
    )]
    Serve {
        /// Address:port to listen on [default: 127.0.0.1:7300].
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
        /// Also serve the Equisoft dialect WITHOUT authentication on this address, for one
        /// application (see --equisoft-application). Only on a network untrusted clients cannot reach.
        #[arg(long, value_name = "ADDR")]
        equisoft_trusted_listen: Option<String>,
        /// The application the trusted Equisoft listener acts for.
        #[arg(long, value_name = "APP_ID")]
        equisoft_application: Option<String>,
        /// Absolute URL browsers reach this server at, for verification links
        /// [default: http://<listen address>].
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// Serve the operator console on this address instead of under /console on the main
        /// listener (e.g. an address only your network reaches).
        #[arg(long, value_name = "ADDR", conflicts_with = "no_console")]
        console_listen: Option<String>,
        /// Do not serve the operator console at all.
        #[arg(long)]
        no_console: bool,
    },
    /// Apply pending database migrations and exit.
    #[command(
        after_help = "Example:\n  sessiond migrate --database-url postgres://sessiond@db/sessiond"
    )]
    Migrate,
    /// Manage applications (tenants) directly in the database.
    #[command(subcommand)]
    Apps(AppsCommand),
    /// Operator attributes of users (impersonation capability, concurrent-access limit) and the
    /// impersonation audit trail.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Operators: the people who sign in to the web console (/console), their roles and second
    /// factor, and the audit log of what they did.
    #[command(subcommand)]
    Operators(OperatorsCommand),
    /// Manage secret keys and the master sealing key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Webhook endpoints: register receivers of an application's events, rotate their signing
    /// secrets, look at deliveries and attempts, replay.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
    /// Print an example configuration or check a configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Ask a running server whether it is ready (exit 0) or not (exit 1).
    #[command(
        after_help = "Examples:\n  sessiond healthcheck\n  sessiond healthcheck --url http://10.0.0.5:7300 --live"
    )]
    Healthcheck {
        /// Base URL of the server, plain http:// (probes run beside the node) [default:
        /// http://<listen setting>].
        #[arg(long)]
        url: Option<String>,
        /// Check liveness (/healthz) instead of readiness (/readyz).
        #[arg(long)]
        live: bool,
        /// Seconds to wait for an answer.
        #[arg(long, default_value_t = 5)]
        timeout: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Register an endpoint and print its signing secret (shown only once).
    #[command(
        after_help = "Examples:\n  sessiond webhooks create app_… --url https://api.example.com/clerk-webhooks\n  \
                            sessiond webhooks create app_… --url https://hooks.example.com/s \\\n      \
                            --event session.revoked --event session.ended --json\n\n\
                            Event types: sessiond webhooks types"
    )]
    Create {
        app_id: String,
        /// The receiver (https:// or http://).
        #[arg(long)]
        url: String,
        /// Deliver only this type (repeatable); without any, every type.
        #[arg(long = "event", value_name = "TYPE")]
        events: Vec<String>,
        #[arg(long)]
        description: Option<String>,
        /// Register it disabled.
        #[arg(long)]
        disabled: bool,
        /// Print the endpoint with its `secret` as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List an application's endpoints.
    #[command(after_help = "Example:\n  sessiond webhooks list app_… --json")]
    List {
        app_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an endpoint (only what is given).
    #[command(
        after_help = "Examples:\n  sessiond webhooks update app_… ep_… --disable\n  \
                            sessiond webhooks update app_… ep_… --event user.created --event user.deleted\n  \
                            sessiond webhooks update app_… ep_… --all-events"
    )]
    Update {
        app_id: String,
        endpoint_id: String,
        #[arg(long)]
        url: Option<String>,
        /// Replace the types delivered with these (repeatable).
        #[arg(long = "event", value_name = "TYPE", conflicts_with = "all_events")]
        events: Vec<String>,
        /// Deliver every type.
        #[arg(long)]
        all_events: bool,
        #[arg(long)]
        description: Option<String>,
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        #[arg(long)]
        disable: bool,
    },
    /// Delete an endpoint with its deliveries and their history.
    #[command(after_help = "Example:\n  sessiond webhooks delete app_… ep_…")]
    Delete { app_id: String, endpoint_id: String },
    /// Replace the signing secret; the old one keeps signing beside it for the overlap.
    #[command(after_help = "Example:\n  sessiond webhooks rotate-secret app_… ep_… --overlap 12h")]
    RotateSecret {
        app_id: String,
        endpoint_id: String,
        /// How long the old secret still signs (s, m, h or d; at most 7d).
        #[arg(long, default_value = "1d", value_name = "DURATION")]
        overlap: String,
        #[arg(long)]
        json: bool,
    },
    /// An endpoint's deliveries, newest event first.
    #[command(after_help = "Example:\n  sessiond webhooks deliveries app_… ep_… --state failed")]
    Deliveries {
        app_id: String,
        endpoint_id: String,
        /// pending, succeeded or failed.
        #[arg(long)]
        state: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// An endpoint's delivery attempts, newest first (status, latency, start of the answer).
    #[command(after_help = "Example:\n  sessiond webhooks attempts app_… ep_… --event evt_…")]
    Attempts {
        app_id: String,
        endpoint_id: String,
        #[arg(long, value_name = "EVENT_ID")]
        event: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Send events to an endpoint again: one, or every one in a time range.
    #[command(
        after_help = "Examples:\n  sessiond webhooks replay app_… ep_… --event evt_…\n  \
                            sessiond webhooks replay app_… ep_… --since 2026-12-01T00:00:00Z --until 2026-12-02T00:00:00Z"
    )]
    Replay {
        app_id: String,
        endpoint_id: String,
        #[arg(long, value_name = "EVENT_ID", conflicts_with_all = ["since", "until"])]
        event: Option<String>,
        /// Start of the range (RFC 3339 or Unix milliseconds), inclusive.
        #[arg(long, requires = "until")]
        since: Option<String>,
        /// End of the range, exclusive.
        #[arg(long, requires = "since")]
        until: Option<String>,
    },
    /// List the event types, with what each means.
    Types,
}

#[derive(Debug, Subcommand)]
pub enum AppsCommand {
    /// Create an application and print its first secret key (shown only once).
    #[command(
        after_help = "Examples:\n  sessiond apps create \"Acme staging\"\n  sessiond apps create Acme --live --json"
    )]
    Create {
        name: String,
        /// Issue sk_live_ keys instead of sk_test_.
        #[arg(long)]
        live: bool,
        /// Print {"id", "secret_key", "publishable_key"} as JSON.
        #[arg(long)]
        json: bool,
    },
    /// List applications.
    #[command(after_help = "Example:\n  sessiond apps list --json")]
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one application with its settings.
    #[command(after_help = "Example:\n  sessiond apps show app_2Z1jWk8…")]
    Show {
        app_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change an application's name or settings. Durations take s, m, h or d suffixes.
    #[command(
        after_help = "Examples:\n  sessiond apps update app_… --session-max-lifetime 14d --inactivity-timeout 2h\n  \
                            sessiond apps update app_… --allowed-redirect-origin https://app.example.com"
    )]
    Update(Box<UpdateArgs>),
    /// Delete an application with all its keys and data.
    #[command(after_help = "Example:\n  sessiond apps delete app_… --yes")]
    Delete {
        app_id: String,
        /// Confirm the deletion (required: it cannot be undone).
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    pub app_id: String,
    #[arg(long)]
    pub name: Option<String>,
    /// Absolute session lifetime (default 7d).
    #[arg(long, value_name = "DURATION")]
    pub session_max_lifetime: Option<String>,
    /// Idle timeout, or `off` (default off).
    #[arg(long, value_name = "DURATION|off")]
    pub inactivity_timeout: Option<String>,
    /// Abandon period after last activity (default 30d).
    #[arg(long, value_name = "DURATION")]
    pub abandon_period: Option<String>,
    /// Session token lifetime (default 60s, at least 30s).
    #[arg(long, value_name = "DURATION")]
    pub session_token_lifetime: Option<String>,
    /// Retention of identity-verification results before automatic redaction (default 30d).
    #[arg(long, value_name = "DURATION")]
    pub verification_retention: Option<String>,
    /// How long an unfinished verification session and its launch link last (default 1h).
    #[arg(long, value_name = "DURATION")]
    pub verification_session_lifetime: Option<String>,
    /// Trinsic generation on the paths both share: `api` (Trinsic API 2.x, default) or
    /// `connect` (Trinsic Connect 1.x).
    #[arg(long, value_name = "api|connect")]
    pub trinsic_generation: Option<String>,
    /// Frontend URL (its host goes into the publishable key and token `iss`). Default
    /// `https://clerk.<app id>.sessiond.localhost`; Clerk's Go SDK only accepts an issuer that
    /// starts with `https://clerk.` unless told otherwise, so keep that label in production.
    #[arg(long, value_name = "URL")]
    pub frontend_url: Option<String>,
    /// Add an allowed redirect origin (repeatable).
    #[arg(long, value_name = "ORIGIN")]
    pub allowed_redirect_origin: Vec<String>,
    /// Remove every allowed redirect origin first.
    #[arg(long)]
    pub clear_redirect_origins: bool,
    /// Requests per second the application may make on each node: a number (0 is unlimited)
    /// or `default` for the server's `rate_limit_per_app_per_sec`.
    #[arg(long, value_name = "N|default")]
    pub rate_limit: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Set operator-only attributes of a user (by user id or external id).
    #[command(
        after_help = "Examples:\n  sessiond users update app_… user_… --can-impersonate true\n  \
                            sessiond users update app_… 7f6c…-uuid --max-concurrent-access 2 --locale fr-CA"
    )]
    Update {
        app_id: String,
        /// User id (user_…) or external id.
        user: String,
        /// Allow this user to impersonate other users of the application.
        #[arg(long)]
        can_impersonate: Option<bool>,
        /// Sessions enabled for Equisoft/Connect at once (0 = unlimited).
        #[arg(long)]
        max_concurrent_access: Option<u32>,
        #[arg(long)]
        locale: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// The impersonation audit trail of an application, newest first.
    #[command(after_help = "Example:\n  sessiond users impersonations app_… --json")]
    Impersonations {
        app_id: String,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum OperatorsCommand {
    /// Create an operator. Without --password-stdin a strong password is generated and printed
    /// once; with --totp the authenticator secret (and its otpauth:// URI) is printed once.
    #[command(
        after_help = "Examples:\n  sessiond operators create ops@example.com\n  \
                            sessiond operators create support@example.com --role viewer --application app_… --totp\n  \
                            printf '%s\\n' \"$PASSWORD\" | sessiond operators create ops@example.com --password-stdin"
    )]
    Create {
        email: String,
        /// `admin` (may change things) or `viewer` (sees only).
        #[arg(long, default_value = "admin", value_parser = ["admin", "viewer"])]
        role: String,
        /// Limit the operator to this application (repeatable); without it, every application.
        #[arg(long = "application", value_name = "APP_ID")]
        applications: Vec<String>,
        /// Enrol an authenticator app (TOTP) as a second factor.
        #[arg(long)]
        totp: bool,
        /// Read the password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print the operator as JSON, with the generated password and TOTP secret if any.
        #[arg(long)]
        json: bool,
    },
    /// List operators.
    List {
        /// Print them as a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Change an operator (only what is given). Disabling, or changing the second factor, signs
    /// the operator out everywhere.
    #[command(
        after_help = "Examples:\n  sessiond operators update ops@example.com --role viewer\n  \
                            sessiond operators update ops@example.com --unlock\n  \
                            sessiond operators update ops@example.com --totp"
    )]
    Update {
        email: String,
        #[arg(long, value_parser = ["admin", "viewer"])]
        role: Option<String>,
        /// Limit to these applications (repeatable), replacing the current list.
        #[arg(
            long = "application",
            value_name = "APP_ID",
            conflicts_with = "all_applications"
        )]
        applications: Vec<String>,
        /// Remove any limit: every application.
        #[arg(long)]
        all_applications: bool,
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        #[arg(long)]
        enable: bool,
        /// Enrol a new authenticator secret (printed once), replacing any.
        #[arg(long, conflicts_with = "no_totp")]
        totp: bool,
        /// Remove the second factor.
        #[arg(long)]
        no_totp: bool,
        /// Clear failed sign-ins and the lock they caused.
        #[arg(long)]
        unlock: bool,
        /// Set a new password from the first line of standard input.
        #[arg(long)]
        password_stdin: bool,
        /// Print the operator as JSON (with a new TOTP secret if one was enrolled).
        #[arg(long)]
        json: bool,
    },
    /// Delete an operator (their console sessions end with them).
    Delete {
        email: String,
        /// Confirm the deletion.
        #[arg(long)]
        yes: bool,
    },
    /// The audit log: every operator action, newest first.
    #[command(
        after_help = "Examples:\n  sessiond operators audit\n  sessiond operators audit --application app_… --json"
    )]
    Audit {
        /// Only actions on this application.
        #[arg(long = "application", value_name = "APP_ID")]
        application: Option<String>,
        /// Most entries to print.
        #[arg(long, default_value_t = 100)]
        limit: u32,
        /// Print the entries as a JSON array.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create another secret key for an application.
    #[command(after_help = "Example:\n  sessiond keys create app_… --json")]
    Create {
        app_id: String,
        #[arg(long)]
        json: bool,
    },
    /// List an application's keys (hints only; secrets are never stored).
    #[command(after_help = "Example:\n  sessiond keys list app_…")]
    List {
        app_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; it stops working on the next request, on every node.
    #[command(after_help = "Example:\n  sessiond keys revoke app_… key_…")]
    Revoke { app_id: String, key_id: String },
    /// Rotate an application's token signing key, with overlap.
    #[command(
        name = "rotate-signing",
        long_about = "Rotate an application's token signing key.\n\n\
            The new key is published in the JWKS at once and starts signing 10 minutes later, so\n\
            verifiers that cache the JWKS know it first. The old key stays published until every\n\
            token it signed has expired. --immediate signs with the new key at once (after a\n\
            suspected key compromise).",
        after_help = "Examples:\n  sessiond keys rotate-signing app_…\n  sessiond keys rotate-signing app_… --immediate"
    )]
    RotateSigning {
        app_id: String,
        /// Start signing with the new key now.
        #[arg(long)]
        immediate: bool,
    },
    /// Print an application's current token-verification public key (PEM) and its JWKS URL.
    #[command(
        name = "public-key",
        after_help = "Example:\n  sessiond keys public-key app_… > clerk-jwt-key.pem   # CLERK_JWT_KEY for networkless verification"
    )]
    PublicKey { app_id: String },
    /// Rotate the master sealing key and re-seal every secret under it, online.
    #[command(
        name = "rotate-master",
        long_about = "Rotate the master sealing key.\n\n\
            With the key file (the default), a new key is generated and put first in the file, the old\n\
            keys stay for opening, and every sealed value is re-sealed under the new key while servers\n\
            keep running (they re-read the key file). Run again with --retire-old once every node has\n\
            picked up the new key (within 30 s) to drop old keys; it refuses while any value still\n\
            uses one.\n\n\
            With SESSIOND_MASTER_KEY: if it lists one key, a new keyring value is printed; deploy it to\n\
            every node as SESSIOND_MASTER_KEY, then run this command again to re-seal everything under\n\
            the new (first) key.",
        after_help = "Examples:\n  sessiond keys rotate-master\n  sessiond keys rotate-master --retire-old"
    )]
    RotateMaster {
        /// Drop old keys from the key file after verifying nothing is sealed under them.
        #[arg(long)]
        retire_old: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print a fully commented configuration file with every default.
    #[command(after_help = "Example:\n  sessiond config example > sessiond.toml")]
    Example,
    /// Validate a configuration file (and the environment) without starting anything.
    #[command(after_help = "Example:\n  sessiond config check sessiond.toml")]
    Check {
        /// File to check [default: --config / SESSIOND_CONFIG].
        file: Option<PathBuf>,
    },
}
