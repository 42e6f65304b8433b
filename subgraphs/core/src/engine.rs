//! One path for every request a subgraph answers.
//!
//! async-graphql builds the schema, validates documents, and answers introspection and
//! `_service`; it executes none of our fields. A validated operation goes to the subgraph's
//! [`Engine`], which answers each root field (its database query, then the value shaped like
//! the response) — the first time a text is seen and every time after, `_entities` or root
//! field, query or mutation. The server (see [`crate::server`]) keeps validated documents by
//! text, checks each request's variables ([`crate::variables`]), and calls [`run`], which puts
//! the root fields' answers and errors, with their paths, into one response body.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextResolve, ResolveInfo,
};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationDefinition, OperationType, Selection,
    SelectionSet,
};
use async_graphql::registry::{MetaType, Registry};
use async_graphql::{ServerResult, Variables};
use futures::future::BoxFuture;
use futures::stream::BoxStream;
use serde_json::{Map, Value as Json};

use crate::claims::Claims;
use crate::selection::{SelectedField, SelectionError, Walker};

/// A subgraph's executor: answers one root field of a validated operation.
pub trait Engine: Send + Sync {
    /// The value of `field` (never `__typename`, introspection or `_service`), shaped as the
    /// response wants it, and the errors below it, their paths relative to the field.
    fn resolve<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> BoxFuture<'a, Resolved>;

    /// Asks the database something trivial, for `/ready`; the error says why it did not
    /// answer (for the log, never for callers).
    fn ping(&self) -> BoxFuture<'_, Result<(), String>>;

    /// The events of the subscription field `field`: its value for each change, shaped as the
    /// response wants it, skipping changes the caller may not see. An event with errors and
    /// no value ends the subscription. `None` when the engine has no such field.
    fn subscribe<'a>(
        &'a self,
        operation: &'a Operation<'a>,
        field: &'a SelectedField<'a>,
    ) -> Option<BoxStream<'a, Resolved>> {
        let _ = (operation, field);
        None
    }
}

/// A validated operation with its checked variables, as the engine runs it.
pub struct Operation<'a> {
    pub document: &'a ExecutableDocument,
    pub definition: &'a OperationDefinition,
    /// Checked against their declared types, defaults filled in.
    pub variables: &'a Variables,
    pub claims: Option<&'a Claims>,
    pub registry: &'a Registry,
}

impl<'a> Operation<'a> {
    /// Selections under this operation's fragments and variables.
    pub fn walker(&self) -> Walker<'a> {
        Walker::from_parts(
            &self.document.fragments,
            self.variables,
            &self.definition.variable_definitions,
        )
        .with_registry(self.registry)
    }

    /// The root type the operation selects from.
    pub fn root_type(&self) -> &'a str {
        match self.definition.ty {
            OperationType::Mutation => self.registry.mutation_type.as_deref().unwrap_or("Mutation"),
            OperationType::Subscription => self
                .registry
                .subscription_type
                .as_deref()
                .unwrap_or("Subscription"),
            OperationType::Query => &self.registry.query_type,
        }
    }

    /// `value`, a document keyed by field names, as the response asks for it (see
    /// [`Shaper`]); for one value, where [`Operation::shaper`] serves many.
    pub fn shape(
        &self,
        sets: &[&'a SelectionSet],
        type_name: &str,
        value: &Json,
    ) -> Result<Json, FieldError> {
        self.shaper(sets).shape(type_name, value)
    }

    /// Shapes values for the selection `sets`, each type's fields collected once.
    pub fn shaper<'o>(&'o self, sets: &[&'a SelectionSet]) -> Shaper<'o, 'a> {
        Shaper {
            operation: self,
            sets: sets.to_vec(),
            by_type: RefCell::new(HashMap::new()),
        }
    }

    /// The object, interface or union type `field` of `type_name` leads to; `None` for
    /// scalars, enums and unknown fields.
    pub fn composite_type_of(&self, type_name: &str, field: &str) -> Option<&'a str> {
        let field = self.registry.types.get(type_name)?.field_by_name(field)?;
        let named = named_type(&field.ty);
        match self.registry.types.get(named)? {
            MetaType::Object { name, .. }
            | MetaType::Interface { name, .. }
            | MetaType::Union { name, .. } => Some(name.as_str()),
            _ => None,
        }
    }
}

impl Operation<'_> {
    /// Whether `field` of `type_name` is an `ID` (or a list of them).
    fn is_id(&self, type_name: &str, field: &str) -> bool {
        self.registry
            .types
            .get(type_name)
            .and_then(|meta| meta.field_by_name(field))
            .is_some_and(|field| named_type(&field.ty) == "ID")
    }
}

/// An `ID` as the response shows it: text, even where the database has a number.
fn id_text(value: Json) -> Json {
    match value {
        Json::Number(number) => Json::String(number.to_string()),
        Json::Array(items) => Json::Array(items.into_iter().map(id_text).collect()),
        other => other,
    }
}

/// For [`Operation::shape`]: a field's unshaped value, given the concrete type, the field and
/// the document it is on; `None` to read it from the document.
pub type RawField<'r, 'a> =
    dyn Fn(&str, &SelectedField<'a>, &Map<String, Json>) -> Option<Json> + 'r;

/// Values shaped like the response asks for them: given a document keyed by field names, the
/// fields the selection takes on its type under their response keys, `__typename` filled in,
/// `ID`s as text, nested objects and lists shaped the same way by the types the schema gives
/// them. An object of an abstract type names its type in `__typename`. A type's fields are
/// collected once, the first time an object of it is shaped, so a thousand entities cost one
/// walk of the selection.
pub struct Shaper<'o, 'a> {
    operation: &'o Operation<'a>,
    sets: Vec<&'a SelectionSet>,
    by_type: RefCell<HashMap<String, Rc<Fields<'o, 'a>>>>,
}

/// A type's selected fields, each with how its value is shaped.
struct Fields<'o, 'a>(Vec<(SelectedField<'a>, Leaf<'o, 'a>)>);

enum Leaf<'o, 'a> {
    Typename,
    Id,
    Scalar,
    Object(Shaper<'o, 'a>, &'a str),
}

impl<'o, 'a> Shaper<'o, 'a> {
    /// `value` (an object, a list of them, or a scalar) shaped as `type_name`, every field's
    /// value read from its document.
    pub fn shape(&self, type_name: &str, value: &Json) -> Result<Json, FieldError> {
        self.shape_with(type_name, value, &|_, _, _| None)
    }

    /// [`Shaper::shape`], where `raw` gives a field's unshaped value when it depends on the
    /// field's arguments (`None`: read it from the document).
    pub fn shape_with(
        &self,
        type_name: &str,
        value: &Json,
        raw: &RawField<'_, 'a>,
    ) -> Result<Json, FieldError> {
        match value {
            Json::Array(items) => items
                .iter()
                .map(|item| self.shape_with(type_name, item, raw))
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array),
            Json::Object(object) => {
                let concrete = match self.operation.registry.types.get(type_name) {
                    Some(MetaType::Interface { .. } | MetaType::Union { .. }) => object
                        .get("__typename")
                        .and_then(Json::as_str)
                        .unwrap_or(type_name),
                    _ => type_name,
                };
                let fields = self.fields(concrete)?;
                let mut out = Map::with_capacity(fields.0.len());
                for (field, leaf) in &fields.0 {
                    let value = if let Leaf::Typename = leaf {
                        Json::String(concrete.to_owned())
                    } else {
                        let value = raw(concrete, field, object).unwrap_or_else(|| {
                            object.get(field.name).cloned().unwrap_or(Json::Null)
                        });
                        match leaf {
                            Leaf::Object(child, child_type) => {
                                child.shape_with(child_type, &value, raw)?
                            }
                            Leaf::Id => id_text(value),
                            Leaf::Typename | Leaf::Scalar => value,
                        }
                    };
                    out.insert(field.response_key.to_owned(), value);
                }
                Ok(Json::Object(out))
            }
            other => Ok(other.clone()),
        }
    }

    /// The fields the selection takes on `type_name`, collected the first time.
    fn fields(&self, type_name: &str) -> Result<Rc<Fields<'o, 'a>>, FieldError> {
        if let Some(fields) = self.by_type.borrow().get(type_name) {
            return Ok(fields.clone());
        }
        let operation = self.operation;
        let collected = operation.walker().collect(&self.sets, type_name)?;
        let fields = Rc::new(Fields(
            collected
                .into_iter()
                .map(|field| {
                    let leaf = if field.name == "__typename" {
                        Leaf::Typename
                    } else if let Some(child) = operation.composite_type_of(type_name, field.name) {
                        Leaf::Object(operation.shaper(&field.selection_sets), child)
                    } else if operation.is_id(type_name, field.name) {
                        Leaf::Id
                    } else {
                        Leaf::Scalar
                    };
                    (field, leaf)
                })
                .collect(),
        ));
        self.by_type
            .borrow_mut()
            .insert(type_name.to_owned(), fields.clone());
        Ok(fields)
    }
}

/// `Foo` of `[Foo!]!`.
fn named_type(ty: &str) -> &str {
    ty.trim_matches(|c| matches!(c, '[' | ']' | '!'))
}

/// A root field's answer.
#[derive(Debug)]
pub struct Resolved {
    pub value: Json,
    /// The value as JSON text, where the database wrote it whole (it then stands in for
    /// `value`, which is null): spliced into the response as it is, never parsed.
    written: Option<String>,
    /// Errors below the field, their paths relative to it.
    pub errors: Vec<FieldError>,
}

impl Resolved {
    pub fn json(value: Json) -> Self {
        Self {
            value,
            written: None,
            errors: Vec::new(),
        }
    }

    /// A value as JSON text, already shaped like the response (as a database that builds
    /// the response's JSON itself writes it).
    pub fn written(text: String) -> Self {
        Self {
            value: Json::Null,
            written: Some(text),
            errors: Vec::new(),
        }
    }

    /// The field failed: `null`, with why.
    pub fn failed(error: impl Into<FieldError>) -> Self {
        Self {
            value: Json::Null,
            written: None,
            errors: vec![error.into()],
        }
    }

    /// A root field the engine does not answer (validation lets none through).
    pub fn not_answered(field: &SelectedField<'_>) -> Self {
        let message = format!("{} is not answered here", field.name);
        Self::failed(FieldError::new(message).code("BAD_REQUEST"))
    }

    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors.extend(errors);
        self
    }

    /// Whether the value is null.
    pub fn is_null(&self) -> bool {
        self.written
            .as_deref()
            .map_or(self.value.is_null(), |text| text == "null")
    }

    /// The value, parsed where it was written as text; text that does not parse is an
    /// internal error (logged), never a silent null.
    fn into_value(self) -> Result<Json, FieldError> {
        match self.written {
            Some(text) => serde_json::from_str(&text).map_err(|error| {
                tracing::error!(%error, "a written answer is not JSON");
                FieldError::new("the answer could not be read").code("INTERNAL_SERVER_ERROR")
            }),
            None => Ok(self.value),
        }
    }
}

impl<E: Into<FieldError>> From<Result<Json, E>> for Resolved {
    fn from(result: Result<Json, E>) -> Self {
        result.map_or_else(Self::failed, Self::json)
    }
}

/// A GraphQL error: its message, its path (relative to the root field until [`run`] puts
/// the field's response key in front), and `extensions` (at least a `code`).
#[derive(Debug, Clone)]
pub struct FieldError {
    pub message: String,
    pub path: Vec<Json>,
    pub extensions: Map<String, Json>,
}

impl FieldError {
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            path: Vec::new(),
            extensions: Map::new(),
        }
    }

    /// An error in the request's input: `BAD_USER_INPUT`.
    pub fn bad_input(message: impl Into<String>) -> Self {
        Self::new(message).code("BAD_USER_INPUT")
    }

    #[must_use]
    pub fn code(mut self, code: &str) -> Self {
        self.extensions
            .insert("code".to_owned(), Json::String(code.to_owned()));
        self
    }

    /// The error as it happened at `segment` below where it is reported.
    #[must_use]
    pub fn at(mut self, segment: impl Into<Json>) -> Self {
        self.path.insert(0, segment.into());
        self
    }

    /// The error as the response shows it, under the root field `field`: its path from the
    /// field's response key, its location the field's.
    fn to_json(&self, field: &SelectedField<'_>) -> Json {
        let mut path = Vec::with_capacity(self.path.len() + 1);
        path.push(Json::String(field.response_key.to_owned()));
        path.extend(self.path.iter().cloned());
        let mut error = Map::new();
        error.insert("message".to_owned(), Json::String(self.message.clone()));
        let position = field.position;
        if position.line > 0 {
            let location =
                serde_json::json!([{ "line": position.line, "column": position.column }]);
            error.insert("locations".to_owned(), location);
        }
        error.insert("path".to_owned(), Json::Array(path));
        if !self.extensions.is_empty() {
            error.insert(
                "extensions".to_owned(),
                Json::Object(self.extensions.clone()),
            );
        }
        Json::Object(error)
    }
}

impl From<SelectionError> for FieldError {
    fn from(error: SelectionError) -> Self {
        Self::bad_input(error.0)
    }
}

impl From<async_graphql::Error> for FieldError {
    fn from(error: async_graphql::Error) -> Self {
        let extensions = error
            .extensions
            .as_ref()
            .and_then(|extensions| serde_json::to_value(extensions).ok())
            .and_then(|value| match value {
                Json::Object(map) => Some(map),
                _ => None,
            })
            .unwrap_or_default();
        Self {
            message: error.message,
            path: Vec::new(),
            extensions,
        }
    }
}

/// A response body, and whether it reports errors.
#[derive(Debug)]
pub struct Answer {
    pub body: String,
    pub errors: bool,
}

/// A response that is only errors, for a request that could not run (no `data`).
pub fn request_error(message: &str, code: &str) -> Answer {
    let body = serde_json::json!({
        "errors": [{ "message": message, "extensions": { "code": code } }]
    });
    Answer {
        body: body.to_string(),
        errors: true,
    }
}

/// The operation `document` runs by `operation_name`, as GraphQL's `GetOperation` picks it.
pub fn operation_named<'a>(
    document: &'a ExecutableDocument,
    operation_name: Option<&str>,
) -> Option<&'a OperationDefinition> {
    match (&document.operations, operation_name) {
        (DocumentOperations::Single(operation), None) => Some(&operation.node),
        (DocumentOperations::Single(_), Some(name)) => document
            .operations
            .iter()
            .find(|(found, _)| found.is_some_and(|found| found.as_str() == name))
            .map(|(_, operation)| &operation.node),
        (DocumentOperations::Multiple(operations), Some(name)) => {
            operations.get(name).map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(operations), None) if operations.len() == 1 => {
            operations.values().next().map(|operation| &operation.node)
        }
        (DocumentOperations::Multiple(_), None) => None,
    }
}

/// Root fields async-graphql answers itself.
const SCHEMA_FIELDS: [&str; 3] = ["__schema", "__type", "_service"];

/// Whether `operation` selects introspection or `_service` at its root (through fragments
/// too), which async-graphql answers.
pub fn introspects(document: &ExecutableDocument, operation: &OperationDefinition) -> bool {
    fn walk(document: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
        depth < 32
            && set.items.iter().any(|item| match &item.node {
                Selection::Field(field) => SCHEMA_FIELDS.contains(&field.node.name.node.as_str()),
                Selection::InlineFragment(inline) => {
                    walk(document, &inline.node.selection_set.node, depth + 1)
                }
                Selection::FragmentSpread(spread) => document
                    .fragments
                    .get(&spread.node.fragment_name.node)
                    .is_some_and(|fragment| {
                        walk(document, &fragment.node.selection_set.node, depth + 1)
                    }),
            })
    }
    walk(document, &operation.selection_set.node, 0)
}

/// The root fields of `operation` with their answers: resolved together for a query, one
/// after another for a mutation.
pub async fn resolve_root<'a>(
    engine: &dyn Engine,
    operation: &'a Operation<'a>,
    fields: &'a [SelectedField<'a>],
) -> Vec<Resolved> {
    let root = operation.root_type();
    let one = |field: &'a SelectedField<'a>| async move {
        if field.name == "__typename" {
            Resolved::json(Json::String(root.to_owned()))
        } else {
            engine.resolve(operation, field).await
        }
    };
    if operation.definition.ty == OperationType::Mutation {
        let mut answers = Vec::with_capacity(fields.len());
        for field in fields {
            answers.push(one(field).await);
        }
        answers
    } else {
        futures::future::join_all(fields.iter().map(one)).await
    }
}

/// Runs `operation` on `engine`: every root field, then one response body.
pub async fn run(engine: &dyn Engine, operation: &Operation<'_>) -> Answer {
    let fields = match root_fields(operation) {
        Ok(fields) => fields,
        Err(refused) => return refused,
    };
    let answers = resolve_root(engine, operation, &fields).await;
    write(operation, &fields, &answers)
}

/// The root fields of `operation`, collected through its fragments; the answer that refuses
/// it when its arguments do not fit.
pub fn root_fields<'a>(operation: &Operation<'a>) -> Result<Vec<SelectedField<'a>>, Answer> {
    operation
        .walker()
        .collect(
            &[&operation.definition.selection_set.node],
            operation.root_type(),
        )
        .map_err(|error| request_error(&error.0, "BAD_USER_INPUT"))
}

/// The events of the subscription `operation` (its one root field is `fields`), each written
/// as a response body like [`run`]'s; `None` when the engine has no such field.
pub fn events<'a>(
    engine: &'a dyn Engine,
    operation: &'a Operation<'a>,
    fields: &'a [SelectedField<'a>],
) -> Option<BoxStream<'a, Answer>> {
    use futures::StreamExt as _;
    let field = fields.first()?;
    let resolved = engine.subscribe(operation, field)?;
    Some(
        resolved
            .map(move |answer| write(operation, fields, std::slice::from_ref(&answer)))
            .boxed(),
    )
}

/// The body for root `fields` and their `answers`: `data` (null when a non-null root field
/// failed) and `errors` with full paths.
fn write(operation: &Operation<'_>, fields: &[SelectedField<'_>], answers: &[Resolved]) -> Answer {
    let root = operation.registry.types.get(operation.root_type());
    // Written straight into bytes: `Display` on a JSON value goes through the formatting
    // machinery a write at a time.
    let mut body: Vec<u8> = Vec::with_capacity(1024);
    let mut nulled = false;
    let mut errors = Vec::new();
    body.extend_from_slice(b"{\"data\":{");
    for (index, (field, answer)) in fields.iter().zip(answers).enumerate() {
        if index > 0 {
            body.push(b',');
        }
        json_into(&mut body, &field.response_key);
        body.push(b':');
        match &answer.written {
            Some(text) => body.extend_from_slice(text.as_bytes()),
            None => json_into(&mut body, &answer.value),
        }
        let non_null = root
            .and_then(|root| root.field_by_name(field.name))
            .is_some_and(|meta| meta.ty.ends_with('!'));
        if non_null && answer.is_null() {
            nulled = true;
            if answer.errors.is_empty() {
                let error =
                    FieldError::new("a non-null field had no value").code("INTERNAL_SERVER_ERROR");
                errors.push(error.to_json(field));
            }
        }
        errors.extend(answer.errors.iter().map(|error| error.to_json(field)));
    }
    if nulled {
        body.truncate(b"{\"data\":".len());
        body.extend_from_slice(b"null");
    } else {
        body.push(b'}');
    }
    let has_errors = !errors.is_empty();
    if has_errors {
        body.extend_from_slice(b",\"errors\":");
        json_into(&mut body, &errors);
    }
    body.push(b'}');
    Answer {
        errors: has_errors,
        // Serialized JSON: UTF-8 throughout.
        body: String::from_utf8(body).unwrap_or_else(|_| {
            r#"{"data":null,"errors":[{"message":"the response could not be written","extensions":{"code":"INTERNAL_SERVER_ERROR"}}]}"#.to_owned()
        }),
    }
}

/// `value` serialized onto the end of `body`.
fn json_into(body: &mut Vec<u8>, value: &impl serde::Serialize) {
    if serde_json::to_writer(&mut *body, value).is_err() {
        body.extend_from_slice(b"null");
    }
}

/// Registered on every schema whose subgraph has an engine: async-graphql then validates and
/// answers introspection, and leaves our fields to the engine.
pub struct Hook;

/// Request data asking async-graphql only to validate: the operation does not run, and
/// `passed` says whether it would have.
#[derive(Debug, Default)]
pub struct ValidateOnly {
    passed: AtomicBool,
}

impl ValidateOnly {
    pub fn passed(&self) -> bool {
        self.passed.load(Ordering::Relaxed)
    }
}

/// Request data for an operation that mixes introspection with our root fields: their values,
/// already answered by the engine, by response key.
#[derive(Debug, Default)]
pub struct Answered(pub HashMap<String, async_graphql::Value>);

impl ExtensionFactory for Hook {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(HookExtension)
    }
}

struct HookExtension;

#[async_graphql::async_trait::async_trait]
impl Extension for HookExtension {
    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> async_graphql::Response {
        if let Some(validate) = ctx.data_opt::<Arc<ValidateOnly>>() {
            validate.passed.store(true, Ordering::Relaxed);
            return async_graphql::Response::new(async_graphql::Value::Null);
        }
        next.run(ctx, operation_name).await
    }

    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<async_graphql::Value>> {
        if info.path_node.parent.is_none()
            && let Some(answered) = ctx.data_opt::<Answered>()
            && let Some(value) = answered.0.get(info.alias.unwrap_or(info.name))
        {
            return Ok(Some(value.clone()));
        }
        next.run(ctx, info).await
    }
}

/// For a schema's fields: the resolver async-graphql requires of every field, never called
/// because the engine answers them (`_entities` beside introspection in one operation is the
/// one case that reaches it, and is refused).
pub fn by_engine() -> impl for<'a> Fn(
    async_graphql::dynamic::ResolverContext<'a>,
) -> async_graphql::dynamic::FieldFuture<'a>
+ Send
+ Sync
+ 'static {
    |_| {
        async_graphql::dynamic::FieldFuture::new(async {
            Err::<Option<async_graphql::dynamic::FieldValue<'_>>, _>(
                async_graphql::Error::new(
                    "ask for _entities and for introspection in separate operations",
                )
                .extend_with(|_, extensions| extensions.set("code", "BAD_REQUEST")),
            )
        })
    }
}

use async_graphql::ErrorExtensions as _;

/// A field of a schema the engine answers: its name and type, and [`by_engine`] as the
/// resolver async-graphql asks for.
pub fn engine_field(
    name: impl Into<String>,
    ty: impl Into<async_graphql::dynamic::TypeRef>,
) -> async_graphql::dynamic::Field {
    async_graphql::dynamic::Field::new(name, ty, by_engine())
}

/// Answers for the root fields of a mixed operation (see [`Answered`]), computed by the
/// engine before async-graphql runs the rest, and the errors they carry (full paths).
pub async fn answer_mixed(engine: &dyn Engine, operation: &Operation<'_>) -> (Answered, Vec<Json>) {
    let root = operation.root_type();
    let Ok(fields) = operation
        .walker()
        .collect(&[&operation.definition.selection_set.node], root)
    else {
        return (Answered::default(), Vec::new());
    };
    let fields: Vec<_> = fields
        .into_iter()
        .filter(|field| {
            !SCHEMA_FIELDS.contains(&field.name)
                && field.name != "__typename"
                && field.name != "_entities"
        })
        .collect();
    let answers = resolve_root(engine, operation, &fields).await;
    let mut values = HashMap::new();
    let mut errors = Vec::new();
    for (field, answer) in fields.iter().zip(answers) {
        errors.extend(answer.errors.iter().map(|error| error.to_json(field)));
        let value = answer.into_value().unwrap_or_else(|error| {
            errors.push(error.to_json(field));
            Json::Null
        });
        values.insert(
            field.response_key.to_owned(),
            async_graphql::Value::from_json(value).unwrap_or(async_graphql::Value::Null),
        );
    }
    (Answered(values), errors)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_answers_are_read_back_or_are_an_error() {
        let read = Resolved::written(r#"[{"id":"1"}]"#.to_owned()).into_value();
        assert_eq!(read.unwrap(), serde_json::json!([{ "id": "1" }]));
        let broken = Resolved::written("[{".to_owned()).into_value().unwrap_err();
        assert_eq!(broken.extensions["code"], "INTERNAL_SERVER_ERROR");
        assert!(Resolved::written("null".to_owned()).is_null());
        assert!(!Resolved::written("[]".to_owned()).is_null());
    }
}
