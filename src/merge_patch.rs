//! JSON merge patches (RFC 7386) that turn one value into another: a key left out of a merge
//! patch is kept by the API server, so a field that became empty must be sent as `null`.

use serde_json::{Map, Value};

/// The merge patch that turns `from` into `to`: changed keys, and `null` for keys `to` no
/// longer has. Arrays and scalars are replaced whole.
pub fn diff(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => {
            let mut out = Map::new();
            for (k, v) in b {
                match a.get(k) {
                    Some(old) if old == v => {}
                    Some(old) => {
                        out.insert(k.clone(), diff(old, v));
                    }
                    None => {
                        out.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in a.keys().filter(|k| !b.contains_key(*k)) {
                out.insert(k.clone(), Value::Null);
            }
            Value::Object(out)
        }
        _ => to.clone(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn removed_keys_become_null_and_unchanged_ones_are_left_out() {
        let from = json!({"stage": "page", "quietSince": "t1", "reason": "r", "burnRates": {"5m": 1, "1h": 2}, "list": [1, 2]});
        let to = json!({"stage": "", "burnRates": {"5m": 3, "1h": 2}, "list": [1]});
        assert_eq!(
            diff(&from, &to),
            json!({"stage": "", "quietSince": null, "reason": null, "burnRates": {"5m": 3}, "list": [1]})
        );
        assert_eq!(diff(&Value::Null, &to), to);
    }
}
