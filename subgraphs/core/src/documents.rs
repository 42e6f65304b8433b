//! Query texts that passed validation, parsed once and kept for the requests that send them
//! again, bounded by an estimate of the bytes they hold.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::parser::types::ExecutableDocument;

/// What a parsed document is taken to cost beside its text: its syntax tree (a node of about
/// two hundred bytes per selection, names and literals on the heap) is tens of times the
/// text's size.
const TREE_FACTOR: usize = 40;
const ENTRY_OVERHEAD: usize = 512;
/// Texts longer than this are validated each time rather than kept.
pub const MAX_KEPT_TEXT: usize = 64 << 10;

/// Validated documents by query text, in two generations: when the current one reaches half the
/// byte budget it becomes the previous one (the one before is dropped), so the texts clients
/// keep sending stay while a flood of new ones only ever displaces a generation, and nothing
/// grows past the budget.
#[derive(Debug)]
pub struct Documents {
    budget: usize,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    bytes: usize,
    documents: HashMap<Box<str>, Arc<ExecutableDocument>>,
    previous: HashMap<Box<str>, Arc<ExecutableDocument>>,
}

impl Documents {
    pub fn new(budget: usize) -> Self {
        Self {
            budget,
            inner: RwLock::new(Inner::default()),
        }
    }

    /// The validated document for `query`, if it was seen.
    pub fn get(&self, query: &str) -> Option<Arc<ExecutableDocument>> {
        let inner = self.inner.read().ok()?;
        inner
            .documents
            .get(query)
            .or_else(|| inner.previous.get(query))
            .cloned()
    }

    /// Keeps `document`, which passed validation, for `query`. A text longer than
    /// [`MAX_KEPT_TEXT`], or too large for a generation, is not kept.
    pub fn insert(&self, query: &str, document: Arc<ExecutableDocument>) {
        let cost = query.len() * (TREE_FACTOR + 1) + ENTRY_OVERHEAD;
        let generation = self.budget / 2;
        if query.len() > MAX_KEPT_TEXT || cost > generation {
            return;
        }
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        if inner.documents.contains_key(query) {
            return;
        }
        if inner.bytes + cost > generation {
            inner.previous = std::mem::take(&mut inner.documents);
            inner.bytes = 0;
        }
        inner.bytes += cost;
        inner.documents.insert(query.into(), document);
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.inner
            .read()
            .map_or(0, |inner| inner.documents.len() + inner.previous.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A copy of `document` as validation should see it: every `@skip` and `@include` on a
/// `__typename` field moved onto an inline fragment around the field. async-graphql's
/// validator never visits `__typename`, so it would call their variables unused (refusing a
/// valid operation); on the fragment it sees them used, and what the operation selects is the
/// same. (It checks no directive variable's type anywhere: see [`mistyped_conditions`].)
pub fn for_validation(document: &ExecutableDocument) -> ExecutableDocument {
    use async_graphql::parser::Positioned;
    use async_graphql::parser::types::{
        DocumentOperations, InlineFragment, Selection, SelectionSet,
    };
    fn conditional(directive: &Positioned<async_graphql::parser::types::Directive>) -> bool {
        matches!(directive.node.name.node.as_str(), "skip" | "include")
    }
    fn lift(set: &mut SelectionSet) {
        for item in &mut set.items {
            let pos = item.pos;
            match &mut item.node {
                Selection::Field(field) if field.node.name.node == "__typename" => {
                    if !field.node.directives.iter().any(conditional) {
                        continue;
                    }
                    let (conditions, others) = std::mem::take(&mut field.node.directives)
                        .into_iter()
                        .partition(conditional);
                    field.node.directives = others;
                    let selection_set = SelectionSet {
                        items: vec![Positioned::new(Selection::Field(field.clone()), pos)],
                    };
                    item.node = Selection::InlineFragment(Positioned::new(
                        InlineFragment {
                            type_condition: None,
                            directives: conditions,
                            selection_set: Positioned::new(selection_set, pos),
                        },
                        pos,
                    ));
                }
                Selection::Field(field) => lift(&mut field.node.selection_set.node),
                Selection::InlineFragment(inline) => {
                    lift(&mut inline.node.selection_set.node);
                }
                Selection::FragmentSpread(_) => {}
            }
        }
    }
    let mut copy = document.clone();
    match &mut copy.operations {
        DocumentOperations::Single(operation) => {
            lift(&mut operation.node.selection_set.node);
        }
        DocumentOperations::Multiple(operations) => {
            for operation in operations.values_mut() {
                lift(&mut operation.node.selection_set.node);
            }
        }
    }
    for fragment in copy.fragments.values_mut() {
        lift(&mut fragment.node.selection_set.node);
    }
    copy
}

/// Each variable of `document`'s operations given to `@skip(if:)` or `@include(if:)` whose
/// declared type cannot be `Boolean!` there (async-graphql checks no variable in a directive's
/// argument): the message and where the variable is used.
pub fn mistyped_conditions(
    document: &ExecutableDocument,
) -> Vec<(String, async_graphql::parser::Pos)> {
    use async_graphql::parser::Positioned;
    use async_graphql::parser::types::{BaseType, Directive, Selection, SelectionSet};
    use async_graphql_value::Value;
    /// The variables `list` gives to conditions.
    fn directives<'a>(
        list: &'a [Positioned<Directive>],
        found: &mut Vec<(&'a str, async_graphql::parser::Pos)>,
    ) {
        for directive in list {
            if !matches!(directive.node.name.node.as_str(), "skip" | "include") {
                continue;
            }
            if let Some(Value::Variable(name)) =
                directive.node.get_argument("if").map(|value| &value.node)
            {
                found.push((name.as_str(), directive.pos));
            }
        }
    }
    /// The variables in the conditions of `set` and of the fragments it spreads.
    fn conditions<'a>(
        document: &'a ExecutableDocument,
        set: &'a SelectionSet,
        seen: &mut Vec<&'a str>,
        found: &mut Vec<(&'a str, async_graphql::parser::Pos)>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    directives(&field.node.directives, found);
                    conditions(document, &field.node.selection_set.node, seen, found);
                }
                Selection::InlineFragment(inline) => {
                    directives(&inline.node.directives, found);
                    conditions(document, &inline.node.selection_set.node, seen, found);
                }
                Selection::FragmentSpread(spread) => {
                    directives(&spread.node.directives, found);
                    let name = spread.node.fragment_name.node.as_str();
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    if let Some(fragment) = document.fragments.get(name) {
                        conditions(document, &fragment.node.selection_set.node, seen, found);
                    }
                }
            }
        }
    }
    let mut mistyped = Vec::new();
    for (_, operation) in document.operations.iter() {
        let mut found = Vec::new();
        conditions(
            document,
            &operation.node.selection_set.node,
            &mut Vec::new(),
            &mut found,
        );
        for (name, pos) in found {
            let Some(definition) = operation
                .node
                .variable_definitions
                .iter()
                .find(|definition| definition.node.name.node == name)
            else {
                continue; // undefined: async-graphql says so
            };
            let ty = &definition.node.var_type.node;
            let boolean = matches!(&ty.base, BaseType::Named(named) if named == "Boolean");
            let defaulted =
                definition.node.default_value.as_ref().is_some_and(|value| {
                    !matches!(value.node, async_graphql_value::ConstValue::Null)
                });
            if !boolean || (ty.nullable && !defaulted) {
                mistyped.push((
                    format!(
                        "Variable \"${name}\" of type \"{ty}\" used in position expecting type \"Boolean!\""
                    ),
                    pos,
                ));
            }
        }
    }
    mistyped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn condition_variables_must_be_booleans() {
        let mistyped = |text: &str| {
            let document = async_graphql::parser::parse_query(text).unwrap();
            mistyped_conditions(&document).len()
        };
        assert_eq!(
            mistyped(
                "query($a: Boolean!) { x @skip(if: $a) ...F } fragment F on Q { y @include(if: $a) }"
            ),
            0
        );
        assert_eq!(mistyped("query($a: Boolean = true) { x @skip(if: $a) }"), 0);
        assert_eq!(mistyped("query($a: Boolean) { x @skip(if: $a) }"), 1);
        assert_eq!(
            mistyped("query($a: String!) { ... @include(if: $a) { x } }"),
            1
        );
        assert_eq!(
            mistyped(
                "query($a: [Boolean!]!) { ...F } fragment F on Q { __typename @skip(if: $a) }"
            ),
            1
        );
    }

    #[test]
    fn conditions_on_typename_are_lifted_for_validation() {
        let document = async_graphql::parser::parse_query(
            "query($a: Boolean!) { x { t: __typename @skip(if: $a) y } } fragment F on X { __typename @include(if: $a) }",
        )
        .unwrap();
        let lifted = for_validation(&document);
        let text = format!("{lifted:?}");
        assert_eq!(text.matches("InlineFragment {").count(), 2, "{text}");
        // The conditions moved: no field keeps a directive.
        assert!(
            !text.contains("directives: [Positioned { pos: Pos(1:47)"),
            "{text}"
        );
        let fields_with_directives = text
            .split("Field(")
            .skip(1)
            .filter(|field| {
                let own = field.split("selection_set").next().unwrap_or_default();
                own.contains("Directive {")
            })
            .count();
        assert_eq!(fields_with_directives, 0, "{text}");
        let plain = async_graphql::parser::parse_query("{ x { __typename y } }").unwrap();
        // A document with nothing to lift is copied as it is.
        assert_eq!(
            format!("{:?}", for_validation(&plain)),
            format!("{plain:?}")
        );
    }

    fn parsed(text: &str) -> Arc<ExecutableDocument> {
        Arc::new(async_graphql::parser::parse_query(text).expect("parses"))
    }

    #[test]
    fn documents_are_found_by_their_text_and_the_budget_holds() {
        let documents = Documents::new(16_000);
        documents.insert("{ a }", parsed("{ a }"));
        assert!(documents.get("{ a }").is_some());
        assert!(documents.get("{ b }").is_none());
        for index in 0..100 {
            let text = format!("{{ field{index} }}");
            documents.insert(&text, parsed(&text));
            let inner = documents.inner.read().expect("not poisoned");
            assert!(inner.bytes <= 8_000, "{} bytes", inner.bytes);
        }
        assert!(documents.len() < 100);
        // The last generation's texts are still found.
        assert!(documents.get("{ field99 }").is_some());
        assert!(documents.get("{ a }").is_none());
        let huge = format!("{{ {} }}", "a ".repeat(1_000));
        documents.insert(&huge, parsed(&huge));
        assert!(documents.get(&huge).is_none());
    }
}
