//! The flags of `inject` and `serve` (`status_reporter_webhook::config`, `::server`): defaults,
//! and values that cannot work refused naming the flag and what is accepted.

use clap::Parser;
use status_reporter_webhook::config::{InjectConfig, InjectorArgs};
use status_reporter_webhook::server::ServeArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: InjectorArgs,
}

#[derive(Parser)]
struct Serve {
    #[command(flatten)]
    serve: ServeArgs,
}

#[test]
fn defaults_match_the_default_config() {
    let cli = Cli::try_parse_from(["x"]).unwrap();
    assert_eq!(cli.args.to_config().unwrap(), InjectConfig::default());
}

#[test]
fn bad_flags_name_the_flag() {
    let cli = Cli::try_parse_from(["x", "--reporter-memory-limit", "64MB"]).unwrap();
    let err = cli.args.to_config().unwrap_err().to_string();
    assert!(err.contains("--reporter-memory-limit=\"64MB\""), "{err}");
    assert!(err.contains("Kubernetes quantity"), "{err}");

    let cli = Cli::try_parse_from(["x", "--reporter-image", " "]).unwrap();
    assert!(
        cli.args
            .to_config()
            .unwrap_err()
            .to_string()
            .contains("--reporter-image")
    );
}

#[test]
fn excluded_namespaces_split_on_commas() {
    let cli = Cli::try_parse_from(["x", "--excluded-namespaces", "kube-system, webhook,"]).unwrap();
    assert_eq!(
        cli.args.to_config().unwrap().excluded_namespaces,
        vec!["kube-system".to_owned(), "webhook".to_owned()]
    );
}

/// Why `serve` would refuse these flags, if it would.
fn refused(flags: &[&str]) -> Option<String> {
    match Serve::try_parse_from(std::iter::once("serve").chain(flags.iter().copied())) {
        Ok(cli) => cli.serve.body_limits().err().map(|e| e.to_string()),
        Err(e) => Some(e.to_string()),
    }
}

#[test]
fn limits_that_cannot_work_are_refused_naming_the_flag_and_what_is_accepted() {
    assert_eq!(refused(&[]), None, "the defaults work");
    for (flags, expected) in [
        (
            &["--max-connections", "0"][..],
            "'0' for '--max-connections",
        ),
        (&["--max-body-bytes", "0"], "'0' for '--max-body-bytes"),
        (
            &["--header-read-timeout-seconds", "0"],
            "--header-read-timeout-seconds",
        ),
        (
            &["--request-timeout-seconds", "0"],
            "--request-timeout-seconds",
        ),
        // Three quarters of 4 MiB cannot hold a 3 MiB + 64 KiB body.
        (
            &["--max-body-memory-bytes", "4194304"],
            "--max-body-memory-bytes=\"4194304\"; accepted: 4281686 to 4294967295 bytes",
        ),
        (
            &[
                "--max-body-bytes",
                "1000",
                "--max-body-memory-bytes",
                "200000",
            ],
            "accepted: 262144 to",
        ),
    ] {
        let error = refused(flags).unwrap_or_else(|| panic!("{flags:?} was accepted"));
        assert!(error.contains(expected), "{flags:?}: {error}");
    }
    assert_eq!(
        refused(&[
            "--max-body-bytes",
            "1000",
            "--max-body-memory-bytes",
            "262144"
        ]),
        None
    );
}
