//! The client's response, written from the merged data by walking the operation: fields in
//! the order asked, under the client's keys, `__typename` answered, nothing the planner added
//! for itself, and nulls propagated as the GraphQL spec says — a null where the schema promises
//! a value nulls the nearest nullable parent, with an error saying where.
//!
//! The JSON is written straight into one buffer, without building a response tree first: a
//! nullable position remembers where it began and, when a null bubbles up to it, cuts what was
//! written back to there and writes `null`.

use apollo_compiler::ast::Type;
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Schema};

use crate::data::Value;
use crate::errors::Code;
use crate::errors::{GraphqlError, Segment};
use crate::operation::{self, Field, Kind, Normalized, Selection};
use crate::supergraph::Supergraph;

/// Writes the response's `data` for `operation`'s root fields as JSON at the end of `out`:
/// `null` when a non-null root field is null.
pub fn write(
    supergraph: &Supergraph,
    operation: &Normalized,
    data: Value<'_>,
    errors: &mut Vec<GraphqlError>,
    out: &mut Vec<u8>,
) {
    let start = out.len();
    let mut builder = Builder {
        schema: &supergraph.schema,
        api: &supergraph.api_schema,
        errors,
        out,
        denials: 0,
        covered: Covered::default(),
    };
    if builder
        .object(
            operation.fields.iter(),
            data,
            &operation.root_type,
            Path::Root,
        )
        .is_err()
    {
        builder.out.truncate(start);
        builder.out.extend_from_slice(b"null");
    }
}

struct Builder<'a> {
    schema: &'a Schema,
    /// The API schema, for the enum values clients may see.
    api: &'a Schema,
    errors: &'a mut Vec<GraphqlError>,
    out: &'a mut Vec<u8>,
    /// Errors written for denied selections so far (at most [`DENIALS_REPORTED`]).
    denials: usize,
    /// The errors' paths, indexed as null errors need them.
    covered: Covered,
}

/// The paths of the errors so far (the first `indexed` of them), so that whether a null is
/// covered by an error at, above or below it takes a lookup per level instead of a scan of
/// every error (which made many nulls under many errors quadratic).
#[derive(Default)]
struct Covered {
    indexed: usize,
    /// Every error's path.
    exact: std::collections::HashSet<Vec<Segment>>,
    /// Every prefix of every error's path, the paths themselves included.
    prefixes: std::collections::HashSet<Vec<Segment>>,
}

impl Covered {
    /// Whether an error's path starts with `path`, or `path` starts with an error's.
    fn covers(&mut self, errors: &[GraphqlError], path: &[Segment]) -> bool {
        for error in &errors[self.indexed..] {
            if let Some(at) = &error.path {
                for length in 0..=at.len() {
                    self.prefixes.insert(at[..length].to_vec());
                }
                self.exact.insert(at.clone());
            }
        }
        self.indexed = errors.len();
        self.prefixes.contains(path)
            || (0..=path.len()).any(|length| self.exact.contains(&path[..length]))
    }
}

/// Most errors one response reports for selections authorization denied: one per place a
/// denied field would have had a value, up to this many.
const DENIALS_REPORTED: usize = 100;

/// Where the value being written is: a chain up to the root, each link on the stack of the
/// call writing that level, so that descending costs nothing until an error needs the path.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl Path<'_> {
    fn segments(self) -> Vec<Segment> {
        let mut segments = Vec::new();
        let mut at = self;
        loop {
            match at {
                Path::Root => break,
                Path::Key(parent, key) => {
                    segments.push(Segment::Key(Name::new_unchecked(key)));
                    at = *parent;
                }
                Path::Index(parent, index) => {
                    segments.push(Segment::Index(index));
                    at = *parent;
                }
            }
        }
        segments.reverse();
        segments
    }
}

/// The value at this position is null where it must not be: the parent takes the null.
struct Bubble;

impl Builder<'_> {
    fn object<'f>(
        &mut self,
        fields: impl Iterator<Item = &'f Field>,
        data: Value<'_>,
        ty: &Name,
        path: Path<'_>,
    ) -> Result<(), Bubble> {
        self.out.push(b'{');
        let mut hint = 0;
        for (index, field) in fields.enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            self.out.extend_from_slice(field.key_json.as_bytes());
            if field.name == "__typename" {
                crate::data::write_name(self.out, ty.as_str());
                continue;
            }
            if field.denied {
                let path = Path::Key(&path, &field.key);
                if self.denials < DENIALS_REPORTED {
                    self.denials += 1;
                    self.errors.push(
                        GraphqlError::new(
                            "Unauthorized field or type",
                            crate::authorize::UNAUTHORIZED,
                        )
                        .at(path.segments()),
                    );
                }
                self.complete(field, &field.ty, Value::Null, path)?;
                continue;
            }
            let raw = match data.get_near(field.key.as_str(), hint) {
                Some((raw, next)) => {
                    hint = next;
                    raw
                }
                None => data
                    .get(crate::plan::typed_key(ty, &field.key).as_str())
                    .unwrap_or(Value::Null),
            };
            self.complete(field, &field.ty, raw, Path::Key(&path, &field.key))?;
        }
        self.out.push(b'}');
        Ok(())
    }

    /// Writes `raw` as a value of type `ty`; `Ok(true)` when what it wrote is `null`.
    fn complete(
        &mut self,
        field: &Field,
        ty: &Type,
        raw: Value<'_>,
        path: Path<'_>,
    ) -> Result<bool, Bubble> {
        match ty {
            Type::NonNullNamed(name) => {
                let null = self.named(field, name, raw, path);
                self.required(field, null, path)
            }
            Type::NonNullList(inner) => {
                let null = self.list(field, inner, raw, path);
                self.required(field, null, path)
            }
            Type::List(inner) => Ok(self.list(field, inner, raw, path)),
            Type::Named(name) => Ok(self.named(field, name, raw, path)),
        }
    }

    /// A non-null position: a null written there bubbles up to the parent, with an error.
    fn required(&mut self, field: &Field, null: bool, path: Path<'_>) -> Result<bool, Bubble> {
        if null {
            self.null_error(field, path);
            Err(Bubble)
        } else {
            Ok(false)
        }
    }

    /// Writes a list of `inner` at a nullable position; `true` when it is `null`.
    fn list(&mut self, field: &Field, inner: &Type, raw: Value<'_>, path: Path<'_>) -> bool {
        let Some(items) = raw.items() else {
            self.out.extend_from_slice(b"null");
            return true;
        };
        let mark = self.out.len();
        self.out.push(b'[');
        for (index, item) in items.enumerate() {
            if index > 0 {
                self.out.push(b',');
            }
            let written = self.complete(field, inner, item, Path::Index(&path, index));
            if written.is_err() {
                self.out.truncate(mark);
                self.out.extend_from_slice(b"null");
                return true;
            }
        }
        self.out.push(b']');
        false
    }

    /// Writes a value of the named type `ty` at a nullable position; `true` when it is `null`.
    fn named(&mut self, field: &Field, ty: &Name, raw: Value<'_>, path: Path<'_>) -> bool {
        // Most values are scalars: a scalar is written as it came, whatever its shape.
        if field.kind == Kind::Scalar {
            raw.write(self.out);
            return raw.is_null();
        }
        if !raw.is_object() {
            // Scalars were written above; an object position given no object is null.
            let value = match field.kind {
                Kind::Enum => self.enum_value(ty, raw, path),
                _ => Value::Null,
            };
            value.write(self.out);
            return value.is_null();
        }
        let object = raw;
        let mark = self.out.len();
        let written = match field.kind {
            Kind::Object => {
                // Under an object type the operation's selections are merged fields already.
                if field
                    .selections
                    .iter()
                    .all(|selection| matches!(selection, Selection::Field(_)))
                {
                    let fields = field
                        .selections
                        .iter()
                        .filter_map(|selection| match selection {
                            Selection::Field(field) => Some(field),
                            Selection::Fragment(_) => None,
                        });
                    self.object(fields, object, ty, path)
                } else {
                    let fields = operation::collect(self.schema, &field.selections, ty);
                    self.object(fields.iter(), object, ty, path)
                }
            }
            Kind::Abstract => {
                let schema = self.schema;
                let runtime = object.typename().and_then(|runtime| {
                    schema
                        .types
                        .get_key_value(runtime.as_ref())
                        .filter(|(_, ty)| matches!(ty, ExtendedType::Object(_)))
                        .map(|(name, _)| name)
                });
                match runtime {
                    // An object of a type the API schema hides is no value for clients.
                    Some(runtime) if !self.api.types.contains_key(runtime) => Err(Bubble),
                    Some(runtime) => {
                        let fields = operation::collect(self.schema, &field.selections, runtime);
                        self.object(fields.iter(), object, runtime, path)
                    }
                    None => {
                        let fields = operation::collect(self.schema, &field.selections, ty);
                        self.object(fields.iter(), object, ty, path)
                    }
                }
            }
            // An enum position given an object (scalars were written above).
            Kind::Scalar | Kind::Enum => {
                raw.write(self.out);
                return false;
            }
        };
        if written.is_err() {
            self.out.truncate(mark);
            self.out.extend_from_slice(b"null");
            return true;
        }
        false
    }

    /// `raw` when the API schema lets clients see that value of enum `ty`, else null (with an
    /// error): a value it hides (`@inaccessible`) or does not know is no value.
    fn enum_value<'v>(&mut self, ty: &Name, raw: Value<'v>, path: Path<'_>) -> Value<'v> {
        let seen = raw.is_null()
            || raw.as_str().is_some_and(|value| {
                self.api
                    .get_enum(ty)
                    .is_some_and(|api| api.values.contains_key(value.as_ref()))
            });
        if seen {
            return raw;
        }
        // The value itself goes to the log only: it may be one the schema hides.
        let mut text = Vec::new();
        raw.write(&mut text);
        text.truncate(200);
        tracing::warn!(enum_type = %ty, value = ?String::from_utf8_lossy(&text), "a subgraph answered an enum value clients may not see");
        self.errors.push(
            GraphqlError::new(
                format!("a subgraph answered {ty} with a value clients may not see"),
                Code::InvalidEnumValue,
            )
            .at(path.segments()),
        );
        Value::Null
    }
    fn null_error(&mut self, field: &Field, path: Path<'_>) {
        let path = path.segments();
        if !self.covered.covers(self.errors, &path) {
            self.errors.push(
                GraphqlError::new(
                    format!("Cannot return null for non-nullable field {}", field.name),
                    Code::NullForNonNull,
                )
                .at(path),
            );
        }
    }
}

#[cfg(test)]
mod covered_tests {
    use super::*;

    fn path(text: &str) -> Vec<Segment> {
        text.split('.')
            .filter(|step| !step.is_empty())
            .map(|step| match step.parse::<usize>() {
                Ok(index) => Segment::Index(index),
                Err(_) => Segment::Key(apollo_compiler::Name::new(step).unwrap()),
            })
            .collect()
    }

    #[test]
    fn a_null_is_covered_by_an_error_at_above_or_below_it() {
        let mut errors =
            vec![GraphqlError::new("a", Code::NullForNonNull).at(path("users.1.name"))];
        let mut covered = Covered::default();
        assert!(covered.covers(&errors, &path("users.1.name")), "at it");
        assert!(covered.covers(&errors, &path("users.1")), "below it");
        assert!(covered.covers(&errors, &path("users")), "below it, further");
        assert!(
            covered.covers(&errors, &path("users.1.name.first")),
            "above it"
        );
        assert!(!covered.covers(&errors, &path("users.2")), "a sibling");
        assert!(!covered.covers(&errors, &path("products")));
        // Errors added later are seen too.
        errors.push(GraphqlError::new("b", Code::NullForNonNull).at(path("products.0")));
        assert!(covered.covers(&errors, &path("products")));
        // An error without a path covers nothing; one at the root covers everything.
        errors.push(GraphqlError::new("c", Code::NullForNonNull));
        assert!(!covered.covers(&errors, &path("orders")));
        errors.push(GraphqlError::new("d", Code::NullForNonNull).at(Vec::new()));
        assert!(covered.covers(&errors, &path("orders")));
    }
}
