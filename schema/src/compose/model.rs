//! One subgraph as composition reads it: every type and field with the federation directives
//! resolved to what they mean, whatever names the subgraph imported them under.

use apollo_compiler::Name;
use apollo_compiler::ast;
use apollo_compiler::collections::IndexMap;

/// The kinds of named types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Scalar,
    Object,
    Interface,
    Union,
    Enum,
    Input,
}

impl Kind {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Scalar => "a scalar",
            Self::Object => "an object type",
            Self::Interface => "an interface",
            Self::Union => "a union",
            Self::Enum => "an enum",
            Self::Input => "an input object type",
        }
    }
}

/// `@authenticated`, `@requiresScopes` and `@policy` on one element.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Access {
    pub(crate) authenticated: bool,
    /// Alternatives (any one may hold), each a set that must all hold.
    pub(crate) scopes: Vec<Vec<String>>,
    pub(crate) policies: Vec<Vec<String>>,
    /// Requiring both of two sets of alternatives would make more than [`MAX_ALTERNATIVES`]:
    /// refused (see `validate`) rather than computed, since each product can double them.
    pub(crate) too_complex: bool,
}

/// The most alternatives one element's `@requiresScopes` or `@policy` may come to.
pub(crate) const MAX_ALTERNATIVES: usize = 64;

impl Access {
    /// Both must be satisfied: the product of the alternatives.
    pub(crate) fn require(&mut self, other: &Self) {
        self.authenticated |= other.authenticated;
        self.too_complex |= other.too_complex;
        for (mine, theirs) in [
            (&mut self.scopes, &other.scopes),
            (&mut self.policies, &other.policies),
        ] {
            if mine.len().saturating_mul(theirs.len()) > MAX_ALTERNATIVES {
                self.too_complex = true;
            } else {
                *mine = both(mine, theirs);
            }
        }
    }
}

fn both(left: &[Vec<String>], right: &[Vec<String>]) -> Vec<Vec<String>> {
    if left.is_empty() {
        return right.to_vec();
    }
    if right.is_empty() {
        return left.to_vec();
    }
    let mut alternatives: Vec<Vec<String>> = Vec::new();
    for l in left {
        for r in right {
            let mut all: Vec<String> = l.clone();
            for item in r {
                if !all.contains(item) {
                    all.push(item.clone());
                }
            }
            all.sort();
            if !alternatives.contains(&all) {
                alternatives.push(all);
            }
        }
    }
    alternatives
}

/// `@deprecated`, with its reason when it gives one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Deprecated {
    pub(crate) reason: Option<String>,
}

/// What the common marker directives say of one element.
#[derive(Clone, Debug, Default)]
pub(crate) struct Marks {
    pub(crate) description: Option<String>,
    pub(crate) inaccessible: bool,
    pub(crate) tags: Vec<String>,
    pub(crate) access: Access,
    pub(crate) cost: Option<i32>,
    pub(crate) deprecated: Option<Deprecated>,
    /// Directives kept through `@composeDirective`, as written.
    pub(crate) composed: Vec<ast::Directive>,
}

/// `@key(fields:, resolvable:)`.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) fields: String,
    pub(crate) resolvable: bool,
}

/// `@listSize`.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ListSize {
    pub(crate) assumed_size: Option<i32>,
    pub(crate) slicing_arguments: Option<Vec<String>>,
    pub(crate) sized_fields: Option<Vec<String>>,
    pub(crate) require_one_slicing_argument: bool,
}

/// An argument, or an input object's field.
#[derive(Clone, Debug)]
pub(crate) struct Input {
    pub(crate) ty: ast::Type,
    pub(crate) default: Option<ast::Value>,
    pub(crate) marks: Marks,
}

/// A field of an object type or interface.
// Each flag is a separate fact a directive states; no two make a state machine.
#[allow(clippy::struct_excessive_bools)]
#[derive(Clone, Debug)]
pub(crate) struct Field {
    pub(crate) ty: ast::Type,
    pub(crate) args: IndexMap<Name, Input>,
    pub(crate) marks: Marks,
    pub(crate) shareable: bool,
    pub(crate) external: bool,
    pub(crate) requires: Option<String>,
    pub(crate) provides: Option<String>,
    pub(crate) override_from: Option<String>,
    pub(crate) override_label: Option<String>,
    pub(crate) list_size: Option<ListSize>,
    /// Named in one of this subgraph's keys of the type.
    pub(crate) in_key: bool,
    /// Named in a `@requires` or `@provides` of this subgraph.
    pub(crate) used: bool,
}

/// An enum value.
#[derive(Clone, Debug, Default)]
pub(crate) struct Value {
    pub(crate) marks: Marks,
}

/// A named type in one subgraph.
#[derive(Clone, Debug)]
pub(crate) struct Type {
    pub(crate) kind: Kind,
    pub(crate) marks: Marks,
    /// Has a definition that is no extension (`extend type` or `@extends`).
    pub(crate) defined: bool,
    /// Marked `@extends` (Federation 1's way to say `extend type`).
    pub(crate) extends: bool,
    pub(crate) keys: Vec<Key>,
    pub(crate) interface_object: bool,
    pub(crate) implements: Vec<Name>,
    pub(crate) fields: IndexMap<Name, Field>,
    pub(crate) inputs: IndexMap<Name, Input>,
    pub(crate) members: Vec<Name>,
    pub(crate) values: IndexMap<Name, Value>,
    pub(crate) specified_by: Option<String>,
}

impl Type {
    pub(crate) fn new(kind: Kind) -> Self {
        Self {
            kind,
            marks: Marks::default(),
            defined: false,
            extends: false,
            keys: Vec::new(),
            interface_object: false,
            implements: Vec::new(),
            fields: IndexMap::default(),
            inputs: IndexMap::default(),
            members: Vec::new(),
            values: IndexMap::default(),
            specified_by: None,
        }
    }
}

/// A directive kept in the supergraph through `@composeDirective`.
#[derive(Clone, Debug)]
pub(crate) struct Composed {
    /// The spec it came from, as `@link(url:)` names it.
    pub(crate) url: Option<String>,
    pub(crate) definition: ast::DirectiveDefinition,
}

/// One subgraph, read.
#[derive(Clone, Debug)]
pub(crate) struct Subgraph {
    pub(crate) name: String,
    pub(crate) url: String,
    /// Federation 1: no `@link` to the federation spec.
    pub(crate) v1: bool,
    pub(crate) types: IndexMap<Name, Type>,
    pub(crate) composed: IndexMap<Name, Composed>,
}
