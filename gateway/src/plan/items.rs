//! Selections as fetches carry them: merging, representations, variables.

#[allow(clippy::wildcard_imports)]
use super::*;

/// Whether `new` names a field `existing` has under another key (other arguments).
pub(super) fn clashes(existing: &[Item], new: &[Item]) -> bool {
    new.iter().any(|item| match item {
        Item::Field { key, name, .. } => existing.iter().any(
            |other| matches!(other, Item::Field { key: k, name: n, .. } if n == name && k != key),
        ),
        Item::On { .. } => false,
    })
}

/// What a representation carries for `fields`: each under its name, read from its key.
pub(super) fn representation_items(fields: &[Field]) -> Vec<Item> {
    fields
        .iter()
        .map(|field| Item::Field {
            key: field.key.clone(),
            name: field.name.clone(),
            arguments: Vec::new(),
            items: representation_selections(&field.selections),
        })
        .collect()
}

pub(super) fn representation_selections(selections: &[Selection]) -> Vec<Item> {
    selections
        .iter()
        .map(|selection| match selection {
            Selection::Field(field) => Item::Field {
                key: field.key.clone(),
                name: field.name.clone(),
                arguments: Vec::new(),
                items: representation_selections(&field.selections),
            },
            Selection::Fragment(fragment) => Item::On {
                ty: fragment.on.clone(),
                items: representation_selections(&fragment.selections),
            },
        })
        .collect()
}

/// The key a field of `ty` travels under when its type differs per subgraph.
pub fn typed_key(ty: &str, key: &str) -> Name {
    Name::new_unchecked(&format!("_pg_{ty}_{key}"))
}

pub(super) fn typename_item() -> Item {
    Item::Field {
        key: Name::new_unchecked("__typename"),
        name: Name::new_unchecked("__typename"),
        arguments: Vec::new(),
        items: Vec::new(),
    }
}

pub(super) fn typename_field() -> Field {
    Field {
        key: Name::new_unchecked("__typename"),
        key_json: operation::json_key("__typename"),
        name: Name::new_unchecked("__typename"),
        arguments: Vec::new(),
        ty: ast::Type::NonNullNamed(Name::new_unchecked("String")),
        kind: operation::Kind::Scalar,
        selections: Vec::new(),
        denied: false,
    }
}

/// Merges `new` into `items` and returns `new` as it ended up: a field whose response key is
/// taken by a different field (another name or other arguments) gets an alias of its own.
pub(super) fn merge_items(items: &mut Vec<Item>, new: Vec<Item>) -> Vec<Item> {
    let mut placed = Vec::with_capacity(new.len());
    for item in new {
        match item {
            Item::Field {
                key,
                name,
                arguments,
                items: sub,
            } => {
                // Only a field under the same key is the same: one under another key (a
                // client's alias) is not where a representation would look for it.
                let same = items.iter().position(|existing| {
                    matches!(existing, Item::Field { name: n, arguments: a, key: k, .. }
                        if *n == name && *a == arguments && *k == key)
                });
                let index = if let Some(index) = same {
                    index
                } else {
                    let taken = items.iter().any(
                        |existing| matches!(existing, Item::Field { key: k, .. } if *k == key),
                    );
                    let key = if taken {
                        (items.len()..=items.len() * 2 + 1)
                            .map(|n| Name::new_unchecked(&format!("_pg_{n}_{name}")))
                            .find(|free| {
                                !items.iter().any(
                                    |existing| matches!(existing, Item::Field { key: k, .. } if k == free),
                                )
                            })
                            .expect("some key is free")
                    } else {
                        key
                    };
                    items.push(Item::Field {
                        key,
                        name: name.clone(),
                        arguments: arguments.clone(),
                        items: Vec::new(),
                    });
                    items.len() - 1
                };
                let Item::Field {
                    key: used_key,
                    items: existing_sub,
                    ..
                } = &mut items[index]
                else {
                    unreachable!("index points at a field")
                };
                let sub = merge_items(existing_sub, sub);
                placed.push(Item::Field {
                    key: used_key.clone(),
                    name,
                    arguments,
                    items: sub,
                });
            }
            Item::On { ty, items: sub } => {
                let index = items
                    .iter()
                    .position(|existing| matches!(existing, Item::On { ty: t, .. } if *t == ty))
                    .unwrap_or_else(|| {
                        items.push(Item::On {
                            ty: ty.clone(),
                            items: Vec::new(),
                        });
                        items.len() - 1
                    });
                let Item::On {
                    items: existing_sub,
                    ..
                } = &mut items[index]
                else {
                    unreachable!("index points at a fragment")
                };
                let sub = merge_items(existing_sub, sub);
                placed.push(Item::On { ty, items: sub });
            }
        }
    }
    placed
}

pub(super) fn collect_variables(items: &[Item], out: &mut Vec<Name>) {
    fn walk(value: &ast::Value, out: &mut Vec<Name>) {
        match value {
            ast::Value::Variable(name) if !out.contains(name) => {
                out.push(name.clone());
            }
            ast::Value::List(list) => list.iter().for_each(|v| walk(v, out)),
            ast::Value::Object(fields) => fields.iter().for_each(|(_, v)| walk(v, out)),
            _ => {}
        }
    }
    for item in items {
        match item {
            Item::Field {
                arguments, items, ..
            } => {
                for argument in arguments {
                    walk(&argument.value, out);
                }
                collect_variables(items, out);
            }
            Item::On { items, .. } => collect_variables(items, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(key: &str, name: &str, items: Vec<Item>) -> Item {
        Item::Field {
            key: Name::new_unchecked(key),
            name: Name::new_unchecked(name),
            arguments: Vec::new(),
            items,
        }
    }

    fn with_argument(key: &str, name: &str, value: i32) -> Item {
        Item::Field {
            key: Name::new_unchecked(key),
            name: Name::new_unchecked(name),
            arguments: vec![Node::new(ast::Argument {
                name: Name::new_unchecked("first"),
                value: Node::new(ast::Value::Int(value.into())),
            })],
            items: Vec::new(),
        }
    }

    #[test]
    fn the_same_field_merges_its_selections() {
        let mut items = vec![field("user", "user", vec![field("id", "id", vec![])])];
        let placed = merge_items(
            &mut items,
            vec![field("user", "user", vec![field("name", "name", vec![])])],
        );
        assert_eq!(
            placed,
            vec![field("user", "user", vec![field("name", "name", vec![])])]
        );
        assert_eq!(
            items,
            vec![field(
                "user",
                "user",
                vec![field("id", "id", vec![]), field("name", "name", vec![])]
            )]
        );
    }

    #[test]
    fn another_field_under_a_taken_key_gets_a_key_of_its_own() {
        let mut items = vec![with_argument("reviews", "reviews", 1)];
        let placed = merge_items(&mut items, vec![with_argument("reviews", "reviews", 2)]);
        let Item::Field { key, .. } = &placed[0] else {
            panic!("a field")
        };
        assert_eq!(key.as_str(), "_pg_1_reviews");
        assert_eq!(items.len(), 2);
        assert!(clashes(&items[..1], &[field("mine", "reviews", vec![])]));
        assert!(!clashes(
            &items[..1],
            &[field("reviews", "reviews", vec![])]
        ));
    }
}
