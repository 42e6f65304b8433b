//! The client's response, built from the merged data by walking the operation: fields in the
//! order asked, under the client's keys, `__typename` answered, nothing the planner added for
//! itself, and nulls propagated as the GraphQL spec says — a null where the schema promises a
//! value nulls the nearest nullable parent, with an error saying where.

use apollo_compiler::ast::Type;
use apollo_compiler::response::{JsonMap, JsonValue};
use apollo_compiler::schema::ExtendedType;
use apollo_compiler::{Name, Schema};

use crate::execute::{GraphqlError, Segment};
use crate::operation::{self, Field, Selection};

/// Builds the response's `data` for root `fields` of `root_type`: `None` when a non-null
/// root field is null.
pub fn build(
    schema: &Schema,
    api: &Schema,
    root_type: &Name,
    fields: &[Field],
    data: &JsonMap,
    errors: &mut Vec<GraphqlError>,
) -> Option<JsonMap> {
    let mut builder = Builder {
        schema,
        api,
        errors,
        path: Vec::new(),
    };
    builder
        .object(fields.iter(), fields.len(), data, root_type)
        .ok()
}

struct Builder<'a> {
    schema: &'a Schema,
    /// The API schema, for the enum values clients may see.
    api: &'a Schema,
    errors: &'a mut Vec<GraphqlError>,
    path: Vec<Segment>,
}

/// The value at this position is null where it must not be: the parent takes the null.
struct Bubble;

impl Builder<'_> {
    fn object<'f>(
        &mut self,
        fields: impl Iterator<Item = &'f Field>,
        count: usize,
        data: &JsonMap,
        ty: &Name,
    ) -> Result<JsonMap, Bubble> {
        let mut out = JsonMap::with_capacity(count);
        for field in fields {
            if field.name == "__typename" {
                out.insert(field.key_json.clone(), JsonValue::from(ty.as_str()));
                continue;
            }
            self.path.push(Segment::Key(field.key.clone()));
            let raw = match data.get(field.key.as_str()) {
                Some(raw) => raw,
                None => data
                    .get(crate::plan::typed_key(ty, &field.key).as_str())
                    .unwrap_or(&JsonValue::Null),
            };
            let value = self.complete(field, &field.ty, raw);
            self.path.pop();
            out.insert(field.key_json.clone(), value?);
        }
        Ok(out)
    }

    fn complete(&mut self, field: &Field, ty: &Type, raw: &JsonValue) -> Result<JsonValue, Bubble> {
        match ty {
            Type::NonNullNamed(_) | Type::NonNullList(_) => {
                let value = self.complete(field, &ty.clone().nullable(), raw)?;
                if value.is_null() {
                    self.null_error(field);
                    Err(Bubble)
                } else {
                    Ok(value)
                }
            }
            Type::List(inner) => match raw {
                JsonValue::Array(items) => {
                    let mut out = Vec::with_capacity(items.len());
                    for (index, item) in items.iter().enumerate() {
                        self.path.push(Segment::Index(index));
                        let value = self.complete(field, inner, item);
                        self.path.pop();
                        match value {
                            Ok(value) => out.push(value),
                            Err(Bubble) => return Ok(JsonValue::Null),
                        }
                    }
                    Ok(JsonValue::Array(out))
                }
                _ => Ok(JsonValue::Null),
            },
            Type::Named(name) => Ok(self.named(field, name, raw)),
        }
    }

    fn named(&mut self, field: &Field, ty: &Name, raw: &JsonValue) -> JsonValue {
        let JsonValue::Object(object) = raw else {
            return match self.schema.types.get(ty) {
                Some(
                    ExtendedType::Object(_) | ExtendedType::Interface(_) | ExtendedType::Union(_),
                ) => JsonValue::Null,
                // A value the API schema hides (`@inaccessible`) or does not know is no value.
                Some(ExtendedType::Enum(_)) => match (raw, self.api.get_enum(ty)) {
                    (JsonValue::String(value), Some(api))
                        if api.values.contains_key(value.as_str()) =>
                    {
                        raw.clone()
                    }
                    (JsonValue::Null, _) => JsonValue::Null,
                    _ => {
                        self.errors.push(
                            GraphqlError::new(
                                format!("{ty} has no value {raw} that clients may see"),
                                "INVALID_ENUM_VALUE",
                            )
                            .at(self.path.clone()),
                        );
                        JsonValue::Null
                    }
                },
                _ => raw.clone(),
            };
        };
        let result = match self.schema.types.get(ty) {
            Some(ExtendedType::Object(_)) => {
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
                    self.object(fields, field.selections.len(), object, ty)
                } else {
                    let fields = operation::collect(self.schema, &field.selections, ty);
                    self.object(fields.iter(), fields.len(), object, ty)
                }
            }
            Some(ExtendedType::Interface(_) | ExtendedType::Union(_)) => {
                let runtime = object
                    .get("__typename")
                    .and_then(JsonValue::as_str)
                    .filter(|runtime| operation::is_object(self.schema, runtime))
                    .map(Name::new_unchecked);
                match runtime {
                    // An object of a type the API schema hides is no value for clients.
                    Some(runtime) if !self.api.types.contains_key(&runtime) => {
                        return JsonValue::Null;
                    }
                    Some(runtime) => {
                        let fields = operation::collect(self.schema, &field.selections, &runtime);
                        self.object(fields.iter(), fields.len(), object, &runtime)
                    }
                    None => {
                        let fields = operation::collect(self.schema, &field.selections, ty);
                        self.object(fields.iter(), fields.len(), object, ty)
                    }
                }
            }
            _ => return raw.clone(),
        };
        result.map_or(JsonValue::Null, JsonValue::Object)
    }

    fn null_error(&mut self, field: &Field) {
        let covered = self.errors.iter().any(|error| {
            error
                .path
                .as_ref()
                .is_some_and(|path| path.starts_with(&self.path) || self.path.starts_with(path))
        });
        if !covered {
            self.errors.push(
                GraphqlError::new(
                    format!("Cannot return null for non-nullable field {}", field.name),
                    "NULL_FOR_NON_NULL",
                )
                .at(self.path.clone()),
            );
        }
    }
}
