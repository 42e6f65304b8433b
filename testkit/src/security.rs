//! Supergraphs given security directives the way composition writes them: a `@link` per spec
//! `for: SECURITY`, the directive definitions, and directives applied to chosen lines.

/// A security spec a supergraph can link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spec {
    Authenticated,
    RequiresScopes,
    Policy,
}

impl Spec {
    fn url(self) -> &'static str {
        match self {
            Spec::Authenticated => "https://specs.apollo.dev/authenticated/v0.1",
            Spec::RequiresScopes => "https://specs.apollo.dev/requiresScopes/v0.1",
            Spec::Policy => "https://specs.apollo.dev/policy/v0.1",
        }
    }

    fn definitions(self) -> &'static str {
        match self {
            Spec::Authenticated => {
                "directive @authenticated on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\n"
            }
            Spec::RequiresScopes => {
                "directive @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\nscalar requiresScopes__Scope\n"
            }
            Spec::Policy => {
                "directive @policy(policies: [[policy__Policy!]!]!) on FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM\nscalar policy__Policy\n"
            }
        }
    }
}

/// `sdl` (a supergraph linking join v0.3 or later) linking `specs` too, with their
/// definitions.
pub fn link(sdl: &str, specs: &[Spec]) -> String {
    let join = ["v0.3", "v0.4", "v0.5"]
        .iter()
        .map(|version| {
            format!("@link(url: \"https://specs.apollo.dev/join/{version}\", for: EXECUTION)")
        })
        .find(|link| sdl.contains(link.as_str()))
        .expect("the supergraph links join v0.3 or later");
    let mut links = join.clone();
    for spec in specs {
        links.push_str(" @link(url: \"");
        links.push_str(spec.url());
        links.push_str("\", for: SECURITY)");
    }
    let mut linked = sdl.replacen(&join, &links, 1);
    linked.push('\n');
    for spec in specs {
        linked.push_str(spec.definitions());
    }
    linked
}

/// Applies `directive` (` @authenticated`, …) on the line of `sdl` that holds `at`: at its end,
/// or before the `{` that opens a type.
pub fn apply(sdl: &mut String, at: &str, directive: &str) {
    let start = sdl
        .find(at)
        .unwrap_or_else(|| panic!("{at:?} in the supergraph"));
    let end = start + sdl[start..].find('\n').unwrap_or(sdl.len() - start);
    let end = if sdl[..end].ends_with(" {") {
        end - 2
    } else {
        end
    };
    sdl.insert_str(end, directive);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_directives_land_where_composition_puts_them() {
        let sdl = "schema @link(url: \"https://specs.apollo.dev/join/v0.3\", for: EXECUTION) {\n  query: Query\n}\ntype User @key {\n  email: String\n}\n";
        let mut linked = link(sdl, &[Spec::Authenticated, Spec::Policy]);
        assert!(linked.contains("for: EXECUTION) @link(url: \"https://specs.apollo.dev/authenticated/v0.1\", for: SECURITY) @link(url: \"https://specs.apollo.dev/policy/v0.1\", for: SECURITY) {"));
        assert!(linked.ends_with("scalar policy__Policy\n"));
        apply(&mut linked, "type User", " @authenticated");
        apply(&mut linked, "  email", " @policy(policies: [[\"p\"]])");
        assert!(
            linked.contains("type User @key @authenticated {\n"),
            "{linked}"
        );
        assert!(
            linked.contains("  email: String @policy(policies: [[\"p\"]])\n"),
            "{linked}"
        );
    }
}
