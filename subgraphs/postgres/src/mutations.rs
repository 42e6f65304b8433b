//! The `Mutation` root's types and fields: per table, `insert_t`, `insert_t_one`, `update_t`,
//! `update_t_by_pk`, `delete_t` and `delete_t_by_pk`, with their input and response types,
//! as the config allows them. [`crate::writes`] runs them.

use async_graphql::dynamic::{
    Enum, EnumItem, Field, InputObject, InputValue, Object, Type, TypeRef,
};
use polygraph_subgraph_core::config::Write;
use polygraph_subgraph_core::engine::by_engine;
use polygraph_subgraph_core::filter;

use crate::model::{Model, TableModel};
use crate::types::scalar_type;
use crate::writes::{Kind, response_type};

/// The types and `Mutation` fields of one table.
pub(crate) fn for_table(model: &Model, table: usize) -> (Vec<Type>, Vec<Field>) {
    (types(&model.tables[table]), fields(model, table))
}

/// Inputs (`UserInsertInput`, `UserSetInput`, `UserOnConflict`), the column enum and the
/// response type of one table's mutations.
fn types(model: &TableModel) -> Vec<Type> {
    let name = &model.type_name;
    let row_input = |input_name: String| {
        model
            .columns
            .iter()
            .fold(InputObject::new(input_name), |input, column| {
                input.field(InputValue::new(
                    &column.field,
                    scalar_type(column.kind, true),
                ))
            })
    };
    let columns = model
        .columns
        .iter()
        .fold(Enum::new(format!("{name}Column")), |e, column| {
            e.item(EnumItem::new(&column.field))
        });
    let on_conflict = InputObject::new(format!("{name}OnConflict"))
        .description("Upsert: rows that collide on `conflict_columns` (default: the primary key) update `update_columns` instead; none means skip them.")
        .field(InputValue::new("conflict_columns", TypeRef::named_nn_list(format!("{name}Column"))))
        .field(InputValue::new("update_columns", TypeRef::named_nn_list_nn(format!("{name}Column"))));
    let response = Object::new(response_type(name))
        .field(Field::new(
            "affected_rows",
            TypeRef::named_nn(TypeRef::INT),
            by_engine(),
        ))
        .field(Field::new(
            "returning",
            TypeRef::named_nn_list_nn(name),
            by_engine(),
        ));
    vec![
        Type::from(row_input(format!("{name}InsertInput"))),
        Type::from(row_input(format!("{name}SetInput"))),
        Type::from(columns),
        Type::from(on_conflict),
        Type::from(response),
    ]
}

/// The table's mutation fields: those its config allows. The by-key forms come last, as they
/// always have, so the SDL's field order is stable.
fn fields(model: &Model, table: usize) -> Vec<Field> {
    let model = &model.tables[table];
    let name = &model.type_name;
    let list = &model.list_field;
    let allows = |write| model.mutations.allows(write);
    let with_key = |field: Field| {
        model.primary_key.iter().fold(field, |field, column| {
            let column = &model.columns[*column];
            field.argument(InputValue::new(
                &column.field,
                TypeRef::named_nn(column.kind.graphql_name()),
            ))
        })
    };
    let field = |kind: Kind, field_name: String, ty: TypeRef| {
        let guard = model.writes.of(kind.write()).directives();
        let field = Field::new(field_name, ty, by_engine());
        guard.into_iter().fold(field, Field::directive)
    };
    let response = || TypeRef::named_nn(response_type(name));
    let on_conflict =
        || InputValue::new("on_conflict", TypeRef::named(format!("{name}OnConflict")));
    let insert_input = |list: bool| {
        let input = format!("{name}InsertInput");
        if list {
            InputValue::new("objects", TypeRef::named_nn_list_nn(input))
        } else {
            InputValue::new("object", TypeRef::named_nn(input))
        }
    };
    let filter = || InputValue::new("where", TypeRef::named_nn(filter::bool_exp_type(name)));
    let set = || InputValue::new("_set", TypeRef::named_nn(format!("{name}SetInput")));
    let keyed = !model.primary_key.is_empty();
    // An upsert updates rows: offered only where updates are, under the same guard as inserts.
    let upsert = |field: Field| {
        if allows(Write::Update) && model.writes.insert == model.writes.update {
            field.argument(on_conflict())
        } else {
            field
        }
    };
    let mut fields = Vec::new();
    if allows(Write::Insert) {
        fields.push(upsert(
            field(Kind::Insert, format!("insert_{list}"), response()).argument(insert_input(true)),
        ));
        fields.push(upsert(
            field(
                Kind::InsertOne,
                format!("insert_{list}_one"),
                TypeRef::named(name),
            )
            .argument(insert_input(false)),
        ));
    }
    if allows(Write::Update) {
        fields.push(
            field(Kind::Update, format!("update_{list}"), response())
                .argument(filter())
                .argument(set()),
        );
    }
    if allows(Write::Delete) {
        fields.push(field(Kind::Delete, format!("delete_{list}"), response()).argument(filter()));
    }
    if keyed && allows(Write::Update) {
        let by_key = field(
            Kind::UpdateByPk,
            format!("update_{list}_by_pk"),
            TypeRef::named(name),
        );
        fields.push(with_key(by_key).argument(set()));
    }
    if keyed && allows(Write::Delete) {
        let by_key = field(
            Kind::DeleteByPk,
            format!("delete_{list}_by_pk"),
            TypeRef::named(name),
        );
        fields.push(with_key(by_key));
    }
    fields
}
