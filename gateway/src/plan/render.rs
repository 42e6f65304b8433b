//! Plans as text: the fetches' selections as GraphQL, paths, and the plan for people.

#[allow(clippy::wildcard_imports)]
use super::*;

/// `items` as GraphQL selection text: ` { a b: c(x: 1) { d } ... on T { e } }`.
pub fn render_items(items: &[Item]) -> String {
    let mut out = String::new();
    render_into(items, &mut out);
    out
}

pub(super) fn render_into(items: &[Item], out: &mut String) {
    if items.is_empty() {
        return;
    }
    out.push_str(" {");
    for item in items {
        out.push(' ');
        match item {
            Item::Field {
                key,
                name,
                arguments,
                items,
            } => {
                if key != name {
                    let _ = write!(out, "{key}: ");
                }
                out.push_str(name);
                if !arguments.is_empty() {
                    out.push('(');
                    for (index, argument) in arguments.iter().enumerate() {
                        if index > 0 {
                            out.push_str(", ");
                        }
                        let _ = write!(
                            out,
                            "{}: {}",
                            argument.name,
                            argument.value.serialize().no_indent()
                        );
                    }
                    out.push(')');
                }
                render_into(items, out);
            }
            Item::On { ty, items } => {
                let _ = write!(out, "... on {ty}");
                render_into(items, out);
            }
        }
    }
    out.push_str(" }");
}

/// A path for people: `products.reviews|[Book]`.
pub fn render_path(path: &[PathElem]) -> String {
    let mut out = String::new();
    for element in path {
        match element {
            PathElem::Key(key) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            PathElem::Type(ty) => {
                let _ = write!(out, "|[{ty}]");
            }
        }
    }
    out
}

impl fmt::Display for QueryPlan {
    /// Readable text: one block per fetch in a valid order, with what it waits for.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "QueryPlan {{")?;
        for (index, fetch) in self.fetches.iter().enumerate() {
            let service = &self.service_names[fetch.subgraph];
            let after = if fetch.after.is_empty() {
                String::new()
            } else {
                format!(
                    " after [{}]",
                    fetch
                        .after
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            match &fetch.entity {
                None => writeln!(f, "  [{index}] Fetch(service: \"{service}\"){after} {{")?,
                Some(entity) => {
                    writeln!(
                        f,
                        "  [{index}] Flatten(path: \"{}{}\") Fetch(service: \"{service}\"){after} {{",
                        render_path(&entity.path),
                        if entity.types.is_empty() {
                            String::new()
                        } else {
                            format!("|[{}]", entity.types.join(", "))
                        }
                    )?;
                    writeln!(
                        f,
                        "    representations{}{}",
                        entity
                            .typename
                            .as_ref()
                            .map(|t| format!(" as {t}"))
                            .unwrap_or_default(),
                        render_items(&entity.representation)
                    )?;
                }
            }
            writeln!(f, "    {}", fetch.operation)?;
            writeln!(f, "  }}")?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_and_paths_read_as_written() {
        let items = vec![Item::Field {
            key: Name::new_unchecked("top"),
            name: Name::new_unchecked("products"),
            arguments: vec![Node::new(ast::Argument {
                name: Name::new_unchecked("first"),
                value: Node::new(ast::Value::Int(2.into())),
            })],
            items: vec![Item::On {
                ty: Name::new_unchecked("Book"),
                items: vec![Item::Field {
                    key: Name::new_unchecked("id"),
                    name: Name::new_unchecked("id"),
                    arguments: Vec::new(),
                    items: Vec::new(),
                }],
            }],
        }];
        assert_eq!(
            render_items(&items),
            " { top: products(first: 2) { ... on Book { id } } }"
        );
        let path = [
            PathElem::Key(Name::new_unchecked("products")),
            PathElem::Key(Name::new_unchecked("reviews")),
            PathElem::Type(Name::new_unchecked("Book")),
        ];
        assert_eq!(render_path(&path), "products.reviews|[Book]");
        assert_eq!(render_items(&[]), "");
    }
}
