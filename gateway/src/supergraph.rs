//! Loading an Apollo-format supergraph: which subgraphs there are, where each type and field
//! lives, and the API schema clients see.
//!
//! A supergraph SDL carries the composition's result in the join spec's directives:
//! `enum join__Graph { ACCOUNTS @join__graph(name: "accounts", url: "…") }` names the subgraphs;
//! `@join__type(graph:, key:, resolvable:, extension:, isInterfaceObject:)` says which subgraphs
//! define a type and by which keys they can fetch it; `@join__field(graph:, requires:,
//! provides:, external:, override:, overrideLabel:)` says which subgraphs resolve a field. A
//! field without `@join__field` is resolved by every subgraph that defines its type.
//!
//! The API schema is the supergraph without that machinery: the `@link`ed specs' directives and
//! types (`join__*`, `link__*`, `@tag`, `@inaccessible`, …) removed, and every element marked
//! `@inaccessible` hidden, together with what refers to it.

use std::collections::{HashMap, HashSet};

use apollo_compiler::ast::{DirectiveList, Value};
use apollo_compiler::schema::{ExtendedType, SchemaDefinition};
use apollo_compiler::validation::Valid;
use apollo_compiler::{Name, Node, Schema};
use indexmap::IndexMap;

/// A loaded supergraph.
#[derive(Debug)]
pub struct Supergraph {
    /// The schema as composed, join and link directives included.
    pub schema: Valid<Schema>,
    /// What clients see and operations are validated against.
    pub api_schema: Valid<Schema>,
    pub subgraphs: Vec<Subgraph>,
    /// Per type: the subgraphs that define it and their keys.
    pub types: IndexMap<Name, Vec<TypePlacement>>,
    /// Per `(type, field)` with `@join__field`: where it is resolved, and how.
    pub fields: HashMap<(Name, Name), Vec<FieldPlacement>>,
    /// Per interface or union: `(subgraph, member)` for each type a subgraph says implements
    /// it or belongs to it (`@join__implements`, `@join__unionMember`).
    pub members: HashMap<Name, Vec<(usize, Name)>>,
    /// Progressive-override labels in force (`@override(label:)`); none by default, so
    /// fields stay with the subgraph they are being moved from until a label is switched on.
    pub active_labels: HashSet<String>,
    /// What `@authenticated`, `@requiresScopes` and `@policy` require, by type and field.
    pub requirements: crate::requirements::Requirements,
}

/// One subgraph of the supergraph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Subgraph {
    /// The name given at composition (`@join__graph(name:)`).
    pub name: String,
    /// Its value in `join__Graph`, as `@join__type(graph:)` refers to it.
    pub graph: Name,
    pub url: String,
}

/// A type as one subgraph defines it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TypePlacement {
    /// Index into [`Supergraph::subgraphs`].
    pub subgraph: usize,
    /// The key's field set, for entities.
    pub key: Option<String>,
    /// Whether the subgraph can fetch the entity by this key (`resolvable: false` cannot).
    pub resolvable: bool,
    pub extension: bool,
    pub is_interface_object: bool,
}

/// A field as one subgraph resolves it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldPlacement {
    /// Index into [`Supergraph::subgraphs`]; `None` for `@join__field` without a graph.
    pub subgraph: Option<usize>,
    pub requires: Option<String>,
    pub provides: Option<String>,
    /// The subgraph declares the field but another resolves it.
    pub external: bool,
    /// The subgraph it took the field over from, and the progressive override's label.
    pub override_from: Option<String>,
    pub override_label: Option<String>,
    /// The field's type in this subgraph, where it differs from the supergraph's.
    pub type_in_subgraph: Option<String>,
    pub used_overridden: bool,
}

/// A supergraph that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SupergraphError {
    #[error("the supergraph is not a valid schema:\n{0}")]
    Invalid(String),
    #[error("the supergraph has no join__Graph enum: is it a composed supergraph?")]
    NoSubgraphs,
    #[error("join__Graph.{0} lacks @join__graph(name:, url:)")]
    BadGraph(String),
    #[error("{0} refers to graph {1}, which join__Graph does not name")]
    UnknownGraph(String, String),
    #[error("the API schema derived from the supergraph is invalid:\n{0}")]
    InvalidApiSchema(String),
    #[error("{0}")]
    UnsupportedSpec(String),
}

impl Supergraph {
    /// Parses and validates a supergraph SDL, and derives its API schema.
    pub fn parse(sdl: &str) -> Result<Self, SupergraphError> {
        let schema = Schema::parse_and_validate(sdl, "supergraph.graphql")
            .map_err(|with_errors| SupergraphError::Invalid(with_errors.errors.to_string()))?;
        let subgraphs = subgraphs(&schema)?;
        let graph_index = |graph: &str, context: &str| {
            subgraphs
                .iter()
                .position(|subgraph| subgraph.graph == graph)
                .ok_or_else(|| SupergraphError::UnknownGraph(context.to_owned(), graph.to_owned()))
        };

        let mut types = IndexMap::new();
        let mut fields = HashMap::new();
        let mut members: HashMap<Name, Vec<(usize, Name)>> = HashMap::new();
        for (name, ty) in &schema.types {
            if ty.is_built_in() {
                continue;
            }
            for directive in ty.directives().get_all("join__implements") {
                let graph = enum_argument(&directive.arguments, "graph").unwrap_or_default();
                if let Some(interface) = string_argument(&directive.arguments, "interface") {
                    members
                        .entry(Name::new_unchecked(&interface))
                        .or_default()
                        .push((graph_index(&graph, name.as_str())?, name.clone()));
                }
            }
            for directive in ty.directives().get_all("join__unionMember") {
                let graph = enum_argument(&directive.arguments, "graph").unwrap_or_default();
                if let Some(member) = string_argument(&directive.arguments, "member") {
                    members.entry(name.clone()).or_default().push((
                        graph_index(&graph, name.as_str())?,
                        Name::new_unchecked(&member),
                    ));
                }
            }
            let mut placements = Vec::new();
            for directive in ty.directives().get_all("join__type") {
                let graph = enum_argument(&directive.arguments, "graph").unwrap_or_default();
                placements.push(TypePlacement {
                    subgraph: graph_index(&graph, name.as_str())?,
                    key: string_argument(&directive.arguments, "key"),
                    resolvable: bool_argument(&directive.arguments, "resolvable").unwrap_or(true),
                    extension: bool_argument(&directive.arguments, "extension").unwrap_or(false),
                    is_interface_object: bool_argument(&directive.arguments, "isInterfaceObject")
                        .unwrap_or(false),
                });
            }
            if !placements.is_empty() {
                types.insert(name.clone(), placements);
            }
            let definitions = match ty {
                ExtendedType::Object(object) => &object.fields,
                ExtendedType::Interface(interface) => &interface.fields,
                _ => continue,
            };
            for (field_name, field) in definitions {
                let mut placements = Vec::new();
                for directive in field.directives.get_all("join__field") {
                    let arguments = &directive.arguments;
                    let subgraph = enum_argument(arguments, "graph")
                        .map(|graph| graph_index(&graph, &format!("{name}.{field_name}")))
                        .transpose()?;
                    placements.push(FieldPlacement {
                        subgraph,
                        requires: string_argument(arguments, "requires"),
                        provides: string_argument(arguments, "provides"),
                        external: bool_argument(arguments, "external").unwrap_or(false),
                        override_from: string_argument(arguments, "override"),
                        override_label: string_argument(arguments, "overrideLabel"),
                        type_in_subgraph: string_argument(arguments, "type"),
                        used_overridden: bool_argument(arguments, "usedOverridden")
                            .unwrap_or(false),
                    });
                }
                if !placements.is_empty() {
                    fields.insert((name.clone(), field_name.clone()), placements);
                }
            }
        }
        let requires = fields.iter().flat_map(|((ty, field), placements)| {
            placements
                .iter()
                .filter_map(move |placement| Some((ty, field, placement.requires.as_deref()?)))
        });
        let requirements = crate::requirements::Requirements::of(&schema, requires)
            .map_err(SupergraphError::UnsupportedSpec)?;
        let api_schema = api_schema(&schema)?;
        Ok(Self {
            schema,
            api_schema,
            subgraphs,
            types,
            fields,
            members,
            active_labels: HashSet::new(),
            requirements,
        })
    }

    /// Under a progressive `@override(label:)`, the overriding subgraph resolves the field
    /// while the label is active and the overridden one while it is not.
    fn override_applies(&self, placement: &FieldPlacement) -> bool {
        match &placement.override_label {
            None => true,
            Some(label) => {
                let active = self.active_labels.contains(label);
                if placement.override_from.is_some() {
                    active
                } else {
                    !active
                }
            }
        }
    }

    /// How subgraph `subgraph` defines `ty`, if it does (its first `@join__type`).
    pub fn placement(&self, ty: &str, subgraph: usize) -> Option<&TypePlacement> {
        self.types
            .get(ty)?
            .iter()
            .find(|placement| placement.subgraph == subgraph)
    }

    /// The keys by which `subgraph` can fetch `ty` as an entity.
    pub fn resolvable_keys(&self, ty: &str, subgraph: usize) -> impl Iterator<Item = &str> {
        self.types
            .get(ty)
            .into_iter()
            .flatten()
            .filter_map(move |placement| {
                (placement.subgraph == subgraph && placement.resolvable)
                    .then_some(placement.key.as_deref())
                    .flatten()
            })
    }

    /// The object types an abstract type can be at run time when `subgraph` resolves it.
    pub fn runtime_types(&self, abstract_type: &str, subgraph: usize) -> Vec<Name> {
        let possible = self.possible_types(abstract_type);
        match self.members.get(abstract_type) {
            // join v0.2+ records membership per subgraph; older supergraphs do not.
            Some(members) if !members.is_empty() => possible
                .into_iter()
                .filter(|ty| {
                    members
                        .iter()
                        .any(|(graph, member)| *graph == subgraph && member == ty)
                })
                .collect(),
            _ => possible
                .into_iter()
                .filter(|ty| self.placement(ty, subgraph).is_some())
                .collect(),
        }
    }

    /// The object types that are possible for `ty` in the supergraph (itself for an object).
    pub fn possible_types(&self, ty: &str) -> Vec<Name> {
        match self.schema.types.get(ty) {
            Some(ExtendedType::Object(object)) => vec![object.name.clone()],
            Some(ExtendedType::Union(union)) => union
                .members
                .iter()
                .map(|member| member.name.clone())
                .collect(),
            Some(ExtendedType::Interface(_)) => self
                .schema
                .types
                .iter()
                .filter(|(name, candidate)| {
                    matches!(candidate, ExtendedType::Object(_)) && self.schema.is_subtype(ty, name)
                })
                .map(|(name, _)| name.clone())
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The subgraphs that resolve `type_name.field`: the `@join__field` graphs that are not
    /// external, or every subgraph defining the type when the field has no `@join__field`.
    pub fn field_subgraphs(&self, type_name: &str, field: &str) -> Vec<usize> {
        let key = (Name::new_unchecked(type_name), Name::new_unchecked(field));
        match self.fields.get(&key) {
            // `@join__field` without a graph: no subgraph defining the type resolves it; it
            // comes from an `@interfaceObject` of one of the type's interfaces.
            Some(placements) if placements.iter().all(|p| p.subgraph.is_none()) => Vec::new(),
            Some(placements) => placements
                .iter()
                .filter(|placement| !placement.external && !placement.used_overridden)
                .filter(|placement| self.override_applies(placement))
                .filter_map(|placement| placement.subgraph)
                .collect(),
            _ => {
                let mut subgraphs: Vec<usize> = self
                    .types
                    .get(type_name)
                    .into_iter()
                    .flatten()
                    .map(|placement| placement.subgraph)
                    .collect();
                subgraphs.dedup();
                subgraphs
            }
        }
    }
}

fn subgraphs(schema: &Schema) -> Result<Vec<Subgraph>, SupergraphError> {
    let Some(ExtendedType::Enum(graphs)) = schema.types.get("join__Graph") else {
        return Err(SupergraphError::NoSubgraphs);
    };
    graphs
        .values
        .iter()
        .map(|(value, definition)| {
            let directive = definition
                .directives
                .get("join__graph")
                .ok_or_else(|| SupergraphError::BadGraph(value.to_string()))?;
            let name = string_argument(&directive.arguments, "name");
            let url = string_argument(&directive.arguments, "url");
            match (name, url) {
                (Some(name), Some(url)) => Ok(Subgraph {
                    name,
                    graph: value.clone(),
                    url,
                }),
                _ => Err(SupergraphError::BadGraph(value.to_string())),
            }
        })
        .collect()
}

fn argument<'a>(
    arguments: &'a [Node<apollo_compiler::ast::Argument>],
    name: &str,
) -> Option<&'a Value> {
    arguments
        .iter()
        .find(|argument| argument.name == name)
        .map(|argument| argument.value.as_ref())
}

fn string_argument(
    arguments: &[Node<apollo_compiler::ast::Argument>],
    name: &str,
) -> Option<String> {
    match argument(arguments, name)? {
        Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

fn enum_argument(arguments: &[Node<apollo_compiler::ast::Argument>], name: &str) -> Option<String> {
    match argument(arguments, name)? {
        Value::Enum(value) => Some(value.to_string()),
        _ => None,
    }
}

fn bool_argument(arguments: &[Node<apollo_compiler::ast::Argument>], name: &str) -> Option<bool> {
    match argument(arguments, name)? {
        Value::Boolean(flag) => Some(*flag),
        _ => None,
    }
}

/// The names the supergraph's `@link`ed specs own: for
/// `@link(url: "https://specs.apollo.dev/join/v0.3")` that is `join` (or its `as:`), owning the
/// directive `@join` and every `join__*` directive and type; imports keep their own names.
fn linked_names(schema: &Schema) -> (HashSet<String>, HashSet<String>) {
    let mut prefixes: HashSet<String> = HashSet::from(["link".to_owned()]);
    let mut imported: HashSet<String> = HashSet::new();
    for directive in schema.schema_definition.directives.get_all("link") {
        let Some(url) = string_argument(&directive.arguments, "url") else {
            continue;
        };
        let spec = url
            .trim_end_matches('/')
            .rsplit('/')
            .nth(1)
            .unwrap_or_default()
            .to_owned();
        let prefix = string_argument(&directive.arguments, "as").unwrap_or(spec);
        if let Some(Value::List(imports)) = argument(&directive.arguments, "import") {
            for import in imports {
                let name = match import.as_ref() {
                    Value::String(name) => Some(name.clone()),
                    // `{name: "@x", as: "@y"}` brings `@x` in as `@y`.
                    Value::Object(fields) => ["as", "name"].iter().find_map(|wanted| {
                        fields.iter().find_map(|(key, value)| match value.as_ref() {
                            Value::String(name) if key == wanted => Some(name.clone()),
                            _ => None,
                        })
                    }),
                    _ => None,
                };
                if let Some(name) = name {
                    imported.insert(name.trim_start_matches('@').to_owned());
                }
            }
        }
        prefixes.insert(prefix);
    }
    (prefixes, imported)
}

/// What the API schema leaves out: the linked specs' names, and hidden types.
struct Pruner {
    prefixes: HashSet<String>,
    imported: HashSet<String>,
    hidden: HashSet<Name>,
}

impl Pruner {
    fn is_machinery(&self, name: &str) -> bool {
        self.imported.contains(name)
            || self.prefixes.contains(name)
            || self.prefixes.iter().any(|prefix| {
                name.strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.starts_with("__"))
            })
    }

    fn keeps_type(&self, ty: &apollo_compiler::ast::Type) -> bool {
        !self.hidden.contains(ty.inner_named_type())
    }

    fn strip(&self, directives: &mut DirectiveList) {
        directives.retain(|directive| !self.is_machinery(directive.name.as_str()));
    }

    fn strip_component(&self, directives: &mut apollo_compiler::schema::DirectiveList) {
        directives.retain(|directive| !self.is_machinery(directive.name.as_str()));
    }

    fn fields(
        &self,
        fields: &mut apollo_compiler::collections::IndexMap<
            Name,
            apollo_compiler::schema::Component<apollo_compiler::schema::FieldDefinition>,
        >,
    ) {
        fields.retain(|_, field| !inaccessible(&field.directives) && self.keeps_type(&field.ty));
        for field in fields.values_mut() {
            let field = field.make_mut();
            self.strip(&mut field.directives);
            field.arguments.retain(|argument| {
                !inaccessible(&argument.directives) && self.keeps_type(&argument.ty)
            });
            for argument in &mut field.arguments {
                self.strip(&mut argument.make_mut().directives);
            }
        }
    }

    fn prune(&self, ty: &mut ExtendedType) {
        match ty {
            ExtendedType::Object(object) => {
                let object = object.make_mut();
                self.strip_component(&mut object.directives);
                object
                    .implements_interfaces
                    .retain(|interface| !self.hidden.contains(&interface.name));
                self.fields(&mut object.fields);
            }
            ExtendedType::Interface(interface) => {
                let interface = interface.make_mut();
                self.strip_component(&mut interface.directives);
                interface
                    .implements_interfaces
                    .retain(|other| !self.hidden.contains(&other.name));
                self.fields(&mut interface.fields);
            }
            ExtendedType::Union(union) => {
                let union = union.make_mut();
                self.strip_component(&mut union.directives);
                union
                    .members
                    .retain(|member| !self.hidden.contains(&member.name));
            }
            ExtendedType::Enum(enumeration) => {
                let enumeration = enumeration.make_mut();
                self.strip_component(&mut enumeration.directives);
                enumeration
                    .values
                    .retain(|_, value| !inaccessible(&value.directives));
                for value in enumeration.values.values_mut() {
                    self.strip(&mut value.make_mut().directives);
                }
            }
            ExtendedType::InputObject(input) => {
                let input = input.make_mut();
                self.strip_component(&mut input.directives);
                input.fields.retain(|_, field| {
                    !inaccessible(&field.directives) && self.keeps_type(&field.ty)
                });
                for field in input.fields.values_mut() {
                    self.strip(&mut field.make_mut().directives);
                }
            }
            ExtendedType::Scalar(scalar) => self.strip_component(&mut scalar.make_mut().directives),
        }
    }
}

fn inaccessible(directives: &DirectiveList) -> bool {
    directives.get("inaccessible").is_some()
}

/// The schema clients see: spec machinery removed, `@inaccessible` elements hidden.
fn api_schema(supergraph: &Valid<Schema>) -> Result<Valid<Schema>, SupergraphError> {
    let (prefixes, imported) = linked_names(supergraph);
    let mut pruner = Pruner {
        prefixes,
        imported,
        hidden: HashSet::new(),
    };
    pruner.hidden = supergraph
        .types
        .iter()
        .filter(|(name, ty)| {
            !ty.is_built_in()
                && (pruner.is_machinery(name.as_str())
                    || ty.directives().get("inaccessible").is_some())
        })
        .map(|(name, _)| name.clone())
        .collect();

    let mut schema: Schema = supergraph.clone().into_inner();
    schema
        .directive_definitions
        .retain(|name, definition| definition.is_built_in() || !pruner.is_machinery(name.as_str()));
    pruner.strip_component(&mut schema.schema_definition.make_mut().directives);
    schema.types.retain(|name, _| !pruner.hidden.contains(name));
    for ty in schema.types.values_mut() {
        pruner.prune(ty);
    }
    let roots: &mut SchemaDefinition = schema.schema_definition.make_mut();
    for root in [
        &mut roots.query,
        &mut roots.mutation,
        &mut roots.subscription,
    ] {
        if root
            .as_ref()
            .is_some_and(|name| !schema.types.contains_key(&name.name))
        {
            *root = None;
        }
    }
    schema
        .validate()
        .map_err(|with_errors| SupergraphError::InvalidApiSchema(with_errors.errors.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUPERGRAPH: &str = r#"
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.5", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/inaccessible/v0.2", for: SECURITY)
  @link(url: "https://specs.apollo.dev/tag/v0.3")
{
  query: Query
}

directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean, overrideLabel: String, contextArguments: [join__ContextArgument!]) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION
directive @tag(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA

input join__ContextArgument { name: String! type: String! context: String! selection: join__FieldValue! }
scalar join__FieldSet
scalar join__FieldValue
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }

enum join__Graph {
  ACCOUNTS @join__graph(name: "accounts", url: "http://accounts.invalid/graphql")
  REVIEWS @join__graph(name: "reviews", url: "http://reviews.invalid/graphql")
}

type Query @join__type(graph: ACCOUNTS) @join__type(graph: REVIEWS) {
  me: User @join__field(graph: ACCOUNTS)
  topReviews(first: Int = 5, secret: String @inaccessible): [Review] @join__field(graph: REVIEWS)
}

type User @join__type(graph: ACCOUNTS, key: "id") @join__type(graph: REVIEWS, key: "id", resolvable: false) @tag(name: "public") {
  id: ID!
  name: String @join__field(graph: ACCOUNTS)
  ssn: String @join__field(graph: ACCOUNTS) @inaccessible
  reviews: [Review] @join__field(graph: REVIEWS, requires: "name")
}

type Review @join__type(graph: REVIEWS, key: "id") {
  id: ID!
  body: String
  author: User @join__field(graph: REVIEWS, provides: "name")
  internal: Audit
}

type Audit @join__type(graph: REVIEWS) @inaccessible {
  note: String
}
"#;

    #[test]
    fn subgraphs_types_and_fields() {
        let supergraph = Supergraph::parse(SUPERGRAPH).unwrap();
        let names: Vec<_> = supergraph
            .subgraphs
            .iter()
            .map(|s| (s.name.as_str(), s.url.as_str()))
            .collect();
        assert_eq!(
            names,
            vec![
                ("accounts", "http://accounts.invalid/graphql"),
                ("reviews", "http://reviews.invalid/graphql")
            ]
        );
        let user = &supergraph.types["User"];
        assert_eq!(user.len(), 2);
        assert_eq!(user[0].key.as_deref(), Some("id"));
        assert!(user[0].resolvable);
        assert!(!user[1].resolvable);

        assert_eq!(supergraph.field_subgraphs("User", "name"), vec![0]);
        assert_eq!(
            supergraph.field_subgraphs("User", "id"),
            vec![0, 1],
            "no @join__field: every owner"
        );
        assert_eq!(supergraph.field_subgraphs("Review", "body"), vec![1]);
        let reviews =
            &supergraph.fields[&(Name::new_unchecked("User"), Name::new_unchecked("reviews"))];
        assert_eq!(reviews[0].requires.as_deref(), Some("name"));
        let author =
            &supergraph.fields[&(Name::new_unchecked("Review"), Name::new_unchecked("author"))];
        assert_eq!(author[0].provides.as_deref(), Some("name"));
    }

    #[test]
    fn the_api_schema_hides_machinery_and_inaccessible_elements() {
        let supergraph = Supergraph::parse(SUPERGRAPH).unwrap();
        let api = supergraph.api_schema.to_string();
        for gone in [
            "join__",
            "link__",
            "@link",
            "@tag",
            "@inaccessible",
            "ssn",
            "Audit",
            "internal",
            "secret",
        ] {
            assert!(
                !api.contains(gone),
                "{gone} is still in the API schema:\n{api}"
            );
        }
        for kept in [
            "type User",
            "name: String",
            "topReviews(first: Int = 5): [Review]",
            "reviews: [Review]",
        ] {
            assert!(
                api.contains(kept),
                "{kept} is missing from the API schema:\n{api}"
            );
        }
    }

    #[test]
    fn the_demo_supergraph_loads() {
        let sdl = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../schema/supergraph.graphql"
        ))
        .unwrap();
        let supergraph = Supergraph::parse(&sdl).unwrap();
        let names: Vec<&str> = supergraph
            .subgraphs
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        for name in [
            "postgres",
            "mongodb",
            "elasticsearch",
            "redis",
            "clickhouse",
            "neo4j",
        ] {
            assert!(names.contains(&name), "{name} is not in {names:?}");
        }
        assert!(
            supergraph.types["User"]
                .iter()
                .any(|placement| placement.key.as_deref() == Some("id"))
        );
        let api = supergraph.api_schema.to_string();
        assert!(!api.contains("join__"), "{api}");
        assert!(api.contains("users_connection"), "{api}");
    }

    #[test]
    fn unusable_supergraphs_say_why() {
        assert!(matches!(
            Supergraph::parse("type Query { a: Int }"),
            Err(SupergraphError::NoSubgraphs)
        ));
        assert!(matches!(
            Supergraph::parse("type Query {"),
            Err(SupergraphError::Invalid(_))
        ));
    }
}
