//! Reads one subgraph's SDL into the model: `@link` imports and prefixes resolved, Federation 1
//! conventions applied (`extend type`, every field shareable), renamed root types given their
//! standard names, and the federation machinery (`_entities`, `_Any`, …) left out.

use std::collections::HashMap;

use apollo_compiler::Name;
use apollo_compiler::Node;
use apollo_compiler::ast;
use apollo_compiler::ast::{Definition, Directive, DirectiveList, Value};
use apollo_compiler::collections::IndexMap;

use super::error::Error;
use super::fieldset;
use super::model::{
    Access, Composed, Deprecated, Field, Input, Key, Kind, ListSize, Marks, Subgraph, Type,
};

const FEDERATION: &str = "https://specs.apollo.dev/federation/";
const LINK: &str = "https://specs.apollo.dev/link/";

/// The federation directives, by their names in the spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fed {
    Key,
    Requires,
    Provides,
    External,
    Shareable,
    Extends,
    Override,
    Inaccessible,
    Tag,
    ComposeDirective,
    InterfaceObject,
    Authenticated,
    RequiresScopes,
    Policy,
    Cost,
    ListSize,
    Context,
    FromContext,
}

const FEDERATION_DIRECTIVES: [(&str, Fed); 18] = [
    ("key", Fed::Key),
    ("requires", Fed::Requires),
    ("provides", Fed::Provides),
    ("external", Fed::External),
    ("shareable", Fed::Shareable),
    ("extends", Fed::Extends),
    ("override", Fed::Override),
    ("inaccessible", Fed::Inaccessible),
    ("tag", Fed::Tag),
    ("composeDirective", Fed::ComposeDirective),
    ("interfaceObject", Fed::InterfaceObject),
    ("authenticated", Fed::Authenticated),
    ("requiresScopes", Fed::RequiresScopes),
    ("policy", Fed::Policy),
    ("cost", Fed::Cost),
    ("listSize", Fed::ListSize),
    ("context", Fed::Context),
    ("fromContext", Fed::FromContext),
];

/// The standalone specs whose directives mean the same as federation's.
const SPECS: [(&str, &[(&str, Fed)]); 6] = [
    ("inaccessible", &[("inaccessible", Fed::Inaccessible)]),
    ("tag", &[("tag", Fed::Tag)]),
    ("authenticated", &[("authenticated", Fed::Authenticated)]),
    ("requiresScopes", &[("requiresScopes", Fed::RequiresScopes)]),
    ("policy", &[("policy", Fed::Policy)]),
    ("cost", &[("cost", Fed::Cost), ("listSize", Fed::ListSize)]),
];

/// What the subgraph calls each federation directive.
struct Names {
    directives: HashMap<String, Fed>,
    /// Prefixes (`federation__`, `link__`, …) of the machinery's own types and directives.
    prefixes: Vec<String>,
    v1: bool,
}

impl Names {
    fn of(&self, directive: &Directive) -> Option<Fed> {
        self.directives.get(directive.name.as_str()).copied()
    }

    fn is_machinery_type(&self, name: &str) -> bool {
        matches!(
            name,
            "_Any" | "_Entity" | "_Service" | "_FieldSet" | "FieldSet"
        ) || self
            .prefixes
            .iter()
            .any(|prefix| name.starts_with(&format!("{prefix}__")))
    }
}

/// The `@link`s on the schema definition and extensions.
fn links(document: &ast::Document) -> Vec<&Node<Directive>> {
    document
        .definitions
        .iter()
        .flat_map(|definition| match definition {
            Definition::SchemaDefinition(schema) => schema.directives.iter().collect::<Vec<_>>(),
            Definition::SchemaExtension(schema) => schema.directives.iter().collect(),
            _ => Vec::new(),
        })
        .filter(|directive| directive.name == "link")
        .collect()
}

fn string_argument(directive: &Directive, name: &str) -> Option<String> {
    match directive.specified_argument_by_name(name).map(|v| &**v) {
        Some(Value::String(value)) => Some(value.clone()),
        _ => None,
    }
}

/// `(spec name, version, as)` of a link's URL.
fn spec_of(url: &str) -> Option<(String, String)> {
    let trimmed = url.trim_end_matches('/');
    let (rest, version) = trimmed.rsplit_once('/')?;
    let name = rest.rsplit('/').next()?;
    Some((name.to_owned(), version.to_owned()))
}

/// `import:` items as `(name in the spec, local name)`, both without `@`.
fn imports(link: &Directive) -> Vec<(String, String)> {
    let Some(value) = link.specified_argument_by_name("import") else {
        return Vec::new();
    };
    let Value::List(items) = &**value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| match &**item {
            Value::String(name) => Some((name.clone(), name.clone())),
            Value::Object(fields) => {
                let get = |key: &str| {
                    fields.iter().find_map(|(k, v)| match &**v {
                        Value::String(s) if k == key => Some(s.clone()),
                        _ => None,
                    })
                };
                let name = get("name")?;
                let local = get("as").unwrap_or_else(|| name.clone());
                Some((name, local))
            }
            _ => None,
        })
        .filter_map(|(name, local)| {
            Some((
                name.strip_prefix('@')?.to_owned(),
                local.trim_start_matches('@').to_owned(),
            ))
        })
        .collect()
}

fn names(document: &ast::Document) -> Names {
    let mut names = Names {
        directives: HashMap::new(),
        prefixes: vec!["link".to_owned(), "join".to_owned()],
        v1: true,
    };
    for link in links(document) {
        let Some(url) = string_argument(link, "url") else {
            continue;
        };
        let Some((spec, _)) = spec_of(&url) else {
            continue;
        };
        let prefix = string_argument(link, "as").unwrap_or_else(|| spec.clone());
        let known: Vec<(&str, Fed)> = if url.starts_with(FEDERATION) {
            names.v1 = false;
            FEDERATION_DIRECTIVES.to_vec()
        } else if url.starts_with(LINK) {
            names.prefixes.push(prefix);
            continue;
        } else if let Some((_, known)) = SPECS.iter().find(|(name, _)| *name == spec) {
            if !url.starts_with("https://specs.apollo.dev/") {
                continue;
            }
            known.to_vec()
        } else {
            continue;
        };
        names.prefixes.push(prefix.clone());
        for (name, fed) in &known {
            let local = if *name == spec {
                prefix.clone()
            } else {
                format!("{prefix}__{name}")
            };
            names.directives.insert(local, *fed);
        }
        for (name, local) in imports(link) {
            if let Some((_, fed)) = known.iter().find(|(known, _)| *known == name) {
                names.directives.insert(local, *fed);
            }
        }
    }
    if names.v1 {
        for (name, fed) in FEDERATION_DIRECTIVES {
            if matches!(
                fed,
                Fed::Key | Fed::Requires | Fed::Provides | Fed::External | Fed::Extends
            ) || matches!(fed, Fed::Tag | Fed::Inaccessible | Fed::Shareable)
            {
                names.directives.entry(name.to_owned()).or_insert(fed);
            }
        }
    }
    names
}

/// Reads one subgraph.
pub(crate) fn read(name: &str, url: &str, sdl: &str) -> Result<Subgraph, Vec<Error>> {
    let invalid = |message: String| vec![Error::new("INVALID_GRAPHQL", message).in_subgraph(name)];
    let document = ast::Document::parse(sdl, format!("{name}.graphql")).map_err(|errors| {
        invalid(
            errors
                .errors
                .iter()
                .map(|e| e.error.to_string())
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    let names = names(&document);
    let mut reader = Reader {
        names: &names,
        roots: roots(&document),
        composed: HashMap::new(),
        subgraph: Subgraph {
            name: name.to_owned(),
            url: url.to_owned(),
            v1: names.v1,
            types: IndexMap::default(),
            composed: IndexMap::default(),
        },
        errors: Vec::new(),
    };
    reader.compose_directives(&document);
    for definition in &document.definitions {
        reader.definition(definition);
    }
    reader.mark_field_sets();
    if reader.errors.is_empty() {
        Ok(reader.subgraph)
    } else {
        Err(reader.errors)
    }
}

/// Root operation type names → the standard ones.
fn roots(document: &ast::Document) -> HashMap<String, Name> {
    let mut roots = HashMap::new();
    for definition in &document.definitions {
        let operations = match definition {
            Definition::SchemaDefinition(schema) => &schema.root_operations,
            Definition::SchemaExtension(schema) => &schema.root_operations,
            _ => continue,
        };
        for operation in operations {
            let (kind, named) = &**operation;
            let standard = match kind {
                ast::OperationType::Query => Name::new_static_unchecked("Query"),
                ast::OperationType::Mutation => Name::new_static_unchecked("Mutation"),
                ast::OperationType::Subscription => Name::new_static_unchecked("Subscription"),
            };
            roots.insert(named.to_string(), standard);
        }
    }
    roots
}

struct Reader<'a> {
    names: &'a Names,
    roots: HashMap<String, Name>,
    /// Directives kept through `@composeDirective`, by local name, with their spec's URL.
    composed: HashMap<String, Option<String>>,
    subgraph: Subgraph,
    errors: Vec<Error>,
}

/// The parts of a type definition or extension the reader needs, whatever its kind.
struct Block<'a> {
    kind: Kind,
    name: &'a Name,
    description: Option<&'a Node<str>>,
    directives: &'a DirectiveList,
    extension: bool,
    implements: &'a [Name],
    fields: &'a [Node<ast::FieldDefinition>],
    inputs: &'a [Node<ast::InputValueDefinition>],
    members: &'a [Name],
    values: &'a [Node<ast::EnumValueDefinition>],
}

impl<'a> Block<'a> {
    fn new(kind: Kind, name: &'a Name, directives: &'a DirectiveList, extension: bool) -> Self {
        Self {
            kind,
            name,
            description: None,
            directives,
            extension,
            implements: &[],
            fields: &[],
            inputs: &[],
            members: &[],
            values: &[],
        }
    }
}

fn block(definition: &Definition) -> Option<Block<'_>> {
    use Definition as D;
    Some(match definition {
        D::ObjectTypeDefinition(d) => Block {
            description: d.description.as_ref(),
            implements: &d.implements_interfaces,
            fields: &d.fields,
            ..Block::new(Kind::Object, &d.name, &d.directives, false)
        },
        D::ObjectTypeExtension(d) => Block {
            implements: &d.implements_interfaces,
            fields: &d.fields,
            ..Block::new(Kind::Object, &d.name, &d.directives, true)
        },
        D::InterfaceTypeDefinition(d) => Block {
            description: d.description.as_ref(),
            implements: &d.implements_interfaces,
            fields: &d.fields,
            ..Block::new(Kind::Interface, &d.name, &d.directives, false)
        },
        D::InterfaceTypeExtension(d) => Block {
            implements: &d.implements_interfaces,
            fields: &d.fields,
            ..Block::new(Kind::Interface, &d.name, &d.directives, true)
        },
        D::UnionTypeDefinition(d) => Block {
            description: d.description.as_ref(),
            members: &d.members,
            ..Block::new(Kind::Union, &d.name, &d.directives, false)
        },
        D::UnionTypeExtension(d) => Block {
            members: &d.members,
            ..Block::new(Kind::Union, &d.name, &d.directives, true)
        },
        D::EnumTypeDefinition(d) => Block {
            description: d.description.as_ref(),
            values: &d.values,
            ..Block::new(Kind::Enum, &d.name, &d.directives, false)
        },
        D::EnumTypeExtension(d) => Block {
            values: &d.values,
            ..Block::new(Kind::Enum, &d.name, &d.directives, true)
        },
        D::InputObjectTypeDefinition(d) => Block {
            description: d.description.as_ref(),
            inputs: &d.fields,
            ..Block::new(Kind::Input, &d.name, &d.directives, false)
        },
        D::InputObjectTypeExtension(d) => Block {
            inputs: &d.fields,
            ..Block::new(Kind::Input, &d.name, &d.directives, true)
        },
        D::ScalarTypeDefinition(d) => Block {
            description: d.description.as_ref(),
            ..Block::new(Kind::Scalar, &d.name, &d.directives, false)
        },
        D::ScalarTypeExtension(d) => Block::new(Kind::Scalar, &d.name, &d.directives, true),
        _ => return None,
    })
}

fn strings(value: &Value) -> Vec<String> {
    match value {
        Value::String(s) => vec![s.clone()],
        Value::List(items) => items.iter().flat_map(|item| strings(item)).collect(),
        _ => Vec::new(),
    }
}

/// `[[String]]` arguments (`scopes:`, `policies:`), a single level accepted too.
fn alternatives(directive: &Directive, argument: &str) -> Vec<Vec<String>> {
    match directive.specified_argument_by_name(argument).map(|v| &**v) {
        Some(Value::List(items)) => items
            .iter()
            .map(|item| {
                let mut all = strings(item);
                all.sort();
                all.dedup();
                all
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn int_argument(directive: &Directive, name: &str) -> Option<i32> {
    match directive.specified_argument_by_name(name).map(|v| &**v) {
        Some(Value::Int(value)) => value.try_to_i32().ok(),
        _ => None,
    }
}

fn bool_argument(directive: &Directive, name: &str) -> Option<bool> {
    match directive.specified_argument_by_name(name).map(|v| &**v) {
        Some(Value::Boolean(value)) => Some(*value),
        _ => None,
    }
}

fn list_argument(directive: &Directive, name: &str) -> Option<Vec<String>> {
    directive
        .specified_argument_by_name(name)
        .map(|value| strings(value))
}

impl Reader<'_> {
    fn error(
        &mut self,
        code: &'static str,
        coordinate: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.errors.push(
            Error::new(code, message)
                .in_subgraph(&self.subgraph.name)
                .at(coordinate),
        );
    }

    /// `@composeDirective(name: "@x")` on the schema: `x` is kept, with its definition.
    fn compose_directives(&mut self, document: &ast::Document) {
        let link_urls: Vec<(String, Vec<String>)> = links(document)
            .into_iter()
            .filter_map(|link| {
                let url = string_argument(link, "url")?;
                let (spec, _) = spec_of(&url)?;
                let prefix = string_argument(link, "as").unwrap_or(spec);
                let mut locals: Vec<String> = imports(link).into_iter().map(|(_, l)| l).collect();
                locals.push(prefix);
                Some((url, locals))
            })
            .collect();
        let requested: Vec<String> = document
            .definitions
            .iter()
            .flat_map(|definition| match definition {
                Definition::SchemaDefinition(s) => s.directives.iter().collect::<Vec<_>>(),
                Definition::SchemaExtension(s) => s.directives.iter().collect(),
                _ => Vec::new(),
            })
            .filter(|directive| self.names.of(directive) == Some(Fed::ComposeDirective))
            .filter_map(|directive| string_argument(directive, "name"))
            .collect();
        for name in requested {
            let Some(local) = name.strip_prefix('@') else {
                self.error(
                    "DIRECTIVE_COMPOSITION_ERROR",
                    name.clone(),
                    format!("@composeDirective(name: {name:?}) must name a directive with its @"),
                );
                continue;
            };
            let definition = document.definitions.iter().find_map(|d| match d {
                Definition::DirectiveDefinition(d) if d.name == local => Some(d.clone()),
                _ => None,
            });
            let Some(definition) = definition else {
                self.error(
                    "DIRECTIVE_COMPOSITION_ERROR",
                    name.clone(),
                    format!("could not find a definition for the composed directive {name}"),
                );
                continue;
            };
            let url = link_urls
                .iter()
                .find(|(_, locals)| {
                    locals
                        .iter()
                        .any(|l| l == local || local.starts_with(&format!("{l}__")))
                })
                .map(|(url, _)| url.clone());
            self.composed.insert(local.to_owned(), url.clone());
            self.subgraph.composed.insert(
                definition.name.clone(),
                Composed {
                    url,
                    definition: (*definition).clone(),
                },
            );
        }
    }

    fn rename(&self, name: &Name) -> Name {
        self.roots
            .get(name.as_str())
            .cloned()
            .unwrap_or_else(|| name.clone())
    }

    fn rename_type(&self, ty: &ast::Type) -> ast::Type {
        match ty {
            ast::Type::Named(n) => ast::Type::Named(self.rename(n)),
            ast::Type::NonNullNamed(n) => ast::Type::NonNullNamed(self.rename(n)),
            ast::Type::List(inner) => ast::Type::List(Box::new(self.rename_type(inner))),
            ast::Type::NonNullList(inner) => {
                ast::Type::NonNullList(Box::new(self.rename_type(inner)))
            }
        }
    }

    fn definition(&mut self, definition: &Definition) {
        match definition {
            Definition::OperationDefinition(_) | Definition::FragmentDefinition(_) => {
                self.error(
                    "INVALID_GRAPHQL",
                    "",
                    "a subgraph schema cannot contain operations or fragments",
                );
            }
            _ => {
                if let Some(block) = block(definition) {
                    self.block(&block);
                }
            }
        }
    }

    fn marks(
        &mut self,
        coordinate: &str,
        directives: &DirectiveList,
        description: Option<&Node<str>>,
    ) -> Marks {
        let mut marks = Marks {
            description: description.map(ToString::to_string),
            ..Marks::default()
        };
        for directive in directives {
            match self.names.of(directive) {
                Some(Fed::Inaccessible) => marks.inaccessible = true,
                Some(Fed::Tag) => {
                    if let Some(name) = string_argument(directive, "name")
                        && !marks.tags.contains(&name)
                    {
                        marks.tags.push(name);
                    }
                }
                Some(Fed::Authenticated) => marks.access.authenticated = true,
                Some(Fed::RequiresScopes) => {
                    let scopes = Access {
                        scopes: alternatives(directive, "scopes"),
                        ..Access::default()
                    };
                    marks.access.require(&scopes);
                }
                Some(Fed::Policy) => {
                    let policies = Access {
                        policies: alternatives(directive, "policies"),
                        ..Access::default()
                    };
                    marks.access.require(&policies);
                }
                Some(Fed::Cost) => match int_argument(directive, "weight") {
                    Some(weight) => marks.cost = Some(weight),
                    None => self.error(
                        "COST_INVALID_WEIGHT",
                        coordinate,
                        "@cost(weight:) must be an Int",
                    ),
                },
                None if directive.name == "deprecated" => {
                    marks.deprecated = Some(Deprecated {
                        reason: string_argument(directive, "reason"),
                    });
                }
                None if self.composed.contains_key(directive.name.as_str()) => {
                    marks.composed.push((**directive).clone());
                }
                _ => {}
            }
        }
        marks
    }

    fn block(&mut self, block: &Block<'_>) {
        let name = self.rename(block.name);
        if self.names.is_machinery_type(&name) {
            return;
        }
        let directives = block.directives;
        let has = |fed: Fed| directives.iter().any(|d| self.names.of(d) == Some(fed));
        let extends = has(Fed::Extends);
        let interface_object = has(Fed::InterfaceObject);
        let block_shareable = has(Fed::Shareable) || self.subgraph.v1;
        let block_external = has(Fed::External);
        let extension = block.extension || extends;
        let kind = if interface_object && block.kind == Kind::Object {
            Kind::Object
        } else {
            block.kind
        };
        let marks = self.marks(&name, directives, block.description);
        let keys: Vec<Key> = directives
            .iter()
            .filter(|d| self.names.of(d) == Some(Fed::Key))
            .filter_map(|d| {
                Some(Key {
                    fields: string_argument(d, "fields")?,
                    resolvable: bool_argument(d, "resolvable").unwrap_or(true),
                })
            })
            .collect();
        let specified_by = directives
            .iter()
            .find(|d| d.name == "specifiedBy")
            .and_then(|d| string_argument(d, "url"));
        let fields: Vec<(Name, Field)> = block
            .fields
            .iter()
            .filter(|f| !(name == "Query" && matches!(f.name.as_str(), "_service" | "_entities")))
            .map(|f| {
                (
                    f.name.clone(),
                    self.field(&name, f, block_shareable, block_external),
                )
            })
            .collect();
        let inputs: Vec<(Name, Input)> = block
            .inputs
            .iter()
            .map(|f| {
                let coordinate = format!("{name}.{}", f.name);
                (f.name.clone(), self.input(&coordinate, f))
            })
            .collect();
        let values: Vec<(Name, super::model::Value)> = block
            .values
            .iter()
            .map(|v| {
                let coordinate = format!("{name}.{}", v.value);
                let marks = self.marks(&coordinate, &v.directives, v.description.as_ref());
                (v.value.clone(), super::model::Value { marks })
            })
            .collect();
        let members: Vec<Name> = block.members.iter().map(|m| self.rename(m)).collect();
        let ty = self
            .subgraph
            .types
            .entry(name.clone())
            .or_insert_with(|| Type::new(kind));
        if ty.kind != kind {
            let message = format!(
                "type {name} is defined as {} and extended as {}",
                ty.kind.describe(),
                kind.describe()
            );
            self.error("INVALID_GRAPHQL", name.as_str(), message);
            return;
        }
        let ty = self.subgraph.types.get_mut(&name).expect("inserted above");
        if !extension {
            ty.defined = true;
        }
        ty.extends |= extends;
        ty.interface_object |= interface_object;
        ty.keys.extend(keys);
        merge_marks(&mut ty.marks, &marks);
        if ty.specified_by.is_none() {
            ty.specified_by = specified_by;
        }
        for interface in block.implements {
            if !ty.implements.contains(interface) {
                ty.implements.push(interface.clone());
            }
        }
        for member in members {
            if !ty.members.contains(&member) {
                ty.members.push(member);
            }
        }
        ty.fields.extend(fields);
        ty.inputs.extend(inputs);
        ty.values.extend(values);
    }

    fn field(
        &mut self,
        parent: &Name,
        field: &ast::FieldDefinition,
        shareable: bool,
        external: bool,
    ) -> Field {
        let coordinate = format!("{parent}.{}", field.name);
        let marks = self.marks(&coordinate, &field.directives, field.description.as_ref());
        let mut out = Field {
            ty: self.rename_type(&field.ty),
            args: field
                .arguments
                .iter()
                .map(|arg| {
                    let coordinate = format!("{coordinate}({}:)", arg.name);
                    (arg.name.clone(), self.input(&coordinate, arg))
                })
                .collect(),
            marks,
            shareable,
            external,
            requires: None,
            provides: None,
            override_from: None,
            override_label: None,
            list_size: None,
            in_key: false,
            used: false,
        };
        for directive in &field.directives {
            match self.names.of(directive) {
                Some(Fed::Shareable) => out.shareable = true,
                Some(Fed::External) => out.external = true,
                Some(Fed::Requires) => out.requires = string_argument(directive, "fields"),
                Some(Fed::Provides) => out.provides = string_argument(directive, "fields"),
                Some(Fed::Override) => {
                    out.override_from = string_argument(directive, "from");
                    out.override_label = string_argument(directive, "label");
                }
                Some(Fed::ListSize) => {
                    out.list_size = Some(ListSize {
                        assumed_size: int_argument(directive, "assumedSize"),
                        slicing_arguments: list_argument(directive, "slicingArguments"),
                        sized_fields: list_argument(directive, "sizedFields"),
                        require_one_slicing_argument: bool_argument(
                            directive,
                            "requireOneSlicingArgument",
                        )
                        .unwrap_or(true),
                    });
                }
                Some(Fed::FromContext | Fed::Context) => self.error(
                    "UNSUPPORTED_FEATURE",
                    coordinate.clone(),
                    "@context and @fromContext are not supported by this composer yet",
                ),
                _ => {}
            }
        }
        out
    }

    fn input(&mut self, coordinate: &str, input: &ast::InputValueDefinition) -> Input {
        Input {
            ty: self.rename_type(&input.ty),
            default: input.default_value.as_ref().map(|v| (**v).clone()),
            marks: self.marks(coordinate, &input.directives, input.description.as_ref()),
        }
    }

    /// Marks the fields each key, `@requires` and `@provides` names; a key field of a type
    /// this subgraph only extends is resolvable here even when marked `@external`.
    fn mark_field_sets(&mut self) {
        let mut in_key: Vec<(String, String)> = Vec::new();
        let mut used: Vec<(String, String)> = Vec::new();
        for (type_name, ty) in &self.subgraph.types {
            for key in &ty.keys {
                if let Ok(selected) = fieldset::walk(&self.subgraph, type_name, &key.fields) {
                    in_key.extend(selected.into_iter().map(|s| (s.parent, s.field)));
                }
            }
            for field in ty.fields.values() {
                if let Some(requires) = &field.requires
                    && let Ok(selected) = fieldset::walk(&self.subgraph, type_name, requires)
                {
                    used.extend(selected.into_iter().map(|s| (s.parent, s.field)));
                }
                if let Some(provides) = &field.provides {
                    let target = field.ty.inner_named_type().as_str();
                    if let Ok(selected) = fieldset::walk(&self.subgraph, target, provides) {
                        used.extend(selected.into_iter().map(|s| (s.parent, s.field)));
                    }
                }
            }
        }
        for (parent, field) in in_key {
            if let Some(f) = self
                .subgraph
                .types
                .get_mut(parent.as_str())
                .and_then(|t| t.fields.get_mut(field.as_str()))
            {
                f.in_key = true;
            }
        }
        for (parent, field) in used {
            if let Some(f) = self
                .subgraph
                .types
                .get_mut(parent.as_str())
                .and_then(|t| t.fields.get_mut(field.as_str()))
            {
                f.used = true;
            }
        }
    }
}

fn merge_marks(into: &mut Marks, from: &Marks) {
    *into = super::merge::merge_marks([&*into, from].into_iter());
}
