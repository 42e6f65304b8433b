//! The data a run of a plan puts together, made of references into the subgraphs' replies
//! instead of copies of them.
//!
//! Replies are parsed once ([`crate::json`]) and may be shared: by requests that asked a
//! subgraph the same thing at the same time, and by every object that sent the same
//! representation. The data keeps them as they came ([`Data::Reply`]) and only takes apart the
//! objects and lists that answers of more than one fetch meet in ([`Data::Object`],
//! [`Data::List`]): one level at a time, each part still a reference. Merging an entity answer
//! into many objects is then a few pointers per object, and nothing is copied or freed value
//! by value.

use std::borrow::Cow;

use crate::json::{self, DocValue};

/// A value of the data.
#[derive(Debug)]
pub enum Data<'r> {
    /// A value as a subgraph replied it.
    Reply(DocValue<'r>),
    /// An object that more than one reply added fields to: its fields (keys unescaped) in the
    /// order they came.
    Object(Vec<(&'r [u8], Data<'r>)>),
    /// A list whose items more than one reply added to.
    List(Vec<Data<'r>>),
}

impl<'r> Data<'r> {
    pub fn empty_object() -> Self {
        Self::Object(Vec::new())
    }

    pub fn value(&self) -> Value<'_> {
        match self {
            Self::Reply(json) => Value::Json(*json),
            Self::Object(fields) => Value::Object(fields),
            Self::List(items) => Value::List(items),
        }
    }

    /// Whether this is an object (that answers can be merged into).
    pub fn is_object(&self) -> bool {
        match self {
            Self::Object(_) => true,
            Self::Reply(json) => json.is_object(),
            Self::List(_) => false,
        }
    }

    /// Deep-merges `from` into this value: objects field by field, lists of the same length
    /// item by item; a null here stays null, anything else is replaced.
    pub fn merge(&mut self, from: DocValue<'r>) {
        let meets = match &*self {
            Self::Reply(json) if json.is_null() => return,
            Self::Reply(json) if json.is_object() => from.is_object(),
            Self::Reply(json) if json.is_array() => from.is_array() && json.count() == from.count(),
            _ => false,
        };
        if meets {
            // Room for the fields `from` adds, so that they do not move the object's fields
            // (a list ignores it).
            self.open(from.count().unwrap_or(0));
        }
        match self {
            Self::Object(fields) if from.is_object() => merge_fields(fields, from),
            Self::List(items) if from.is_array() && Some(items.len()) == from.count() => {
                for (item, from) in items.iter_mut().zip(from.items()) {
                    item.merge(from);
                }
            }
            this => *this = Self::Reply(from),
        }
    }

    /// The field `key` of this object, taken apart so that it can be merged into.
    pub fn field_mut(&mut self, key: &str) -> Option<&mut Self> {
        self.open(0);
        match self {
            Self::Object(fields) => fields
                .iter_mut()
                .find(|(name, _)| *name == key.as_bytes())
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
        let Self::Reply(json) = *self else {
            return;
        };
        if json.is_object() {
            let mut fields = Vec::with_capacity(json.count().unwrap_or(0) + adds);
            fields.extend(json.fields().map(|(key, value)| (key, Self::Reply(value))));
            *self = Self::Object(fields);
        } else if json.is_array() {
            *self = Self::List(json.items().map(Self::Reply).collect());
        }
    }
}

fn merge_fields<'r>(fields: &mut Vec<(&'r [u8], Data<'r>)>, from: DocValue<'r>) {
    // At most one growth, for an object taken apart before (by an earlier merge below it).
    fields.reserve(from.count().unwrap_or(0));
    for (key, value) in from.fields() {
        match fields.iter_mut().find(|(name, _)| *name == key) {
            Some((_, existing)) => existing.merge(value),
            None => fields.push((key, Data::Reply(value))),
        }
    }
}

/// A value of the data, to read: a reply's JSON, or an object or a list that was taken apart.
#[derive(Clone, Copy, Debug)]
pub enum Value<'a> {
    Null,
    Json(DocValue<'a>),
    Object(&'a [(&'a [u8], Data<'a>)]),
    List(&'a [Data<'a>]),
}

impl<'a> Value<'a> {
    /// The field `key` of this object; `None` when this is no object or has no such field.
    pub fn get(self, key: &str) -> Option<Value<'a>> {
        match self {
            Self::Json(json) => json.get(key).map(Value::Json),
            Self::Object(fields) => fields
                .iter()
                .find(|(name, _)| *name == key.as_bytes())
                .map(|(_, value)| value.value()),
            _ => None,
        }
    }

    /// The field `key` of this object, looked for first where `hint` points: a hint it
    /// returned for the field before (`0` for the first), as replies list fields in the order
    /// they were asked. Also returns the hint for the next field.
    pub fn get_near(self, key: &str, hint: u64) -> Option<(Value<'a>, u64)> {
        match self {
            Self::Json(json) => json
                .get_near(key, hint)
                .map(|(value, next)| (Value::Json(value), next)),
            Self::Object(fields) => {
                let at = usize::try_from(hint).unwrap_or(usize::MAX);
                let at = match fields.get(at) {
                    Some((name, _)) if *name == key.as_bytes() => at,
                    _ => fields
                        .iter()
                        .position(|(name, _)| *name == key.as_bytes())?,
                };
                Some((fields[at].1.value(), at as u64 + 1))
            }
            _ => None,
        }
    }

    pub fn is_object(self) -> bool {
        match self {
            Self::Object(_) => true,
            Self::Json(json) => json.is_object(),
            _ => false,
        }
    }

    pub fn is_null(self) -> bool {
        match self {
            Self::Null => true,
            Self::Json(json) => json.is_null(),
            _ => false,
        }
    }

    /// The string this is, if it is one.
    pub fn as_str(self) -> Option<Cow<'a, str>> {
        match self {
            Self::Json(json) => json.as_str(),
            _ => None,
        }
    }

    /// This object's `__typename`.
    pub fn typename(self) -> Option<Cow<'a, str>> {
        self.get("__typename").and_then(Value::as_str)
    }

    /// The items, when this is a list.
    pub fn items(self) -> Option<ListItems<'a>> {
        match self {
            Self::Json(json) if json.is_array() => Some(ListItems::Json(json.items())),
            Self::List(items) => Some(ListItems::Data(items.iter())),
            _ => None,
        }
    }

    /// Writes this value as JSON.
    pub fn write(self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Json(json) => json.write(out),
            Self::Object(fields) => {
                out.push(b'{');
                for (index, (key, value)) in fields.iter().enumerate() {
                    if index > 0 {
                        out.push(b',');
                    }
                    json::write_bytes(out, key);
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

/// A list's items.
pub enum ListItems<'a> {
    Json(json::DocItems<'a>),
    Data(std::slice::Iter<'a, Data<'a>>),
}

impl<'a> Iterator for ListItems<'a> {
    type Item = Value<'a>;

    fn next(&mut self) -> Option<Self::Item> {
        match self {
            Self::Json(items) => items.next().map(Value::Json),
            Self::Data(items) => items.next().map(Data::value),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self {
            Self::Json(items) => items.size_hint(),
            Self::Data(items) => items.size_hint(),
        }
    }
}

impl ExactSizeIterator for ListItems<'_> {}

/// Writes a GraphQL name (a field, type or argument name) as a JSON string: names are ASCII
/// letters, digits and `_`, so nothing in one needs escaping.
pub fn write_name(out: &mut Vec<u8>, name: &str) {
    debug_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
    out.reserve(name.len() + 2);
    out.push(b'"');
    out.extend_from_slice(name.as_bytes());
    out.push(b'"');
}

/// Writes a JSON string: as it is between quotes when nothing in it needs escaping (most
/// strings), else escaped as `serde_json` does.
pub fn write_str(out: &mut Vec<u8>, string: &str) {
    json::write_bytes(out, string.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::{Data, Value};
    use crate::json::Doc;
    use bytes::Bytes;

    fn doc(text: &str) -> Doc {
        Doc::parse(Bytes::from(text.to_owned())).unwrap()
    }

    fn written(data: &Data) -> serde_json::Value {
        let mut out = Vec::new();
        data.value().write(&mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn merges_take_apart_only_what_two_replies_meet_in() {
        let first = doc(
            r#"{"users": [{"id": "1", "name": "Ada", "pet": {"kind": "cat"}}, {"id": "2"}], "top": {"id": "9"}}"#,
        );
        let second = doc(r#"{"users": [{"reviews": [1]}, {"reviews": []}]}"#);
        let third = doc(r#"{"users": [{"pet": {"age": 3}}, null]}"#);
        let mut data = Data::empty_object();
        data.merge(first.root());
        data.merge(second.root());
        data.merge(third.root());
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
        assert!(matches!(fields[1], (b"top", Data::Reply(_))));
        let users = data.value().get("users").unwrap();
        assert_eq!(users.items().map(|items| items.len()), Some(2));
        let ada = users.items().unwrap().next().unwrap();
        assert!(matches!(ada.get("name"), Some(Value::Json(_))));
        assert!(matches!(ada.get_near("name", 1), Some((Value::Json(_), 2))));
        assert!(matches!(ada.get_near("name", 0), Some((_, 2))));
        assert!(matches!(
            ada.get_near("reviews", 9),
            Some((Value::Json(_), 4))
        ));
        assert!(ada.get_near("age", 0).is_none());
        let top = data.value().get("top").unwrap();
        assert!(matches!(top.get_near("id", 0), Some((Value::Json(_), _))));
        assert!(top.get_near("name", 0).is_none());
        assert_eq!(top.get("id").and_then(Value::as_str).unwrap(), "9");
    }

    #[test]
    fn nulls_stay_and_lists_of_other_lengths_are_replaced() {
        let first = doc(r#"{"a": null, "b": [1, 2], "c": 1}"#);
        let second = doc(r#"{"a": {"x": 1}, "b": [3], "c": {"y": 2}}"#);
        let mut data = Data::empty_object();
        data.merge(first.root());
        data.merge(second.root());
        assert_eq!(
            written(&data),
            serde_json::json!({"a": null, "b": [3], "c": {"y": 2}})
        );
        assert!(data.value().get("a").unwrap().is_null());
        assert_eq!(data.value().get("missing").map(Value::is_null), None);
        let one = doc("1");
        assert!(Value::Json(one.root()).get("x").is_none());
        assert!(Value::Null.is_null());
    }

    #[test]
    fn fields_can_be_reached_to_merge_into() {
        let first = doc(r#"{"users": [{"id": "1"}, {"id": "2"}]}"#);
        let entity = doc(r#"{"name": "Bo"}"#);
        let mut data = Data::empty_object();
        data.merge(first.root());
        data.field_mut("users")
            .and_then(|users| users.item_mut(1))
            .unwrap()
            .merge(entity.root());
        assert_eq!(
            written(&data),
            serde_json::json!({"users": [{"id": "1"}, {"id": "2", "name": "Bo"}]})
        );
        assert!(data.field_mut("nothing").is_none());
        assert!(data.item_mut(0).is_none());
    }

    #[test]
    fn names_are_written_as_serde_json_writes_them() {
        for name in ["id", "_entities", "Product2", "__typename"] {
            let mut out = Vec::new();
            super::write_name(&mut out, name);
            assert_eq!(out, serde_json::to_vec(name).unwrap());
        }
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        for text in ["plain", "say \"hi\"", "a\\b", "a\nb\u{1}", "café ✓"] {
            let mut out = Vec::new();
            super::write_str(&mut out, text);
            assert_eq!(out, serde_json::to_vec(text).unwrap());
        }
    }
}
