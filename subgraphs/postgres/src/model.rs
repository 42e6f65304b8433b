//! The GraphQL shape of the database: which tables become which types, their fields, keys and
//! relationships. A pure function of the catalog and the configuration.
//!
//! Relationships come from foreign keys. `orders.user_id → users.id` gives `Order.user` (an
//! object relationship, named after the column without `_id`) and `User.orders` (an array
//! relationship, named after the referencing table, plus `User.orders_aggregate`). Names that
//! would collide with a column or another relationship get the foreign key's column appended.

use polygraph_subgraph_core::cache::CacheHint;
use polygraph_subgraph_core::config::Mutations;
use polygraph_subgraph_core::filter::ScalarKind;
use polygraph_subgraph_core::guard::WriteGuards;
use polygraph_subgraph_core::naming;
pub use polygraph_subgraph_core::rules::{RowRule, RuleCondition};

use crate::catalog::{Catalog, Column};
use crate::config::{Config, Directives};

#[derive(Clone, Debug)]
pub struct Model {
    pub schema: String,
    pub tables: Vec<TableModel>,
    pub max_limit: u64,
    /// Request bounds: selection depth, and fields selected counting fragment uses.
    pub max_depth: usize,
    pub max_complexity: usize,
    /// Entities other subgraphs own, with the fields this one adds to them.
    pub foreign: Vec<ForeignEntity>,
}

/// An entity another subgraph owns, with the fields this subgraph adds to it.
#[derive(Clone, Debug)]
pub struct ForeignEntity {
    pub type_name: String,
    /// Its key field, an `ID`.
    pub key: String,
    pub fields: Vec<ExtensionField>,
    pub cache: Option<CacheHint>,
}

impl ForeignEntity {
    /// The entity's fields matched on besides its key: `@external` here, and required by the
    /// extension fields that match on them.
    pub fn external(&self) -> Vec<&str> {
        let mut names: Vec<&str> = Vec::new();
        for field in &self.fields {
            if field.from != self.key && !names.contains(&field.from.as_str()) {
                names.push(&field.from);
            }
        }
        names
    }

    pub fn field(&self, name: &str) -> Option<&ExtensionField> {
        self.fields.iter().find(|field| field.name == name)
    }
}

/// `Entity.name`: the rows of `table` whose `column` equals the entity's `from` field, or
/// their aggregate.
#[derive(Clone, Debug)]
pub struct ExtensionField {
    pub name: String,
    /// Index into `Model::tables`.
    pub table: usize,
    /// Index into the table's columns.
    pub column: usize,
    pub from: String,
    pub aggregate: bool,
    pub cache: Option<CacheHint>,
}

#[derive(Clone, Debug)]
pub struct TableModel {
    /// The table's SQL name (unquoted).
    pub table: String,
    pub type_name: String,
    /// Root field names: the list, the lookup by primary key, the aggregate.
    pub list_field: String,
    pub by_pk_field: String,
    pub aggregate_field: String,
    /// The subscription field with the row after each change, when the table has one.
    pub changed_field: Option<String>,
    pub description: Option<String>,
    /// Views get no mutations.
    pub is_view: bool,
    /// Which generated mutations the table gets (none for views).
    pub mutations: Mutations,
    /// Who may run them, by kind.
    pub writes: WriteGuards,
    pub columns: Vec<ColumnModel>,
    /// Indices into `columns`.
    pub primary_key: Vec<usize>,
    /// Indices into `columns` of the federation key, for entities.
    pub entity_key: Option<Vec<usize>>,
    pub relationships: Vec<Relationship>,
    /// Columns holding other subgraphs' entity keys, exposed as those entities.
    pub references: Vec<Reference>,
    /// Which rows a request may see, from its claims.
    pub rule: Option<RowRule>,
    /// Federation directives on the type.
    pub directives: Directives,
}

/// `T.name: Entity`, the entity of another subgraph whose key is in `column`, with the
/// entity's fields this table keeps a copy of (`@provides`).
#[derive(Clone, Debug)]
pub struct Reference {
    pub name: String,
    pub type_name: String,
    /// Index into the table's columns.
    pub column: usize,
    /// The entity's key field.
    pub key: String,
    /// The entity's field and the column holding its copy.
    pub provides: Vec<(String, usize)>,
}

#[derive(Clone, Debug)]
pub struct ColumnModel {
    pub field: String,
    pub column: String,
    pub kind: ScalarKind,
    pub sql_type: String,
    pub nullable: bool,
    pub description: Option<String>,
    /// Integer types: representations may send these keys as numbers or strings.
    pub integral: bool,
    /// Federation directives on the field.
    pub directives: Directives,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// At most one related row (this row holds the foreign key).
    Object,
    /// Any number of related rows (they hold the foreign key).
    Array,
}

#[derive(Clone, Debug)]
pub struct Relationship {
    pub name: String,
    pub cardinality: Cardinality,
    /// Index of the related table in [`Model::tables`].
    pub target: usize,
    /// Pairs of (column index here, column index there) joined on.
    pub mapping: Vec<(usize, usize)>,
    /// An object relationship whose columns may all be null.
    pub nullable: bool,
}

impl Relationship {
    pub fn aggregate_name(&self) -> String {
        format!("{}_aggregate", self.name)
    }
}

impl Model {
    pub fn table_by_type(&self, type_name: &str) -> Option<(usize, &TableModel)> {
        self.tables
            .iter()
            .enumerate()
            .find(|(_, table)| table.type_name == type_name)
    }
}

impl TableModel {
    /// The GraphQL field of the column named `column`.
    pub fn column_field(&self, column: &str) -> Option<String> {
        self.columns
            .iter()
            .find(|c| c.column == column)
            .map(|c| c.field.clone())
    }

    pub fn column(&self, field: &str) -> Option<(usize, &ColumnModel)> {
        self.columns
            .iter()
            .enumerate()
            .find(|(_, column)| column.field == field)
    }

    /// The column of `field` if filters and sort orders may name it: not a guarded one, whose
    /// values a filter or an order would reveal past its guard (the schema leaves guarded
    /// columns out of `where` and `order_by`; this holds whatever reaches translation).
    pub fn filterable(&self, field: &str) -> Option<(usize, &ColumnModel)> {
        self.column(field)
            .filter(|(_, column)| column.directives.guard.is_empty())
    }

    pub fn relationship(&self, name: &str) -> Option<&Relationship> {
        self.relationships
            .iter()
            .find(|relationship| relationship.name == name)
    }
}

/// A configuration that does not fit the database.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ModelError {
    #[error("table {0:?} is configured but does not exist in schema {1:?}")]
    MissingTable(String, String),
    #[error("table {table:?}: key column {column:?} does not exist")]
    MissingKeyColumn { table: String, column: String },
    #[error("table {table:?}: configured column {column:?} does not exist")]
    MissingColumn { table: String, column: String },
    #[error("table {0:?} is an entity but has no primary key; give its `key` in the config")]
    EntityWithoutKey(String),
    #[error("table {0:?}: `changes` needs a table (not a view) with a primary key")]
    ChangesWithoutKey(String),
    #[error("two tables are both named {0:?} in GraphQL; rename one with `type`")]
    DuplicateType(String),
    #[error("extends.{entity}: table {table:?} references {entity}, so it cannot also be extended")]
    ExtendedReference { entity: String, table: String },
    #[error("extends.{entity}.fields.{field}: {message}")]
    BadExtension {
        entity: String,
        field: String,
        message: String,
    },
    #[error("table {table:?}: {message}")]
    BadGuard { table: String, message: String },
    #[error("table {table:?}: rule {rule:?}: {message}")]
    BadRule {
        table: String,
        rule: String,
        message: String,
    },
}

/// Maps a PostgreSQL type to the GraphQL scalar it is exposed as. Identifier columns
/// (single-column primary keys and foreign keys) are `ID`s, so every subgraph agrees on how keys
/// look.
pub fn scalar_kind(column: &Column, is_key: bool) -> ScalarKind {
    let integral = matches!(column.udt.as_str(), "int2" | "int4" | "int8");
    if is_key && (integral || matches!(column.udt.as_str(), "uuid" | "text" | "varchar" | "bpchar"))
    {
        return ScalarKind::Id;
    }
    match column.udt.as_str() {
        "int2" | "int4" => ScalarKind::Int,
        "int8" => ScalarKind::BigInt,
        "float4" | "float8" => ScalarKind::Float,
        "numeric" | "money" => ScalarKind::Decimal,
        "bool" => ScalarKind::Boolean,
        "timestamptz" | "timestamp" => ScalarKind::DateTime,
        "date" => ScalarKind::Date,
        "json" | "jsonb" => ScalarKind::Json,
        "uuid" => ScalarKind::Id,
        _ => ScalarKind::String,
    }
}

type Selected<'a> = Vec<(
    &'a crate::catalog::Table,
    Option<&'a crate::config::TableConfig>,
)>;

/// The tables the configuration exposes (all of them when it names none), with their settings.
fn selected_tables<'a>(
    catalog: &'a Catalog,
    config: &'a Config,
) -> Result<Selected<'a>, ModelError> {
    if config.tables.is_empty() {
        return Ok(catalog.tables.iter().map(|table| (table, None)).collect());
    }
    config
        .tables
        .iter()
        .map(|(name, table_config)| {
            catalog
                .tables
                .iter()
                .find(|table| &table.name == name)
                .map(|table| (table, Some(table_config)))
                .ok_or_else(|| ModelError::MissingTable(name.clone(), catalog.schema.clone()))
        })
        .collect()
}

/// Builds the model; fails where the configuration names what the database lacks.
pub fn build(catalog: &Catalog, config: &Config) -> Result<Model, ModelError> {
    let mut tables: Vec<TableModel> = Vec::new();
    for (table, table_config) in selected_tables(catalog, config)? {
        let model = table_model(catalog, table, table_config)?;
        if tables.iter().any(|t| t.type_name == model.type_name) {
            return Err(ModelError::DuplicateType(model.type_name));
        }
        tables.push(model);
    }
    add_relationships(catalog, &mut tables);
    let foreign = foreign_entities(&tables, config)?;
    Ok(Model {
        schema: catalog.schema.clone(),
        tables,
        max_limit: config.max_limit,
        max_depth: config.max_depth,
        max_complexity: config.max_complexity,
        foreign,
    })
}

/// The configured extensions of other subgraphs' entities, checked against the exposed tables.
fn foreign_entities(
    tables: &[TableModel],
    config: &Config,
) -> Result<Vec<ForeignEntity>, ModelError> {
    let mut foreign = Vec::new();
    for (type_name, extension) in &config.extends {
        if tables.iter().any(|table| &table.type_name == type_name) {
            return Err(ModelError::DuplicateType(type_name.clone()));
        }
        // A reference's document holds only the key and the provided fields; extension fields
        // selected under it could not be answered there.
        if let Some(table) = tables.iter().find(|table| {
            table
                .references
                .iter()
                .any(|reference| &reference.type_name == type_name)
        }) {
            return Err(ModelError::ExtendedReference {
                entity: type_name.clone(),
                table: table.table.clone(),
            });
        }
        let mut fields = Vec::new();
        for (name, field) in &extension.fields {
            let unknown = |what: String| ModelError::BadExtension {
                entity: type_name.clone(),
                field: name.clone(),
                message: what,
            };
            let table = tables
                .iter()
                .position(|table| table.table == field.table)
                .ok_or_else(|| unknown(format!("table {:?} is not exposed", field.table)))?;
            let column = tables[table]
                .columns
                .iter()
                .position(|column| column.column == field.column)
                .ok_or_else(|| {
                    unknown(format!(
                        "table {:?} has no column {:?}",
                        field.table, field.column
                    ))
                })?;
            // What a row rule lets through depends on who asks: no shared cache may keep it.
            let private = |hint: CacheHint| {
                if tables[table].rule.is_some() {
                    hint.private()
                } else {
                    hint
                }
            };
            fields.push(ExtensionField {
                name: name.clone(),
                table,
                column,
                from: field.from.clone().unwrap_or_else(|| extension.key.clone()),
                aggregate: field.aggregate,
                cache: field.cache.map(private),
            });
        }
        let ruled = fields
            .iter()
            .any(|field| tables[field.table].rule.is_some());
        foreign.push(ForeignEntity {
            type_name: type_name.clone(),
            key: extension.key.clone(),
            fields,
            cache: extension
                .cache
                .map(|hint| if ruled { hint.private() } else { hint }),
        });
    }
    Ok(foreign)
}

/// A table's configured references, their columns checked.
fn references(
    model: &TableModel,
    config: &crate::config::TableConfig,
) -> Result<Vec<Reference>, ModelError> {
    let column = |name: &str| {
        model
            .columns
            .iter()
            .position(|column| column.column == name)
            .ok_or_else(|| ModelError::MissingColumn {
                table: model.table.clone(),
                column: name.to_owned(),
            })
    };
    config
        .references
        .iter()
        .map(|(name, reference)| {
            Ok(Reference {
                name: name.clone(),
                type_name: reference.type_name.clone(),
                column: column(&reference.column)?,
                key: reference.key.clone(),
                provides: reference
                    .provides
                    .iter()
                    .map(|(field, name)| Ok((field.clone(), column(name)?)))
                    .collect::<Result<_, ModelError>>()?,
            })
        })
        .collect()
}

/// Whether a column identifies rows: a single-column primary key, or a column referring to one
/// (or referred to by a foreign key).
fn is_key_column(catalog: &Catalog, table: &str, column: &str) -> bool {
    catalog
        .tables
        .iter()
        .any(|t| t.name == table && t.primary_key.len() == 1 && t.primary_key[0] == column)
        || catalog.foreign_keys.iter().any(|fk| {
            (fk.table == table && fk.columns.iter().any(|c| c == column))
                || (fk.referenced_table == table
                    && fk.referenced_columns.iter().any(|c| c == column))
        })
}

/// One table's type: its fields, keys, rule and directives (relationships come later).
/// The subscription field of a table configured with `changes`.
fn changed_field(
    table: &crate::catalog::Table,
    table_config: Option<&crate::config::TableConfig>,
    primary_key: &[usize],
    list_field: &str,
) -> Result<Option<String>, ModelError> {
    if !table_config.is_some_and(|c| c.changes) {
        return Ok(None);
    }
    if primary_key.is_empty() || table.is_view {
        return Err(ModelError::ChangesWithoutKey(table.name.clone()));
    }
    Ok(Some(format!("{list_field}_changed")))
}

fn table_model(
    catalog: &Catalog,
    table: &crate::catalog::Table,
    table_config: Option<&crate::config::TableConfig>,
) -> Result<TableModel, ModelError> {
    let type_name = table_config
        .and_then(|c| c.type_name.clone())
        .unwrap_or_else(|| naming::type_name(&table.name));
    if let Some(unknown) = table_config.and_then(|c| {
        c.columns
            .keys()
            .find(|name| !table.columns.iter().any(|column| &column.name == *name))
    }) {
        return Err(ModelError::MissingColumn {
            table: table.name.clone(),
            column: unknown.clone(),
        });
    }
    let columns: Vec<ColumnModel> = table
        .columns
        .iter()
        .map(|column| ColumnModel {
            field: naming::field_name(&column.name),
            column: column.name.clone(),
            kind: scalar_kind(column, is_key_column(catalog, &table.name, &column.name)),
            sql_type: column.sql_type.clone(),
            nullable: column.nullable,
            description: column.comment.clone(),
            integral: matches!(column.udt.as_str(), "int2" | "int4" | "int8"),
            directives: table_config
                .and_then(|c| c.columns.get(&column.name))
                .cloned()
                .unwrap_or_default(),
        })
        .collect();
    let index_of = |name: &str| columns.iter().position(|c| c.column == name);
    let primary_key: Vec<usize> = table
        .primary_key
        .iter()
        .filter_map(|c| index_of(c))
        .collect();
    let entity_key = match table_config {
        Some(c) if c.entity => Some(match &c.key {
            Some(key) => key
                .iter()
                .map(|column| {
                    index_of(column).ok_or_else(|| ModelError::MissingKeyColumn {
                        table: table.name.clone(),
                        column: column.clone(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None if primary_key.is_empty() => {
                return Err(ModelError::EntityWithoutKey(table.name.clone()));
            }
            None => primary_key.clone(),
        }),
        _ => None,
    };
    let list_field = naming::field_name(&table.name);
    let changed_field = changed_field(table, table_config, &primary_key, &list_field)?;
    let mut model = TableModel {
        by_pk_field: format!("{list_field}_by_pk"),
        aggregate_field: format!("{list_field}_aggregate"),
        changed_field,
        list_field,
        table: table.name.clone(),
        type_name,
        description: table.comment.clone(),
        is_view: table.is_view,
        mutations: if table.is_view {
            Mutations::NONE
        } else {
            table_config.map(|c| c.mutations).unwrap_or_default()
        },
        writes: table_config.map(|c| c.writes.clone()).unwrap_or_default(),
        columns,
        primary_key,
        entity_key,
        relationships: Vec::new(),
        references: Vec::new(),
        rule: None,
        directives: table_config
            .map(crate::config::TableConfig::directives)
            .unwrap_or_default(),
    };
    if let Some(table_config) = table_config {
        model.references = references(&model, table_config)?;
        check_guards(&table.name, table_config)?;
    }
    if table_config.is_some_and(|c| !c.guard.is_empty()) {
        // What a guard lets through depends on who asks: no shared cache may keep it.
        model.directives.cache = model.directives.cache.map(CacheHint::private);
    }
    if let Some(text) = table_config.and_then(|c| c.rule.as_ref()) {
        // Nor what a row rule lets through.
        model.directives.cache = model.directives.cache.map(CacheHint::private);
        let field_of = |column: &str| model.column_field(column);
        let rule = RowRule::parse(text, field_of).map_err(|message| ModelError::BadRule {
            table: table.name.clone(),
            rule: text.clone(),
            message,
        })?;
        model.rule = Some(rule);
    }
    Ok(model)
}

/// Refuses guards that would allow everyone (see `Guard::check`).
fn check_guards(table: &str, config: &crate::config::TableConfig) -> Result<(), ModelError> {
    let bad = |message: String| ModelError::BadGuard {
        table: table.to_owned(),
        message,
    };
    config
        .guard
        .check()
        .map_err(|message| bad(format!("guard: {message}")))?;
    for (column, directives) in &config.columns {
        directives
            .guard
            .check()
            .map_err(|message| bad(format!("columns.{column}.guard: {message}")))?;
    }
    config.writes.check().map_err(bad)
}

fn add_relationships(catalog: &Catalog, tables: &mut [TableModel]) {
    let position = |tables: &[TableModel], name: &str| tables.iter().position(|t| t.table == name);
    for fk in &catalog.foreign_keys {
        let (Some(source), Some(target)) = (
            position(tables, &fk.table),
            position(tables, &fk.referenced_table),
        ) else {
            continue;
        };
        let column =
            |table: &TableModel, name: &str| table.columns.iter().position(|c| c.column == name);
        let mapping: Option<Vec<(usize, usize)>> = fk
            .columns
            .iter()
            .zip(&fk.referenced_columns)
            .map(|(here, there)| {
                Some((
                    column(&tables[source], here)?,
                    column(&tables[target], there)?,
                ))
            })
            .collect();
        let Some(mapping) = mapping else { continue };
        let nullable = mapping
            .iter()
            .all(|(here, _)| tables[source].columns[*here].nullable);

        let base = match fk.columns.as_slice() {
            [single] => single.strip_suffix("_id").unwrap_or(single).to_owned(),
            _ => naming::singular(&fk.referenced_table),
        };
        let object_name = unique_name(&tables[source], naming::field_name(&base), &fk.columns);
        tables[source].relationships.push(Relationship {
            name: object_name,
            cardinality: Cardinality::Object,
            target,
            mapping: mapping.clone(),
            nullable,
        });
        let array_name = unique_name(&tables[target], naming::field_name(&fk.table), &fk.columns);
        tables[target].relationships.push(Relationship {
            name: array_name,
            cardinality: Cardinality::Array,
            target: source,
            mapping: mapping
                .iter()
                .map(|(here, there)| (*there, *here))
                .collect(),
            nullable: false,
        });
    }
}

/// `wanted`, or `wanted_by_<columns>` when `wanted` is already a field of `table`.
fn unique_name(table: &TableModel, wanted: String, columns: &[String]) -> String {
    let taken = |name: &str| {
        table.columns.iter().any(|c| c.field == name)
            || table
                .relationships
                .iter()
                .any(|r| r.name == name || r.aggregate_name() == name)
    };
    if taken(&wanted) {
        naming::field_name(&format!("{wanted}_by_{}", columns.join("_")))
    } else {
        wanted
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::catalog::{ForeignKey, Table};

    fn column(name: &str, udt: &str, sql_type: &str, nullable: bool) -> Column {
        Column {
            name: name.into(),
            sql_type: sql_type.into(),
            udt: udt.into(),
            nullable,
            comment: None,
        }
    }

    /// The demo shop's shape, as introspection reports it.
    pub(crate) fn shop_catalog() -> Catalog {
        let table = |name: &str, columns: Vec<Column>, primary_key: &[&str]| Table {
            name: name.into(),
            is_view: false,
            comment: Some(format!("The {name} table.")),
            columns,
            primary_key: primary_key.iter().map(|c| (*c).to_owned()).collect(),
        };
        Catalog {
            schema: "public".into(),
            tables: vec![
                table(
                    "order_items",
                    vec![
                        column("order_id", "int8", "bigint", false),
                        column("line", "int4", "integer", false),
                        column("product_id", "int8", "bigint", false),
                        column("quantity", "int4", "integer", false),
                        column("unit_price", "numeric", "numeric(10,2)", false),
                    ],
                    &["order_id", "line"],
                ),
                table(
                    "orders",
                    vec![
                        column("id", "int8", "bigint", false),
                        column("user_id", "int8", "bigint", false),
                        column("status", "text", "text", false),
                        column("total", "numeric", "numeric(12,2)", false),
                        column(
                            "created_at",
                            "timestamptz",
                            "timestamp with time zone",
                            false,
                        ),
                    ],
                    &["id"],
                ),
                table(
                    "products",
                    vec![
                        column("id", "int8", "bigint", false),
                        column("name", "text", "text", false),
                        column("price", "numeric", "numeric(10,2)", false),
                        column("description", "text", "text", true),
                        column("in_stock", "bool", "boolean", false),
                    ],
                    &["id"],
                ),
                table(
                    "users",
                    vec![
                        column("id", "int8", "bigint", false),
                        column("name", "text", "text", false),
                        column("email", "text", "text", false),
                        column("country", "bpchar", "character(2)", false),
                    ],
                    &["id"],
                ),
            ],
            foreign_keys: vec![
                ForeignKey {
                    name: "order_items_order_id_fkey".into(),
                    table: "order_items".into(),
                    columns: vec!["order_id".into()],
                    referenced_table: "orders".into(),
                    referenced_columns: vec!["id".into()],
                },
                ForeignKey {
                    name: "order_items_product_id_fkey".into(),
                    table: "order_items".into(),
                    columns: vec!["product_id".into()],
                    referenced_table: "products".into(),
                    referenced_columns: vec!["id".into()],
                },
                ForeignKey {
                    name: "orders_user_id_fkey".into(),
                    table: "orders".into(),
                    columns: vec!["user_id".into()],
                    referenced_table: "users".into(),
                    referenced_columns: vec!["id".into()],
                },
            ],
        }
    }

    pub(crate) fn shop_config() -> Config {
        Config::from_yaml(
            "tables:
               users: { type: User, entity: true }
               products: { type: Product, entity: true }
               orders: { type: Order, entity: true }
               order_items: {}",
        )
        .unwrap()
    }

    pub(crate) fn shop_model() -> Model {
        build(&shop_catalog(), &shop_config()).unwrap()
    }

    #[test]
    fn relationships_come_from_foreign_keys() {
        let model = shop_model();
        let (_, order) = model.table_by_type("Order").unwrap();
        let names: Vec<_> = order
            .relationships
            .iter()
            .map(|r| (r.name.as_str(), r.cardinality))
            .collect();
        assert_eq!(
            names,
            vec![
                ("order_items", Cardinality::Array),
                ("user", Cardinality::Object)
            ]
        );
        let (_, user) = model.table_by_type("User").unwrap();
        assert_eq!(user.relationships[0].name, "orders");
        let (_, item) = model.table_by_type("OrderItem").unwrap();
        let names: Vec<_> = item.relationships.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, vec!["order", "product"]);
    }

    #[test]
    fn keys_are_ids_and_other_types_map() {
        let model = shop_model();
        let (_, order) = model.table_by_type("Order").unwrap();
        let kinds: Vec<_> = order
            .columns
            .iter()
            .map(|c| (c.field.as_str(), c.kind))
            .collect();
        assert_eq!(
            kinds,
            vec![
                ("id", ScalarKind::Id),
                ("user_id", ScalarKind::Id),
                ("status", ScalarKind::String),
                ("total", ScalarKind::Decimal),
                ("created_at", ScalarKind::DateTime),
            ]
        );
        assert_eq!(order.entity_key, Some(vec![0]));
        let (_, item) = model.table_by_type("OrderItem").unwrap();
        assert_eq!(item.entity_key, None);
        assert_eq!(item.primary_key, vec![0, 1]);
    }

    #[test]
    fn row_rules_parse() {
        let config = Config::from_yaml(
            "tables: { orders: { rule: 'user_id = claims.sub and status in claims.statuses' } }",
        )
        .unwrap();
        let model = build(&shop_catalog(), &config).unwrap();
        let rule = model.tables[0].rule.clone().unwrap();
        assert_eq!(
            rule.conditions,
            vec![
                RuleCondition {
                    field: "user_id".into(),
                    any_of: false,
                    claim: "sub".into()
                },
                RuleCondition {
                    field: "status".into(),
                    any_of: true,
                    claim: "statuses".into()
                },
            ]
        );
        for bad in [
            "user_id == claims.sub",
            "nope = claims.sub",
            "user_id = sub",
            "user_id",
        ] {
            let config =
                Config::from_yaml(&format!("tables: {{ orders: {{ rule: '{bad}' }} }}")).unwrap();
            assert!(
                matches!(
                    build(&shop_catalog(), &config),
                    Err(ModelError::BadRule { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn configuration_errors_name_the_problem() {
        let config = Config::from_yaml("tables: { missing: {} }").unwrap();
        assert_eq!(
            build(&shop_catalog(), &config).unwrap_err(),
            ModelError::MissingTable("missing".into(), "public".into())
        );
        let config = Config::from_yaml("tables: { users: { entity: true, key: [nope] } }").unwrap();
        assert!(matches!(
            build(&shop_catalog(), &config),
            Err(ModelError::MissingKeyColumn { .. })
        ));
    }
}
