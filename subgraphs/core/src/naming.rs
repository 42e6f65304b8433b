//! Names: database identifiers to GraphQL type names (`order_items` → `OrderItem`), and the
//! check that a database name is usable as a GraphQL name as it is.

/// `order_items` → `OrderItem`, `users` → `User`, `people` → `Person`.
pub fn type_name(table: &str) -> String {
    pascal_case(&singular(table))
}

/// `order_items` → `OrderItems`.
pub fn pascal_case(name: &str) -> String {
    name.split(['_', '-', ' ', '.'])
        .filter(|part| !part.is_empty())
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |first| {
                first.to_uppercase().chain(chars).collect()
            })
        })
        .collect()
}

/// English singular of the last word of a `snake_case` name, for the usual table plurals.
pub fn singular(name: &str) -> String {
    let (head, last) = match name.rfind('_') {
        Some(index) => name.split_at(index + 1),
        None => ("", name),
    };
    let lower = last.to_lowercase();
    let single = if lower == "people" {
        format!("{}erson", &last[..1])
    } else if lower.ends_with("ies") && last.len() > 3 {
        format!("{}y", &last[..last.len() - 3])
    } else if lower.ends_with("sses")
        || lower.ends_with("xes")
        || lower.ends_with("ches")
        || lower.ends_with("shes")
    {
        last[..last.len() - 2].to_owned()
    } else if lower.ends_with('s')
        && !lower.ends_with("ss")
        && !lower.ends_with("us")
        && last.len() > 1
    {
        last[..last.len() - 1].to_owned()
    } else {
        last.to_owned()
    };
    format!("{head}{single}")
}

/// Whether `name` matches GraphQL's `/[_A-Za-z][_0-9A-Za-z]*/` and avoids the reserved `__`.
pub fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
        && !name.starts_with("__")
}

/// A usable GraphQL name for a database identifier: invalid characters become `_`.
pub fn field_name(identifier: &str) -> String {
    let mut out: String = identifier
        .chars()
        .map(|c| {
            if c == '_' || c.is_ascii_alphanumeric() {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    while out.starts_with("__") {
        out.remove(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_become_type_names() {
        assert_eq!(type_name("users"), "User");
        assert_eq!(type_name("order_items"), "OrderItem");
        assert_eq!(type_name("categories"), "Category");
        assert_eq!(type_name("addresses"), "Address");
        assert_eq!(type_name("people"), "Person");
        assert_eq!(type_name("status"), "Status");
    }

    #[test]
    fn graphql_names() {
        assert!(is_graphql_name("created_at"));
        assert!(!is_graphql_name("2fa"));
        assert!(!is_graphql_name("__typename"));
        assert_eq!(field_name("first name"), "first_name");
        assert_eq!(field_name("2fa"), "_2fa");
        assert_eq!(field_name("__secret"), "_secret");
    }
}
