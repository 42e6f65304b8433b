//! Who may read a type or field, or run a generated mutation, as the gateway enforces it:
//! configured per table, column or collection, written into the subgraph's SDL as Federation's
//! `@authenticated`, `@requiresScopes` and `@policy`, composed into the supergraph and checked
//! at the gateway before anything reaches a subgraph.
//!
//! ```yaml
//! guard: { authenticated: true }                          # on a table or column
//! guard: { requires_scopes: [[admin], [support, read]] }  # any one set, all of that set
//! writes:                                                 # on the generated mutations
//!   update: { policies: [[shop.products.write]] }         # Rego rules in policies/
//! ```

use async_graphql::Value;
use async_graphql::dynamic::Directive;
use serde::Deserialize;

use crate::config::Write;

/// The Federation version whose link imports `@authenticated`, `@requiresScopes` and `@policy`.
const FEDERATION_WITH_POLICY: &str = "https://specs.apollo.dev/federation/v2.6";

/// The Federation version whose link imports the cost spec's `@listSize`.
const FEDERATION_WITH_COST: &str = "https://specs.apollo.dev/federation/v2.9";

/// Requirements on one type, field or mutation.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Guard {
    /// `@authenticated`: callers with a valid token only.
    #[serde(default)]
    pub authenticated: bool,
    /// `@requiresScopes`: any one of these sets of scopes, all of that set.
    #[serde(default)]
    pub requires_scopes: Vec<Vec<String>>,
    /// `@policy`: any one of these sets of policies, all of that set allowing.
    #[serde(default)]
    pub policies: Vec<Vec<String>>,
}

/// Guards on a table's or collection's generated mutations, by kind.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct WriteGuards {
    #[serde(default)]
    pub insert: Guard,
    #[serde(default)]
    pub update: Guard,
    #[serde(default)]
    pub delete: Guard,
}

impl WriteGuards {
    /// [`Guard::check`] for each kind; errors name it (`writes.update: …`).
    pub fn check(&self) -> Result<(), String> {
        for (kind, guard) in [
            ("insert", &self.insert),
            ("update", &self.update),
            ("delete", &self.delete),
        ] {
            guard
                .check()
                .map_err(|message| format!("writes.{kind}: {message}"))?;
        }
        Ok(())
    }

    pub fn of(&self, write: Write) -> &Guard {
        match write {
            Write::Insert => &self.insert,
            Write::Update => &self.update,
            Write::Delete => &self.delete,
        }
    }
}

fn nested(sets: &[Vec<String>]) -> Value {
    Value::List(
        sets.iter()
            .map(|set| Value::List(set.iter().map(|name| Value::String(name.clone())).collect()))
            .collect(),
    )
}

impl Guard {
    /// The directives to put on the guarded type or field.
    pub fn directives(&self) -> Vec<Directive> {
        let mut directives = Vec::new();
        if self.authenticated {
            directives.push(Directive::new("authenticated"));
        }
        if !self.requires_scopes.is_empty() {
            directives.push(
                Directive::new("requiresScopes").argument("scopes", nested(&self.requires_scopes)),
            );
        }
        if !self.policies.is_empty() {
            directives.push(Directive::new("policy").argument("policies", nested(&self.policies)));
        }
        directives
    }

    /// Whether it requires nothing.
    pub fn is_empty(&self) -> bool {
        !self.authenticated && self.requires_scopes.is_empty() && self.policies.is_empty()
    }

    /// Refuses empty scope or policy sets (which would allow everyone) and empty names.
    pub fn check(&self) -> Result<(), String> {
        for (what, sets) in [
            ("requires_scopes", &self.requires_scopes),
            ("policies", &self.policies),
        ] {
            if sets.iter().any(Vec::is_empty) {
                return Err(format!("{what}: an empty set would allow everyone"));
            }
            if sets.iter().flatten().any(|name| name.trim().is_empty()) {
                return Err(format!("{what}: a name is empty"));
            }
        }
        Ok(())
    }
}

/// The SDL with the Federation link raised to the version that defines the directives it
/// uses beyond what async-graphql links (`@authenticated` and `@policy` from v2.6,
/// `@listSize` from v2.9), and those imported; unchanged when it uses none of them.
pub fn link_directives(sdl: &str) -> String {
    let uses = |name: &str| {
        sdl.lines()
            .any(|line| !line.trim_start().starts_with('#') && line.contains(name))
    };
    let mut imports = Vec::new();
    let mut version = "";
    if uses("@authenticated") || uses("@policy(") {
        imports.extend(["\"@authenticated\"", "\"@policy\""]);
        version = FEDERATION_WITH_POLICY;
    }
    if uses("@listSize(") {
        imports.push("\"@listSize\"");
        version = FEDERATION_WITH_COST;
    }
    if imports.is_empty() {
        return sdl.to_owned();
    }
    let Some(start) = sdl.find("url: \"https://specs.apollo.dev/federation/v2.") else {
        return sdl.to_owned();
    };
    let url_end = start + sdl[start..].find("\",").map_or(0, |end| end + 2);
    let mut linked = String::with_capacity(sdl.len() + 60);
    linked.push_str(&sdl[..start]);
    linked.push_str("url: \"");
    linked.push_str(version);
    linked.push_str("\",");
    let rest = &sdl[url_end..];
    // Imported first in the list, so whatever else it holds they are in it. (Without an
    // import list the SDL comes out broken and composition fails: never silently unguarded.)
    let at = rest
        .find("import: [")
        .map_or(0, |at| at + "import: [".len());
    linked.push_str(&rest[..at]);
    for import in imports {
        linked.push_str(import);
        linked.push_str(", ");
    }
    linked.push_str(&rest[at..]);
    linked
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_parse_and_refuse_sets_that_allow_everyone() {
        let guard: Guard =
            serde_yaml::from_str("{ authenticated: true, policies: [[shop.write]] }").unwrap();
        assert!(guard.check().is_ok());
        assert_eq!(guard.directives().len(), 2);
        let open: Guard = serde_yaml::from_str("{ requires_scopes: [[]] }").unwrap();
        assert!(open.check().is_err());
        assert!(serde_yaml::from_str::<Guard>("{ policy: [[x]] }").is_err());
        let writes: WriteGuards =
            serde_yaml::from_str("{ update: { policies: [[shop.write]] } }").unwrap();
        assert_eq!(writes.of(Write::Update).policies, vec![vec!["shop.write"]]);
        assert!(writes.of(Write::Delete).directives().is_empty());
    }

    #[test]
    fn the_link_is_raised_only_when_the_new_directives_are_used() {
        let sdl = "extend schema @link(\n\turl: \"https://specs.apollo.dev/federation/v2.5\",\n\timport: [\"@key\", \"@requiresScopes\"]\n)\n";
        assert_eq!(link_directives(sdl), sdl);
        let used = format!("{sdl}type Query {{ a: Int @policy(policies: [[\"p\"]]) }}\n");
        let linked = link_directives(&used);
        assert!(
            linked.contains("url: \"https://specs.apollo.dev/federation/v2.6\","),
            "{linked}"
        );
        assert!(
            linked.contains(
                "import: [\"@authenticated\", \"@policy\", \"@key\", \"@requiresScopes\"]"
            ),
            "{linked}"
        );
        assert!(linked.ends_with("@policy(policies: [[\"p\"]]) }\n"));
        let sized = format!("{used}type A {{ b: [Int] @listSize(assumedSize: 3) }}\n");
        let linked = link_directives(&sized);
        assert!(
            linked.contains("url: \"https://specs.apollo.dev/federation/v2.9\","),
            "{linked}"
        );
        assert!(
            linked.contains("import: [\"@authenticated\", \"@policy\", \"@listSize\", \"@key\""),
            "{linked}"
        );
    }
}
