//! The command line: config example/check, bad configuration, apps and keys.

use sessiond_store_conformance::Kind;

use crate::harness::Env;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn config_example_is_commented_and_passes_check() {
    let env = Env::sqlite();
    let example = env.ok(&["config", "example"]);
    for key in [
        "listen",
        "data_dir",
        "database_url",
        "master_key",
        "log_format",
        "shutdown_timeout_secs",
    ] {
        assert!(example.contains(key), "example documents {key}");
    }
    assert!(
        example.lines().filter(|l| l.starts_with('#')).count() > 15,
        "example is commented"
    );
    let path = env.dir.path().join("sessiond.toml");
    std::fs::write(&path, &example).unwrap_or_else(|e| panic!("{e}"));
    let out = env.run(&["config", "check", path.to_str().unwrap_or_default()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("configuration is valid"));
}

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_setting() {
    let env = Env::sqlite();
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec!["config", "check"],
            vec![("SESSIOND_LISTEN", "not-an-address")],
            "`listen`",
        ),
        (
            vec!["config", "check"],
            vec![("SESSIOND_SHUTDOWN_TIMEOUT_SECS", "soon")],
            "shutdown_timeout_secs",
        ),
        (
            vec!["config", "check"],
            vec![("SESSIOND_DATABASE_URL", "mysql://x")],
            "`database_url`",
        ),
        (
            vec!["config", "check"],
            vec![("SESSIOND_MASTER_KEY", "c2hvcnQ=")],
            "`master_key`",
        ),
        (
            vec!["config", "check"],
            vec![("SESSIOND_BOOTSTRAP_SECRET_KEY", "weak")],
            "`bootstrap_secret_key`",
        ),
        (
            vec!["config", "check"],
            vec![(
                "SESSIOND_BOOTSTRAP_SECRET_KEY",
                "sk_test_aaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            )],
            "is mostly runs or sequences",
        ),
        (vec!["serve", "--listen", "nowhere"], vec![], "`listen`"),
        (
            vec!["apps", "list"],
            vec![("SESSIOND_LOG_LEVEL", "[[[")],
            "`log_level`",
        ),
    ];
    for (args, vars, needle) in cases {
        let out = env.run_with(&args, &vars);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {vars:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
        assert!(err.contains(needle), "{needle} named in: {err}");
    }
    let path = env.dir.path().join("bad.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:1\"\nlisen = 3\n")
        .unwrap_or_else(|e| panic!("{e}"));
    let out = env.run(&["config", "check", path.to_str().unwrap_or_default()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("lisen"),
        "unknown file key is named: {}",
        stderr(&out)
    );
    let out = env.run(&["--config", "/nonexistent/sessiond.toml", "config", "check"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}

/// Run in the wrong folder, an administrative command must not create an empty installation
/// beside the real one (it looks exactly like data loss); only `serve`, `apps create` and
/// `migrate` create one.
#[test]
fn administrative_commands_refuse_to_create_a_data_directory() {
    let env = Env::sqlite();
    for args in [
        vec!["apps", "list"],
        vec!["apps", "show", "app_x"],
        vec!["keys", "list", "app_x"],
        vec!["keys", "rotate-master"],
        vec!["users", "impersonations", "app_x"],
    ] {
        let out = env.run(&args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains(&env.data_dir().display().to_string()) && err.contains("sessiond serve"),
            "{args:?} names the directory it looked in and how to create one: {err}"
        );
        assert!(!env.data_dir().exists(), "{args:?} created nothing");
    }
    env.ok(&["apps", "create", "first", "--json"]);
    assert!(env.data_dir().join("sessiond.db").exists());
    assert!(env.ok(&["apps", "list"]).contains("first"));
}

#[test]
fn layering_flags_beat_env_beat_file() {
    let env = Env::sqlite();
    let path = env.dir.path().join("layer.toml");
    std::fs::write(&path, "listen = \"127.0.0.1:1111\"\n").unwrap_or_else(|e| panic!("{e}"));
    let p = path.to_str().unwrap_or_default();
    let out = env.run(&["--config", p, "config", "check"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:1111"));
    let out = env.run_with(
        &["--config", p, "config", "check"],
        &[("SESSIOND_LISTEN", "127.0.0.1:2222")],
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("127.0.0.1:2222"),
        "env beats file"
    );
}

#[test]
fn unknown_sessiond_variables_are_warned_about() {
    let env = Env::sqlite();
    let out = env.run_with(&["config", "check"], &[("SESSIOND_LISTN", "x")]);
    assert!(out.status.success());
    assert!(stderr(&out).contains("SESSIOND_LISTN"), "{}", stderr(&out));
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    let env = Env::sqlite();
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["apps", "create", "--help"],
        vec!["apps", "update", "--help"],
        vec!["apps", "delete", "--help"],
        vec!["keys", "create", "--help"],
        vec!["keys", "revoke", "--help"],
        vec!["keys", "rotate-master", "--help"],
        vec!["config", "example", "--help"],
        vec!["config", "check", "--help"],
        vec!["healthcheck", "--help"],
    ] {
        let out = env.ok(&args);
        assert!(
            out.contains("Example"),
            "{args:?} --help shows an example:\n{out}"
        );
    }
}

async fn apps_and_keys(kind: Kind) {
    let Some(env) = Env::of(kind).await else {
        return;
    };
    let (id, secret, pk) = env.create_app("Acme");
    assert!(id.starts_with("app_") && secret.starts_with("sk_test_") && pk.starts_with("pk_test_"));
    let (live_id, live_secret, live_pk) = {
        let v: serde_json::Value =
            serde_json::from_str(&env.ok(&["apps", "create", "Acme live", "--live", "--json"]))
                .unwrap_or_default();
        (
            v["id"].as_str().unwrap_or_default().to_owned(),
            v["secret_key"].as_str().unwrap_or_default().to_owned(),
            v["publishable_key"].as_str().unwrap_or_default().to_owned(),
        )
    };
    assert!(live_secret.starts_with("sk_live_") && live_pk.starts_with("pk_live_"));

    let list: serde_json::Value =
        serde_json::from_str(&env.ok(&["apps", "list", "--json"])).unwrap_or_default();
    let ids: Vec<&str> = list
        .as_array()
        .map(|a| a.iter().filter_map(|x| x["id"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(ids, vec![id.as_str(), live_id.as_str()]);
    assert!(
        !env.ok(&["apps", "list", "--json"]).contains(&secret[8..]),
        "secrets never listed"
    );

    let shown: serde_json::Value =
        serde_json::from_str(&env.ok(&["apps", "show", &id, "--json"])).unwrap_or_default();
    assert_eq!(shown["settings"]["session_max_lifetime_secs"], 604_800);
    assert_eq!(shown["settings"]["session_token_lifetime_secs"], 60);
    assert_eq!(
        shown["settings"]["inactivity_timeout_secs"],
        serde_json::Value::Null
    );

    let updated: serde_json::Value = serde_json::from_str(&env.ok(&[
        "apps",
        "update",
        &id,
        "--session-max-lifetime",
        "14d",
        "--inactivity-timeout",
        "2h",
        "--session-token-lifetime",
        "90s",
        "--frontend-url",
        "https://clerk.acme.test",
        "--allowed-redirect-origin",
        "https://app.acme.test",
        "--json",
    ]))
    .unwrap_or_default();
    assert_eq!(updated["settings"]["session_max_lifetime_secs"], 1_209_600);
    assert_eq!(updated["settings"]["inactivity_timeout_secs"], 7200);
    assert_eq!(updated["settings"]["session_token_lifetime_secs"], 90);
    assert_eq!(
        updated["settings"]["allowed_redirect_origins"][0],
        "https://app.acme.test"
    );
    // base64("clerk.acme.test$")
    assert_eq!(
        updated["publishable_key"],
        "pk_test_Y2xlcmsuYWNtZS50ZXN0JA=="
    );
    assert_eq!(updated["version"], 2);

    let bad = env.run(&["apps", "update", &id, "--session-token-lifetime", "5s"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("session_token_lifetime"),
        "{}",
        stderr(&bad)
    );
    let bad = env.run(&[
        "apps",
        "update",
        &id,
        "--allowed-redirect-origin",
        "javascript:alert(1)",
    ]);
    assert_eq!(bad.status.code(), Some(1));
    let unchanged: serde_json::Value =
        serde_json::from_str(&env.ok(&["apps", "show", &id, "--json"])).unwrap_or_default();
    assert_eq!(unchanged["version"], 2, "a refused update changes nothing");

    let created: serde_json::Value =
        serde_json::from_str(&env.ok(&["keys", "create", &id, "--json"])).unwrap_or_default();
    let key_id = created["id"].as_str().unwrap_or_default().to_owned();
    assert!(key_id.starts_with("key_"));
    let keys: serde_json::Value =
        serde_json::from_str(&env.ok(&["keys", "list", &id, "--json"])).unwrap_or_default();
    assert_eq!(keys.as_array().map(Vec::len), Some(2));
    assert!(
        env.ok(&["keys", "revoke", &id, &key_id])
            .contains("revoked")
    );
    let wrong_app = env.run(&["keys", "revoke", &live_id, &key_id]);
    assert_eq!(
        wrong_app.status.code(),
        Some(1),
        "a key is revoked only through its own application"
    );
    let keys: serde_json::Value =
        serde_json::from_str(&env.ok(&["keys", "list", &id, "--json"])).unwrap_or_default();
    assert!(keys[1]["revoked_at"].is_i64());

    let refused = env.run(&["apps", "delete", &live_id]);
    assert_eq!(refused.status.code(), Some(1), "delete needs --yes");
    env.ok(&["apps", "delete", &live_id, "--yes"]);
    assert_eq!(env.run(&["apps", "show", &live_id]).status.code(), Some(1));
    assert_eq!(
        env.run(&["apps", "show", "not-an-id"]).status.code(),
        Some(1)
    );
}
crate::both_backends!(apps_and_keys_work, super::apps_and_keys);
