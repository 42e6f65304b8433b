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

impl Planner<'_> {
    fn new_group(
        &mut self,
        subgraph: usize,
        entity: Option<EntityTarget>,
        path: Vec<PathElem>,
        after: BTreeSet<usize>,
    ) -> usize {
        self.groups.push(Group {
            subgraph,
            entity,
            path,
            items: Vec::new(),
            representation: Vec::new(),
            key_fields: Vec::new(),
            types: Vec::new(),
            after,
        });
        self.groups.len() - 1
    }

    fn field_set(&self, ty: &Name, source: &str) -> Result<Vec<Field>, PlanError> {
        let key = (ty.clone(), source.to_owned());
        if let Some(fields) = self.field_sets.borrow().get(&key) {
            return Ok(fields.clone());
        }
        let fields =
            operation::field_set(&self.supergraph.schema, ty, source).map_err(PlanError)?;
        self.field_sets.borrow_mut().insert(key, fields.clone());
        Ok(fields)
    }

    /// The type `parent.field` has on `parent` itself, which may be narrower than the type of
    /// the interface field the client selected.
    fn field_type(&self, parent: &Name, field: &Field) -> Name {
        self.supergraph
            .schema
            .type_field(parent, &field.name)
            .map_or_else(
                |_| field.type_name().clone(),
                |d| d.ty.inner_named_type().clone(),
            )
    }

    /// How many fields of `field`'s selection `subgraph` resolves in place.
    fn score(
        &self,
        subgraph: usize,
        parent: &Name,
        field: &Field,
        provided: Option<&[Field]>,
    ) -> usize {
        if !self.local(subgraph, parent, field, provided, false) {
            return 0;
        }
        let child = &self.field_type(parent, field);
        let schema = &self.supergraph.schema;
        let child_provided: Option<Vec<Field>> =
            match provided.and_then(|provided| provided.iter().find(|p| p.name == field.name)) {
                Some(outer) => Some(operation::collect(schema, &outer.selections, child)),
                None => self
                    .provides(parent, &field.name, subgraph)
                    .and_then(|source| self.field_set(child, &source).ok()),
            };
        let types = if operation::is_object(schema, child) {
            vec![child.clone()]
        } else {
            let mut types = self.supergraph.runtime_types(child, subgraph);
            types.push(child.clone());
            types
        };
        1 + types
            .iter()
            .map(|ty| {
                let provided = child_provided.as_ref().map(|p| {
                    operation::collect(
                        schema,
                        &p.iter().cloned().map(Selection::Field).collect::<Vec<_>>(),
                        ty,
                    )
                });
                operation::collect(schema, &field.selections, ty)
                    .iter()
                    .map(|sub| self.score(subgraph, ty, sub, provided.as_deref()))
                    .sum::<usize>()
            })
            .sum::<usize>()
    }

    /// Whether subgraph `subgraph` can resolve `parent.field` in place.
    fn local(
        &self,
        subgraph: usize,
        parent: &Name,
        field: &Field,
        provided: Option<&[Field]>,
        entity_root: bool,
    ) -> bool {
        if field.name == "__typename" {
            return true;
        }
        if self.supergraph.placement(parent, subgraph).is_none() && !self.is_root(parent) {
            return false;
        }
        if provided.is_some_and(|provided| provided.iter().any(|p| p.name == field.name)) {
            return true;
        }
        if !self
            .supergraph
            .field_subgraphs(parent, &field.name)
            .contains(&subgraph)
        {
            return false;
        }
        entity_root || self.requires(parent, &field.name, subgraph).is_none()
    }

    /// The subgraphs that could answer `parent.field` at the position being planned in
    /// `subgraph`: see `reach`.
    fn sharing(&self, subgraph: usize, parent: &Name, field: &str) -> Vec<usize> {
        let reached = self.reach.last();
        self.supergraph
            .field_subgraphs(parent, field)
            .into_iter()
            .filter(|&other| {
                other == subgraph
                    || reached.is_some_and(|reached| reached.contains(&other))
                    || self
                        .supergraph
                        .resolvable_keys(parent, other)
                        .next()
                        .is_some()
            })
            .collect()
    }

    fn is_root(&self, ty: &Name) -> bool {
        let schema = &self.supergraph.schema.schema_definition;
        [&schema.query, &schema.mutation, &schema.subscription]
            .into_iter()
            .flatten()
            .any(|root| root.name == *ty)
    }

    fn placement_of(
        &self,
        parent: &Name,
        field: &str,
        subgraph: usize,
    ) -> Option<&crate::supergraph::FieldPlacement> {
        self.supergraph
            .fields
            .get(&(parent.clone(), Name::new_unchecked(field)))?
            .iter()
            .find(|placement| placement.subgraph == Some(subgraph) && !placement.external)
    }

    fn requires(&self, parent: &Name, field: &str, subgraph: usize) -> Option<String> {
        self.placement_of(parent, field, subgraph)?.requires.clone()
    }

    fn provides(&self, parent: &Name, field: &str, subgraph: usize) -> Option<String> {
        self.placement_of(parent, field, subgraph)?.provides.clone()
    }

    /// Plans `fields` of an object (or interface) `parent` at `path` in fetch `group`, and
    /// returns what that fetch selects there.
    fn plan_fields(
        &mut self,
        group: usize,
        parent: &Name,
        fields: &[Field],
        path: &[PathElem],
        provided: Option<&[Field]>,
        entity_root: bool,
    ) -> Result<Vec<Item>, PlanError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(PlanError(format!(
                "planning {parent} at {} nests too deep: are keys or requirements circular?",
                render_path(path)
            )));
        }
        let result = self.plan_fields_inner(group, parent, fields, path, provided, entity_root);
        self.depth -= 1;
        result
    }

    fn plan_fields_inner(
        &mut self,
        group: usize,
        parent: &Name,
        fields: &[Field],
        path: &[PathElem],
        provided: Option<&[Field]>,
        entity_root: bool,
    ) -> Result<Vec<Item>, PlanError> {
        let subgraph = self.groups[group].subgraph;
        let mut items = Vec::new();
        let mut remote = Vec::new();
        for field in fields {
            if !self.local(subgraph, parent, field, provided, entity_root) {
                remote.push(field);
                continue;
            }
            let routed;
            let field = match self.route_stranded(group, parent, field, path, &mut items)? {
                Some(rest) => {
                    routed = rest;
                    &routed
                }
                None => field,
            };
            let mut sub = Vec::new();
            if !field.selections.is_empty() {
                let child_provided = match provided
                    .and_then(|provided| provided.iter().find(|p| p.name == field.name))
                {
                    Some(outer) => Some(outer.selections.clone()),
                    None => match self.provides(parent, &field.name, subgraph) {
                        Some(source) => Some(
                            self.field_set(&self.field_type(parent, field), &source)?
                                .into_iter()
                                .map(Selection::Field)
                                .collect(),
                        ),
                        None => None,
                    },
                };
                let mut child_path = path.to_vec();
                child_path.push(PathElem::Key(field.key.clone()));
                let declared = self.field_type(parent, field);
                // The subgraph may declare the field narrower (an object where the supergraph
                // has a union): plan for what it declares, and keep `__typename` for the
                // response builder.
                let here = self
                    .placement_of(parent, &field.name, subgraph)
                    .and_then(|p| p.type_in_subgraph.as_deref())
                    .map(|ty| {
                        Name::new_unchecked(ty.trim_matches(|c| matches!(c, '[' | ']' | '!' | ' ')))
                    })
                    .filter(|ty| self.supergraph.schema.types.contains_key(ty))
                    .unwrap_or_else(|| declared.clone());
                let sharing = self.sharing(subgraph, parent, &field.name);
                self.reach.push(sharing.clone());
                sub = self.plan_position(
                    group,
                    &here,
                    &field.selections,
                    &child_path,
                    child_provided.as_deref(),
                    &sharing,
                )?;
                self.reach.pop();
                if here != declared && !operation::is_object(&self.supergraph.schema, &declared) {
                    merge_items(&mut sub, vec![typename_item()]);
                }
            }
            // Under a fragment, a field whose type differs in this subgraph could clash with
            // a sibling fragment's field of the same key: it travels under a key of its own,
            // which the response builder knows to look for.
            let key = if matches!(path.last(), Some(PathElem::Type(_)))
                && self
                    .placement_of(parent, &field.name, subgraph)
                    .and_then(|p| p.type_in_subgraph.as_deref())
                    .is_some_and(|ty| ty != field.ty.to_string())
            {
                typed_key(parent, &field.key)
            } else {
                field.key.clone()
            };
            merge_items(
                &mut items,
                vec![Item::Field {
                    key,
                    name: field.name.clone(),
                    arguments: field.arguments.clone(),
                    items: sub,
                }],
            );
        }
        for field in remote {
            self.plan_remote(group, parent, field, path, provided, &mut items)?;
        }
        Ok(items)
    }

    /// Whether `parent.field` can be had from `subgraph`: in place, or through a key.
    fn reachable(&self, subgraph: usize, parent: &Name, field: &Field) -> bool {
        self.local(subgraph, parent, field, None, false)
            || self
                .supergraph
                .field_subgraphs(parent, &field.name)
                .into_iter()
                .any(|candidate| {
                    self.supergraph
                        .resolvable_keys(parent, candidate)
                        .any(|key| self.key_is_local(subgraph, parent, key, None))
                        || self.interface_object_for(parent, candidate).is_some()
                })
    }

    /// Subfields of `field` that no key lets the current subgraph reach (a value type, or an
    /// entity whose owner has no key for it) can still come through `field` itself, asked of
    /// another subgraph that resolves it — a shared root field, or a field of an entity. Plans
    /// those there and returns `field` without them, or `None` when nothing is stranded.
    fn route_stranded(
        &mut self,
        group: usize,
        parent: &Name,
        field: &Field,
        path: &[PathElem],
        items: &mut Vec<Item>,
    ) -> Result<Option<Field>, PlanError> {
        let subgraph = self.groups[group].subgraph;
        let child = self.field_type(parent, field);
        if field.selections.is_empty() || !operation::is_object(&self.supergraph.schema, &child) {
            return Ok(None);
        }
        if self.provides(parent, &field.name, subgraph).is_some() {
            return Ok(None);
        }
        let children = operation::collect(&self.supergraph.schema, &field.selections, &child);
        let (stranded, kept): (Vec<Field>, Vec<Field>) = children
            .into_iter()
            .partition(|c| !self.reachable(subgraph, &child, c));
        if stranded.is_empty() {
            return Ok(None);
        }
        let mut kept = kept;
        let mut stranded = stranded;
        while !stranded.is_empty() {
            let first = stranded.remove(0);
            let Some(other) = self
                .supergraph
                .field_subgraphs(parent, &field.name)
                .into_iter()
                .find(|&other| other != subgraph && self.local(other, &child, &first, None, false))
            else {
                kept.push(first);
                continue;
            };
            let (mut there, rest): (Vec<Field>, Vec<Field>) = std::mem::take(&mut stranded)
                .into_iter()
                .partition(|c| self.local(other, &child, c, None, false));
            stranded = rest;
            there.insert(0, first);
            let mut routed = field.clone();
            routed.selections = there.into_iter().map(Selection::Field).collect();
            if self.is_root(parent) && self.groups[group].entity.is_none() {
                let root = self
                    .groups
                    .iter()
                    .position(|g| g.entity.is_none() && g.subgraph == other)
                    .unwrap_or_else(|| self.new_group(other, None, Vec::new(), BTreeSet::new()));
                let planned = self.plan_fields(root, parent, &[routed], path, None, false)?;
                merge_items(&mut self.groups[root].items, planned);
            } else {
                let entity = self.jump(
                    group, subgraph, parent, other, parent, None, path, None, items,
                )?;
                let planned = self.plan_fields(entity, parent, &[routed], path, None, true)?;
                self.add_to_entity(entity, parent, planned);
            }
        }
        let mut here = field.clone();
        here.selections = kept.into_iter().map(Selection::Field).collect();
        Ok(Some(here))
    }

    /// Plans selections under a field of type `ty` in fetch `group`.
    fn plan_position(
        &mut self,
        group: usize,
        ty: &Name,
        selections: &[Selection],
        path: &[PathElem],
        provided: Option<&[Selection]>,
        sharing: &[usize],
    ) -> Result<Vec<Item>, PlanError> {
        let schema = &self.supergraph.schema;
        let subgraph = self.groups[group].subgraph;
        if operation::is_object(schema, ty) {
            let fields = operation::collect(schema, selections, ty);
            let provided = provided.map(|p| operation::collect(schema, p, ty));
            let mut items =
                self.plan_fields(group, ty, &fields, path, provided.as_deref(), false)?;
            if items.is_empty() {
                items.push(typename_item());
            }
            return Ok(items);
        }
        if !matches!(
            schema.types.get(ty),
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_))
        ) {
            return Ok(Vec::new());
        }
        if self
            .supergraph
            .placement(ty, subgraph)
            .is_some_and(|placement| placement.is_interface_object)
        {
            return self.plan_interface_object(group, ty, selections, path, provided);
        }
        let mut runtime_types = self.supergraph.runtime_types(ty, subgraph);
        // A field that several subgraphs resolve (shareable) must answer alike whichever one
        // is asked: of its abstract type, only the members all of them know are selected, and
        // a member's fields that were not selected are null.
        if sharing.len() > 1 {
            let known: Vec<Vec<Name>> = sharing
                .iter()
                .map(|&other| self.supergraph.runtime_types(ty, other))
                .collect();
            runtime_types.retain(|runtime| known.iter().all(|members| members.contains(runtime)));
        }
        let mut items = vec![typename_item()];
        // No implementation here: the interface's own fields are all there is to plan, and a
        // field no subgraph can give makes the operation unsatisfiable.
        if runtime_types.is_empty() {
            let fields = operation::collect(schema, selections, ty);
            let planned = self.plan_fields(group, ty, &fields, path, None, false)?;
            merge_items(&mut items, planned);
            return Ok(items);
        }
        // Fields of the interface that this subgraph resolves for every implementation stay
        // on the interface: no fragment per type.
        if let Some(fields) = self.shared_interface_fields(subgraph, ty, selections, &runtime_types)
        {
            let provided = provided.map(|p| operation::collect(schema, p, ty));
            let planned = self.plan_fields(group, ty, &fields, path, provided.as_deref(), false)?;
            merge_items(&mut items, planned);
            return Ok(items);
        }
        for runtime in runtime_types {
            let fields = operation::collect(schema, selections, &runtime);
            if fields.iter().all(|field| field.name == "__typename") {
                continue;
            }
            let provided = provided.map(|p| operation::collect(schema, p, &runtime));
            let mut typed_path = path.to_vec();
            typed_path.push(PathElem::Type(runtime.clone()));
            let planned = self.plan_fields(
                group,
                &runtime,
                &fields,
                &typed_path,
                provided.as_deref(),
                false,
            )?;
            merge_items(
                &mut items,
                vec![Item::On {
                    ty: runtime,
                    items: planned,
                }],
            );
        }
        Ok(items)
    }

    /// The selections as fields of interface `ty`, when they are only fields that `subgraph`
    /// resolves in place on the interface and on each of `runtime_types`.
    fn shared_interface_fields(
        &self,
        subgraph: usize,
        ty: &Name,
        selections: &[Selection],
        runtime_types: &[Name],
    ) -> Option<Vec<Field>> {
        let schema = &self.supergraph.schema;
        schema.get_interface(ty)?;
        let mut fields = Vec::new();
        for selection in selections {
            let Selection::Field(field) = selection else {
                return None;
            };
            let everywhere = self.local(subgraph, ty, field, None, false)
                && runtime_types
                    .iter()
                    .all(|runtime| self.local(subgraph, runtime, field, None, false));
            let simple_child =
                field.selections.is_empty() || operation::is_object(schema, field.type_name());
            if !everywhere || !simple_child {
                return None;
            }
            fields.push(field.clone());
        }
        Some(fields)
    }

    /// An interface the subgraph knows only as an `@interfaceObject`: it resolves the
    /// interface's own fields, and the real type and everything else come from a subgraph
    /// that knows the implementations, through the interface's key.
    fn plan_interface_object(
        &mut self,
        group: usize,
        ty: &Name,
        selections: &[Selection],
        path: &[PathElem],
        provided: Option<&[Selection]>,
    ) -> Result<Vec<Item>, PlanError> {
        let schema = &self.supergraph.schema;
        let subgraph = self.groups[group].subgraph;
        // The interface's own fields are planned on the interface: this subgraph or another
        // interface object resolves them without knowing the real types.
        let fields = operation::collect(schema, selections, ty);
        let provided = provided.map(|p| operation::collect(schema, p, ty));
        let here: Vec<Field> = fields
            .iter()
            .filter(|field| field.name != "__typename")
            .cloned()
            .collect();
        let mut rest: Vec<Selection> = selections
            .iter()
            .filter(|selection| matches!(selection, Selection::Fragment(f) if f.on != *ty))
            .cloned()
            .collect();
        let typename_asked = fields.iter().any(|field| field.name == "__typename");
        let mut items = self.plan_fields(group, ty, &here, path, provided.as_deref(), false)?;
        if rest.is_empty() && !typename_asked {
            return Ok(items);
        }
        let target = (0..self.supergraph.subgraphs.len())
            .find(|&other| {
                other != subgraph
                    && self
                        .supergraph
                        .placement(ty, other)
                        .is_some_and(|placement| {
                            !placement.is_interface_object && placement.resolvable
                        })
                    && self.supergraph.resolvable_keys(ty, other).next().is_some()
            })
            .ok_or_else(|| {
                PlanError(format!(
                    "no subgraph can tell the type of {ty} objects at {}",
                    render_path(path)
                ))
            })?;
        rest.push(Selection::Field(typename_field()));
        let entity = self.jump(
            group, subgraph, ty, target, ty, None, path, None, &mut items,
        )?;
        let planned = self.plan_position(entity, ty, &rest, path, None, &[])?;
        self.add_to_entity(entity, ty, planned);
        Ok(items)
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_remote(
        &mut self,
        group: usize,
        parent: &Name,
        field: &Field,
        path: &[PathElem],
        provided: Option<&[Field]>,
        items: &mut Vec<Item>,
    ) -> Result<(), PlanError> {
        let options = self.choose_target(group, parent, field, path)?;
        let key = (
            self.groups[group].subgraph,
            parent.clone(),
            path.to_vec(),
            field.key.clone(),
        );
        if self.in_progress.contains(&key) {
            return Err(PlanError(format!(
                "{parent}.{} at {} depends on itself through keys or requirements",
                field.name,
                render_path(path)
            )));
        }
        self.in_progress.push(key);
        // Options in order of preference; one that cannot be planned is rolled back.
        let mut failure = None;
        for option in options {
            let saved = (self.groups.clone(), items.clone(), self.touched.clone());
            match self.plan_remote_via(group, parent, field, path, provided, items, option) {
                Ok(()) => {
                    failure = None;
                    break;
                }
                Err(error) => {
                    (self.groups, *items, self.touched) = saved;
                    failure.get_or_insert(error);
                }
            }
        }
        self.in_progress.pop();
        failure.map_or(Ok(()), Err)
    }

    #[allow(clippy::too_many_arguments)]
    fn plan_remote_via(
        &mut self,
        group: usize,
        parent: &Name,
        field: &Field,
        path: &[PathElem],
        provided: Option<&[Field]>,
        items: &mut Vec<Item>,
        (target, target_ty, typename): (usize, Name, Option<Name>),
    ) -> Result<(), PlanError> {
        let subgraph = self.groups[group].subgraph;
        let requires = self.requires(&target_ty, &field.name, target).or_else(|| {
            (target_ty != *parent)
                .then(|| self.requires(parent, &field.name, target))
                .flatten()
        });
        let entity = self.jump(
            group,
            subgraph,
            parent,
            target,
            &target_ty,
            typename.clone(),
            path,
            provided,
            items,
        )?;
        let entity = match requires {
            None => entity,
            Some(source) => {
                let needed = self.reserved.keys(self.field_set(parent, &source)?);
                // The requirement is planned from the current fetch; the entity fetch that
                // needs it waits for every fetch that planning reached.
                self.touched.push(BTreeSet::new());
                let planned = self.plan_fields(group, parent, &needed, path, provided, false);
                let touched = self.touched.pop().unwrap_or_default();
                merge_items(items, planned?);
                let representation = representation_items(&needed);
                let entity = self.requirement_group(entity, touched, &representation);
                merge_items(&mut self.groups[entity].representation, representation);
                entity
            }
        };
        if let Some(frame) = self.touched.last_mut() {
            frame.insert(entity);
        }
        let planned = self.plan_fields(
            entity,
            &target_ty,
            std::slice::from_ref(field),
            path,
            None,
            true,
        )?;
        self.add_to_entity(entity, &target_ty, planned);
        Ok(())
    }

    /// An entity fetch like `entity` that also waits for `touched` and whose representation
    /// can take `representation` (a field required with other arguments needs a fetch of its
    /// own): `entity` itself when it fits, or a twin that does.
    fn requirement_group(
        &mut self,
        entity: usize,
        touched: BTreeSet<usize>,
        representation: &[Item],
    ) -> usize {
        let touched: BTreeSet<usize> = touched.into_iter().filter(|&t| t != entity).collect();
        let base = &self.groups[entity];
        if touched.is_subset(&base.after) && !clashes(&base.representation, representation) {
            return entity;
        }
        let mut after = base.after.clone();
        after.extend(touched);
        let twin = self.groups.iter().position(|group| {
            group.subgraph == base.subgraph
                && group.entity == base.entity
                && group.path == base.path
                && group.after == after
                && !clashes(&group.representation, representation)
        });
        if let Some(twin) = twin {
            return twin;
        }
        let (subgraph, target, path) = (base.subgraph, base.entity.clone(), base.path.clone());
        let kept: Vec<Item> = base
            .representation
            .iter()
            .filter(|item| !clashes(std::slice::from_ref(*item), representation))
            .cloned()
            .collect();
        let key_fields = base.key_fields.clone();
        let twin = self.new_group(subgraph, target, path, after);
        self.groups[twin].representation = kept;
        self.groups[twin].key_fields = key_fields;
        twin
    }

    fn add_to_entity(&mut self, entity: usize, ty: &Name, planned: Vec<Item>) {
        merge_items(
            &mut self.groups[entity].items,
            vec![Item::On {
                ty: ty.clone(),
                items: planned,
            }],
        );
    }

    /// Which subgraph resolves `parent.field` for the current fetch, and under which type
    /// name it knows `parent`.
    fn choose_target(
        &self,
        group: usize,
        parent: &Name,
        field: &Field,
        path: &[PathElem],
    ) -> Result<Vec<(usize, Name, Option<Name>)>, PlanError> {
        let subgraph = self.groups[group].subgraph;
        let mut options = Vec::new();
        for candidate in self.supergraph.field_subgraphs(parent, &field.name) {
            if candidate == subgraph {
                // Resolves it, but only through an entity call (a `@requires`).
                if self
                    .supergraph
                    .resolvable_keys(parent, candidate)
                    .next()
                    .is_some()
                {
                    options.push((candidate, parent.clone(), None));
                }
                continue;
            }
            if self.supergraph.placement(parent, candidate).is_some() {
                if self
                    .supergraph
                    .resolvable_keys(parent, candidate)
                    .next()
                    .is_some()
                {
                    options.push((candidate, parent.clone(), None));
                }
                continue;
            }
            if let Some(interface) = self.interface_object_for(parent, candidate) {
                options.push((candidate, interface.clone(), Some(interface)));
            }
        }
        // Fields an @interfaceObject adds to an interface, asked on an implementation.
        if options.is_empty() {
            for interface in self.interfaces_of(parent) {
                for candidate in self.supergraph.field_subgraphs(&interface, &field.name) {
                    if candidate != subgraph
                        && self
                            .supergraph
                            .placement(&interface, candidate)
                            .is_some_and(|p| p.is_interface_object)
                    {
                        options.push((candidate, interface.clone(), Some(interface.clone())));
                    }
                }
            }
        }
        if options.is_empty() {
            return Err(PlanError(format!(
                "cannot reach {parent}.{} at {} from subgraph {}: no subgraph that resolves it \
                 can fetch {parent} by a key",
                field.name,
                render_path(path),
                self.supergraph.subgraphs[subgraph].name
            )));
        }
        // Prefer a subgraph already fetched at this path, then one whose key this fetch holds.
        let rank = |(candidate, ty, _): &(usize, Name, Option<Name>)| {
            let fetched = self.groups.iter().any(|g| {
                g.subgraph == *candidate
                    && g.path == path
                    && g.entity
                        .as_ref()
                        .is_some_and(|e| e.parent == group && e.ty == *ty)
            });
            let key_here = self
                .supergraph
                .resolvable_keys(ty, *candidate)
                .any(|key| self.key_is_local(subgraph, parent, key, None));
            (!fetched, !key_here)
        };
        options.sort_by_key(rank);
        Ok(options)
    }

    fn key_is_local(
        &self,
        subgraph: usize,
        parent: &Name,
        key: &str,
        provided: Option<&[Field]>,
    ) -> bool {
        let Ok(fields) = self.field_set(parent, key) else {
            return false;
        };
        fields
            .iter()
            .all(|field| self.local(subgraph, parent, field, provided, false))
    }

    /// The interface of `ty` that `subgraph` knows as an `@interfaceObject` with a key.
    fn interface_object_for(&self, ty: &Name, subgraph: usize) -> Option<Name> {
        self.interfaces_of(ty).into_iter().find(|interface| {
            self.supergraph
                .placement(interface, subgraph)
                .is_some_and(|p| p.is_interface_object)
                && self
                    .supergraph
                    .resolvable_keys(interface, subgraph)
                    .next()
                    .is_some()
        })
    }

    fn interfaces_of(&self, ty: &Name) -> Vec<Name> {
        match self.supergraph.schema.types.get(ty) {
            Some(ExtendedType::Object(object)) => object
                .implements_interfaces
                .iter()
                .map(|i| i.name.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Makes (or reuses) the entity fetch on `target` for the objects of type `parent` at
    /// `path`, and plans the key it needs into the current fetch's `items`.
    #[allow(clippy::too_many_arguments)]
    fn jump(
        &mut self,
        group: usize,
        subgraph: usize,
        parent: &Name,
        target: usize,
        target_ty: &Name,
        typename: Option<Name>,
        path: &[PathElem],
        provided: Option<&[Field]>,
        items: &mut Vec<Item>,
    ) -> Result<usize, PlanError> {
        let keys: Vec<String> = self
            .supergraph
            .resolvable_keys(target_ty, target)
            .map(str::to_owned)
            .collect();
        let key = keys
            .iter()
            .find(|key| self.key_is_local(subgraph, parent, key, provided))
            .or_else(|| keys.first())
            .ok_or_else(|| {
                PlanError(format!(
                    "{} has no key for {target_ty}",
                    self.supergraph.subgraphs[target].name
                ))
            })?
            .clone();
        let key_fields = self.reserved.keys(self.field_set(parent, &key)?);
        let entity_target = EntityTarget {
            ty: target_ty.clone(),
            typename,
            parent: group,
        };
        let existing = self.groups.iter().position(|g| {
            g.subgraph == target
                && g.path == path
                && g.entity.as_ref() == Some(&entity_target)
                && g.after
                    .iter()
                    .all(|&a| a == group || self.groups[a].path != path)
        });
        // At the root of an entity fetch, a key made of fields that fetch was sent is in the
        // data already: the new fetch needs nothing of this one and can run beside it.
        let current = &self.groups[group];
        let in_hand = current.entity.is_some()
            && current.path == path
            && key_fields.iter().all(|field| {
                field.selections.is_empty()
                    && current.representation.iter().any(|item| {
                        matches!(item, Item::Field { key, name, .. }
                            if *key == field.key && *name == field.name)
                    })
            });
        let (renamed, touched, base) = if in_hand {
            let mut representation = vec![typename_item()];
            representation.extend(representation_items(&key_fields));
            (representation, current.after.clone(), None)
        } else {
            self.touched.push(BTreeSet::new());
            let planned = self.plan_fields(group, parent, &key_fields, path, provided, false);
            let touched = self.touched.pop().unwrap_or_default();
            let mut planned = planned?;
            planned.insert(0, typename_item());
            merge_items(items, planned);
            // The key's fields may come from other fetches at this path: the representation
            // names them all, read from where they land in the data.
            let mut representation = vec![typename_item()];
            representation.extend(representation_items(&key_fields));
            (representation, touched, Some(group))
        };
        let entity = if let Some(existing) = existing {
            self.groups[existing].after.extend(touched);
            existing
        } else {
            let mut after = touched;
            after.extend(base);
            let entity = self.new_group(target, Some(entity_target), path.to_vec(), after);
            self.groups[entity].key_fields = key_fields.iter().map(|f| f.key.clone()).collect();
            entity
        };
        merge_items(&mut self.groups[entity].representation, renamed);
        if let Some(frame) = self.touched.last_mut() {
            frame.insert(entity);
        }
        Ok(entity)
    }

    /// Moves fetch `from`'s selections and representation into fetch `into`, and makes what
    /// waited for `from` wait for `into`; `from` is left empty, to be dropped.
    fn fold(&mut self, from: usize, into: usize) {
        let items = std::mem::take(&mut self.groups[from].items);
        merge_items(&mut self.groups[into].items, items);
        let representation = std::mem::take(&mut self.groups[from].representation);
        merge_items(&mut self.groups[into].representation, representation);
        for group in &mut self.groups {
            if group.after.remove(&from) {
                group.after.insert(into);
            }
        }
        self.groups[into].after.remove(&into);
    }

    /// Entity fetches on one subgraph for different runtime types of one abstract position —
    /// the members of a union, the implementations of an interface — become one fetch that
    /// sends every member's objects: one round trip instead of one per type.
    fn merge_runtime_types(&mut self) {
        for first in 0..self.groups.len() {
            let Some(PathElem::Type(ty)) = self.groups[first].path.last().cloned() else {
                continue;
            };
            if self.groups[first].entity.is_none() || self.groups[first].items.is_empty() {
                continue;
            }
            let mut types = vec![ty];
            for other in first + 1..self.groups.len() {
                let (a, b) = (&self.groups[first], &self.groups[other]);
                let (Some(ea), Some(eb)) = (&a.entity, &b.entity) else {
                    continue;
                };
                let Some(PathElem::Type(other_ty)) = b.path.last() else {
                    continue;
                };
                let prefix = a.path.len() - 1;
                let mergeable = a.subgraph == b.subgraph
                    && b.path.len() == a.path.len()
                    && a.path[..prefix] == b.path[..prefix]
                    && ea.typename == eb.typename
                    && ea.parent == eb.parent
                    && a.after == b.after
                    && a.representation == b.representation
                    && a.key_fields == b.key_fields
                    && !b.items.is_empty();
                if !mergeable {
                    continue;
                }
                types.push(other_ty.clone());
                self.fold(other, first);
            }
            if types.len() > 1 {
                self.groups[first].path.pop();
                self.groups[first].types = types;
            }
        }
    }

    /// Whether fetch `from` waits, directly or through others, for fetch `to`.
    fn waits_for(&self, from: usize, to: usize) -> bool {
        let mut stack: Vec<usize> = self.groups[from].after.iter().copied().collect();
        let mut seen = BTreeSet::new();
        while let Some(group) = stack.pop() {
            if group == to {
                return true;
            }
            if seen.insert(group) {
                stack.extend(self.groups[group].after.iter().copied());
            }
        }
        false
    }

    /// An entity fetch whose objects, subgraph and type another fetch at the same path shares,
    /// and which waits for nothing that other fetch does not wait for too, joins it: its fields
    /// come a little later, in one round trip fewer. Fetches that waited for it wait for the
    /// other, unless that would make the other wait for itself.
    fn merge_same_path(&mut self) {
        for early in 0..self.groups.len() {
            if self.groups[early].entity.is_none() || self.groups[early].items.is_empty() {
                continue;
            }
            let late = (0..self.groups.len()).find(|&late| {
                let (a, b) = (&self.groups[early], &self.groups[late]);
                late != early
                    && !b.items.is_empty()
                    && a.subgraph == b.subgraph
                    && a.path == b.path
                    && a.types == b.types
                    && a.key_fields == b.key_fields
                    && !clashes(&b.representation, &a.representation)
                    && match (&a.entity, &b.entity) {
                        (Some(ea), Some(eb)) => ea.ty == eb.ty && ea.typename == eb.typename,
                        _ => false,
                    }
                    && a.after
                        .iter()
                        .all(|&d| d == late || self.waits_for(late, d) || b.after.contains(&d))
                    && !self.waits_for(early, late)
                    && !(0..self.groups.len()).any(|other| {
                        other != early
                            && self.groups[other].after.contains(&early)
                            && self.waits_for(late, other)
                    })
            });
            let Some(late) = late else {
                continue;
            };
            self.fold(early, late);
        }
    }

    fn finish(mut self, operation: &Normalized) -> QueryPlan {
        self.merge_runtime_types();
        self.merge_same_path();
        // Fetches were created parents first, so their order is already a valid one; fetches
        // that ended up with nothing to select are dropped.
        let keep: Vec<bool> = self
            .groups
            .iter()
            .map(|group| !group.items.is_empty())
            .collect();
        let mut index = vec![usize::MAX; self.groups.len()];
        let mut fetches = Vec::new();
        for (position, group) in self.groups.iter().enumerate() {
            if !keep[position] {
                continue;
            }
            index[position] = fetches.len();
            let mut variables = Vec::new();
            collect_variables(&group.items, &mut variables);
            let declared: Vec<String> = operation
                .variables
                .iter()
                .filter(|(name, _)| variables.contains(name))
                .map(|(_, declared)| declared.clone())
                .collect();
            let selection = render_items(&group.items);
            let operation_text = if group.entity.is_none() {
                let keyword = match operation.kind {
                    OperationType::Mutation => "mutation",
                    OperationType::Subscription => "subscription",
                    OperationType::Query => "query",
                };
                let mut text = keyword.to_owned();
                if !declared.is_empty() {
                    let _ = write!(text, "({})", declared.join(", "));
                }
                text.push_str(&selection);
                text
            } else {
                let mut declarations = vec!["$representations: [_Any!]!".to_owned()];
                declarations.extend(declared.iter().cloned());
                format!(
                    "query({}) {{ _entities(representations: $representations){selection} }}",
                    declarations.join(", "),
                )
            };
            fetches.push(Fetch {
                subgraph: group.subgraph,
                operation: operation_text,
                variables: operation
                    .variables
                    .iter()
                    .filter(|(name, _)| variables.contains(name))
                    .map(|(name, _)| name.clone())
                    .collect(),
                entity: group.entity.as_ref().map(|target| EntityFetch {
                    path: group.path.clone(),
                    representation: group.representation.clone(),
                    typename: target.typename.clone(),
                    key_fields: group.key_fields.clone(),
                    types: group.types.clone(),
                    declarations: declared.clone(),
                    selection: selection.clone(),
                }),
                after: Vec::new(),
                root_keys: match &group.entity {
                    Some(_) => Vec::new(),
                    None => group
                        .items
                        .iter()
                        .filter_map(|item| match item {
                            Item::Field { key, .. } => Some(key.clone()),
                            Item::On { .. } => None,
                        })
                        .collect(),
                },
            });
        }
        // Dependencies through dropped fetches go to what those depended on.
        for (position, group) in self.groups.iter().enumerate() {
            if !keep[position] {
                continue;
            }
            let mut after = BTreeSet::new();
            let mut stack: Vec<usize> = group.after.iter().copied().collect();
            while let Some(dependency) = stack.pop() {
                if keep[dependency] {
                    after.insert(index[dependency]);
                } else {
                    stack.extend(self.groups[dependency].after.iter().copied());
                }
            }
            fetches[index[position]].after = after.into_iter().collect();
        }
        QueryPlan {
            kind: operation.kind,
            fetches,
            service_names: self
                .supergraph
                .subgraphs
                .iter()
                .map(|subgraph| subgraph.name.clone())
                .collect(),
        }
    }
}

/// Whether `new` names a field `existing` has under another key (other arguments).
fn clashes(existing: &[Item], new: &[Item]) -> bool {
    new.iter().any(|item| match item {
        Item::Field { key, name, .. } => existing.iter().any(
            |other| matches!(other, Item::Field { key: k, name: n, .. } if n == name && k != key),
        ),
        Item::On { .. } => false,
    })
}

/// What a representation carries for `fields`: each under its name, read from its key.
fn representation_items(fields: &[Field]) -> Vec<Item> {
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

fn representation_selections(selections: &[Selection]) -> Vec<Item> {
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

fn typename_item() -> Item {
    Item::Field {
        key: Name::new_unchecked("__typename"),
        name: Name::new_unchecked("__typename"),
        arguments: Vec::new(),
        items: Vec::new(),
    }
}

fn typename_field() -> Field {
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
fn merge_items(items: &mut Vec<Item>, new: Vec<Item>) -> Vec<Item> {
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

fn collect_variables(items: &[Item], out: &mut Vec<Name>) {
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

/// `items` as GraphQL selection text: ` { a b: c(x: 1) { d } ... on T { e } }`.
pub fn render_items(items: &[Item]) -> String {
    let mut out = String::new();
    render_into(items, &mut out);
    out
}

fn render_into(items: &[Item], out: &mut String) {
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

/// A path for people: `products.@.reviews|[Book]`.
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
