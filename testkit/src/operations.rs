//! Random valid GraphQL operations over any schema, for differential tests (the same
//! operation to the gateway and to a monolith) and for structured fuzzing (the fuzzer's
//! bytes choose the operation, so every input gets past the parser).
//!
//! An operation mixes fields, arguments (as literals and as variables), aliases, inline
//! fragments, named fragments, `@skip`/`@include`, `__typename`, and type conditions on
//! interfaces and unions. It is valid by construction; the callers check that against the
//! schema anyway. To stay valid without tracking every response key, the generator keeps
//! one rule: a field is left unaliased only when it has no arguments and nothing selected
//! beside it can be of another parent type; every other field gets an alias of its own.

use std::fmt::Write;

use apollo_compiler::schema::{ExtendedType, FieldDefinition, Type};
use apollo_compiler::{Name, Schema};
use serde_json::{Map, Value};

/// Where the generator's choices come from.
pub trait Entropy {
    fn next_u64(&mut self) -> u64;
}

/// A seeded `SplitMix64` stream: the same seed makes the same operations.
pub struct Seeded(pub u64);

impl Entropy for Seeded {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A fuzzer's input read a byte per choice; past its end every choice is the first one.
pub struct FromBytes<'a>(pub &'a [u8]);

impl Entropy for FromBytes<'_> {
    fn next_u64(&mut self) -> u64 {
        match self.0.split_first() {
            Some((&byte, rest)) => {
                self.0 = rest;
                u64::from(byte)
            }
            None => 0,
        }
    }
}

/// How large an operation may grow.
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// Nesting of selection sets below the root.
    pub depth: usize,
    /// Most selections one selection set starts with.
    pub width: usize,
    /// Fields in the whole operation, fragments included.
    pub fields: usize,
    /// Checks that need no second implementation: some fields get a twin (the same field,
    /// arguments and selections under the alias `aN_twin` beside `aN`), whose answer must be
    /// the same, and `__typename` is always aliased, its possible answers listed in
    /// [`Operation::typenames`].
    pub twins: bool,
    /// A mutation over the schema's mutation type (a query when it has none).
    pub mutation: bool,
    /// Argument values a careful client would not send, beside the ordinary ones: the ends of
    /// `Int` and `Float`, quotes, backslashes, control characters, SQL and query-operator
    /// text, long strings, encoded cursors.
    pub hostile: bool,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            depth: 4,
            width: 4,
            fields: 24,
            twins: false,
            mutation: false,
            hostile: false,
        }
    }
}

/// An operation and the variables it declares.
#[derive(Clone, Debug)]
pub struct Operation {
    pub query: String,
    pub variables: Map<String, Value>,
    /// With [`Shape::twins`]: each alias of `__typename` and the object types it may answer.
    pub typenames: Vec<(String, Vec<String>)>,
}

impl Operation {
    /// What breaks the checks [`Shape::twins`] makes possible in `data`, an answer to this
    /// operation: a twin that differs from its field, a `__typename` no object there may have.
    pub fn broken_invariants(&self, data: &Value) -> Vec<String> {
        let mut broken = Vec::new();
        self.check(data, "data", &mut broken);
        broken
    }

    fn check(&self, value: &Value, path: &str, broken: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                for (key, field) in object {
                    let here = format!("{path}.{key}");
                    if let Some(original) = key.strip_suffix("_twin")
                        && object.get(original) != Some(field)
                    {
                        broken.push(format!("{here} differs from its field {original}"));
                    }
                    if let Some((_, types)) = self.typenames.iter().find(|(alias, _)| alias == key)
                        && !field
                            .as_str()
                            .is_some_and(|ty| types.iter().any(|t| t == ty))
                    {
                        broken.push(format!("{here} is {field}, not one of {types:?}"));
                    }
                    self.check(field, &here, broken);
                }
            }
            Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    self.check(item, &format!("{path}.{index}"), broken);
                }
            }
            _ => {}
        }
    }
}

/// One operation on `schema`'s query type (or its mutation type, see [`Shape::mutation`]),
/// with choices drawn from `entropy`.
pub fn generate(schema: &Schema, entropy: &mut dyn Entropy, shape: Shape) -> Operation {
    let definition = &schema.schema_definition;
    let (keyword, root) = match (&definition.mutation, &definition.query) {
        (Some(mutation), _) if shape.mutation => ("mutation", mutation.name.clone()),
        (_, query) => (
            "query",
            query
                .as_ref()
                .map_or_else(|| Name::new_unchecked("Query"), |name| name.name.clone()),
        ),
    };
    let mut generator = Generator::new(schema, entropy, shape);
    let body = generator.selection_set(&root, 0, false);
    generator.finish(keyword, &body)
}

/// A federation `_entities` query over a subgraph's `schema`: a `$representations` variable
/// (the caller fills it in [`Operation::variables`]) and an inline fragment on each of
/// `types`, its selection drawn from `entropy`.
pub fn generate_entities(
    schema: &Schema,
    types: &[Name],
    entropy: &mut dyn Entropy,
    shape: Shape,
) -> Operation {
    let mut generator = Generator::new(schema, entropy, shape);
    generator
        .declared
        .push("$representations: [_Any!]!".to_owned());
    let mut body = String::from("{ _entities(representations: $representations) { __typename");
    for ty in types {
        let selection = generator.selection_set(ty, 1, true);
        let _ = write!(body, " ... on {ty} {selection}");
    }
    body.push_str(" } }");
    generator.finish("query", &body)
}

struct Fragment {
    name: String,
    on: Name,
    /// Whether its fields are all aliased (see [`Generator::selection_set`]).
    narrowed: bool,
    text: String,
}

struct Generator<'a> {
    schema: &'a Schema,
    entropy: &'a mut dyn Entropy,
    shape: Shape,
    budget: usize,
    aliases: usize,
    declared: Vec<String>,
    variables: Map<String, Value>,
    fragments: Vec<Fragment>,
    typenames: Vec<(String, Vec<String>)>,
}

impl<'a> Generator<'a> {
    fn new(schema: &'a Schema, entropy: &'a mut dyn Entropy, shape: Shape) -> Self {
        Generator {
            schema,
            entropy,
            shape,
            budget: shape.fields,
            aliases: 0,
            declared: Vec::new(),
            variables: Map::new(),
            fragments: Vec::new(),
            typenames: Vec::new(),
        }
    }

    /// The operation: `body` (the root selection set) under `keyword`, with the variables
    /// declared and the fragments spread in it.
    fn finish(mut self, keyword: &str, body: &str) -> Operation {
        let mut query = String::new();
        if keyword == "query" && self.declared.is_empty() && self.below(2) == 0 {
            query.push_str(body);
        } else {
            let _ = write!(query, "{keyword} Generated");
            if !self.declared.is_empty() {
                let _ = write!(query, "({})", self.declared.join(", "));
            }
            let _ = write!(query, " {body}");
        }
        for fragment in &self.fragments {
            let _ = write!(
                query,
                "\nfragment {} on {} {}",
                fragment.name, fragment.on, fragment.text
            );
        }
        Operation {
            query,
            variables: self.variables,
            typenames: self.typenames,
        }
    }

    fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            return 0;
        }
        (self.entropy.next_u64() % n as u64) as usize
    }

    /// True `percent` times in a hundred.
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn is_abstract(&self, ty: &Name) -> bool {
        matches!(
            self.schema.types.get(ty),
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_))
        )
    }

    fn fields_of(&self, ty: &Name) -> Vec<&'a FieldDefinition> {
        let schema: &'a Schema = self.schema;
        match schema.types.get(ty) {
            Some(ExtendedType::Object(object)) => {
                object.fields.values().map(|field| &***field).collect()
            }
            Some(ExtendedType::Interface(interface)) => {
                interface.fields.values().map(|field| &***field).collect()
            }
            _ => Vec::new(),
        }
    }

    /// Types a fragment inside a selection on `ty` may be conditioned on: `ty` itself, the
    /// objects it may be, and the abstract types those belong to.
    fn conditions(&self, ty: &Name) -> Vec<Name> {
        let objects: Vec<Name> = self
            .schema
            .types
            .iter()
            .filter(|(_, candidate)| matches!(candidate, ExtendedType::Object(_)))
            .map(|(name, _)| name.clone())
            .filter(|object| object == ty || self.schema.is_subtype(ty, object))
            .collect();
        let mut conditions = vec![ty.clone()];
        for (name, candidate) in &self.schema.types {
            let relevant = match candidate {
                ExtendedType::Object(_) => objects.contains(name),
                ExtendedType::Interface(_) | ExtendedType::Union(_) => objects
                    .iter()
                    .any(|object| self.schema.is_subtype(name, object)),
                _ => false,
            };
            if relevant && !name.starts_with("__") && !conditions.contains(name) {
                conditions.push(name.clone());
            }
        }
        conditions
    }

    /// `{ … }` on `ty`. `narrowed` says something of another parent type may be selected
    /// beside these fields, so none of them may go unaliased.
    fn selection_set(&mut self, ty: &Name, depth: usize, narrowed: bool) -> String {
        let narrowed = narrowed || self.is_abstract(ty);
        let count = 1 + self.below(self.shape.width);
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let roll = self.below(100);
            let item = if roll < 70 || depth >= self.shape.depth || self.budget == 0 {
                self.field(ty, depth, narrowed)
            } else if roll < 85 {
                self.inline_fragment(ty, depth, narrowed)
            } else {
                self.spread(ty, depth, narrowed)
            };
            items.push(item);
        }
        format!("{{ {} }}", items.join(" "))
    }

    fn field(&mut self, ty: &Name, depth: usize, narrowed: bool) -> String {
        let fields = self.fields_of(ty);
        let leaves_only = depth >= self.shape.depth || self.budget == 0;
        let candidates: Vec<&FieldDefinition> = fields
            .into_iter()
            .filter(|field| !field.name.starts_with("__"))
            .filter(|field| !leaves_only || self.is_leaf(field.ty.inner_named_type()))
            .filter(|field| {
                !leaves_only
                    || field
                        .arguments
                        .iter()
                        .all(|argument| !argument.is_required())
            })
            .collect();
        let pick = self.below(candidates.len() + 1);
        let Some(&field) = candidates.get(pick) else {
            if self.shape.twins {
                return self.typename(ty);
            }
            return self.aliased("__typename", narrowed);
        };
        self.budget = self.budget.saturating_sub(1);
        let mut text = String::new();
        let mut arguments = Vec::new();
        for argument in &field.arguments {
            if argument.is_required() || self.chance(50) {
                let value = self.argument(&argument.ty);
                arguments.push(format!("{}: {value}", argument.name));
            }
        }
        let must_alias = narrowed || !field.arguments.is_empty();
        let mut alias = None;
        if must_alias || self.chance(15) {
            self.aliases += 1;
            alias = Some(format!("a{}", self.aliases));
        }
        text.push_str(&field.name);
        if !arguments.is_empty() {
            let _ = write!(text, "({})", arguments.join(", "));
        }
        text.push_str(&self.directive());
        let inner = field.ty.inner_named_type().clone();
        if !self.is_leaf(&inner) {
            let set = self.selection_set(&inner, depth + 1, false);
            let _ = write!(text, " {set}");
        }
        let Some(alias) = alias else {
            return text;
        };
        // A twin: the same text under `aN_twin` (its inner aliases may repeat: they sit under
        // another key).
        if self.shape.twins && self.chance(30) {
            format!("{alias}: {text} {alias}_twin: {text}")
        } else {
            format!("{alias}: {text}")
        }
    }

    /// `aN: __typename`, its possible answers noted.
    fn typename(&mut self, ty: &Name) -> String {
        self.aliases += 1;
        let alias = format!("a{}", self.aliases);
        let possible: Vec<String> = self
            .schema
            .types
            .iter()
            .filter(|(name, candidate)| {
                matches!(candidate, ExtendedType::Object(_))
                    && (*name == ty || self.schema.is_subtype(ty, name))
            })
            .map(|(name, _)| name.to_string())
            .collect();
        self.typenames.push((alias.clone(), possible));
        format!("{alias}: __typename{}", self.directive())
    }

    fn aliased(&mut self, name: &str, narrowed: bool) -> String {
        if narrowed || self.chance(15) {
            self.aliases += 1;
            let alias = self.aliases;
            format!("a{alias}: {name}{}", self.directive())
        } else {
            format!("{name}{}", self.directive())
        }
    }

    fn is_leaf(&self, ty: &Name) -> bool {
        matches!(
            self.schema.types.get(ty),
            Some(ExtendedType::Scalar(_) | ExtendedType::Enum(_)) | None
        )
    }

    fn inline_fragment(&mut self, ty: &Name, depth: usize, narrowed: bool) -> String {
        let conditions = self.conditions(ty);
        let condition = conditions[self.below(conditions.len())].clone();
        let directive = self.directive();
        if condition == *ty && self.chance(30) {
            let set = self.selection_set(ty, depth + 1, narrowed);
            return format!("...{directive} {set}");
        }
        let narrowed = narrowed || condition != *ty;
        let set = self.selection_set(&condition, depth + 1, narrowed);
        format!("... on {condition}{directive} {set}")
    }

    fn spread(&mut self, ty: &Name, depth: usize, narrowed: bool) -> String {
        let conditions = self.conditions(ty);
        let condition = conditions[self.below(conditions.len())].clone();
        let narrowed = narrowed || condition != *ty || self.is_abstract(&condition);
        let reusable: Vec<usize> = (0..self.fragments.len())
            .filter(|&at| {
                self.fragments[at].on == condition && self.fragments[at].narrowed == narrowed
            })
            .collect();
        let name = if !reusable.is_empty() && self.chance(50) {
            let at = reusable[self.below(reusable.len())];
            self.fragments[at].name.clone()
        } else {
            let text = self.selection_set(&condition, depth + 1, narrowed);
            let name = format!("F{}", self.fragments.len() + 1);
            self.fragments.push(Fragment {
                name: name.clone(),
                on: condition,
                narrowed,
                text,
            });
            name
        };
        format!("...{name}{}", self.directive())
    }

    /// Sometimes `@skip` or `@include`, with a literal or a variable.
    fn directive(&mut self) -> String {
        if !self.chance(15) {
            return String::new();
        }
        let name = if self.chance(50) { "skip" } else { "include" };
        let value = self.chance(50);
        let argument = if self.chance(50) {
            self.variable("Boolean!", Value::Bool(value))
        } else {
            value.to_string()
        };
        format!(" @{name}(if: {argument})")
    }

    fn variable(&mut self, ty: &str, value: Value) -> String {
        let name = format!("v{}", self.declared.len() + 1);
        self.declared.push(format!("${name}: {ty}"));
        self.variables.insert(name.clone(), value);
        format!("${name}")
    }

    /// An argument's value, as a literal or (a quarter of the time) a variable.
    fn argument(&mut self, ty: &Type) -> String {
        let (literal, json) = self.value(ty, 0);
        if self.chance(25) {
            self.variable(&ty.to_string(), json)
        } else {
            literal
        }
    }

    /// A value of input type `ty`, as GraphQL text and as JSON.
    fn value(&mut self, ty: &Type, depth: usize) -> (String, Value) {
        if !ty.is_non_null() && self.chance(10) {
            return ("null".into(), Value::Null);
        }
        if let Type::List(item) | Type::NonNullList(item) = ty {
            let count = self.below(3);
            let (mut texts, mut values) = (Vec::new(), Vec::new());
            for _ in 0..count {
                let (text, value) = self.value(item, depth + 1);
                texts.push(text);
                values.push(value);
            }
            return (format!("[{}]", texts.join(", ")), Value::Array(values));
        }
        let named = ty.inner_named_type();
        match self.schema.types.get(named) {
            Some(ExtendedType::Enum(enumeration)) => {
                let values: Vec<&Name> = enumeration.values.keys().collect();
                let value = values[self.below(values.len())].to_string();
                (value.clone(), Value::String(value))
            }
            Some(ExtendedType::InputObject(input)) => {
                let mut texts = Vec::new();
                let mut object = Map::new();
                let fields: Vec<_> = input.fields.values().cloned().collect();
                for field in fields {
                    let wanted = field.is_required() || (depth < 2 && self.chance(30));
                    if wanted {
                        let (text, value) = self.value(&field.ty, depth + 1);
                        texts.push(format!("{}: {text}", field.name));
                        object.insert(field.name.to_string(), value);
                    }
                }
                (format!("{{{}}}", texts.join(", ")), Value::Object(object))
            }
            _ => self.scalar(named.as_str()),
        }
    }

    fn scalar(&mut self, name: &str) -> (String, Value) {
        if self.shape.hostile && self.chance(40) {
            return self.hostile_scalar(name);
        }
        match name {
            "Int" => {
                let value = self.below(14) as i64 - 1;
                (value.to_string(), Value::from(value))
            }
            "Float" => {
                let value = self.below(14) as f64 / 2.0 - 0.5;
                (format!("{value:?}"), Value::from(value))
            }
            "Boolean" => {
                let value = self.chance(50);
                (value.to_string(), Value::Bool(value))
            }
            _ => {
                const STRINGS: [&str; 8] = ["1", "2", "3", "7", "10", "12", "", "x"];
                let value = STRINGS[self.below(STRINGS.len())];
                string(value)
            }
        }
    }

    /// A value of scalar `name` from the edges of what it admits (see [`Shape::hostile`]).
    fn hostile_scalar(&mut self, name: &str) -> (String, Value) {
        match name {
            "Int" => {
                const INTS: [i64; 6] =
                    [i32::MAX as i64, i32::MIN as i64, 0, -1, 1 << 30, -(1 << 30)];
                let value = INTS[self.below(INTS.len())];
                (value.to_string(), Value::from(value))
            }
            "Float" => {
                const FLOATS: [f64; 6] =
                    [1e308, -1e308, 5e-324, -0.0, 9_007_199_254_740_993.0, 0.1];
                let value = FLOATS[self.below(FLOATS.len())];
                (format!("{value:e}"), Value::from(value))
            }
            "Boolean" => {
                let value = self.chance(50);
                (value.to_string(), Value::Bool(value))
            }
            _ => {
                const STRINGS: [&str; 18] = [
                    "'",
                    "\"",
                    "\\",
                    "' OR '1'='1",
                    "1; DROP TABLE users; --",
                    "%_%",
                    "\u{0}",
                    "\u{1b}[31m",
                    "😀",
                    "\u{feff}",
                    "$where",
                    "{\"$gt\": \"\"}",
                    "eyJpZCI6MX0",
                    "////",
                    "-9223372036854775809",
                    "1e400",
                    "2026-02-30T25:61:00Z",
                    "\r\n",
                ];
                if self.chance(10) {
                    return string(&"ab".repeat(2_000));
                }
                string(STRINGS[self.below(STRINGS.len())])
            }
        }
    }
}

/// A GraphQL string literal of `value` (JSON's escapes are GraphQL's) and its JSON.
fn string(value: &str) -> (String, Value) {
    let value = Value::String(value.to_owned());
    (value.to_string(), value)
}
