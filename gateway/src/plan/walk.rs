//! Walking the operation: each field planned in the current fetch or moved to a subgraph
//! that resolves it, per runtime type under interfaces and unions.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Planner<'_> {
    pub(super) fn new_group(
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

    pub(super) fn field_set(&self, ty: &Name, source: &str) -> Result<Vec<Field>, PlanError> {
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
    pub(super) fn field_type(&self, parent: &Name, field: &Field) -> Name {
        self.supergraph
            .schema
            .type_field(parent, &field.name)
            .map_or_else(
                |_| field.type_name().clone(),
                |d| d.ty.inner_named_type().clone(),
            )
    }

    /// How many fields of `field`'s selection `subgraph` resolves in place.
    pub(super) fn score(
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
    pub(super) fn local(
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
    pub(super) fn sharing(&self, subgraph: usize, parent: &Name, field: &str) -> Vec<usize> {
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

    pub(super) fn is_root(&self, ty: &Name) -> bool {
        let schema = &self.supergraph.schema.schema_definition;
        [&schema.query, &schema.mutation, &schema.subscription]
            .into_iter()
            .flatten()
            .any(|root| root.name == *ty)
    }

    pub(super) fn placement_of(
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

    pub(super) fn requires(&self, parent: &Name, field: &str, subgraph: usize) -> Option<String> {
        self.placement_of(parent, field, subgraph)?.requires.clone()
    }

    pub(super) fn provides(&self, parent: &Name, field: &str, subgraph: usize) -> Option<String> {
        self.placement_of(parent, field, subgraph)?.provides.clone()
    }

    /// Plans `fields` of an object (or interface) `parent` at `path` in fetch `group`, and
    /// returns what that fetch selects there.
    pub(super) fn plan_fields(
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

    pub(super) fn plan_fields_inner(
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
            // A composite field keeps a selection even when `@skip`/`@include` left it none
            // of the client's: the position plans `__typename` there.
            if matches!(
                field.kind,
                operation::Kind::Object | operation::Kind::Abstract
            ) {
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
                // Nothing left to select there (an `@interfaceObject` whose selections were
                // all skipped): `__typename` keeps the subgraph operation valid.
                if sub.is_empty() {
                    sub.push(typename_item());
                }
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
    pub(super) fn reachable(&self, subgraph: usize, parent: &Name, field: &Field) -> bool {
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
    pub(super) fn route_stranded(
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
    pub(super) fn plan_position(
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
    pub(super) fn shared_interface_fields(
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
    pub(super) fn plan_interface_object(
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
}
