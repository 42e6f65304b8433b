//! From groups to fetches: folding and merging fetches that answer the same objects, and
//! the finished plan in dependency order.

#[allow(clippy::wildcard_imports)]
use super::*;

impl Planner<'_> {
    /// Moves fetch `from`'s selections and representation into fetch `into`, and makes what
    /// waited for `from` wait for `into`; `from` is left empty, to be dropped.
    pub(super) fn fold(&mut self, from: usize, into: usize) {
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
    pub(super) fn merge_runtime_types(&mut self) {
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
    pub(super) fn waits_for(&self, from: usize, to: usize) -> bool {
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
    pub(super) fn merge_same_path(&mut self) {
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

    pub(super) fn finish(mut self, operation: &Normalized) -> QueryPlan {
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
            let operation_text = operation_text(operation.kind, group, &declared, &selection);
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
                    field_keys: filled_keys(&group.items),
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

/// The data keys of the fields `items` fill in an object, under any type condition:
/// `__typename` and the planner's own keys (`_pg…`, see `Reserved`) left out.
fn filled_keys(items: &[Item]) -> Vec<Name> {
    let mut keys: Vec<Name> = Vec::new();
    for item in items {
        match item {
            Item::Field { key, .. } => {
                if key != "__typename" && !key.starts_with("_pg") && !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
            Item::On { items, .. } => {
                for key in filled_keys(items) {
                    if !keys.contains(&key) {
                        keys.push(key);
                    }
                }
            }
        }
    }
    keys
}

/// The text of a group's operation: a root operation, or an `_entities` query.
fn operation_text(
    kind: OperationType,
    group: &Group,
    declared: &[String],
    selection: &str,
) -> String {
    if group.entity.is_none() {
        let keyword = match kind {
            OperationType::Mutation => "mutation",
            OperationType::Subscription => "subscription",
            OperationType::Query => "query",
        };
        let mut text = keyword.to_owned();
        if !declared.is_empty() {
            let _ = write!(text, "({})", declared.join(", "));
        }
        text.push_str(selection);
        text
    } else {
        let mut declarations = vec!["$representations: [_Any!]!".to_owned()];
        declarations.extend(declared.iter().cloned());
        format!(
            "query({}) {{ _entities(representations: $representations){selection} }}",
            declarations.join(", "),
        )
    }
}
