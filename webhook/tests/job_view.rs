//! The Job as the injector reads it (`status_reporter_webhook::job_view`): borrowed strings,
//! volumes read by their source, annotation maps as k8s-openapi reads them.

use std::borrow::Cow;

use status_reporter_webhook::job_view::{MetaView, NamedView, VolumeView};

#[test]
fn a_volume_reads_its_name_and_its_first_source() {
    for (json, name, empty_dir, source) in [
        (
            r#"{"name":"v","hostPath":{"path":"/"},"emptyDir":null}"#,
            "v",
            false,
            Some("hostPath"),
        ),
        (r#"{"name":"v","emptyDir":{}}"#, "v", true, Some("emptyDir")),
        (
            r#"{"secret":{"secretName":"s"},"configMap":{"name":"c"}}"#,
            "",
            false,
            Some("configMap"),
        ),
        (r#"{"name":"v"}"#, "v", false, None),
    ] {
        let view: VolumeView = serde_json::from_str(json).unwrap();
        assert_eq!(&*view.name, name, "{json}");
        assert_eq!(view.empty_dir, empty_dir, "{json}");
        assert_eq!(view.source.as_deref(), source, "{json}");
    }
}

#[test]
fn strings_are_borrowed_unless_escaped() {
    let view: NamedView = serde_json::from_str(r#"{"name":"adapter"}"#).unwrap();
    assert!(matches!(view.name.0, Cow::Borrowed("adapter")));
    let view: NamedView = serde_json::from_str(r#"{"name":"a\u0064apter"}"#).unwrap();
    assert_eq!(&*view.name, "adapter");
}

#[test]
fn repeated_annotation_keys_keep_the_last_value() {
    let meta: MetaView = serde_json::from_str(
        r#"{"annotations":{"status-reporter.hyperfleet.io/inject":"false","other":"x","status-reporter.hyperfleet.io/inject":"true"}}"#,
    )
    .unwrap();
    let a = meta.annotations.unwrap();
    assert_eq!(a.get("status-reporter.hyperfleet.io/inject"), Some("true"));
    assert_eq!(a.iter().count(), 2, "only keys under the prefix are kept");
    assert!(serde_json::from_str::<MetaView>(r#"{"annotations":{"a":1}}"#).is_err());
}
