//! File descriptors for `--max-connections` (`status_reporter_webhook::files`).

use status_reporter_webhook::files::raised_soft_limit;

#[test]
fn the_soft_limit_is_raised_within_the_hard_one_and_a_hard_limit_too_low_is_an_error() {
    assert_eq!(
        raised_soft_limit(256, Some(1024), Some(4096)).unwrap(),
        None
    );
    assert_eq!(raised_soft_limit(256, None, None).unwrap(), None);
    assert_eq!(
        raised_soft_limit(256, Some(100), Some(4096)).unwrap(),
        Some(320)
    );
    assert_eq!(raised_soft_limit(256, Some(100), None).unwrap(), Some(320));
    let err = raised_soft_limit(256, Some(100), Some(200))
        .unwrap_err()
        .to_string();
    assert!(err.contains("--max-connections=\"256\""), "{err}");
    assert!(err.contains("at most 136"), "{err}");
    assert!(
        err.contains("200 file descriptors (RLIMIT_NOFILE hard limit)"),
        "{err}"
    );
}
