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

/// Operators and stages whose operands are documents of field names and operators (from the
/// schema), walked into; any other operator's operand (`$eq`, `$in`, an accumulator) is a
/// value, and may be a caller's, however it is built: `?`.
const STRUCTURAL: &[&str] = &[
    "$and",
    "$or",
    "$nor",
    "$not",
    "$elemMatch",
    "$match",
    "$group",
    "$sort",
    "$project",
];

fn document_shape(document: &Document, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str("{")?;
    for (index, (key, value)) in document.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{key:?}: ")?;
        if key.starts_with('$') && !STRUCTURAL.contains(&key.as_str()) {
            f.write_str("?")?;
        } else {
            value_shape(value, f)?;
        }
    }
    f.write_str("}")
}

/// A field's or structural operator's operand: documents and arrays of documents keep their
/// keys; any other value is `?`.
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

    #[test]
    fn a_document_a_caller_wrote_is_a_value_too() {
        // A JSON field compared with an object: its keys are the caller's.
        let filter = doc! { "meta": { "$eq": { "alice@example.com": true } } };
        let pipeline = [
            doc! { "$match": { "$or": [{ "meta": { "$ne": { "k": 1 } } }] } },
            doc! { "$group": { "_id": "$product_id", "a0": { "$avg": "$rating" } } },
        ];
        let shape = |command, documents: &[mongodb::bson::Document]| {
            super::Shape {
                command,
                collection: "reviews",
                documents,
            }
            .to_string()
        };
        assert_eq!(
            shape("find", &[filter]),
            r#"find reviews {"meta": {"$eq": ?}}"#
        );
        assert_eq!(
            shape("aggregate", &pipeline),
            r#"aggregate reviews {"$match": {"$or": [{"meta": {"$ne": ?}}]}} {"$group": {"_id": ?, "a0": {"$avg": ?}}}"#
        );
    }
}
