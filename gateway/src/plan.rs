//! The query planner: a normalized operation in, the subgraph fetches that answer it out.
//!
//! Pure: no I/O, and the same operation always gives the same plan, so plans are computed once
//! and cached. The plan is a set of fetches with dependencies. A root fetch asks a subgraph for
//! root fields; an entity fetch (`_entities`) carries representations — `__typename`, a key and
//! any `@requires` fields — of objects found at a path in the data, and adds fields to them.
//!
//! Planning walks the operation with a current fetch. A field the current subgraph resolves (it
//! owns it, or a `@provides` on the way in covers it) joins the current fetch; any other field
//! moves to an entity fetch on a subgraph that resolves it, reached through one of that
//! subgraph's keys. The key's fields — and a `@requires` — are themselves planned in the
//! current fetch, which may move some of them on in turn (keys that only another subgraph
//! knows). Under an interface or a union, selections are planned per runtime type the subgraph
//! can return. Fetches on one subgraph at one path merge, so each level costs one round trip
//! per subgraph.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt::{self, Write as _};

use apollo_compiler::ast::{self, OperationType};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Node};

use crate::operation::{self, Field, Normalized, Selection};
use crate::supergraph::Supergraph;

mod fetches;
mod items;
mod keys;
mod render;
mod walk;

pub use items::typed_key;
use items::{
    clashes, collect_variables, merge_items, representation_items, typename_field, typename_item,
};
pub use render::{render_items, render_path};

/// One step along a merge path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum PathElem {
    /// A response key; lists on the way are walked through.
    Key(Name),
    /// Only objects whose `__typename` is (or implements) this type.
    Type(Name),
}

/// A selection in a subgraph operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Field {
        /// The key the value has in the data (an alias, the client's or our own).
        key: Name,
        name: Name,
        arguments: Vec<Node<ast::Argument>>,
        items: Vec<Item>,
    },
    On {
        ty: Name,
        items: Vec<Item>,
    },
}

/// One request to one subgraph.
#[derive(Clone, Debug)]
pub struct Fetch {
    pub subgraph: usize,
    /// The subgraph operation's text.
    pub operation: String,
    /// The client variables it uses, forwarded by name.
    pub variables: Vec<Name>,
    /// For `_entities` fetches: what to send and where the answers go.
    pub entity: Option<EntityFetch>,
    /// Fetches whose results must be in the data first.
    pub after: Vec<usize>,
    /// For root fetches: the response keys of its root fields, where its failure shows.
    pub root_keys: Vec<Name>,
}

#[derive(Clone, Debug)]
pub struct EntityFetch {
    /// Where the objects are, from the data's root.
    pub path: Vec<PathElem>,
    /// The representation of each object: `__typename`, key and required fields.
    pub representation: Vec<Item>,
    /// The `__typename` representations carry, where the subgraph knows the type by another
    /// name (an `@interfaceObject`).
    pub typename: Option<Name>,
    /// Data keys of the key fields: an object with any of them null is not sent.
    pub key_fields: Vec<Name>,
    /// When not empty, only objects of (or implementing) one of these types are sent: the
    /// runtime types of one abstract position that share this fetch.
    pub types: Vec<Name>,
    /// The operation's parts, for sending it in one request with other `_entities` fetches
    /// to the same subgraph: the declarations of the client variables it uses, and the
    /// selection of `_entities`.
    pub declarations: Vec<String>,
    pub selection: String,
    /// The data keys of the fields it fills in each object: where its failure shows.
    pub field_keys: Vec<Name>,
}

/// A plan: fetches in an order where each comes after those it depends on.
#[derive(Clone, Debug)]
pub struct QueryPlan {
    pub kind: OperationType,
    pub fetches: Vec<Fetch>,
    pub service_names: Vec<String>,
}

/// An operation no combination of subgraphs can answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(pub String);

/// Plans `operation` over `supergraph`.
pub fn plan(supergraph: &Supergraph, operation: &Normalized) -> Result<QueryPlan, PlanError> {
    let mut planner = Planner {
        supergraph,
        groups: Vec::new(),
        field_sets: std::cell::RefCell::default(),
        touched: Vec::new(),
        in_progress: Vec::new(),
        reach: Vec::new(),
        depth: 0,
        reserved: Reserved::of(operation),
    };
    let root = &operation.root_type;
    let mut previous_root: Option<usize> = None;
    for field in &operation.fields {
        if field.name.starts_with("__") {
            continue;
        }
        let candidates = supergraph.field_subgraphs(root, &field.name);
        if candidates.is_empty() {
            return Err(PlanError(format!(
                "no subgraph resolves {root}.{}",
                field.name
            )));
        }
        let group = if operation.kind == OperationType::Mutation {
            match previous_root {
                // Mutation fields run one after another: consecutive ones on one subgraph share
                // a request, which runs them in order too.
                Some(last)
                    if candidates.contains(&planner.groups[last].subgraph)
                        && planner.groups.len() == last + 1 =>
                {
                    last
                }
                _ => {
                    let after: BTreeSet<usize> = (0..planner.groups.len()).collect();
                    planner.new_group(candidates[0], None, Vec::new(), after)
                }
            }
        } else {
            // The subgraph that resolves most of the selection in place; among equals,
            // one already asked.
            let best = candidates
                .iter()
                .copied()
                .max_by_key(|&candidate| {
                    let asked = planner
                        .groups
                        .iter()
                        .any(|g| g.entity.is_none() && g.subgraph == candidate);
                    (
                        planner.score(candidate, root, field, None),
                        asked,
                        usize::MAX - candidate,
                    )
                })
                .expect("candidates is not empty");
            planner
                .groups
                .iter()
                .position(|group| group.entity.is_none() && group.subgraph == best)
                .unwrap_or_else(|| planner.new_group(best, None, Vec::new(), BTreeSet::new()))
        };
        previous_root = Some(group);
        let items =
            planner.plan_fields(group, root, std::slice::from_ref(field), &[], None, false)?;
        merge_items(&mut planner.groups[group].items, items);
    }
    Ok(planner.finish(operation))
}

#[derive(Clone)]
struct Group {
    subgraph: usize,
    entity: Option<EntityTarget>,
    path: Vec<PathElem>,
    items: Vec<Item>,
    representation: Vec<Item>,
    key_fields: Vec<Name>,
    types: Vec<Name>,
    after: BTreeSet<usize>,
}

#[derive(Clone, PartialEq, Eq)]
struct EntityTarget {
    /// The type the entity has in the subgraph: `... on ty` in the fetch.
    ty: Name,
    typename: Option<Name>,
    /// The fetch that produced the objects.
    parent: usize,
}

struct Planner<'a> {
    supergraph: &'a Supergraph,
    groups: Vec<Group>,
    /// Field sets parsed so far (keys, requirements, provides): each is parsed and validated
    /// once per plan, however often planning consults it.
    field_sets: std::cell::RefCell<HashMap<(Name, String), Vec<Field>>>,
    /// Entity fetches reached while planning keys and requirements, per nesting.
    touched: Vec<BTreeSet<usize>>,
    /// Remote fields being planned: one met again depends on itself.
    in_progress: Vec<(usize, Name, Vec<PathElem>, Name)>,
    /// Per field being planned, the subgraphs that could answer it where it is: those that
    /// resolve it and can reach its parent object (by a key of the parent's, or because they
    /// could answer the parent's own field).
    reach: Vec<Vec<usize>>,
    depth: usize,
    reserved: Reserved,
}

/// Keys for the fields the planner adds (keys and requirements) that no client field can
/// take. A client field whose response key is a key field's name but is another field (an
/// alias, or arguments) would otherwise share its place in the data, and the representation
/// would carry the client's value instead of the key: `{ me { id: nickname reviews { … } } }`
/// must not fetch reviews of the user whose id is the caller's nickname.
struct Reserved {
    /// Starts no client response key in the operation.
    prefix: String,
    /// Client response keys that name something other than the plain field of that name.
    contested: HashSet<Name>,
}

impl Reserved {
    fn of(operation: &Normalized) -> Self {
        fn field(field: &Field, keys: &mut Vec<Name>, contested: &mut HashSet<Name>) {
            if field.key != field.name || !field.arguments.is_empty() {
                contested.insert(field.key.clone());
            }
            if field.key.starts_with("_pg") {
                keys.push(field.key.clone());
            }
            walk(&field.selections, keys, contested);
        }
        fn walk(selections: &[Selection], keys: &mut Vec<Name>, contested: &mut HashSet<Name>) {
            for selection in selections {
                match selection {
                    Selection::Field(inner) => field(inner, keys, contested),
                    Selection::Fragment(fragment) => walk(&fragment.selections, keys, contested),
                }
            }
        }
        let mut keys = Vec::new();
        let mut contested = HashSet::new();
        for root in &operation.fields {
            field(root, &mut keys, &mut contested);
        }
        let mut prefix = "_pg_".to_owned();
        let mut n = 0;
        while keys.iter().any(|key| key.starts_with(&prefix)) {
            prefix = format!("_pg{n}_");
            n += 1;
        }
        Self { prefix, contested }
    }

    /// `fields` (a key or a requirement) with keys of their own where a client's field could
    /// take theirs; a field with arguments always gets one, so a client's selection of it with
    /// other arguments cannot collide with it.
    fn keys(&self, fields: Vec<Field>) -> Vec<Field> {
        fields.into_iter().map(|field| self.key(field)).collect()
    }

    fn key(&self, mut field: Field) -> Field {
        if !field.arguments.is_empty() {
            let mut hasher = std::hash::DefaultHasher::new();
            std::hash::Hash::hash(
                &field
                    .arguments
                    .iter()
                    .map(|a| format!("{}:{}", a.name, a.value))
                    .collect::<Vec<_>>(),
                &mut hasher,
            );
            let hash = std::hash::Hasher::finish(&hasher) % 1_000_000;
            field.key = Name::new_unchecked(&format!("{}{}_{hash}", self.prefix, field.name));
        } else if self.contested.contains(&field.name) {
            field.key = Name::new_unchecked(&format!("{}_{}", self.prefix, field.name));
        }
        field.key_json = operation::json_key(&field.key);
        field.selections = self.selection_keys(field.selections);
        field
    }

    fn selection_keys(&self, selections: Vec<Selection>) -> Vec<Selection> {
        selections
            .into_iter()
            .map(|selection| match selection {
                Selection::Field(field) => Selection::Field(self.key(field)),
                Selection::Fragment(mut fragment) => {
                    fragment.selections = self.selection_keys(fragment.selections);
                    Selection::Fragment(fragment)
                }
            })
            .collect()
    }
}

const MAX_DEPTH: usize = 64;
