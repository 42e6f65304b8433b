//! The benchmark federation's graph ([`super::Shape::Ours`]) as one schema over the same
//! data, executed by apollo-compiler's reference executor (field by field, as the spec's
//! algorithm reads) instead of by planning across subgraphs. The differential test sends the
//! same generated operations to it and to the gateway and compares the answers.

use apollo_compiler::resolvers::{Execution, FieldError, ObjectValue, ResolveInfo, ResolvedValue};
use apollo_compiler::response::JsonMap;
use apollo_compiler::validation::Valid;
use apollo_compiler::{ExecutableDocument, Schema};
use serde_json::{Map, Value, json};

use super::{
    FeedEntry, PRODUCTS, USERS, feed_entries, parse_index, product, review, reviews, user,
};

/// The graph as one schema: the supergraph's API schema, written out by hand.
pub const SDL: &str = r"
type Query {
  me: User!
  user(id: ID!): User
  users: [User!]!
  topProducts(first: Int! = 5): [Product!]!
  feed(first: Int! = 6): [FeedItem]!
}
union FeedItem = Review | User | Product
type User {
  id: ID!
  name: String!
  username: String!
  birthday: Int!
  reviews: [Review!]!
}
type Product {
  upc: String!
  price: Int
  weight: Int
  inStock: Boolean!
  shippingEstimate: Int
  name: String!
  reviews: [Review!]!
}
type Review {
  id: ID!
  body: String!
  author: User!
  product: Product!
}
";

/// The monolith: its schema and its resolvers.
pub struct Monolith {
    schema: Valid<Schema>,
}

impl Default for Monolith {
    fn default() -> Self {
        Monolith {
            schema: Schema::parse_and_validate(SDL, "monolith.graphql")
                .expect("the monolith's schema is valid"),
        }
    }
}

impl Monolith {
    pub fn schema(&self) -> &Valid<Schema> {
        &self.schema
    }

    /// Answers `query` with `variables` as a GraphQL response (`data`, `errors`).
    pub fn execute(&self, query: &str, variables: &Map<String, Value>) -> Value {
        let document = match ExecutableDocument::parse_and_validate(
            &self.schema,
            query,
            "operation.graphql",
        ) {
            Ok(document) => document,
            Err(invalid) => return json!({ "errors": [{ "message": invalid.errors.to_string() }] }),
        };
        let variables: JsonMap = serde_json::from_value(Value::Object(variables.clone()))
            .expect("a JSON object is a JSON map");
        let answer = Execution::new(&self.schema, &document)
            .raw_variable_values(&variables)
            .execute_sync(&Query);
        match answer {
            Ok(response) => serde_json::to_value(response).expect("responses serialize"),
            Err(error) => json!({ "errors": [{ "message": error.message().to_string() }] }),
        }
    }
}

struct Query;

impl ObjectValue for Query {
    fn type_name(&self) -> &'static str {
        "Query"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        Ok(match info.field_name() {
            "me" => ResolvedValue::object(User(1)),
            "user" => {
                let id = info.arguments()["id"].as_str().unwrap_or_default();
                ResolvedValue::nullable_object(parse_index(id, USERS).map(User))
            }
            "users" => ResolvedValue::list((1..=USERS).map(|i| ResolvedValue::object(User(i)))),
            "topProducts" => {
                let first = info.arguments()["first"].as_i64().unwrap_or_default();
                ResolvedValue::list(
                    (1..=PRODUCTS)
                        .take(usize::try_from(first).unwrap_or(0))
                        .map(|i| ResolvedValue::object(Product(i))),
                )
            }
            "feed" => {
                let first = info.arguments()["first"].as_i64().unwrap_or_default();
                ResolvedValue::list(feed_entries(usize::try_from(first).unwrap_or(0)).map(
                    |entry| match entry {
                        FeedEntry::Review(index) => ResolvedValue::object(Review(index)),
                        FeedEntry::User(id) => ResolvedValue::object(User(id)),
                        FeedEntry::Product(upc) => ResolvedValue::object(Product(upc)),
                    },
                ))
            }
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

/// The reviews for which `about` holds, as a list of objects.
fn reviews_where<'a>(about: impl Fn(&super::ReviewData) -> bool + 'a) -> ResolvedValue<'a> {
    ResolvedValue::list(
        reviews()
            .filter(move |review| about(review))
            .map(|review| ResolvedValue::object(Review(review.id.parse().expect("numeric ids")))),
    )
}

struct User(usize);

impl ObjectValue for User {
    fn type_name(&self) -> &'static str {
        "User"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let data = user(self.0);
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(data.id.to_string()),
            "name" => ResolvedValue::leaf(data.name),
            "username" => ResolvedValue::leaf(data.username),
            "birthday" => ResolvedValue::leaf(data.birthday),
            "reviews" => reviews_where(move |review| review.author == self.0),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

struct Product(usize);

impl ObjectValue for Product {
    fn type_name(&self) -> &'static str {
        "Product"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        if self.0 == 0 {
            return Self::gone(info);
        }
        let data = product(self.0);
        let nullable =
            |value: Option<i32>| value.map_or_else(ResolvedValue::null, ResolvedValue::leaf);
        Ok(match info.field_name() {
            "upc" => ResolvedValue::leaf(data.upc),
            "name" => ResolvedValue::leaf(data.name),
            "price" => nullable(data.price),
            "weight" => nullable(data.weight),
            "inStock" => ResolvedValue::leaf(!self.0.is_multiple_of(3)),
            // Free above 1,000; otherwise half the weight.
            "shippingEstimate" => nullable(
                data.price
                    .zip(data.weight)
                    .map(|(price, weight)| if price > 1000 { 0 } else { weight / 2 }),
            ),
            "reviews" => reviews_where(move |review| review.product == self.0),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}

impl Product {
    /// Product 0, which the feed names but the catalogue no longer has: no name, price or
    /// weight, out of stock, no reviews.
    fn gone<'a>(info: &'a ResolveInfo<'a>) -> Result<ResolvedValue<'a>, FieldError> {
        Ok(match info.field_name() {
            "upc" => ResolvedValue::leaf("0"),
            "name" => {
                return Err(FieldError {
                    message: "product 0 is gone".into(),
                });
            }
            "inStock" => ResolvedValue::leaf(false),
            "reviews" => ResolvedValue::list(std::iter::empty()),
            _ => ResolvedValue::null(),
        })
    }
}

struct Review(usize);

impl ObjectValue for Review {
    fn type_name(&self) -> &'static str {
        "Review"
    }

    fn resolve_field<'a>(
        &'a self,
        info: &'a ResolveInfo<'a>,
    ) -> Result<ResolvedValue<'a>, FieldError> {
        let data = review(self.0);
        Ok(match info.field_name() {
            "id" => ResolvedValue::leaf(data.id),
            "body" => ResolvedValue::leaf(data.body),
            "author" => ResolvedValue::object(User(data.author)),
            "product" => ResolvedValue::object(Product(data.product)),
            _ => return Err(self.unknown_field_error(info)),
        })
    }
}
