//! Composition in Rust against The Guild's composer: for the demo's subgraphs and each of the
//! gateway's plan fixtures, the supergraph we compose loads in the gateway with the same API
//! schema and the same query plans as the checked-in one `tests/js/compose.mjs` made.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use apollo_compiler::Schema;
use apollo_compiler::schema::ExtendedType;
use polygraph_gateway::gateway::{Gateway, Settings};
use polygraph_gateway::supergraph::Supergraph;
use polygraph_schema::compose::{Input, compose};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The subgraph SDLs in `dir` (all `*.graphql` but `supergraph.graphql`), with the URLs
/// `compose.mjs` gives them.
fn inputs(dir: &Path) -> Vec<Input> {
    let mut inputs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if path.extension().is_some_and(|e| e == "graphql") && name != "supergraph" {
            inputs.push(Input {
                url: format!("http://{name}.invalid/graphql"),
                sdl: std::fs::read_to_string(&path).unwrap(),
                name,
            });
        }
    }
    assert!(!inputs.is_empty(), "no subgraphs in {}", dir.display());
    inputs
}

fn fields_and_interfaces<'a>(
    fields: impl IntoIterator<
        Item = (
            &'a apollo_compiler::Name,
            &'a apollo_compiler::schema::Component<apollo_compiler::schema::FieldDefinition>,
        ),
    >,
    interfaces: impl IntoIterator<Item = &'a apollo_compiler::schema::ComponentName>,
) -> Vec<String> {
    fields
        .into_iter()
        .map(|(_, f)| f.to_string())
        .chain(interfaces.into_iter().map(|i| format!("implements {i}")))
        .collect()
}

/// The API schema with its types, fields and members in name order, one type per block.
fn api(supergraph: &Supergraph) -> String {
    let schema = &supergraph.api_schema;
    let mut types: Vec<String> = Vec::new();
    for (name, ty) in &schema.types {
        if ty.is_built_in() {
            continue;
        }
        let mut text = format!("{name}");
        let mut parts: Vec<String> = match ty {
            ExtendedType::Object(o) => fields_and_interfaces(&o.fields, &o.implements_interfaces),
            ExtendedType::Interface(i) => {
                fields_and_interfaces(&i.fields, &i.implements_interfaces)
            }
            ExtendedType::InputObject(o) => o.fields.values().map(|f| f.to_string()).collect(),
            ExtendedType::Enum(e) => e.values.values().map(|v| v.to_string()).collect(),
            ExtendedType::Union(u) => u.members.iter().map(ToString::to_string).collect(),
            ExtendedType::Scalar(s) => vec![s.to_string()],
        };
        if let Some(description) = ty.description() {
            parts.push(format!("description {:?}", &**description));
        }
        parts.sort();
        for part in parts {
            let _ = write!(text, "\n  {part}");
        }
        types.push(text);
    }
    types.sort();
    types.join("\n")
}

/// Operations over the API schema: each root field (with its arguments' defaults or none
/// when it has required ones it cannot make up), selecting everything to a depth.
fn operations(schema: &Schema) -> Vec<String> {
    let mut operations = Vec::new();
    for (keyword, root) in [("query", "Query"), ("mutation", "Mutation")] {
        let Some(ExtendedType::Object(object)) = schema.types.get(root) else {
            continue;
        };
        for (name, field) in &object.fields {
            if field.arguments.iter().any(|a| a.is_required()) {
                continue;
            }
            let mut selection = String::new();
            select(schema, field.ty.inner_named_type(), 0, &mut selection);
            operations.push(format!("{keyword} {{ {name}{selection} }}"));
        }
    }
    operations
}

fn select(schema: &Schema, ty: &str, depth: usize, out: &mut String) {
    let fields = match schema.types.get(ty) {
        Some(ExtendedType::Object(o)) => &o.fields,
        Some(ExtendedType::Interface(i)) => &i.fields,
        Some(ExtendedType::Union(u)) => {
            out.push_str(" { __typename");
            for member in &u.members {
                if depth < 3 {
                    let _ = write!(out, " ... on {member}");
                    select(schema, member, depth + 1, out);
                }
            }
            out.push_str(" }");
            return;
        }
        _ => return,
    };
    out.push_str(" { __typename");
    for (name, field) in fields {
        if field.arguments.iter().any(|a| a.is_required()) {
            continue;
        }
        let inner = field.ty.inner_named_type();
        let leaf = matches!(
            schema.types.get(inner),
            Some(ExtendedType::Scalar(_) | ExtendedType::Enum(_))
        );
        if leaf {
            let _ = write!(out, " {name}");
        } else if depth < 3 {
            let _ = write!(out, " {name}");
            select(schema, inner, depth + 1, out);
        }
    }
    if let Some(ExtendedType::Interface(_)) = schema.types.get(ty) {
        for implementer in schema
            .implementers_map()
            .get(ty)
            .map(|i| i.objects.clone())
            .unwrap_or_default()
        {
            if depth < 2 {
                let _ = write!(out, " ... on {implementer}");
                select(schema, &implementer, depth + 1, out);
            }
        }
    }
    out.push_str(" }");
}

/// Composes `dir`'s subgraphs and checks the result against `expected` (a supergraph file):
/// the same API schema, and the same plan for each operation over it.
fn same_as_reference(dir: &Path, expected: &Path) -> Result<(), String> {
    let ours = compose(&inputs(dir)).map_err(|errors| {
        let listed: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!("does not compose:\n{}", listed.join("\n"))
    })?;
    let theirs = std::fs::read_to_string(expected).unwrap();
    let ours_loaded =
        Supergraph::parse(&ours).map_err(|e| format!("does not load: {e}\n{ours}"))?;
    let theirs_loaded =
        Supergraph::parse(&theirs).map_err(|e| format!("the reference does not load: {e}"))?;
    let (a, b) = (api(&ours_loaded), api(&theirs_loaded));
    if a != b {
        let only = |x: &str, y: &str| {
            let other: Vec<&str> = y.lines().collect();
            x.lines()
                .filter(|l| !other.contains(l))
                .collect::<Vec<_>>()
                .join("\n")
        };
        return Err(format!(
            "API schemas differ\nonly ours:\n{}\nonly theirs:\n{}",
            only(&a, &b),
            only(&b, &a)
        ));
    }
    let operations = operations(&theirs_loaded.api_schema);
    // The demo's @policy names need its policies.
    let settings = || {
        let mut settings = Settings::default();
        settings.authorization.policies = Some(root().join("policies"));
        settings
    };
    let ours_gateway = Gateway::new(ours_loaded, settings()).map_err(|e| format!("{e:?}"))?;
    let theirs_gateway = Gateway::new(theirs_loaded, settings()).map_err(|e| format!("{e:?}"))?;
    for operation in &operations {
        let a = ours_gateway
            .explain(operation, None)
            .map_err(|e| format!("{e:?}"));
        let b = theirs_gateway
            .explain(operation, None)
            .map_err(|e| format!("{e:?}"));
        if a != b {
            return Err(format!(
                "plans differ for {operation}:\nours: {a:?}\ntheirs: {b:?}\n{ours}"
            ));
        }
    }
    Ok(())
}

/// Checks every folder in `dirs`, and says which failed and why.
fn all_same_as_reference(dirs: impl Iterator<Item = PathBuf>) -> usize {
    let mut checked = 0;
    let mut failed = Vec::new();
    for dir in dirs {
        if let Err(why) = same_as_reference(&dir, &dir.join("supergraph.graphql")) {
            failed.push(format!("{}: {why}", dir.display()));
        }
        checked += 1;
    }
    assert!(
        failed.is_empty(),
        "{} of {checked} differ:\n{}",
        failed.len(),
        failed.join("\n\n")
    );
    checked
}

fn subfolders(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs.into_iter()
}

#[test]
fn the_demo_composes_as_the_checked_in_supergraph() {
    let schema = root().join("schema");
    same_as_reference(
        &schema.join("subgraphs"),
        &schema.join("supergraph.graphql"),
    )
    .unwrap();
}

#[test]
fn the_plan_fixtures_compose_as_their_checked_in_supergraphs() {
    let checked = all_same_as_reference(subfolders(&root().join("gateway/tests/fixtures")));
    assert!(checked >= 10, "only {checked} fixtures");
}

/// More folders of subgraphs with a reference `supergraph.graphql` each, named by
/// `POLYGRAPH_COMPOSE_FIXTURES` (the federation audit's suites are checked this way; its
/// harness stays outside the repository). Without it, there is nothing more to check.
#[test]
fn more_reference_compositions_when_given() {
    if let Some(dir) = std::env::var_os("POLYGRAPH_COMPOSE_FIXTURES") {
        let checked = all_same_as_reference(subfolders(Path::new(&dir)));
        eprintln!("{checked} compositions the same as their references");
    }
}

/// A failing case from `tests/failing/`: subgraphs after `# subgraph: NAME` lines, and
/// `# expect: CODE SUBGRAPH COORDINATE` (`-` for none).
pub struct Case {
    pub subgraphs: Vec<Input>,
    pub code: String,
    pub subgraph: Option<String>,
    pub coordinate: Option<String>,
}

fn case(text: &str) -> Case {
    let mut subgraphs: Vec<Input> = Vec::new();
    let mut expect = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# expect: ") {
            expect = Some(
                rest.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>(),
            );
        } else if let Some(name) = line.strip_prefix("# subgraph: ") {
            subgraphs.push(Input {
                name: name.to_owned(),
                url: format!("http://{name}.invalid/graphql"),
                sdl: String::new(),
            });
        } else if let Some(current) = subgraphs.last_mut() {
            current.sdl.push_str(line);
            current.sdl.push('\n');
        }
    }
    let expect = expect.expect("an `# expect:` line");
    let optional = |s: &String| (s != "-").then(|| s.clone());
    Case {
        subgraphs,
        code: expect[0].clone(),
        subgraph: optional(&expect[1]),
        coordinate: optional(&expect[2]),
    }
}

#[test]
fn each_failing_case_gives_its_error() {
    let dir = root().join("schema/tests/failing");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let case = case(&std::fs::read_to_string(&path).unwrap());
        let errors = compose(&case.subgraphs).expect_err(&path.display().to_string());
        let listed = errors
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n");
        let found = errors.iter().any(|e| {
            e.code == case.code
                && (case.subgraph.is_none() || e.subgraph == case.subgraph)
                && (case.coordinate.is_none() || e.coordinate == case.coordinate)
        });
        assert!(
            found,
            "{}: expected {} {:?} {:?}, got:\n{listed}",
            path.display(),
            case.code,
            case.subgraph,
            case.coordinate
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} cases");
}

/// Alternatives of `@requiresScopes` multiply when an element needs several: past a bound the
/// composition is refused instead of computed (30 doublings would be a billion).
#[test]
fn access_alternatives_that_multiply_past_the_bound_are_refused() {
    let mut sdl = String::from(
        "extend schema @link(url: \"https://specs.apollo.dev/federation/v2.7\", import: [\"@key\", \"@requiresScopes\"])\ntype Query { me: Account }\ntype Account { id: ID! }\n",
    );
    for i in 0..30 {
        let _ = writeln!(
            sdl,
            "extend type Account @requiresScopes(scopes: [[\"a{i}\"], [\"b{i}\"]])"
        );
    }
    let started = std::time::Instant::now();
    let errors = compose(&[Input {
        name: "a".into(),
        url: "http://a.invalid/graphql".into(),
        sdl,
    }])
    .unwrap_err();
    assert!(
        errors
            .iter()
            .any(|e| e.code == "ACCESS_TOO_COMPLEX" && e.coordinate.as_deref() == Some("Account")),
        "{errors:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

/// `@cacheControl` kept through `@composeDirective` by two subgraphs with different hints for
/// one type: the supergraph has one, the strictest (The Guild's composer prints both, which a
/// non-repeatable directive does not allow).
#[test]
fn composed_cache_hints_merge_to_the_strictest() {
    let subgraph = |name: &str, hint: &str| Input {
        name: name.to_owned(),
        url: format!("http://{name}.invalid/graphql"),
        sdl: format!(
            r#"extend schema
                 @link(url: "https://specs.apollo.dev/federation/v2.7", import: ["@key", "@composeDirective"])
                 @link(url: "https://example.dev/cache/v1.0", import: ["@cacheControl"])
                 @composeDirective(name: "@cacheControl")
               enum CacheControlScope {{ PUBLIC PRIVATE }}
               directive @cacheControl(maxAge: Int, scope: CacheControlScope, inheritMaxAge: Boolean) on FIELD_DEFINITION | OBJECT | INTERFACE | UNION
               type Product @key(fields: "id") @cacheControl({hint}) {{ id: ID! {name}: String }}
               type Query {{ {name}: Product }}"#
        ),
    };
    let supergraph = compose(&[
        subgraph("a", "maxAge: 30"),
        subgraph("b", "maxAge: 60, scope: PRIVATE"),
    ])
    .unwrap();
    let product = supergraph
        .lines()
        .find(|line| line.starts_with("type Product"))
        .unwrap();
    assert_eq!(product.matches("@cacheControl").count(), 1, "{product}");
    assert!(
        product.contains("@cacheControl(maxAge: 30, scope: PRIVATE)"),
        "{product}"
    );
    Supergraph::parse(&supergraph).unwrap();
}
