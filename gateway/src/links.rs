//! The names a supergraph gives a linked spec's directives: `@link(url:, as:, import:)` per the
//! core schema spec (<https://specs.apollo.dev/link/v1.0>).

use apollo_compiler::ast::{Directive, Value};

/// The name `directive` of the spec named `spec` goes by under `link`: as imported (`"@x"` or
/// `{ name: "@x", as: "@y" }`), else namespaced by the link's `as:` or the spec's name
/// (`spec__directive`), and the directive named like the spec by the namespace alone.
pub(crate) fn directive_name(link: &Directive, spec: &str, directive: &str) -> String {
    let namespace = link
        .specified_argument_by_name("as")
        .and_then(|value| value.as_str())
        .unwrap_or(spec);
    let mut name = if directive == spec {
        namespace.to_owned()
    } else {
        format!("{namespace}__{directive}")
    };
    let imports = link
        .specified_argument_by_name("import")
        .and_then(|value| value.as_list())
        .unwrap_or_default();
    for import in imports {
        match import.as_ref() {
            Value::String(imported) if imported.trim_start_matches('@') == directive => {
                directive.clone_into(&mut name);
            }
            Value::Object(fields) => {
                let field = |key: &str| {
                    fields
                        .iter()
                        .find(|(name, _)| name == key)
                        .and_then(|(_, value)| value.as_str())
                };
                if field("name").map(|n| n.trim_start_matches('@')) == Some(directive) {
                    field("as")
                        .unwrap_or(directive)
                        .trim_start_matches('@')
                        .clone_into(&mut name);
                }
            }
            _ => {}
        }
    }
    name
}

/// The `@link`s of `schema` with their URL split into the spec's identity (the URL without its
/// version) and version.
pub(crate) fn links(
    schema: &apollo_compiler::Schema,
) -> impl Iterator<Item = (&Directive, &str, &str)> {
    schema
        .schema_definition
        .directives
        .get_all("link")
        .filter_map(|link| {
            let url = link.specified_argument_by_name("url")?.as_str()?;
            let url = url.trim_end_matches('/');
            let (identity, version) = url.rsplit_once('/').unwrap_or((url, ""));
            Some((&***link, identity, version))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(text: &str) -> Directive {
        let schema = apollo_compiler::Schema::builder()
            .adopt_orphan_extensions()
            .parse(
                format!("extend schema {text}\ndirective @link(url: String, as: String, import: [link__Import]) repeatable on SCHEMA\nscalar link__Import\ntype Query {{ a: Int }}"),
                "s.graphql",
            )
            .build()
            .unwrap();
        (***schema.schema_definition.directives.get("link").unwrap()).clone()
    }

    #[test]
    fn names_follow_imports_and_namespaces() {
        let plain = link(r#"@link(url: "https://specs.apollo.dev/cost/v0.1")"#);
        assert_eq!(directive_name(&plain, "cost", "cost"), "cost");
        assert_eq!(directive_name(&plain, "cost", "listSize"), "cost__listSize");
        let imported = link(
            r#"@link(url: "https://specs.apollo.dev/cost/v0.1", import: ["@listSize", { name: "@cost", as: "@price" }])"#,
        );
        assert_eq!(directive_name(&imported, "cost", "listSize"), "listSize");
        assert_eq!(directive_name(&imported, "cost", "cost"), "price");
        let renamed = link(r#"@link(url: "https://specs.apollo.dev/cost/v0.1", as: "spend")"#);
        assert_eq!(
            directive_name(&renamed, "cost", "listSize"),
            "spend__listSize"
        );
        assert_eq!(directive_name(&renamed, "cost", "cost"), "spend");
    }
}
