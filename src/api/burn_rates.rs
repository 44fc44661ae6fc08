//! `status.budget.burnRates`: a burn rate per alert window, keyed by the window as written
//! (`1h`). The schema and the JSON are those of a map of numbers; in memory it is one exact
//! list in key order. Every cached SLO carries one, and a `BTreeMap` of seven windows took a
//! tree node of 368 bytes and eight strings where this takes 168 bytes and seven.

use std::borrow::Cow;

use schemars::JsonSchema;
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Burn rates by window, in the order a `BTreeMap` keeps them (by key); a key given twice keeps
/// its last value, as a map would.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct BurnRates(Box<[(Box<str>, f64)]>);

impl BurnRates {
    pub fn get(&self, window: &str) -> Option<&f64> {
        self.0
            .binary_search_by(|(k, _)| (**k).cmp(window))
            .ok()
            .map(|i| &self.0[i].1)
    }

    pub fn contains_key(&self, window: &str) -> bool {
        self.get(window).is_some()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Windows and burn rates, by window.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(k, v)| (&**k, *v))
    }
}

impl<K: Into<Box<str>>> FromIterator<(K, f64)> for BurnRates {
    fn from_iter<I: IntoIterator<Item = (K, f64)>>(iter: I) -> Self {
        let mut list: Vec<(Box<str>, f64)> = iter.into_iter().map(|(k, v)| (k.into(), v)).collect();
        // Stable, so that of equal keys the last comes last, and is the one kept.
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let mut kept: Vec<(Box<str>, f64)> = Vec::with_capacity(list.len());
        for (k, v) in list {
            match kept.last_mut() {
                Some(last) if last.0 == k => last.1 = v,
                _ => kept.push((k, v)),
            }
        }
        Self(kept.into_boxed_slice())
    }
}

impl<K: Into<Box<str>>, const N: usize> From<[(K, f64); N]> for BurnRates {
    fn from(entries: [(K, f64); N]) -> Self {
        entries.into_iter().collect()
    }
}

impl std::ops::Index<&str> for BurnRates {
    type Output = f64;

    fn index(&self, window: &str) -> &f64 {
        self.get(window)
            .unwrap_or_else(|| panic!("no burn rate for window {window:?}"))
    }
}

impl Serialize for BurnRates {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, &v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for BurnRates {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Entries;

        impl<'de> Visitor<'de> for Entries {
            type Value = BurnRates;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of windows to burn rates")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<BurnRates, A::Error> {
                // Bounded by what the API server accepts; the hint is not trusted beyond that.
                let mut list = Vec::with_capacity(map.size_hint().unwrap_or(0).min(16));
                while let Some((k, v)) = map.next_entry::<String, f64>()? {
                    list.push((k, v));
                }
                Ok(list.into_iter().collect())
            }
        }

        deserializer.deserialize_map(Entries)
    }
}

impl JsonSchema for BurnRates {
    fn schema_name() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, f64> as JsonSchema>::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        <std::collections::BTreeMap<String, f64> as JsonSchema>::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        <std::collections::BTreeMap<String, f64> as JsonSchema>::json_schema(generator)
    }

    fn inline_schema() -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_as_the_map_it_replaces() {
        let text = json!({"5m": 28.8, "1h": 2.5, "30d": 0.1269, "1d": 1.0});
        let rates: BurnRates = serde_json::from_value(text.clone()).unwrap();
        let map: BTreeMap<String, f64> = serde_json::from_value(text).unwrap();
        assert_eq!(
            serde_json::to_string(&rates).unwrap(),
            serde_json::to_string(&map).unwrap()
        );
        assert_eq!(
            rates.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            ["1d", "1h", "30d", "5m"]
        );
        assert_eq!(
            (rates.get("1h"), rates.get("2h"), rates["30d"]),
            (Some(&2.5), None, 0.1269)
        );
        assert!(rates.contains_key("5m") && !rates.contains_key("5"));
        assert_eq!(rates.len(), 4);
        assert_eq!(
            rates,
            [("5m", 28.8), ("30d", 0.1269), ("1d", 1.0), ("1h", 2.5)]
                .into_iter()
                .collect(),
            "equal whatever order it was built in"
        );
    }

    #[test]
    fn a_key_given_twice_keeps_its_last_value_as_a_map_does() {
        let rates: BurnRates = serde_json::from_str(r#"{"1h": 1, "5m": 2, "1h": 3}"#).unwrap();
        let map: BTreeMap<String, f64> = serde_json::from_str(r#"{"1h": 1, "5m": 2, "1h": 3}"#).unwrap();
        assert_eq!(
            serde_json::to_value(&rates).unwrap(),
            serde_json::to_value(&map).unwrap()
        );
        assert_eq!(rates.len(), 2);
        let built: BurnRates = [("1h", 1.0), ("5m", 2.0), ("1h", 3.0)].into_iter().collect();
        assert_eq!(built, rates);
    }

    #[test]
    fn anything_but_a_map_of_numbers_is_refused() {
        for bad in [r#"[1, 2]"#, r#"{"1h": "fast"}"#, r#""1h""#] {
            assert!(serde_json::from_str::<BurnRates>(bad).is_err(), "{bad}");
        }
        assert!(serde_json::from_str::<BurnRates>("{}").unwrap().is_empty());
    }

    #[test]
    fn its_schema_is_the_maps() {
        assert_eq!(
            schemars::schema_for!(BurnRates),
            schemars::schema_for!(BTreeMap<String, f64>)
        );
    }
}
