//! The `status-reporter.hyperfleet.io/` annotations on a Job or its pod template: the opt-in
//! ([`INJECT`]), the record of an injection ([`STATUS`]) and the per-Job overrides, one per
//! [`Setting`](crate::Setting) that has one (see [`Setting::annotation`](crate::Setting::annotation)).

/// The prefix as a literal, so keys can be joined to it with `concat!` at compile time.
macro_rules! prefix {
    () => {
        "status-reporter.hyperfleet.io/"
    };
}
pub(crate) use prefix;

/// Prefix of every annotation the injector reads or writes.
pub const PREFIX: &str = prefix!();
/// `"true"` opts a Job in, `"false"` opts it out.
pub const INJECT: &str = concat!(prefix!(), "inject");
/// Written by the injector on the pod template once the reporter is added.
pub const STATUS: &str = concat!(prefix!(), "status");
/// Value of [`STATUS`] once the reporter has been added.
pub const STATUS_INJECTED: &str = "injected";
/// Namespace label that opts every Job of the namespace in (value [`NAMESPACE_OPT_IN_ENABLED`]);
/// the same key as [`INJECT`]. The webhook never reads it: the webhook configuration selects
/// on it and calls the namespace path, so the webhook needs no API permission.
pub const NAMESPACE_OPT_IN_LABEL: &str = INJECT;
/// Value of [`NAMESPACE_OPT_IN_LABEL`] that opts a namespace in.
pub const NAMESPACE_OPT_IN_ENABLED: &str = "enabled";

/// Every annotation key under [`PREFIX`] the injector understands: [`INJECT`], the settings'
/// overrides in [`Setting::ALL`](crate::Setting::ALL) order, then [`STATUS`].
pub fn known() -> Vec<&'static str> {
    std::iter::once(INJECT)
        .chain(crate::Setting::ALL.iter().filter_map(|s| s.annotation()))
        .chain(std::iter::once(STATUS))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_in_their_stable_order() {
        // Fuzz inputs and regression files address the keys by position: keep the order.
        assert_eq!(
            known(),
            [
                INJECT,
                "status-reporter.hyperfleet.io/adapter-container",
                "status-reporter.hyperfleet.io/condition-type",
                "status-reporter.hyperfleet.io/results-path",
                "status-reporter.hyperfleet.io/max-wait-seconds",
                "status-reporter.hyperfleet.io/poll-interval-seconds",
                "status-reporter.hyperfleet.io/log-level",
                "status-reporter.hyperfleet.io/sidecar-mode",
                STATUS,
            ]
        );
        assert!(known().iter().all(|k| k.starts_with(PREFIX)));
    }
}
