//! The documentation of every setting, printed by `sessiond config example`.

/// Documentation of every setting, in file order: (key, doc lines, example for optional keys).
pub const FIELDS: &[(&str, &str, Option<&str>)] = &[
    (
        "listen",
        "Address and port the HTTP API listens on. Env: SESSIOND_LISTEN, flag: --listen.",
        None,
    ),
    (
        "data_dir",
        "Directory for the embedded SQLite database and the master key file (created with mode 0700).\nEnv: SESSIOND_DATA_DIR, flag: --data-dir.",
        None,
    ),
    (
        "database_url",
        "Database URL. Unset: SQLite at <data_dir>/sessiond.db. A postgres:// URL selects PostgreSQL;\nseveral sessiond nodes may share one PostgreSQL database. Env: SESSIOND_DATABASE_URL, flag: --database-url.",
        Some("\"postgres://sessiond@127.0.0.1:5432/sessiond\""),
    ),
    (
        "database_max_connections",
        "Largest number of pooled database connections per node.",
        None,
    ),
    (
        "database_acquire_timeout_ms",
        "PostgreSQL: longest a request waits for a database connection (a free one, or a new one\nwhile the server is being reached) before it is answered 503 with Retry-After. Keep it short so\nthat clients and probes learn of an outage at once; raise it for a database across a slow link.",
        None,
    ),
    (
        "master_key",
        "Master keyring that seals secrets at rest: base64 keys (32 bytes each) separated by commas;\nthe first seals, all open. Unset: read <data_dir>/master.key, created on first start.\nPrefer the environment (SESSIOND_MASTER_KEY) over this file; never store it in the database.",
        Some("\"<base64 of 32 random bytes>\""),
    ),
    (
        "bootstrap_secret_key",
        "Secret key to seed for the default application on first start, instead of a random one\n(for automation). Env: SESSIOND_BOOTSTRAP_SECRET_KEY.",
        Some("\"sk_test_<64 random hex digits, e.g. from openssl rand -hex 32>\""),
    ),
    (
        "log_format",
        "Log format: \"json\" (one object per line) or \"pretty\" (for humans). Flag: --log-format.",
        None,
    ),
    (
        "log_level",
        "Log filter, e.g. \"info\" or \"sessiond=debug,info\". RUST_LOG overrides it.",
        None,
    ),
    (
        "shutdown_timeout_secs",
        "On SIGTERM/SIGINT, how long in-flight requests may take before the process exits.",
        None,
    ),
    (
        "purge_interval_secs",
        "How often the retention job purges records past their retention period.",
        None,
    ),
    (
        "equisoft_trusted_listen",
        "Extra listener serving only the Equisoft dialect WITHOUT authentication, acting for\n`equisoft_application` (Equisoft's SDKs send no credentials). Bind it only where untrusted\nclients cannot connect (loopback, a private service network). Flag: --equisoft-trusted-listen.",
        Some("\"127.0.0.1:7301\""),
    ),
    (
        "equisoft_application",
        "The application (app_…) the trusted Equisoft listener acts for. Flag: --equisoft-application.",
        Some("\"app_…\""),
    ),
    (
        "public_url",
        "Absolute URL at which browsers reach this server (scheme, host, optional port and path), used\nin verification launch links and deep links. Unset: http://<listen address>. Set it behind a\nproxy or TLS terminator; with https, the pages' browser-binding cookie also works in cross-site\niframes. Flag: --public-url.",
        Some("\"https://verify.example.com\""),
    ),
    (
        "http_max_connections",
        "Most client connections open at once (per listener). At the limit, the connection idle the\nlongest is closed to admit a new one; only when every connection has a request in flight is a new\none refused (counted in http_connections_refused_total). Also capped below the open-file limit,\nwhich sessiond raises to its hard limit at start.",
        None,
    ),
    (
        "user_cache_entries",
        "Most opened (decrypted) user profiles kept in this process's memory, so that reading a\nsession with its user does not decrypt the same profile again. Each entry is used only while the\nstored, sealed profile is byte for byte the one it was opened from, so an answer is never stale.\n0 turns it off: every read decrypts. Never written to disk.",
        None,
    ),
    (
        "session_cache_entries",
        "Most sessions the embedded SQLite store keeps in memory with their users, so that reading a\nsession again, or for the first time after this process created it, is a hash lookup rather\nthan a read transaction (about 0.75 KB each when full).\nExact: the writer drops an entry before committing any change to its session or user, and a\ncommit by another process empties the cache. A full cache evicts at random. 0 turns it off.\nIgnored on PostgreSQL, where another node's writes could not be seen at once.",
        None,
    ),
    (
        "http_header_read_timeout_secs",
        "Longest a request head (request line and headers) may take to arrive, from its first byte;\nslower connections are closed (http_connections_timed_out_total{reason=\"header\"}).",
        None,
    ),
    (
        "http_idle_timeout_secs",
        "Longest a connection may stay open with no request in flight (keep-alive idle time).",
        None,
    ),
    (
        "http_request_timeout_secs",
        "Longest a request may take, body included, before it is answered 408.",
        None,
    ),
    (
        "rate_limit_per_app_per_sec",
        "Requests per second an application may make on each node before it is answered 429 with\nRetry-After (in its dialect's shape); 0 is unlimited. An application's own setting\n(`sessiond apps update APP --rate-limit N`) overrides it. Counted in\nhttp_rate_limited_total{limit=\"application\"}.",
        None,
    ),
    (
        "rate_limit_burst_secs",
        "How far above its rate an application may burst, in seconds of that rate.",
        None,
    ),
    (
        "rate_limit_auth_failures_per_min",
        "Failed authentications (wrong or revoked keys) a client address may make per minute; past\nit, its requests are answered 429 until the allowance refills. 0 is unlimited. Behind a proxy\nevery client shares the proxy's address. Counted in http_rate_limited_total{limit=\"auth_failures\"}.",
        None,
    ),
    (
        "webhook_timeout_secs",
        "Longest one webhook delivery may take (connecting, sending, the receiver's answer) before it\ncounts as failed and is retried. Redirects are never followed; at most 1 KiB of an answer is read.",
        None,
    ),
    (
        "webhook_retry_schedule",
        "Waits before each retry of a failed webhook delivery (s, m or h), comma-separated. When they\nare used up the delivery is marked failed. The default is the Standard Webhooks schedule.",
        None,
    ),
    (
        "webhook_allow_private_networks",
        "Deliver webhooks to loopback, private (RFC 1918, fc00::/7), link-local and cloud metadata\naddresses. Off by default, so an endpoint URL cannot reach into the server's own network\n(checked on every resolved address, after DNS).",
        None,
    ),
    (
        "console",
        "Where the operator console is served: \"main\" (under /console on the main listener), \"off\",\nor an address:port of its own (e.g. to keep it on a private network). Operators are created with\n`sessiond operators create`. Flags: --console-listen ADDR, --no-console.",
        None,
    ),
    (
        "console_idle_timeout_secs",
        "A console session with no activity for this long ends; the operator signs in again.",
        None,
    ),
    (
        "console_session_lifetime_secs",
        "A console session ends this long after sign-in, however active.",
        None,
    ),
];
