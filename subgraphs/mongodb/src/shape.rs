//! What a trace says of a MongoDB command: its name, its collection and the shape of its filter
//! or pipeline, with every value written as `?` (they may be a caller's arguments).

use std::fmt;

use mongodb::bson::{Bson, Document};

/// A command on a collection, written when the trace span is recorded: `find products
/// {"category": {"$in": ?}}`.
pub(crate) struct Shape<'a> {
    pub(crate) command: &'static str,
    pub(crate) collection: &'a str,
    /// The filter, or a pipeline's stages.
    pub(crate) documents: &'a [Document],
}

impl fmt::Display for Shape<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.command, self.collection)?;
        for document in self.documents {
            f.write_str(" ")?;
            document_shape(document, f)?;
        }
        Ok(())
    }
}

fn document_shape(document: &Document, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("{")?;
    for (index, (key, value)) in document.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{key:?}: ")?;
        value_shape(value, f)?;
    }
    f.write_str("}")
}

/// Documents and arrays of documents keep their keys (field names and operators, which come
/// from the schema); any other value is `?`.
fn value_shape(value: &Bson, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match value {
        Bson::Document(document) => document_shape(document, f),
        Bson::Array(items) if items.iter().all(|item| matches!(item, Bson::Document(_))) => {
            f.write_str("[")?;
            for (index, item) in items.iter().enumerate() {
                if index > 0 {
                    f.write_str(", ")?;
                }
                value_shape(item, f)?;
            }
            f.write_str("]")
        }
        _ => f.write_str("?"),
    }
}

#[cfg(test)]
mod tests {
    use mongodb::bson::doc;

    #[test]
    fn values_are_left_out_and_keys_kept() {
        let filter = doc! {
            "$and": [{ "category": { "$in": ["toys", "books"] } }, { "price": { "$gt": 3 } }],
            "owner": "secret@example.com",
        };
        let shape = super::Shape {
            command: "find",
            collection: "products",
            documents: &[filter],
        }
        .to_string();
        assert_eq!(
            shape,
            r#"find products {"$and": [{"category": {"$in": ?}}, {"price": {"$gt": ?}}], "owner": ?}"#
        );
        assert!(!shape.contains("secret"));
    }
}
