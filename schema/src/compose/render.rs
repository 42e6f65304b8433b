//! Prints the merged types as an Apollo-format supergraph (`@link` to join v0.5): the join
//! and link machinery, the specs the subgraphs' marks need, one `join__Graph` value per
//! subgraph with its URL, and every type with the `join__` directives that say where its
//! parts live.

use std::fmt::Write as _;

use apollo_compiler::Name;

use super::merge::{JoinField, JoinType, Merged, MergedField, MergedInput, MergedType};
use super::model::{Access, Kind, ListSize, Marks, Subgraph};

const LOCATIONS_ALL: &str = "FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION";
const LOCATIONS_ACCESS: &str = "FIELD_DEFINITION | OBJECT | INTERFACE | SCALAR | ENUM";

const MACHINERY: &str = r#"directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE

directive @join__graph(name: String!, url: String!) on ENUM_VALUE

directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean, overrideLabel: String, contextArguments: [join__ContextArgument!]) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION

input join__ContextArgument {
  name: String!
  type: String!
  context: String!
  selection: join__FieldValue!
}

directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE

directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR

directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION

scalar join__FieldSet

scalar join__FieldValue

directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA

scalar link__Import

enum link__Purpose {
  "`SECURITY` features provide metadata necessary to securely resolve fields."
  SECURITY
  "`EXECUTION` features provide metadata necessary for operation execution."
  EXECUTION
}
"#;

/// Which optional specs the supergraph links (each on its own).
#[allow(clippy::struct_excessive_bools)]
#[derive(Default)]
struct Features {
    inaccessible: bool,
    tag: bool,
    authenticated: bool,
    scopes: bool,
    policy: bool,
    cost: bool,
    list_size: bool,
}

impl Features {
    fn see(&mut self, marks: &Marks) {
        self.inaccessible |= marks.inaccessible;
        self.tag |= !marks.tags.is_empty();
        self.authenticated |= marks.access.authenticated;
        self.scopes |= !marks.access.scopes.is_empty();
        self.policy |= !marks.access.policies.is_empty();
        self.cost |= marks.cost.is_some();
    }

    fn of(merged: &Merged) -> Self {
        let mut features = Self::default();
        for ty in merged.types.values() {
            features.see(&ty.marks);
            for field in ty.fields.values() {
                features.see(&field.marks);
                features.list_size |= field.list_size.is_some();
                field.args.values().for_each(|a| features.see(&a.marks));
            }
            ty.inputs.values().for_each(|i| features.see(&i.marks));
            ty.values.values().for_each(|v| features.see(&v.marks));
        }
        features
    }
}

/// The supergraph's SDL.
pub(crate) fn render(subgraphs: &[Subgraph], merged: &Merged) -> String {
    let graphs = graph_names(subgraphs);
    let features = Features::of(merged);
    let mut out = String::new();
    schema_definition(&mut out, subgraphs, merged, &features);
    out.push_str(MACHINERY);
    feature_definitions(&mut out, subgraphs, &features);
    out.push_str("\nenum join__Graph {\n");
    for (subgraph, graph) in subgraphs.iter().zip(&graphs) {
        let _ = writeln!(
            out,
            "  {graph} @join__graph(name: {}, url: {})",
            literal(&subgraph.name),
            literal(&subgraph.url)
        );
    }
    out.push_str("}\n");
    // Types by name, as Apollo's composer prints them: the order possible types are planned in.
    let mut types: Vec<(&Name, &MergedType)> = merged.types.iter().collect();
    types.sort_by(|a, b| a.0.cmp(b.0));
    for (name, ty) in types {
        out.push('\n');
        Printer {
            out: &mut out,
            graphs: &graphs,
        }
        .ty(name, ty);
    }
    out
}

/// `join__Graph` values: each subgraph's name in upper case with anything but letters, digits
/// and `_` made `_`, made unique with a numeric suffix.
fn graph_names(subgraphs: &[Subgraph]) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for subgraph in subgraphs {
        let mut base: String = subgraph
            .name
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        if base.is_empty() || base.starts_with(|c: char| c.is_ascii_digit()) {
            base.insert(0, '_');
        }
        let mut name = base.clone();
        let mut n = 1;
        while names.contains(&name) {
            n += 1;
            name = format!("{base}_{n}");
        }
        names.push(name);
    }
    names
}

fn schema_definition(
    out: &mut String,
    subgraphs: &[Subgraph],
    merged: &Merged,
    features: &Features,
) {
    out.push_str("schema\n  @link(url: \"https://specs.apollo.dev/link/v1.0\")\n  @link(url: \"https://specs.apollo.dev/join/v0.5\", for: EXECUTION)\n");
    let mut link = |url: &str, rest: &str| {
        let _ = writeln!(
            out,
            "  @link(url: \"https://specs.apollo.dev/{url}\"{rest})"
        );
    };
    if features.inaccessible {
        link("inaccessible/v0.2", ", for: SECURITY");
    }
    if features.tag {
        link("tag/v0.3", "");
    }
    if features.authenticated {
        link("authenticated/v0.1", ", for: SECURITY");
    }
    if features.scopes {
        link("requiresScopes/v0.1", ", for: SECURITY");
    }
    if features.policy {
        link("policy/v0.1", ", for: SECURITY");
    }
    match (features.cost, features.list_size) {
        (true, true) => link("cost/v0.1", ", import: [\"@cost\", \"@listSize\"]"),
        (true, false) => link("cost/v0.1", ", import: [\"@cost\"]"),
        (false, true) => link("cost/v0.1", ", import: [\"@listSize\"]"),
        (false, false) => {}
    }
    let mut linked: Vec<(&str, Vec<&Name>)> = Vec::new();
    for (name, composed) in subgraphs.iter().flat_map(|s| &s.composed) {
        let Some(url) = composed.url.as_deref() else {
            continue;
        };
        match linked.iter_mut().find(|(u, _)| *u == url) {
            Some((_, names)) if !names.contains(&name) => names.push(name),
            Some(_) => {}
            None => linked.push((url, vec![name])),
        }
    }
    for (url, names) in linked {
        let imports: Vec<String> = names.iter().map(|n| literal(&format!("@{n}"))).collect();
        let _ = writeln!(
            out,
            "  @link(url: {}, import: [{}])",
            literal(url),
            imports.join(", ")
        );
    }
    out.push_str("{\n");
    for (field, root) in [
        ("query", "Query"),
        ("mutation", "Mutation"),
        ("subscription", "Subscription"),
    ] {
        if merged.types.contains_key(root) {
            let _ = writeln!(out, "  {field}: {root}");
        }
    }
    out.push_str("}\n\n");
}

fn feature_definitions(out: &mut String, subgraphs: &[Subgraph], features: &Features) {
    if features.inaccessible {
        let _ = write!(out, "\ndirective @inaccessible on {LOCATIONS_ALL}\n");
    }
    if features.tag {
        let _ = write!(
            out,
            "\ndirective @tag(name: String!) repeatable on {LOCATIONS_ALL} | SCHEMA\n"
        );
    }
    if features.authenticated {
        let _ = write!(out, "\ndirective @authenticated on {LOCATIONS_ACCESS}\n");
    }
    if features.scopes {
        let _ = write!(
            out,
            "\ndirective @requiresScopes(scopes: [[requiresScopes__Scope!]!]!) on {LOCATIONS_ACCESS}\n\nscalar requiresScopes__Scope\n"
        );
    }
    if features.policy {
        let _ = write!(
            out,
            "\ndirective @policy(policies: [[policy__Policy!]!]!) on {LOCATIONS_ACCESS}\n\nscalar policy__Policy\n"
        );
    }
    if features.cost {
        out.push_str("\ndirective @cost(weight: Int!) on ARGUMENT_DEFINITION | ENUM | FIELD_DEFINITION | INPUT_FIELD_DEFINITION | OBJECT | SCALAR\n");
    }
    if features.list_size {
        out.push_str("\ndirective @listSize(assumedSize: Int, slicingArguments: [String!], sizedFields: [String!], requireOneSlicingArgument: Boolean = true) on FIELD_DEFINITION\n");
    }
    let mut printed: Vec<&Name> = Vec::new();
    for (name, composed) in subgraphs.iter().flat_map(|s| &s.composed) {
        if !printed.contains(&name) {
            printed.push(name);
            let _ = write!(out, "\n{}\n", composed.definition);
        }
    }
}

/// A GraphQL string literal (JSON's escapes are a subset of GraphQL's).
fn literal(value: &str) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "\"\"".to_owned())
}

/// A description: a block string when printing it as one keeps its value, else a literal.
fn description(out: &mut String, indent: &str, text: &str) {
    let lines: Vec<&str> = text.lines().collect();
    let block = !text.contains("\"\"\"")
        && !text.contains('\r')
        && !text.ends_with('\\')
        && lines.first().is_some_and(|l| !l.trim().is_empty())
        && lines.last().is_some_and(|l| !l.trim().is_empty())
        && text.trim_end() == text
        && !text.starts_with(char::is_whitespace)
        && lines
            .iter()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .all(|l| !l.starts_with(char::is_whitespace))
        && !text.chars().any(|c| c.is_control() && c != '\n');
    if block {
        let _ = writeln!(out, "{indent}\"\"\"\n{text}\n{indent}\"\"\"");
    } else {
        let _ = writeln!(out, "{indent}{}", literal(text));
    }
}

fn string_lists(lists: &[Vec<String>]) -> String {
    let inner: Vec<String> = lists
        .iter()
        .map(|list| {
            format!(
                "[{}]",
                list.iter()
                    .map(|s| literal(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        })
        .collect();
    format!("[{}]", inner.join(", "))
}

fn marks(out: &mut String, marks: &Marks) {
    if let Some(deprecated) = &marks.deprecated {
        match &deprecated.reason {
            Some(reason) => {
                let _ = write!(out, " @deprecated(reason: {})", literal(reason));
            }
            None => out.push_str(" @deprecated"),
        }
    }
    if marks.inaccessible {
        out.push_str(" @inaccessible");
    }
    for tag in &marks.tags {
        let _ = write!(out, " @tag(name: {})", literal(tag));
    }
    access(out, &marks.access);
    if let Some(weight) = marks.cost {
        let _ = write!(out, " @cost(weight: {weight})");
    }
    for directive in &marks.composed {
        let _ = write!(out, " {directive}");
    }
}

fn access(out: &mut String, access: &Access) {
    if access.authenticated {
        out.push_str(" @authenticated");
    }
    if !access.scopes.is_empty() {
        let _ = write!(
            out,
            " @requiresScopes(scopes: {})",
            string_lists(&access.scopes)
        );
    }
    if !access.policies.is_empty() {
        let _ = write!(
            out,
            " @policy(policies: {})",
            string_lists(&access.policies)
        );
    }
}

fn list_size(out: &mut String, size: &ListSize) {
    let mut arguments = Vec::new();
    if let Some(n) = size.assumed_size {
        arguments.push(format!("assumedSize: {n}"));
    }
    let names = |names: &[String]| {
        names
            .iter()
            .map(|s| literal(s))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if let Some(slicing) = &size.slicing_arguments {
        arguments.push(format!("slicingArguments: [{}]", names(slicing)));
    }
    if let Some(sized) = &size.sized_fields {
        arguments.push(format!("sizedFields: [{}]", names(sized)));
    }
    if !size.require_one_slicing_argument {
        arguments.push("requireOneSlicingArgument: false".to_owned());
    }
    let _ = write!(out, " @listSize({})", arguments.join(", "));
}

struct Printer<'a> {
    out: &'a mut String,
    graphs: &'a [String],
}

impl Printer<'_> {
    fn ty(&mut self, name: &Name, ty: &MergedType) {
        if let Some(text) = &ty.marks.description {
            description(self.out, "", text);
        }
        let keyword = match ty.kind {
            Kind::Scalar => "scalar",
            Kind::Object => "type",
            Kind::Interface => "interface",
            Kind::Union => "union",
            Kind::Enum => "enum",
            Kind::Input => "input",
        };
        let _ = write!(self.out, "{keyword} {name}");
        if !ty.implements.is_empty() {
            let names: Vec<&str> = ty.implements.keys().map(Name::as_str).collect();
            let _ = write!(self.out, " implements {}", names.join(" & "));
        }
        for join in &ty.joins {
            self.join_type(join);
        }
        for (interface, graphs) in &ty.implements {
            for graph in graphs {
                let _ = write!(
                    self.out,
                    " @join__implements(graph: {}, interface: {})",
                    self.graphs[*graph],
                    literal(interface)
                );
            }
        }
        for (member, graphs) in &ty.members {
            for graph in graphs {
                let _ = write!(
                    self.out,
                    " @join__unionMember(graph: {}, member: {})",
                    self.graphs[*graph],
                    literal(member)
                );
            }
        }
        if let Some(url) = &ty.specified_by {
            let _ = write!(self.out, " @specifiedBy(url: {})", literal(url));
        }
        marks(self.out, &ty.marks);
        self.body(ty);
    }

    fn body(&mut self, ty: &MergedType) {
        match ty.kind {
            Kind::Scalar => self.out.push('\n'),
            Kind::Union => {
                let members: Vec<&str> = ty.members.keys().map(Name::as_str).collect();
                let _ = writeln!(self.out, " = {}", members.join(" | "));
            }
            Kind::Object | Kind::Interface => {
                self.out.push_str(" {\n");
                for (name, field) in &ty.fields {
                    self.field(name, field);
                }
                self.out.push_str("}\n");
            }
            Kind::Input => {
                self.out.push_str(" {\n");
                for (name, input) in &ty.inputs {
                    self.input("  ", name, input);
                    self.out.push('\n');
                }
                self.out.push_str("}\n");
            }
            Kind::Enum => {
                self.out.push_str(" {\n");
                for (name, value) in &ty.values {
                    if let Some(text) = &value.marks.description {
                        description(self.out, "  ", text);
                    }
                    let _ = write!(self.out, "  {name}");
                    for graph in &value.graphs {
                        let _ = write!(
                            self.out,
                            " @join__enumValue(graph: {})",
                            self.graphs[*graph]
                        );
                    }
                    marks(self.out, &value.marks);
                    self.out.push('\n');
                }
                self.out.push_str("}\n");
            }
        }
    }

    fn join_type(&mut self, join: &JoinType) {
        let _ = write!(self.out, " @join__type(graph: {}", self.graphs[join.graph]);
        if let Some(key) = &join.key {
            let _ = write!(self.out, ", key: {}", literal(key));
        }
        if join.extension {
            self.out.push_str(", extension: true");
        }
        if !join.resolvable {
            self.out.push_str(", resolvable: false");
        }
        if join.interface_object {
            self.out.push_str(", isInterfaceObject: true");
        }
        self.out.push(')');
    }

    fn field(&mut self, name: &Name, field: &MergedField) {
        if let Some(text) = &field.marks.description {
            description(self.out, "  ", text);
        }
        let _ = write!(self.out, "  {name}");
        if !field.args.is_empty() {
            self.out.push_str("(\n");
            for (arg, input) in &field.args {
                self.input("    ", arg, input);
                self.out.push('\n');
            }
            self.out.push_str("  )");
        }
        let _ = write!(self.out, ": {}", field.ty);
        for join in &field.joins {
            self.join_field(join);
        }
        marks(self.out, &field.marks);
        if let Some(size) = &field.list_size {
            list_size(self.out, size);
        }
        self.out.push('\n');
    }

    fn input(&mut self, indent: &str, name: &Name, input: &MergedInput) {
        if let Some(text) = &input.marks.description {
            description(self.out, indent, text);
        }
        let _ = write!(self.out, "{indent}{name}: {}", input.ty);
        if let Some(default) = &input.default {
            let _ = write!(self.out, " = {default}");
        }
        marks(self.out, &input.marks);
    }

    fn join_field(&mut self, join: &JoinField) {
        let _ = write!(self.out, " @join__field(graph: {}", self.graphs[join.graph]);
        let strings = [
            ("requires", &join.requires),
            ("provides", &join.provides),
            ("type", &join.ty),
            ("override", &join.override_from),
            ("overrideLabel", &join.override_label),
        ];
        for (argument, value) in strings {
            if let Some(value) = value {
                let _ = write!(self.out, ", {argument}: {}", literal(value));
            }
        }
        if join.external {
            self.out.push_str(", external: true");
        }
        if join.used_overridden {
            self.out.push_str(", usedOverridden: true");
        }
        self.out.push(')');
    }
}
