//! `@cacheControl`: how long an answer may be cached, from each subgraph's configuration.
//!
//! A subgraph puts the hints its configuration gives on its types (and fields) as
//! `@cacheControl(maxAge:, scope:, inheritMaxAge:)`, the directive Apollo Server defines, so
//! `_service { sdl }` carries them (with the directive's definition, which async-graphql's
//! dynamic schemas cannot declare themselves: [`register`] appends it). The server then works
//! out each response's policy from the operation and those hints ([`CacheRules`]) and sends it
//! as the `Cache-Control` header, which gateways and CDNs read.
//!
//! The rules are Apollo Server's, computed from the selection rather than while resolving:
//! a field's hint is its own, else its composite return type's; a root field, or a field
//! returning an object, interface or union, without a `maxAge` (and not `inheritMaxAge`)
//! makes the response uncacheable; scalar fields inherit their parent's. The response's
//! `maxAge` is the least of all its fields', and it is private if any field is. `_entities`
//! takes the hints of the types its representations name. A response with errors, or with
//! no `maxAge` above zero, is sent with `no-store`.

use std::collections::HashMap;

use async_graphql::Value;
use async_graphql::dynamic::{Directive, Enum, Object, SchemaBuilder};
use async_graphql::parser::types::{
    DocumentOperations, ExecutableDocument, OperationType, SelectionSet,
};
use async_graphql::registry::{MetaType, MetaTypeName, Registry};
use serde::Deserialize;

use crate::selection::{SelectionError, Walker};

/// The directive's definition, as Apollo Server documents it.
pub const DIRECTIVE_DEFINITION: &str = "directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION";

/// The enum of the directive's `scope` argument.
pub const SCOPE_ENUM: &str = "CacheControlScope";

/// An SDL text with the directive's definition added.
pub fn with_definition(sdl: &str) -> String {
    format!("{sdl}\n{DIRECTIVE_DEFINITION}\n")
}

/// Who may cache an answer: any cache, or only the asking client's own.
#[derive(Clone, Copy, Debug, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    #[default]
    #[serde(alias = "PUBLIC")]
    Public,
    #[serde(alias = "PRIVATE")]
    Private,
}

impl Scope {
    fn graphql_name(self) -> &'static str {
        match self {
            Self::Public => "PUBLIC",
            Self::Private => "PRIVATE",
        }
    }
}

/// One `@cacheControl`, as configured: `{ max_age: 60, scope: private }`.
#[derive(Clone, Copy, Debug, Default, Deserialize, schemars::JsonSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct CacheHint {
    /// Seconds the answer may be cached.
    #[serde(default)]
    pub max_age: Option<u32>,
    /// `public` (the default) or `private`.
    #[serde(default)]
    pub scope: Option<Scope>,
    /// Take the parent field's `maxAge` instead of making the answer uncacheable.
    #[serde(default)]
    pub inherit_max_age: bool,
}

impl CacheHint {
    /// The same hint, private: for data a row rule makes depend on who asks.
    #[must_use]
    pub fn private(self) -> Self {
        Self {
            scope: Some(Scope::Private),
            ..self
        }
    }

    /// `@cacheControl(inheritMaxAge: true)`: for types that are parts of others (nested
    /// documents, page info), which should not make an answer uncacheable on their own.
    pub fn inherit() -> Self {
        Self {
            inherit_max_age: true,
            ..Self::default()
        }
    }

    /// The strictest of several hints (the least `maxAge`, private if any is): for a type
    /// whose fields each take one of them. `None` when any is missing.
    pub fn strictest(hints: impl IntoIterator<Item = Option<Self>>) -> Option<Self> {
        let mut strictest: Option<Self> = None;
        for hint in hints {
            let hint = hint?;
            strictest = Some(match strictest {
                None => hint,
                Some(so_far) => Self {
                    max_age: match (so_far.max_age, hint.max_age) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        _ => None,
                    },
                    scope: if so_far.scope == Some(Scope::Private) {
                        so_far.scope
                    } else {
                        hint.scope.or(so_far.scope)
                    },
                    inherit_max_age: so_far.inherit_max_age && hint.inherit_max_age,
                },
            });
        }
        strictest
    }

    /// `object` with this hint, if there is one.
    pub fn apply(hint: Option<&Self>, object: Object) -> Object {
        match hint {
            Some(hint) => object.directive(hint.directive()),
            None => object,
        }
    }

    /// `@cacheControl(…)` for the SDL.
    pub fn directive(&self) -> Directive {
        let mut directive = Directive::new("cacheControl");
        if let Some(max_age) = self.max_age {
            directive = directive.argument("maxAge", Value::from(max_age));
        }
        if let Some(scope) = self.scope {
            directive = directive.argument(
                "scope",
                Value::Enum(async_graphql::Name::new(scope.graphql_name())),
            );
        }
        if self.inherit_max_age {
            directive = directive.argument("inheritMaxAge", Value::Boolean(true));
        }
        directive
    }

    /// Read back from a type's or field's applied directives.
    fn from_directives(
        directives: &[async_graphql::registry::MetaDirectiveInvocation],
    ) -> Option<Self> {
        let directive = directives
            .iter()
            .find(|directive| directive.name == "cacheControl")?;
        let max_age = match directive.args.get("maxAge") {
            Some(Value::Number(number)) => number.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        let scope = match directive.args.get("scope") {
            Some(Value::Enum(name)) if name.as_str() == "PRIVATE" => Some(Scope::Private),
            Some(Value::Enum(name)) if name.as_str() == "PUBLIC" => Some(Scope::Public),
            _ => None,
        };
        let inherit_max_age = matches!(
            directive.args.get("inheritMaxAge"),
            Some(Value::Boolean(true))
        );
        Some(Self {
            max_age,
            scope,
            inherit_max_age,
        })
    }
}

/// Declares what hints need on a schema that uses them: the `CacheControlScope` enum, and the
/// directive's definition in `_service { sdl }`.
pub fn register(builder: SchemaBuilder) -> SchemaBuilder {
    builder
        .register(
            Enum::new(SCOPE_ENUM)
                .item(Scope::Public.graphql_name())
                .item(Scope::Private.graphql_name()),
        )
        .extension(SdlDefinition)
}

/// Appends the directive's definition to `_service { sdl }`.
struct SdlDefinition;

impl async_graphql::extensions::ExtensionFactory for SdlDefinition {
    fn create(&self) -> std::sync::Arc<dyn async_graphql::extensions::Extension> {
        std::sync::Arc::new(SdlDefinition)
    }
}

#[async_graphql::async_trait::async_trait]
impl async_graphql::extensions::Extension for SdlDefinition {
    async fn resolve(
        &self,
        ctx: &async_graphql::extensions::ExtensionContext<'_>,
        info: async_graphql::extensions::ResolveInfo<'_>,
        next: async_graphql::extensions::NextResolve<'_>,
    ) -> async_graphql::ServerResult<Option<Value>> {
        let sdl = info.parent_type == "_Service" && info.name == "sdl";
        let value = next.run(ctx, info).await?;
        Ok(match value {
            Some(Value::String(text)) if sdl => Some(Value::String(with_definition(&text))),
            other => other,
        })
    }
}

/// A response's cache policy: the least `maxAge` of its fields (`None` while no field set
/// one), and whether any is private.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Policy {
    pub max_age: Option<u32>,
    pub private: bool,
}

impl Policy {
    fn restrict(&mut self, hint: CacheHint) {
        if let Some(max_age) = hint.max_age {
            self.max_age = Some(self.max_age.map_or(max_age, |own| own.min(max_age)));
        }
        if hint.scope == Some(Scope::Private) {
            self.private = true;
        }
    }

    fn uncacheable() -> Self {
        Self {
            max_age: Some(0),
            private: false,
        }
    }

    /// The `Cache-Control` header value.
    pub fn header(&self) -> String {
        match self.max_age {
            Some(max_age) if max_age > 0 => format!(
                "max-age={max_age}, {}",
                if self.private { "private" } else { "public" }
            ),
            _ => "no-store".to_owned(),
        }
    }
}

/// A field's declared return type and hint.
struct FieldRule {
    named: String,
    hint: Option<CacheHint>,
}

/// A type's hint, its fields, and (for interfaces and unions) its possible types.
#[derive(Default)]
struct TypeRule {
    hint: Option<CacheHint>,
    composite: bool,
    fields: HashMap<String, FieldRule>,
    possible: Vec<String>,
}

/// The hints of one schema, indexed for working out policies.
pub struct CacheRules {
    types: HashMap<String, TypeRule>,
    query: String,
}

impl CacheRules {
    /// The rules of a schema's registry; `None` when nothing in it has a hint (then every
    /// response is uncacheable, without looking at it).
    pub fn from_registry(registry: &Registry) -> Option<Self> {
        let mut any = false;
        let mut types = HashMap::new();
        for (name, ty) in &registry.types {
            let (hint, fields, possible) = match ty {
                MetaType::Object {
                    fields,
                    directive_invocations,
                    ..
                } => (directive_invocations, Some(fields), Vec::new()),
                MetaType::Interface {
                    fields,
                    directive_invocations,
                    possible_types,
                    ..
                } => (
                    directive_invocations,
                    Some(fields),
                    possible_types.iter().cloned().collect(),
                ),
                MetaType::Union {
                    directive_invocations,
                    possible_types,
                    ..
                } => (
                    directive_invocations,
                    None,
                    possible_types.iter().cloned().collect(),
                ),
                _ => {
                    types.insert(name.clone(), TypeRule::default());
                    continue;
                }
            };
            let hint = CacheHint::from_directives(hint);
            any |= hint.is_some();
            let fields = fields
                .into_iter()
                .flatten()
                .map(|(field_name, field)| {
                    let hint = CacheHint::from_directives(&field.directive_invocations);
                    any |= hint.is_some();
                    let named = MetaTypeName::concrete_typename(&field.ty).to_owned();
                    (field_name.clone(), FieldRule { named, hint })
                })
                .collect();
            types.insert(
                name.clone(),
                TypeRule {
                    hint,
                    composite: true,
                    fields,
                    possible,
                },
            );
        }
        any.then(|| Self {
            types,
            query: registry.query_type.clone(),
        })
    }

    /// The policy of the operation `operation_name` of `document` with these variables.
    /// Mutations, subscriptions, and operations that do not resolve, are uncacheable.
    pub fn policy(
        &self,
        document: &ExecutableDocument,
        operation_name: Option<&str>,
        variables: &async_graphql::Variables,
    ) -> Policy {
        let operation = match (&document.operations, operation_name) {
            (DocumentOperations::Single(operation), _) => &operation.node,
            (DocumentOperations::Multiple(operations), Some(name)) => match operations.get(name) {
                Some(operation) => &operation.node,
                None => return Policy::uncacheable(),
            },
            (DocumentOperations::Multiple(_), None) => return Policy::uncacheable(),
        };
        // A mutation's answer reports a change; it is never served again from a cache.
        if operation.ty != OperationType::Query {
            return Policy::uncacheable();
        }
        let root = self.query.as_str();
        let walker = Walker::from_parts(
            &document.fragments,
            variables,
            &operation.variable_definitions,
        );
        let mut policy = Policy::default();
        let outcome = self.walk(
            &walker,
            &[&operation.selection_set.node],
            root,
            true,
            &mut policy,
        );
        match (outcome, policy.max_age) {
            (Ok(()), Some(_)) => policy,
            _ => Policy::uncacheable(),
        }
    }

    /// Restricts `policy` by the fields `sets` select on a value of type `type_name` (every
    /// possible type, for an interface or union).
    fn walk<'a>(
        &self,
        walker: &Walker<'a>,
        sets: &[&'a SelectionSet],
        type_name: &str,
        root: bool,
        policy: &mut Policy,
    ) -> Result<(), SelectionError> {
        let Some(rule) = self.types.get(type_name) else {
            *policy = Policy::uncacheable();
            return Ok(());
        };
        let concrete: Vec<&str> = if rule.possible.is_empty() {
            vec![type_name]
        } else {
            rule.possible.iter().map(String::as_str).collect()
        };
        for concrete in concrete {
            for field in walker.collect(sets, concrete)? {
                if policy.max_age == Some(0) {
                    return Ok(());
                }
                if field.name == "__typename" {
                    continue;
                }
                if root && field.name == "_entities" {
                    self.entities(walker, &field, policy)?;
                    continue;
                }
                let Some(field_rule) = self
                    .types
                    .get(concrete)
                    .and_then(|rule| rule.fields.get(field.name))
                else {
                    // Introspection (`__schema`, `__type`) and anything unknown.
                    *policy = Policy::uncacheable();
                    return Ok(());
                };
                let target = self.types.get(&field_rule.named);
                let composite = target.is_some_and(|target| target.composite);
                policy.restrict(field_hint(
                    field_rule.hint,
                    target.and_then(|target| target.hint),
                    composite,
                    root,
                ));
                if composite {
                    self.walk(
                        walker,
                        &field.selection_sets,
                        &field_rule.named,
                        false,
                        policy,
                    )?;
                }
            }
        }
        Ok(())
    }

    /// `_entities`: each type its representations name restricts the policy with its own
    /// hint (a type without a `maxAge` makes the answer uncacheable), then its selection.
    fn entities<'a>(
        &self,
        walker: &Walker<'a>,
        field: &crate::selection::SelectedField<'a>,
        policy: &mut Policy,
    ) -> Result<(), SelectionError> {
        let mut typenames: Vec<&str> = Vec::new();
        if let Some(Value::List(representations)) = field.argument("representations") {
            for representation in representations {
                let Value::Object(object) = representation else {
                    continue;
                };
                if let Some(Value::String(typename)) = object.get("__typename")
                    && !typenames.contains(&typename.as_str())
                {
                    typenames.push(typename.as_str());
                }
            }
        }
        for typename in typenames {
            let hint = self.types.get(typename).and_then(|rule| rule.hint);
            policy.restrict(field_hint(None, hint, true, true));
            self.walk(walker, &field.selection_sets, typename, false, policy)?;
        }
        Ok(())
    }
}

/// One field's hint by Apollo Server's rules: its own hint over its return type's; without a
/// `maxAge`, a root field or a composite one (unless it inherits) gets 0.
fn field_hint(
    own: Option<CacheHint>,
    of_type: Option<CacheHint>,
    composite: bool,
    root: bool,
) -> CacheHint {
    let mut hint = CacheHint::default();
    let mut inherit = false;
    if composite && let Some(of_type) = of_type {
        hint = of_type;
        inherit = of_type.inherit_max_age;
    }
    if let Some(own) = own {
        if own.inherit_max_age && hint.max_age.is_none() {
            inherit = true;
            hint.scope = own.scope.or(hint.scope);
        } else {
            hint.max_age = own.max_age.or(hint.max_age);
            hint.scope = own.scope.or(hint.scope);
        }
    }
    if hint.max_age.is_none() && ((composite && !inherit) || root) {
        hint.max_age = Some(0);
    }
    hint
}

#[cfg(test)]
mod tests {
    use async_graphql::dynamic::{Field, FieldFuture, Object, Schema, TypeRef};
    use async_graphql::{Request, Variables};

    use super::*;

    fn hint(max_age: u32) -> CacheHint {
        CacheHint {
            max_age: Some(max_age),
            ..CacheHint::default()
        }
    }

    fn field(name: &str, ty: TypeRef) -> Field {
        Field::new(name, ty, |_| FieldFuture::new(async { Ok(None::<Value>) }))
    }

    /// Products for 300 s (prices 30 s), reviews without a hint, users private for 120 s.
    fn schema() -> Schema {
        let product = Object::new("Product")
            .key("id")
            .directive(hint(300).directive())
            .field(field("id", TypeRef::named_nn(TypeRef::ID)))
            .field(field("name", TypeRef::named(TypeRef::STRING)))
            .field(field("price", TypeRef::named(TypeRef::FLOAT)).directive(hint(30).directive()))
            .field(field("reviews", TypeRef::named_nn_list_nn("Review")));
        let review = Object::new("Review").field(field("body", TypeRef::named(TypeRef::STRING)));
        let user = Object::new("User")
            .key("id")
            .directive(hint(120).private().directive())
            .field(field("id", TypeRef::named_nn(TypeRef::ID)))
            .field(field("name", TypeRef::named(TypeRef::STRING)));
        let query = Object::new("Query")
            .field(field("products", TypeRef::named_nn_list_nn("Product")))
            .field(field("me", TypeRef::named("User")))
            .field(field("version", TypeRef::named(TypeRef::STRING)))
            .field(
                field("cheap", TypeRef::named_nn_list_nn("Product")).directive(hint(5).directive()),
            );
        let mutation = Object::new("Mutation").field(field("touch", TypeRef::named("Product")));
        register(Schema::build("Query", Some("Mutation"), None))
            .register(product)
            .register(review)
            .register(user)
            .register(query)
            .register(mutation)
            .entity_resolver(|_| FieldFuture::new(async { Ok(None::<Value>) }))
            .finish()
            .unwrap()
    }

    fn header(query: &str, variables: serde_json::Value) -> String {
        let schema = schema();
        let rules = CacheRules::from_registry(schema.registry()).expect("the schema has hints");
        let document = async_graphql::parser::parse_query(query).unwrap();
        rules
            .policy(&document, None, &Variables::from_json(variables))
            .header()
    }

    #[test]
    fn the_least_max_age_of_the_selected_fields_wins() {
        let none = serde_json::json!({});
        assert_eq!(
            header("{ products { id name } }", none.clone()),
            "max-age=300, public"
        );
        assert_eq!(
            header("{ products { id price } }", none.clone()),
            "max-age=30, public"
        );
        assert_eq!(
            header("{ cheap { id } }", none.clone()),
            "max-age=5, public"
        );
        assert_eq!(
            header(
                "{ products { id ...P } } fragment P on Product { price }",
                none.clone()
            ),
            "max-age=30, public"
        );
        assert_eq!(
            header(
                "query($s: Boolean!) { products { id price @skip(if: $s) } }",
                serde_json::json!({ "s": true })
            ),
            "max-age=300, public"
        );
    }

    #[test]
    fn a_private_field_makes_the_response_private() {
        assert_eq!(
            header("{ me { name } products { id } }", serde_json::json!({})),
            "max-age=120, private"
        );
    }

    #[test]
    fn unhinted_objects_root_scalars_introspection_and_mutations_are_not_stored() {
        let none = serde_json::json!({});
        for query in [
            "{ products { reviews { body } } }",
            "{ version }",
            "{ __schema { queryType { name } } }",
            "{ _service { sdl } }",
            "mutation { touch { id } }",
        ] {
            assert_eq!(header(query, none.clone()), "no-store", "{query}");
        }
    }

    #[test]
    fn entities_take_the_hints_of_the_types_represented() {
        let query = "query($r: [_Any!]!) { _entities(representations: $r) { ... on User { name } ... on Product { id } } }";
        let users = serde_json::json!({ "r": [{ "__typename": "User", "id": "1" }] });
        assert_eq!(header(query, users), "max-age=120, private");
        let products = serde_json::json!({ "r": [{ "__typename": "Product", "id": "1" }] });
        assert_eq!(header(query, products), "max-age=300, public");
        let both = serde_json::json!({ "r": [
            { "__typename": "Product", "id": "1" }, { "__typename": "User", "id": "2" }
        ] });
        assert_eq!(header(query, both), "max-age=120, private");
        let reviews = serde_json::json!({ "r": [{ "__typename": "Review", "id": "1" }] });
        assert_eq!(header(query, reviews), "no-store");
    }

    #[test]
    fn the_strictest_of_several_hints() {
        let private = hint(30).private();
        assert_eq!(
            CacheHint::strictest([Some(hint(60)), Some(private), Some(hint(10))]),
            Some(CacheHint {
                max_age: Some(10),
                scope: Some(Scope::Private),
                inherit_max_age: false,
            })
        );
        assert_eq!(CacheHint::strictest([Some(hint(60)), None]), None);
        assert_eq!(CacheHint::strictest(std::iter::empty()), None);
    }

    #[test]
    fn a_schema_without_hints_has_no_rules() {
        let schema = Schema::build("Query", None, None)
            .register(Object::new("Query").field(field("version", TypeRef::named(TypeRef::STRING))))
            .finish()
            .unwrap();
        assert!(CacheRules::from_registry(schema.registry()).is_none());
    }

    #[tokio::test]
    async fn the_sdl_declares_and_applies_the_directive() {
        let response = schema().execute(Request::new("{ _service { sdl } }")).await;
        let data = response.data.into_json().unwrap();
        let sdl = data["_service"]["sdl"].as_str().unwrap();
        assert!(sdl.contains(DIRECTIVE_DEFINITION), "{sdl}");
        assert!(sdl.contains("enum CacheControlScope"), "{sdl}");
        assert!(
            sdl.contains("@cacheControl(maxAge: 120, scope: PRIVATE)"),
            "{sdl}"
        );
        assert!(
            sdl.contains("price: Float @cacheControl(maxAge: 30)"),
            "{sdl}"
        );
    }
}
