//! Query texts that passed validation, parsed once and kept for the requests that send them
//! again, bounded by an estimate of the bytes they hold.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use async_graphql::parser::types::ExecutableDocument;

/// What a parsed document is taken to cost beside its text: its syntax tree is a few times the
/// text's size.
const TREE_FACTOR: usize = 6;
const ENTRY_OVERHEAD: usize = 256;

/// Validated documents by query text. Past its byte budget it starts over: the texts a client
/// sends again come back within a request each, and nothing grows without bound.
#[derive(Debug)]
pub struct Documents {
    budget: usize,
    inner: RwLock<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    bytes: usize,
    documents: HashMap<Box<str>, Arc<ExecutableDocument>>,
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
        self.inner.read().ok()?.documents.get(query).cloned()
    }

    /// Keeps `document`, which passed validation, for `query`. A text too large for the whole
    /// budget is not kept.
    pub fn insert(&self, query: &str, document: Arc<ExecutableDocument>) {
        let cost = query.len() * (TREE_FACTOR + 1) + ENTRY_OVERHEAD;
        if cost > self.budget {
            return;
        }
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        if inner.documents.contains_key(query) {
            return;
        }
        if inner.bytes + cost > self.budget {
            inner.documents.clear();
            inner.bytes = 0;
        }
        inner.bytes += cost;
        inner.documents.insert(query.into(), document);
    }

    /// How many documents are kept.
    pub fn len(&self) -> usize {
        self.inner.read().map_or(0, |inner| inner.documents.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Arc<ExecutableDocument> {
        Arc::new(async_graphql::parser::parse_query(text).expect("parses"))
    }

    #[test]
    fn documents_are_found_by_their_text_and_the_budget_holds() {
        let documents = Documents::new(4_000);
        documents.insert("{ a }", parsed("{ a }"));
        assert!(documents.get("{ a }").is_some());
        assert!(documents.get("{ b }").is_none());
        for index in 0..100 {
            let text = format!("{{ field{index} }}");
            documents.insert(&text, parsed(&text));
            let inner = documents.inner.read().expect("not poisoned");
            assert!(inner.bytes <= 4_000, "{} bytes", inner.bytes);
        }
        assert!(documents.len() < 100);
        let huge = format!("{{ {} }}", "a ".repeat(1_000));
        documents.insert(&huge, parsed(&huge));
        assert!(documents.get(&huge).is_none());
    }
}
