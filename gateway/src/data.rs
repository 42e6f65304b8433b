//! The data a run of a plan puts together, made of references into the subgraphs' replies
//! instead of copies of them.
//!
//! Replies are parsed once and may be shared: by requests that asked a subgraph the same thing
//! at the same time, and by every object that sent the same representation. The data keeps
//! them as they came ([`Data::Reply`]) and only takes apart the objects and lists that answers
//! of more than one fetch meet in ([`Data::Object`], [`Data::List`]): one level at a time, each
//! part still a reference. Merging an entity answer into many objects is then a few pointers
//! per object, and nothing is copied or freed value by value.

use apollo_compiler::response::{JsonMap, JsonValue};

use crate::response::write_json;

/// A value of the data.
#[derive(Debug)]
pub enum Data<'r> {
    /// A value as a subgraph replied it.
    Reply(&'r JsonValue),
    /// An object that more than one reply added fields to: its fields in the order they came.
    Object(Vec<(&'r str, Data<'r>)>),
    /// A list whose items more than one reply added to.
    List(Vec<Data<'r>>),
}

impl<'r> Data<'r> {
    pub fn empty_object() -> Self {
        Self::Object(Vec::new())
    }

    pub fn value(&self) -> Value<'_> {
        match self {
            Self::Reply(json) => Value::Json(json),
            Self::Object(fields) => Value::Object(fields),
            Self::List(items) => Value::List(items),
        }
    }

    /// Whether this is an object (that answers can be merged into).
    pub fn is_object(&self) -> bool {
        matches!(self, Self::Object(_) | Self::Reply(JsonValue::Object(_)))
    }

    /// Deep-merges `from` into this value: objects field by field, lists of the same length
    /// item by item; a null here stays null, anything else is replaced.
    pub fn merge(&mut self, from: &'r JsonValue) {
        let meets = match (&*self, from) {
            (Self::Reply(JsonValue::Null), _) => return,
            (Self::Reply(JsonValue::Object(_)), JsonValue::Object(_)) => true,
            (Self::Reply(JsonValue::Array(items)), JsonValue::Array(from)) => {
                items.len() == from.len()
            }
            _ => false,
        };
        if meets {
            // Room for the fields `from` adds, so that they do not move the object's fields.
            let adds = match from {
                JsonValue::Object(from) => from.len(),
                _ => 0,
            };
            self.open(adds);
        }
        match (self, from) {
            (Self::Object(fields), JsonValue::Object(from)) => merge_fields(fields, from),
            (Self::List(items), JsonValue::Array(from)) if items.len() == from.len() => {
                for (item, from) in items.iter_mut().zip(from) {
                    item.merge(from);
                }
            }
            (this, from) => *this = Self::Reply(from),
        }
    }

    /// The field `key` of this object, taken apart so that it can be merged into.
    pub fn field_mut(&mut self, key: &str) -> Option<&mut Self> {
        self.open(0);
        match self {
            Self::Object(fields) => fields
                .iter_mut()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// Item `index` of this list, taken apart so that it can be merged into.
    pub fn item_mut(&mut self, index: usize) -> Option<&mut Self> {
        self.open(0);
        match self {
            Self::List(items) => items.get_mut(index),
            _ => None,
        }
    }

    /// Takes a reply's object or list apart one level: each field or item still refers to
    /// the reply. An object gets room for `adds` more fields.
    fn open(&mut self, adds: usize) {
        match *self {
            Self::Reply(JsonValue::Object(object)) => {
                let mut fields = Vec::with_capacity(object.len() + adds);
                fields.extend(
                    object
                        .iter()
                        .map(|(key, value)| (key.as_str(), Self::Reply(value))),
                );
                *self = Self::Object(fields);
            }
            Self::Reply(JsonValue::Array(items)) => {
                *self = Self::List(items.iter().map(Self::Reply).collect());
            }
            _ => {}
        }
    }
}

fn merge_fields<'r>(fields: &mut Vec<(&'r str, Data<'r>)>, from: &'r JsonMap) {
    for (key, value) in from {
        match fields.iter_mut().find(|(name, _)| *name == key.as_str()) {
            Some((_, existing)) => existing.merge(value),
            None => fields.push((key.as_str(), Data::Reply(value))),
        }
    }
}

/// A value of the data, to read: a reply's JSON, or an object or a list that was taken apart.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Json(&'a JsonValue),
    Object(&'a [(&'a str, Data<'a>)]),
    List(&'a [Data<'a>]),
}

/// Objects of at most this many fields are searched by comparing keys, which for the short
/// keys of GraphQL responses beats hashing them.
const SCANNED: usize = 8;

/// `object[key]`.
pub fn field<'a>(object: &'a JsonMap, key: &str) -> Option<&'a JsonValue> {
    if object.len() <= SCANNED {
        object
            .iter()
            .find(|(name, _)| name.as_str() == key)
            .map(|(_, value)| value)
    } else {
        object.get(key)
    }
}

impl<'a> Value<'a> {
    pub const NULL: Value<'static> = Value::Json(&JsonValue::Null);

    /// The field `key` of this object; `None` when this is no object or has no such field.
    pub fn get(self, key: &str) -> Option<Value<'a>> {
        match self {
            Self::Json(JsonValue::Object(object)) => field(object, key).map(Value::Json),
            Self::Object(fields) => fields
                .iter()
                .find(|(name, _)| *name == key)
                .map(|(_, value)| value.value()),
            _ => None,
        }
    }

    /// The field `key` of this object and its position, looked for first at position `hint`:
    /// where the next field usually is, as replies list fields in the order they were asked.
    pub fn get_near(self, key: &str, hint: usize) -> Option<(Value<'a>, usize)> {
        match self {
            // Stepping to the hint costs as much as a search beyond `SCANNED` fields.
            Self::Json(JsonValue::Object(object)) if object.len() > SCANNED => {
                object.get(key).map(|value| (Value::Json(value), hint))
            }
            Self::Json(JsonValue::Object(object)) => {
                if let Some((name, value)) = object.iter().nth(hint)
                    && name.as_str() == key
                {
                    return Some((Value::Json(value), hint));
                }
                object
                    .iter()
                    .enumerate()
                    .find(|(_, (name, _))| name.as_str() == key)
                    .map(|(at, (_, value))| (Value::Json(value), at))
            }
            Self::Object(fields) => {
                if let Some((name, value)) = fields.get(hint)
                    && *name == key
                {
                    return Some((value.value(), hint));
                }
                fields
                    .iter()
                    .position(|(name, _)| *name == key)
                    .map(|at| (fields[at].1.value(), at))
            }
            _ => None,
        }
    }

    pub fn is_object(self) -> bool {
        matches!(self, Self::Object(_) | Self::Json(JsonValue::Object(_)))
    }

    pub fn is_null(self) -> bool {
        matches!(self, Self::Json(JsonValue::Null))
    }

    /// The string this is, if it is one.
    pub fn as_str(self) -> Option<&'a str> {
        match self {
            Self::Json(json) => json.as_str(),
            _ => None,
        }
    }

    /// This object's `__typename`.
    pub fn typename(self) -> Option<&'a str> {
        self.get("__typename").and_then(Value::as_str)
    }

    /// The number of items, when this is a list.
    pub fn list_len(self) -> Option<usize> {
        match self {
            Self::Json(JsonValue::Array(items)) => Some(items.len()),
            Self::List(items) => Some(items.len()),
            _ => None,
        }
    }

    /// Item `index` of this list (which must have it).
    #[must_use]
    pub fn item(self, index: usize) -> Value<'a> {
        match self {
            Self::Json(JsonValue::Array(items)) => Value::Json(&items[index]),
            Self::List(items) => items[index].value(),
            _ => Value::NULL,
        }
    }

    /// Writes this value as JSON.
    pub fn write(self, out: &mut Vec<u8>) {
        match self {
            Self::Json(json) => write_value(out, json),
            Self::Object(fields) => {
                out.push(b'{');
                for (index, (key, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    write_str(out, key);
                    out.push(b':');
                    value.value().write(out);
                }
                out.push(b'}');
            }
            Self::List(items) => {
                out.push(b'[');
                for (index, item) in items.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    item.value().write(out);
                }
                out.push(b']');
            }
        }
    }
}

/// Writes a reply's value as JSON: strings and nested values directly, numbers as
/// `serde_json` writes them.
pub fn write_value(out: &mut Vec<u8>, value: &JsonValue) {
    match value {
        JsonValue::String(string) => write_str(out, string.as_str()),
        JsonValue::Null => out.extend_from_slice(b"null"),
        JsonValue::Bool(true) => out.extend_from_slice(b"true"),
        JsonValue::Bool(false) => out.extend_from_slice(b"false"),
        JsonValue::Number(_) => write_json(out, value),
        JsonValue::Array(items) => {
            out.push(b'[');
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_value(out, item);
            }
            out.push(b']');
        }
        JsonValue::Object(object) => {
            out.push(b'{');
            for (index, (key, item)) in object.iter().enumerate() {
                if index > 0 {
                    out.push(b',');
                }
                write_str(out, key.as_str());
                out.push(b':');
                write_value(out, item);
            }
            out.push(b'}');
        }
    }
}

/// Writes a JSON string: as it is between quotes when nothing in it needs escaping (most
/// strings), else escaped as `serde_json` does.
pub fn write_str(out: &mut Vec<u8>, string: &str) {
    if needs_escaping(string.as_bytes()) {
        write_json(out, string);
    } else {
        out.reserve(string.len() + 2);
        out.push(b'"');
        out.extend_from_slice(string.as_bytes());
        out.push(b'"');
    }
}

/// Whether `bytes` hold a control character, a quote or a backslash: eight bytes at a time.
fn needs_escaping(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    // A byte of `word` is zero, or below `n` (for n <= 0x80): its high bit in the result.
    let below = |word: u64, n: u8| word.wrapping_sub(ONES * u64::from(n)) & !word & HIGHS;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let word = u64::from_ne_bytes(chunk.try_into().expect("eight bytes"));
        let quote = word ^ (ONES * u64::from(b'"'));
        let backslash = word ^ (ONES * u64::from(b'\\'));
        if below(word, 0x20) | below(quote, 1) | below(backslash, 1) != 0 {
            return true;
        }
    }
    chunks
        .remainder()
        .iter()
        .any(|&byte| byte < 0x20 || byte == b'"' || byte == b'\\')
}

#[cfg(test)]
mod tests {
    use super::{Data, Value};
    use apollo_compiler::response::JsonValue;
    use serde_json_bytes::json;

    fn written(data: &Data) -> serde_json::Value {
        let mut out = Vec::new();
        data.value().write(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn merges_take_apart_only_what_two_replies_meet_in() {
        let first = json!({"users": [{"id": "1", "name": "Ada", "pet": {"kind": "cat"}}, {"id": "2"}], "top": {"id": "9"}});
        let second = json!({"users": [{"reviews": [1]}, {"reviews": []}]});
        let third = json!({"users": [{"pet": {"age": 3}}, null]});
        let mut data = Data::empty_object();
        data.merge(&first);
        data.merge(&second);
        data.merge(&third);
        assert_eq!(
            written(&data),
            serde_json::json!({"users": [
                {"id": "1", "name": "Ada", "pet": {"kind": "cat", "age": 3}, "reviews": [1]},
                null
            ], "top": {"id": "9"}})
        );
        // What no second reply touched is still the first reply's own value.
        let Data::Object(fields) = &data else {
            panic!("the root was taken apart")
        };
        assert!(matches!(fields[1], ("top", Data::Reply(_))));
        let users = data.value().get("users").unwrap();
        assert!(matches!(users.item(0).get("name"), Some(Value::Json(_))));
        assert_eq!(users.list_len(), Some(2));
        let ada = users.item(0);
        assert!(matches!(ada.get_near("name", 1), Some((Value::Json(_), 1))));
        assert!(matches!(ada.get_near("name", 0), Some((_, 1))));
        assert!(matches!(
            ada.get_near("reviews", 9),
            Some((Value::Json(_), 3))
        ));
        assert!(ada.get_near("age", 0).is_none());
        let top = data.value().get("top").unwrap();
        assert!(matches!(top.get_near("id", 0), Some((Value::Json(_), 0))));
        assert!(top.get_near("name", 0).is_none());
    }

    #[test]
    fn values_are_written_as_serde_json_writes_them() {
        let value = json!({
            "plain": "abc", "quote": "say \"hi\"", "slash": "a\\b", "control": "a\nb\u{1}",
            "unicode": "café ✓", "numbers": [1, -2, 3.5, 1e300], "flags": [true, false, null],
            "nested": {"": {}, "list": []}
        });
        let mut out = Vec::new();
        super::write_value(&mut out, &value);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            serde_json::to_string(&value).unwrap()
        );
    }

    #[test]
    fn escaping_is_found_wherever_it_is() {
        let plain = "abcdefghijklmnopqrstuvwxyz café ✓ ~\u{7f}";
        assert!(!super::needs_escaping(plain.as_bytes()));
        for special in ['"', '\\', '\n', '\u{0}', '\u{1f}'] {
            for at in 0..plain.len() {
                if !plain.is_char_boundary(at) {
                    continue;
                }
                let mut text = plain.to_owned();
                text.insert(at, special);
                assert!(super::needs_escaping(text.as_bytes()), "{text:?}");
                let mut out = Vec::new();
                super::write_str(&mut out, &text);
                assert_eq!(out, serde_json::to_vec(&text).unwrap());
            }
        }
    }

    #[test]
    fn nulls_stay_and_lists_of_other_lengths_are_replaced() {
        let first = json!({"a": null, "b": [1, 2], "c": 1});
        let second = json!({"a": {"x": 1}, "b": [3], "c": {"y": 2}});
        let mut data = Data::empty_object();
        data.merge(&first);
        data.merge(&second);
        assert_eq!(
            written(&data),
            serde_json::json!({"a": null, "b": [3], "c": {"y": 2}})
        );
        assert!(data.value().get("a").unwrap().is_null());
        assert_eq!(data.value().get("missing").map(Value::is_null), None);
        assert!(Value::Json(&JsonValue::from(1)).get("x").is_none());
    }

    #[test]
    fn fields_can_be_reached_to_merge_into() {
        let first = json!({"users": [{"id": "1"}, {"id": "2"}]});
        let entity = json!({"name": "Bo"});
        let mut data = Data::empty_object();
        data.merge(&first);
        data.field_mut("users")
            .and_then(|users| users.item_mut(1))
            .unwrap()
            .merge(&entity);
        assert_eq!(
            written(&data),
            serde_json::json!({"users": [{"id": "1"}, {"id": "2", "name": "Bo"}]})
        );
        assert!(data.field_mut("nothing").is_none());
        assert!(data.item_mut(0).is_none());
    }
}
