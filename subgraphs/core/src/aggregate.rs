//! Aggregates every database subgraph offers the same way:
//! `T_aggregate(where) { count sum { … } avg { … } min { … } max { … } }`.
//!
//! Each database's engine computes the aggregates its selection asks for, in one query.

use async_graphql::dynamic::{Field, Object, TypeRef};

use crate::filter::{FilterField, ScalarKind};

/// Aggregate functions over numeric or ordered fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Function {
    Sum,
    Avg,
    Min,
    Max,
}

impl Function {
    pub const ALL: [Function; 4] = [Function::Sum, Function::Avg, Function::Min, Function::Max];

    pub fn name(self) -> &'static str {
        match self {
            Function::Sum => "sum",
            Function::Avg => "avg",
            Function::Min => "min",
            Function::Max => "max",
        }
    }

    /// The function named `name` (`sum`, `avg`, `min`, `max`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|function| function.name() == name)
    }

    /// Whether the function applies to a field of this kind.
    pub fn applies_to(self, kind: ScalarKind) -> bool {
        match self {
            Function::Sum | Function::Avg => kind.is_numeric(),
            Function::Min | Function::Max => kind.is_ordered() && kind != ScalarKind::Id,
        }
    }

    /// The GraphQL type of the function's result over a field of `kind`.
    pub fn output_type(self, kind: ScalarKind) -> &'static str {
        match self {
            Function::Sum | Function::Avg => TypeRef::FLOAT,
            Function::Min | Function::Max => kind.graphql_name(),
        }
    }
}

/// `UserAggregate`.
pub fn aggregate_type(type_name: &str) -> String {
    format!("{type_name}Aggregate")
}

/// `UserSumFields`, `UserAvgFields`, ….
pub fn function_type(type_name: &str, function: Function) -> String {
    let function = match function {
        Function::Sum => "Sum",
        Function::Avg => "Avg",
        Function::Min => "Min",
        Function::Max => "Max",
    };
    format!("{type_name}{function}Fields")
}

/// `UserAggregate { count sum { … } avg { … } min { … } max { … } }` and its parts, over the
/// scalar (non-list) fields of a type; `unit` names what is aggregated (rows, documents).
pub fn types(type_name: &str, unit: &str, fields: &[FilterField]) -> Vec<Object> {
    let mut aggregate = Object::new(aggregate_type(type_name))
        .description(format!("Aggregates over {type_name} {unit}."))
        .field(Field::new(
            "count",
            TypeRef::named_nn(TypeRef::INT),
            crate::engine::by_engine(),
        ));
    let mut objects = Vec::new();
    for function in Function::ALL {
        let applicable: Vec<_> = fields
            .iter()
            .filter(|field| !field.list && function.applies_to(field.kind))
            .collect();
        if applicable.is_empty() {
            continue;
        }
        let name = function_type(type_name, function);
        let object = applicable.iter().fold(Object::new(&name), |object, field| {
            object.field(Field::new(
                &field.name,
                TypeRef::named(function.output_type(field.kind)),
                crate::engine::by_engine(),
            ))
        });
        objects.push(object);
        aggregate = aggregate.field(Field::new(
            function.name(),
            TypeRef::named(&name),
            crate::engine::by_engine(),
        ));
    }
    objects.push(aggregate);
    objects
}
