//! The patch's building blocks (`status_reporter_webhook::patch`).

use status_reporter_webhook::patch::{Add, Fixed, Item, pointer};

#[test]
fn pointers_escape_tilde_and_slash() {
    assert_eq!(
        pointer(&["spec", "a/b~c", "0"]),
        "/spec/a~1b~0c/0".to_owned()
    );
    assert_eq!(pointer(&[]), "");
}

#[test]
fn fixed_values_are_written_with_sorted_keys() {
    let fixed = Fixed::new(&serde_json::json!({"b": 1, "a": {"d": 2, "c": 3}}));
    assert_eq!(fixed.json(), r#"{"a":{"c":3,"d":2},"b":1}"#);
    let add = Add::new(pointer(&["x"]), Item::Fixed(&fixed));
    assert_eq!(
        serde_json::to_string(&add).unwrap(),
        r#"{"op":"add","path":"/x","value":{"a":{"c":3,"d":2},"b":1}}"#
    );
}
