//! Reaching another subgraph: the entity fetch a remote field goes to, through which key,
//! with its `@requires`, and the jumps between subgraphs that keys make possible.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Planner<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan_remote(
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
    pub(super) fn plan_remote_via(
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
    pub(super) fn requirement_group(
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

    pub(super) fn add_to_entity(&mut self, entity: usize, ty: &Name, planned: Vec<Item>) {
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
    pub(super) fn choose_target(
        &self,
        group: usize,
        parent: &Name,
        field: &Field,
        path: &[PathElem],
    ) -> Result<Vec<(usize, Name, Option<Name>)>, PlanError> {
        let subgraph = self.groups[group].subgraph;
        let mut options = Vec::new();
        for candidate in self.supergraph.field_subgraphs(parent, &field.name) {
            // The fetch's own subgraph resolves it only through an entity call (a `@requires`);
            // another that has the type, through one of its keys.
            if candidate == subgraph || self.supergraph.placement(parent, candidate).is_some() {
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

    pub(super) fn key_is_local(
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
    pub(super) fn interface_object_for(&self, ty: &Name, subgraph: usize) -> Option<Name> {
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

    pub(super) fn interfaces_of(&self, ty: &Name) -> Vec<Name> {
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
    pub(super) fn jump(
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
}
