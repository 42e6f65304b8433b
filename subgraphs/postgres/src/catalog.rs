//! What the database says about itself: tables and views of one schema, their columns, types,
//! nullability, primary and foreign keys, and comments. Read once at start-up (and on reload).

use sqlx::PgPool;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Catalog {
    pub schema: String,
    pub tables: Vec<Table>,
    pub foreign_keys: Vec<ForeignKey>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Table {
    pub name: String,
    pub is_view: bool,
    pub comment: Option<String>,
    pub columns: Vec<Column>,
    pub primary_key: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Column {
    pub name: String,
    /// `format_type` of the column, e.g. `numeric(10,2)`, usable in a cast.
    pub sql_type: String,
    /// The base type's name, e.g. `numeric`, `int8`, `_text` for `text[]`.
    pub udt: String,
    pub nullable: bool,
    pub comment: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ForeignKey {
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub referenced_table: String,
    pub referenced_columns: Vec<String>,
}

const COLUMNS: &str = "
SELECT c.relname::text, c.relkind IN ('v', 'm'), obj_description(c.oid, 'pg_class'),
       a.attname::text, format_type(a.atttypid, a.atttypmod), t.typname::text,
       NOT a.attnotnull, col_description(c.oid, a.attnum)
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
  JOIN pg_type t ON t.oid = a.atttypid
 WHERE n.nspname = $1 AND c.relkind IN ('r', 'v', 'm', 'p')
 ORDER BY c.relname, a.attnum";

const PRIMARY_KEYS: &str = "
SELECT c.relname::text, array_agg(a.attname::text ORDER BY k.ord)
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 CROSS JOIN LATERAL unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
 WHERE con.contype = 'p' AND n.nspname = $1
 GROUP BY c.relname, con.oid";

const FOREIGN_KEYS: &str = "
SELECT con.conname::text, c.relname::text, fc.relname::text,
       array_agg(a.attname::text ORDER BY k.ord), array_agg(fa.attname::text ORDER BY k.ord)
  FROM pg_constraint con
  JOIN pg_class c ON c.oid = con.conrelid
  JOIN pg_class fc ON fc.oid = con.confrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_namespace fn ON fn.oid = fc.relnamespace
 CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, fattnum, ord)
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
  JOIN pg_attribute fa ON fa.attrelid = con.confrelid AND fa.attnum = k.fattnum
 WHERE con.contype = 'f' AND n.nspname = $1 AND fn.nspname = $1
 GROUP BY con.conname, c.relname, fc.relname
 ORDER BY c.relname, con.conname";

type ForeignKeyRow = (String, String, String, Vec<String>, Vec<String>);
type ColumnRow = (
    String,
    bool,
    Option<String>,
    String,
    String,
    String,
    bool,
    Option<String>,
);

/// Reads the catalog of `schema`.
pub async fn introspect(pool: &PgPool, schema: &str) -> Result<Catalog, sqlx::Error> {
    let rows: Vec<ColumnRow> = sqlx::query_as(COLUMNS).bind(schema).fetch_all(pool).await?;
    let keys: Vec<(String, Vec<String>)> = sqlx::query_as(PRIMARY_KEYS)
        .bind(schema)
        .fetch_all(pool)
        .await?;
    let foreign: Vec<ForeignKeyRow> = sqlx::query_as(FOREIGN_KEYS)
        .bind(schema)
        .fetch_all(pool)
        .await?;

    let mut tables: Vec<Table> = Vec::new();
    for (table, is_view, table_comment, column, sql_type, udt, nullable, comment) in rows {
        if tables.last().is_none_or(|last| last.name != table) {
            tables.push(Table {
                primary_key: keys
                    .iter()
                    .find(|(name, _)| *name == table)
                    .map(|(_, columns)| columns.clone())
                    .unwrap_or_default(),
                name: table,
                is_view,
                comment: table_comment,
                columns: Vec::new(),
            });
        }
        tables
            .last_mut()
            .expect("pushed above")
            .columns
            .push(Column {
                name: column,
                sql_type,
                udt,
                nullable,
                comment,
            });
    }
    let foreign_keys = foreign
        .into_iter()
        .map(
            |(name, table, referenced_table, columns, referenced_columns)| ForeignKey {
                name,
                table,
                columns,
                referenced_table,
                referenced_columns,
            },
        )
        .collect();
    Ok(Catalog {
        schema: schema.to_owned(),
        tables,
        foreign_keys,
    })
}
