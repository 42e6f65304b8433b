//! The relational subgraph's one execution path (see [`polygraph_subgraph_core::engine`]):
//! each root field one statement whose rows PostgreSQL already writes as the response's JSON
//! (response keys, nested objects and lists, `__typename`; see [`crate::translate`]), spliced
//! into the answer unparsed; `_entities` one statement per entity type however many keys;
//! a write one statement that changes the rows and writes what the selection asks of them.

use std::collections::HashMap;
use std::sync::Arc;

use futures::future::BoxFuture;
use futures::stream::BoxStream;
use polygraph_subgraph_core::engine::{Engine, FieldError, Operation, Resolved};
use polygraph_subgraph_core::selection::SelectedField;

use crate::changes::Changes;
use crate::errors::{bad_input, database_error, input};
use crate::execute::{self, Executor};
use crate::lowering::{access, aggregate_outputs, by_key, list_args, outputs};
use crate::model::Model;
use crate::state::State;
use crate::translate::{self, ListArgs};
use crate::writes::{self, Kind};

/// The relational engine.
pub(crate) struct Tables {
    state: State,
    /// What each `Query` field does, by name.
    reads: HashMap<String, Root>,
    /// What each `Mutation` field does, by name.
    writes: HashMap<String, Root>,
    /// The table of each `Subscription` field, by name.
    subscriptions: HashMap<String, usize>,
    changes: Arc<Changes>,
}

#[derive(Clone, Copy)]
enum Root {
    List(usize),
    Aggregate(usize),
    ByKey(usize),
    Page(usize),
    Write(usize, Kind),
}

impl Tables {
    pub(crate) fn new(model: Arc<Model>, executor: Arc<Executor>, changes: Arc<Changes>) -> Self {
        let mut reads = HashMap::new();
        let mut writes = HashMap::new();
        let mut subscriptions = HashMap::new();
        for (index, table) in model.tables.iter().enumerate() {
            if let Some(field) = &table.changed_field {
                subscriptions.insert(field.clone(), index);
            }
            let list = &table.list_field;
            reads.insert(list.clone(), Root::List(index));
            reads.insert(table.aggregate_field.clone(), Root::Aggregate(index));
            if !table.primary_key.is_empty() {
                reads.insert(table.by_pk_field.clone(), Root::ByKey(index));
                reads.insert(format!("{list}_connection"), Root::Page(index));
            }
            let keyed = !table.primary_key.is_empty();
            for kind in Kind::ALL {
                let by_key = matches!(kind, Kind::UpdateByPk | Kind::DeleteByPk);
                if table.mutations.allows(kind.write()) && (keyed || !by_key) {
                    writes.insert(kind.field_name(list), Root::Write(index, kind));
                }
            }
        }
        Self {
            state: State { model, executor },
            reads,
            writes,
            subscriptions,
            changes,
        }
    }
}

impl Engine for Tables {
    fn ping(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.state.executor.ping())
    }

    fn subscribe<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> Option<BoxStream<'a, Resolved>> {
        let table = *self.subscriptions.get(field.name)?;
        let receiver = self
            .changes
            .subscribe(&self.state.model.tables[table].table);
        Some(polygraph_subgraph_core::changes::follow(
            receiver,
            move |key| async move {
                let keyed = self.keyed(field, table, &key);
                self.rows(operation, &keyed, Root::ByKey(table)).await
            },
        ))
    }

    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved> {
        Box::pin(async move {
            let mutation =
                operation.definition.ty == async_graphql::parser::types::OperationType::Mutation;
            if field.name == "_entities" && !mutation {
                return self.entities(operation, field).await;
            }
            let roots = if mutation { &self.writes } else { &self.reads };
            let root = roots.get(field.name).copied();
            match root {
                Some(Root::Write(table, kind)) => {
                    writes::run(&self.state, operation, field, table, kind).await
                }
                Some(Root::Page(table)) => {
                    let walker = operation.walker();
                    crate::connection::answer(&self.state, table, &walker, field, operation.claims)
                        .await
                        .into()
                }
                Some(root) => self.rows(operation, field, root).await,
                None => Resolved::not_answered(field),
            }
        })
    }
}

impl Tables {
    /// `field` asking for the row of `table` with primary key `key` (by column name), as a
    /// lookup by key would.
    fn keyed<'a>(
        &self,
        field: &SelectedField<'a>,
        table: usize,
        key: &crate::changes::Key,
    ) -> SelectedField<'a> {
        let columns = &self.state.model.tables[table].columns;
        let arguments = key
            .iter()
            .filter_map(|(column, value)| {
                let column = columns.iter().find(|c| c.column == *column)?;
                let value = async_graphql::Value::from_json(value.clone()).ok()?;
                Some((async_graphql::Name::new(&column.field), value))
            })
            .collect();
        SelectedField {
            response_key: field.response_key,
            name: field.name,
            arguments,
            selection_sets: field.selection_sets.clone(),
            position: field.position,
        }
    }

    /// A list, an aggregate or a lookup by key: one statement, its documents as written.
    async fn rows(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        root: Root,
    ) -> Resolved {
        let statement = match self.statement(operation, field, root) {
            Ok(statement) => statement,
            Err(error) => return Resolved::failed(error),
        };
        let rows = match execute::document_texts(&self.state.executor, &statement).await {
            Ok(rows) => rows,
            Err(error) => return Resolved::failed(database_error(error)),
        };
        let null = || "null".to_owned();
        if !matches!(root, Root::List(_)) {
            return Resolved::written(rows.into_iter().next().flatten().unwrap_or_else(null));
        }
        let size: usize = rows
            .iter()
            .map(|row| row.as_ref().map_or(4, String::len) + 1)
            .sum();
        let mut text = String::with_capacity(size + 2);
        text.push('[');
        for (index, row) in rows.into_iter().enumerate() {
            if index > 0 {
                text.push(',');
            }
            text.push_str(&row.unwrap_or_else(null));
        }
        text.push(']');
        Resolved::written(text)
    }

    /// The statement of a list, an aggregate or a lookup by key.
    fn statement(
        &self,
        operation: &Operation<'_>,
        field: &SelectedField<'_>,
        root: Root,
    ) -> Result<translate::Statement, FieldError> {
        let model = &self.state.model;
        let walker = operation.walker();
        let access = access(model, operation.claims);
        let sets = &field.selection_sets;
        match root {
            Root::List(table) => {
                let args = list_args(model, table, field)?;
                let fields = outputs(model, table, &walker, sets)?;
                translate::list(model, &access, table, &args, &fields).map_err(bad_input)
            }
            Root::Aggregate(table) => {
                let args = list_args(model, table, field)?;
                let fields = aggregate_outputs(model, table, &walker, sets)?;
                translate::aggregate(model, &access, table, &args, &fields).map_err(bad_input)
            }
            Root::ByKey(table) => {
                let args = ListArgs {
                    filter: by_key(model, table, field)?,
                    limit: Some(1),
                    ..ListArgs::default()
                };
                let fields = outputs(model, table, &walker, sets)?;
                translate::list(model, &access, table, &args, &fields).map_err(bad_input)
            }
            Root::Page(_) | Root::Write(..) => Err(input("not a field of rows")),
        }
    }

    /// `_entities(representations:)`: the documents in representation order.
    async fn entities(&self, operation: &Operation<'_>, field: &SelectedField<'_>) -> Resolved {
        let Some(async_graphql::Value::List(representations)) = field.argument("representations")
        else {
            return Resolved::failed(input("representations must be a list"));
        };
        let walker = operation.walker();
        match crate::entities::find(
            &self.state,
            &walker,
            &field.selection_sets,
            representations,
            operation.claims,
        )
        .await
        {
            Ok(found) => crate::entities::written(found),
            Err(error) => Resolved::failed(error),
        }
    }
}
