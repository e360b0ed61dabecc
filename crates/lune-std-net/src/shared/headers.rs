//! Header and query tables: `{ [string]: string | { string } }` in both
//! directions. A name seen once is a string; seen several times, an array.

use http::{HeaderName, HeaderValue};
use mlua::prelude::*;

/// A header or query value: a string, or a number written as Luau prints it
/// (Lune accepts `{ ["X-Count"] = 5 }`).
fn value_bytes(value: &LuaValue) -> Option<Vec<u8>> {
    match value {
        LuaValue::String(s) => Some(s.as_bytes().to_vec()),
        LuaValue::Integer(n) => Some(n.to_string().into_bytes()),
        LuaValue::Number(n) => Some(lune_utils::fmt::format_number(*n).into_bytes()),
        _ => None,
    }
}

/// Reads a `{ [string]: string | { string } }` table into ordered pairs, one
/// per value. `what` names the table in error messages (`headers`, `query`).
pub(crate) fn read_multi_map(
    table: Option<LuaTable>,
    what: &str,
) -> LuaResult<Vec<(LuaString, Vec<u8>)>> {
    let mut pairs = Vec::new();
    let Some(table) = table else {
        return Ok(pairs);
    };
    for entry in table.pairs::<LuaValue, LuaValue>() {
        let (key, value) = entry?;
        let LuaValue::String(name) = key else {
            return Err(LuaError::runtime(format!(
                "Invalid {what} name - expected a string, got {}",
                lune_utils::type_name(&key)
            )));
        };
        let bad_value = |got: &str| {
            LuaError::runtime(format!(
                "Invalid {what} value for '{}' - expected a string, a number or an array of them, got {got}",
                name.to_string_lossy()
            ))
        };
        match value {
            LuaValue::Table(values) => {
                for value in values.sequence_values::<LuaValue>() {
                    let value = value?;
                    let bytes = value_bytes(&value)
                        .ok_or_else(|| bad_value(lune_utils::type_name(&value)))?;
                    pairs.push((name.clone(), bytes));
                }
            }
            other => {
                let bytes =
                    value_bytes(&other).ok_or_else(|| bad_value(lune_utils::type_name(&other)))?;
                pairs.push((name, bytes));
            }
        }
    }
    Ok(pairs)
}

/// Reads a headers table into validated header pairs.
pub(crate) fn read_headers(table: Option<LuaTable>) -> LuaResult<Vec<(HeaderName, HeaderValue)>> {
    read_multi_map(table, "header")?
        .into_iter()
        .map(|(name, value)| {
            let header_name = HeaderName::from_bytes(&name.as_bytes()).map_err(|_| {
                LuaError::runtime(format!("Invalid header name '{}'", name.to_string_lossy()))
            })?;
            let header_value = HeaderValue::from_bytes(&value).map_err(|_| {
                LuaError::runtime(format!(
                    "Invalid header value for '{}' - it contains a newline or control character",
                    name.to_string_lossy()
                ))
            })?;
            Ok((header_name, header_value))
        })
        .collect()
}

#[cfg(test)]
mod proptests {
    use std::collections::BTreeMap;

    use http::HeaderMap;

    use super::*;
    use proptest::prelude::*;

    /// A key of a script's table.
    #[derive(Debug, Clone)]
    enum Key {
        Str(Vec<u8>),
        Int(i32),
        Bool(bool),
    }

    /// A value of a script's table.
    #[derive(Debug, Clone)]
    enum Value {
        Str(Vec<u8>),
        Int(i32),
        Num(f64),
        Bool(bool),
        List(Vec<Value>),
    }

    impl Value {
        /// The bytes `read_multi_map` should produce, or `None` if it must refuse.
        fn expected(&self) -> Option<Vec<Vec<u8>>> {
            match self {
                Self::List(values) => values
                    .iter()
                    .map(|v| match v {
                        Self::List(_) => None,
                        other => other.expected().map(|mut one| one.remove(0)),
                    })
                    .collect(),
                Self::Str(s) => Some(vec![s.clone()]),
                Self::Int(n) => Some(vec![n.to_string().into_bytes()]),
                Self::Num(n) => Some(vec![lune_utils::fmt::format_number(*n).into_bytes()]),
                Self::Bool(_) => None,
            }
        }

        fn into_lua(self, lua: &Lua) -> LuaValue {
            match self {
                Self::Str(s) => LuaValue::String(lua.create_string(s).expect("a string")),
                Self::Int(n) => LuaValue::Integer(n.into()),
                Self::Num(n) => LuaValue::Number(n),
                Self::Bool(b) => LuaValue::Boolean(b),
                Self::List(values) => {
                    let table = lua.create_table().expect("a table");
                    for value in values {
                        table.raw_push(value.into_lua(lua)).expect("push");
                    }
                    LuaValue::Table(table)
                }
            }
        }
    }

    fn name_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,12}".prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 0..12),
        ]
    }

    fn value_bytes() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            3 => "[ -~\t]{0,16}".prop_map(String::into_bytes),
            1 => proptest::collection::vec(any::<u8>(), 0..16),
        ]
    }

    fn scalar() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => value_bytes().prop_map(Value::Str),
            1 => any::<i32>().prop_map(Value::Int),
            1 => any::<f64>().prop_map(Value::Num),
            1 => any::<bool>().prop_map(Value::Bool),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => scalar(),
            1 => proptest::collection::vec(scalar(), 0..4).prop_map(Value::List),
            1 => proptest::collection::vec(scalar(), 0..2)
                .prop_map(|inner| Value::List(vec![Value::List(inner)])),
        ]
    }

    fn key() -> impl Strategy<Value = Key> {
        prop_oneof![
            8 => name_bytes().prop_map(Key::Str),
            1 => any::<i32>().prop_map(Key::Int),
            1 => any::<bool>().prop_map(Key::Bool),
        ]
    }

    /// Builds the table and what its entries should read as: name → values,
    /// or `None` for an entry that must be refused; and whether a key that is
    /// not a string must make the whole table refused.
    #[allow(clippy::type_complexity)]
    fn build(
        lua: &Lua,
        entries: Vec<(Key, Value)>,
    ) -> (LuaTable, BTreeMap<Vec<u8>, Option<Vec<Vec<u8>>>>, bool) {
        let table = lua.create_table().expect("a table");
        let mut expected = BTreeMap::new();
        let mut bad_key = false;
        for (key, value) in entries {
            match key {
                Key::Str(name) => {
                    expected.insert(name.clone(), value.expected());
                    let name = lua.create_string(name).expect("a string");
                    table.raw_set(name, value.into_lua(lua)).expect("set");
                }
                Key::Int(n) => {
                    bad_key = true;
                    table.raw_set(n, value.into_lua(lua)).expect("set");
                }
                Key::Bool(b) => {
                    bad_key = true;
                    table.raw_set(b, value.into_lua(lua)).expect("set");
                }
            }
        }
        (table, expected, bad_key)
    }

    fn group(pairs: &[(LuaString, Vec<u8>)]) -> BTreeMap<Vec<u8>, Vec<Vec<u8>>> {
        let mut grouped: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
        for (name, value) in pairs {
            grouped
                .entry(name.as_bytes().to_vec())
                .or_default()
                .push(value.clone());
        }
        grouped
    }

    /// RFC 9110 token characters, the only ones a header name may hold.
    fn is_tchar(b: u8) -> bool {
        b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
    }

    /// Visible ASCII, space, tab and obs-text: what a header value may hold.
    fn is_value_byte(b: u8) -> bool {
        b == b'\t' || (b >= 0x20 && b != 0x7f)
    }

    proptest! {
        #[test]
        fn read_multi_map_takes_strings_and_numbers_and_refuses_the_rest(
            entries in proptest::collection::vec((key(), value()), 0..6),
        ) {
            let lua = Lua::new();
            let (table, expected, bad_key) = build(&lua, entries);
            let must_fail = bad_key || expected.values().any(Option::is_none);
            match read_multi_map(Some(table), "query") {
                Ok(pairs) => {
                    prop_assert!(!must_fail, "accepted {:?}", expected);
                    let grouped = group(&pairs);
                    let wanted: BTreeMap<_, _> = expected
                        .into_iter()
                        .filter_map(|(k, v)| v.filter(|v| !v.is_empty()).map(|v| (k, v)))
                        .collect();
                    prop_assert_eq!(grouped, wanted);
                }
                Err(LuaError::RuntimeError(message)) => {
                    prop_assert!(must_fail, "refused a good table: {}", message);
                    prop_assert!(
                        message.starts_with("Invalid query name - expected a string")
                            || message.starts_with("Invalid query value for '"),
                        "{}", message
                    );
                }
                Err(other) => prop_assert!(false, "not a clean error: {:?}", other),
            }
        }

        #[test]
        fn read_headers_validates_names_and_values(
            entries in proptest::collection::vec(
                (name_bytes(), prop_oneof![
                    value_bytes().prop_map(Value::Str),
                    proptest::collection::vec(value_bytes().prop_map(Value::Str), 0..3)
                        .prop_map(Value::List),
                ]),
                0..6,
            ),
        ) {
            let lua = Lua::new();
            let entries = entries.into_iter().map(|(k, v)| (Key::Str(k), v)).collect();
            let (table, expected, _) = build(&lua, entries);
            let expected: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = expected
                .into_iter()
                .map(|(k, v)| (k, v.expect("strings only")))
                .filter(|(_, v)| !v.is_empty())
                .collect();
            let valid = expected.iter().all(|(name, values)| {
                !name.is_empty()
                    && name.iter().copied().all(is_tchar)
                    && values.iter().all(|v| v.iter().copied().all(is_value_byte))
            });
            match read_headers(Some(table)) {
                Ok(headers) => {
                    prop_assert!(valid, "accepted {:?}", expected);
                    let mut grouped: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
                    for (name, value) in headers {
                        grouped
                            .entry(name.as_str().as_bytes().to_vec())
                            .or_default()
                            .push(value.as_bytes().to_vec());
                    }
                    // Names come back lower-cased; two spellings of one
                    // name are two entries of the table, so merge them.
                    let mut wanted: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
                    for (name, values) in expected {
                        wanted.entry(name.to_ascii_lowercase()).or_default().extend(values);
                    }
                    for values in grouped.values_mut().chain(wanted.values_mut()) {
                        values.sort();
                    }
                    prop_assert_eq!(grouped, wanted);
                }
                Err(LuaError::RuntimeError(message)) => {
                    prop_assert!(!valid, "refused valid headers: {}", message);
                    prop_assert!(message.starts_with("Invalid header "), "{}", message);
                }
                Err(other) => prop_assert!(false, "not a clean error: {:?}", other),
            }
        }

        #[test]
        fn write_then_read_keeps_order_and_multiplicity(
            pairs in proptest::collection::vec(
                (prop_oneof![
                    3 => proptest::sample::select(vec![b"a".to_vec(), b"B".to_vec(), b"x-y".to_vec()]),
                    1 => proptest::collection::vec(any::<u8>(), 0..6),
                ], proptest::collection::vec(any::<u8>(), 0..8)),
                0..12,
            ),
        ) {
            let lua = Lua::new();
            let table = crate::shared::stack::multi_map_table(
                &lua,
                pairs.iter().map(|(k, v)| (k.as_slice(), v.as_slice())),
            )
            .expect("writes");
            let mut wanted: BTreeMap<Vec<u8>, Vec<Vec<u8>>> = BTreeMap::new();
            for (k, v) in &pairs {
                wanted.entry(k.clone()).or_default().push(v.clone());
            }
            for (name, values) in &wanted {
                let shape = table.raw_get::<LuaValue>(lua.create_string(name).expect("a string"))
                    .expect("gets");
                if values.len() == 1 {
                    prop_assert!(matches!(shape, LuaValue::String(_)), "one value is a string");
                } else {
                    prop_assert!(matches!(shape, LuaValue::Table(_)), "repeats are an array");
                }
            }
            let read = read_multi_map(Some(table), "header").expect("reads what it wrote");
            prop_assert_eq!(read.len(), pairs.len());
            prop_assert_eq!(group(&read), wanted);
        }

        #[test]
        fn write_headers_then_read_headers_roundtrips(
            pairs in proptest::collection::vec(
                (proptest::sample::select(vec!["accept", "set-cookie", "x-a", "X-B"]),
                 "[ -~]{0,12}"),
                0..10,
            ),
        ) {
            let lua = Lua::new();
            let mut map = HeaderMap::new();
            for (name, value) in &pairs {
                map.append(
                    HeaderName::from_bytes(name.as_bytes()).expect("a name"),
                    HeaderValue::from_str(value).expect("a value"),
                );
            }
            let table = crate::shared::stack::headers_table(&lua, &map).expect("writes");
            let read = read_headers(Some(table)).expect("reads");
            let mut again = HeaderMap::new();
            for (name, value) in read {
                again.append(name, value);
            }
            for name in map.keys() {
                let before: Vec<_> = map.get_all(name).iter().collect();
                let after: Vec<_> = again.get_all(name).iter().collect();
                prop_assert_eq!(before, after, "values of {} in order", name);
            }
            prop_assert_eq!(map.len(), again.len());
        }
    }
}
