//! Four small Federation v2 subgraphs shaped like the public gateways benchmark — accounts,
//! inventory, products and reviews — over fixed in-memory data. The load benchmark puts the
//! gateway in front of them; end-to-end tests use them as real HTTP subgraphs.
//!
//! What crosses subgraphs: `User` (key `id`) lives in accounts and gains `reviews` in
//! reviews; `Product` (key `upc`) lives in products, gains `inStock` and a
//! `shippingEstimate` that `@requires(fields: "price weight")` in inventory, and `reviews`
//! in reviews; `Review.author` `@provides(fields: "username")`. The reviews subgraph's `feed`
//! is a list of a union (`FeedItem = Review | User | Product`) whose every seventh entry is a
//! product the products subgraph no longer has: its `name` (non-null) cannot be answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject, Union};
use axum::Router;
use axum::extract::State;
use axum::routing::post;

pub mod monolith;
pub mod public;

/// Users, products and reviews in the data set.
pub const USERS: usize = 10;
pub const PRODUCTS: usize = 10;
pub const REVIEWS_PER_USER: usize = 3;

fn user(index: usize) -> User {
    User {
        id: ID(format!("{index}")),
        name: format!("User {index}"),
        username: format!("user{index}"),
        birthday: 1_000 + index as i32,
    }
}

fn product(index: usize) -> Product {
    Product {
        upc: format!("{index}"),
        name: format!("Product {index}"),
        price: Some(100 * index as i32),
        weight: Some(10 * index as i32),
    }
}

/// Review `index` (1-based): written by user `(index - 1) / 3 + 1` about product
/// `(index - 1) % PRODUCTS + 1`.
fn review(index: usize) -> ReviewData {
    ReviewData {
        id: format!("{index}"),
        body: format!("Review {index}: a fine product, would buy again"),
        author: (index - 1) / REVIEWS_PER_USER + 1,
        product: (index - 1) % PRODUCTS + 1,
    }
}

fn reviews() -> impl Iterator<Item = ReviewData> {
    (1..=USERS * REVIEWS_PER_USER).map(review)
}

fn parse_index(id: &str, count: usize) -> Option<usize> {
    id.parse::<usize>()
        .ok()
        .filter(|&i| (1..=count).contains(&i))
}

// --- accounts -------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
pub struct User {
    id: ID,
    name: String,
    #[graphql(shareable)]
    username: String,
    birthday: i32,
}

pub struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> User {
        user(1)
    }

    async fn user(&self, id: ID) -> Option<User> {
        parse_index(&id, USERS).map(user)
    }

    async fn users(&self) -> Vec<User> {
        (1..=USERS).map(user).collect()
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        parse_index(&id, USERS).map(user)
    }
}

// --- products -------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
#[graphql(name = "Product")]
pub struct Product {
    upc: String,
    name: String,
    price: Option<i32>,
    weight: Option<i32>,
}

pub struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(&self, #[graphql(default = 5)] first: i32) -> Vec<Product> {
        (1..=PRODUCTS)
            .take(usize::try_from(first).unwrap_or(0))
            .map(product)
            .collect()
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        parse_index(&upc, PRODUCTS).map(product)
    }
}

// --- inventory ------------------------------------------------------------------------------

pub struct InventoryProduct {
    upc: String,
    price: Option<i32>,
    weight: Option<i32>,
}

#[Object(name = "Product")]
impl InventoryProduct {
    async fn upc(&self) -> &str {
        &self.upc
    }

    #[graphql(external)]
    async fn price(&self) -> Option<i32> {
        self.price
    }

    #[graphql(external)]
    async fn weight(&self) -> Option<i32> {
        self.weight
    }

    async fn in_stock(&self) -> bool {
        parse_index(&self.upc, PRODUCTS).is_some_and(|index| index % 3 != 0)
    }

    /// Free above 1,000; otherwise half the weight.
    #[graphql(requires = "price weight")]
    async fn shipping_estimate(&self) -> Option<i32> {
        let (price, weight) = (self.price?, self.weight?);
        Some(if price > 1000 { 0 } else { weight / 2 })
    }
}

pub struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn find_product_by_upc(
        &self,
        #[graphql(key)] upc: String,
        price: Option<i32>,
        weight: Option<i32>,
    ) -> InventoryProduct {
        InventoryProduct { upc, price, weight }
    }
}

// --- reviews --------------------------------------------------------------------------------

#[derive(Clone)]
struct ReviewData {
    id: String,
    body: String,
    author: usize,
    product: usize,
}

pub struct Review(ReviewData);

#[Object(name = "Review")]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.id.clone())
    }

    async fn body(&self) -> &str {
        &self.0.body
    }

    #[graphql(provides = "username")]
    async fn author(&self) -> ReviewUser {
        ReviewUser { id: self.0.author }
    }

    async fn product(&self) -> ReviewProduct {
        ReviewProduct {
            upc: self.0.product,
        }
    }
}

pub struct ReviewUser {
    id: usize,
}

#[Object(name = "User")]
impl ReviewUser {
    async fn id(&self) -> ID {
        ID(self.id.to_string())
    }

    #[graphql(external)]
    async fn username(&self) -> String {
        format!("user{}", self.id)
    }

    async fn reviews(&self) -> Vec<Review> {
        reviews()
            .filter(|review| review.author == self.id)
            .map(Review)
            .collect()
    }
}

pub struct ReviewProduct {
    upc: usize,
}

#[Object(name = "Product")]
impl ReviewProduct {
    async fn upc(&self) -> String {
        self.upc.to_string()
    }

    async fn reviews(&self) -> Vec<Review> {
        reviews()
            .filter(|review| review.product == self.upc)
            .map(Review)
            .collect()
    }
}

/// What happened lately: newest review first, each followed by its author and its product.
#[derive(Union)]
#[graphql(name = "FeedItem")]
pub enum FeedItem {
    Review(Review),
    User(ReviewUser),
    Product(ReviewProduct),
}

/// The feed's entries, `first` of them: entry `n` is about review `30 - n / 3`; every seventh
/// is product 0 (entries 5, 12, …), which only the reviews subgraph still names.
pub fn feed_entries(first: usize) -> impl Iterator<Item = FeedEntry> {
    let total = USERS * REVIEWS_PER_USER;
    (0..first.min(3 * total)).map(move |n| {
        let review = review(total - n / 3);
        if n % 7 == 5 {
            return FeedEntry::Product(0);
        }
        match n % 3 {
            0 => FeedEntry::Review(total - n / 3),
            1 => FeedEntry::User(review.author),
            _ => FeedEntry::Product(review.product),
        }
    })
}

/// A feed entry by index: review, user or product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FeedEntry {
    Review(usize),
    User(usize),
    Product(usize),
}

pub struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    async fn feed(&self, #[graphql(default = 6)] first: i32) -> Vec<Option<FeedItem>> {
        feed_entries(usize::try_from(first).unwrap_or(0))
            .map(|entry| {
                Some(match entry {
                    FeedEntry::Review(index) => FeedItem::Review(Review(review(index))),
                    FeedEntry::User(id) => FeedItem::User(ReviewUser { id }),
                    FeedEntry::Product(upc) => FeedItem::Product(ReviewProduct { upc }),
                })
            })
            .collect()
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<ReviewUser> {
        parse_index(&id, USERS).map(|id| ReviewUser { id })
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<ReviewProduct> {
        parse_index(&upc, PRODUCTS).map(|upc| ReviewProduct { upc })
    }

    #[graphql(entity)]
    async fn find_review_by_id(&self, id: ID) -> Option<Review> {
        parse_index(&id, USERS * REVIEWS_PER_USER).map(|index| Review(review(index)))
    }
}

// --- serving --------------------------------------------------------------------------------

/// The four subgraphs, by name.
pub const NAMES: [&str; 4] = ["accounts", "inventory", "products", "reviews"];

/// A subgraph ready to serve: its schema behind a request counter.
#[derive(Clone)]
pub struct Served {
    schema: Arc<dyn Executor>,
    /// Requests answered, for tests that count round trips.
    pub requests: Arc<AtomicUsize>,
    /// How long each answer waits before it is computed, for tests of slow subgraphs.
    pub delay: std::time::Duration,
}

trait Executor: Send + Sync {
    fn execute(
        &self,
        request: async_graphql::Request,
    ) -> futures::future::BoxFuture<'_, async_graphql::Response>;
    fn sdl(&self) -> String;
}

impl<Q: async_graphql::ObjectType + 'static> Executor
    for Schema<Q, EmptyMutation, EmptySubscription>
{
    fn execute(
        &self,
        request: async_graphql::Request,
    ) -> futures::future::BoxFuture<'_, async_graphql::Response> {
        Box::pin(Schema::execute(self, request))
    }

    fn sdl(&self) -> String {
        self.sdl_with_options(async_graphql::SDLExportOptions::new().federation())
    }
}

/// Which data set the four subgraphs serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// Ours: 10 users with 3 reviews each over 10 products, non-null where the data is.
    Ours,
    /// The public graphql-gateways-benchmark's schema and data sizes ([`public`]).
    Public,
}

impl Shape {
    /// `ours` or `public`.
    pub fn parse(name: &str) -> Option<Shape> {
        match name {
            "ours" => Some(Shape::Ours),
            "public" => Some(Shape::Public),
            _ => None,
        }
    }
}

/// The subgraph called `name` (one of [`NAMES`]), with our data set.
pub fn subgraph(name: &str) -> Option<Served> {
    shaped(Shape::Ours, name)
}

/// The subgraph called `name` (one of [`NAMES`]) serving `shape`'s data set.
pub fn shaped(shape: Shape, name: &str) -> Option<Served> {
    fn build<Q: async_graphql::ObjectType + 'static>(query: Q) -> Arc<dyn Executor> {
        Arc::new(
            Schema::build(query, EmptyMutation, EmptySubscription)
                .enable_federation()
                .finish(),
        )
    }
    let schema = match (shape, name) {
        (Shape::Ours, "accounts") => build(AccountsQuery),
        (Shape::Ours, "inventory") => build(InventoryQuery),
        (Shape::Ours, "products") => build(ProductsQuery),
        (Shape::Ours, "reviews") => build(ReviewsQuery),
        (Shape::Public, "accounts") => build(public::AccountsQuery),
        (Shape::Public, "inventory") => build(public::InventoryQuery),
        (Shape::Public, "products") => build(public::ProductsQuery),
        (Shape::Public, "reviews") => build(public::ReviewsQuery),
        _ => return None,
    };
    Some(Served {
        schema,
        requests: Arc::new(AtomicUsize::new(0)),
        delay: std::time::Duration::ZERO,
    })
}

impl Served {
    /// The subgraph's SDL, federation directives included.
    pub fn sdl(&self) -> String {
        self.schema.sdl()
    }

    /// An HTTP app answering GraphQL POSTs on any path.
    pub fn app(&self) -> Router {
        Router::new()
            .route("/", post(answer))
            .route("/graphql", post(answer))
            .with_state(self.clone())
    }

    /// Serves on `listen` until the task is dropped; returns the bound address.
    pub async fn spawn(&self, listen: SocketAddr) -> std::io::Result<SocketAddr> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let address = listener.local_addr()?;
        let app = self.app();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(address)
    }
}

async fn answer(State(served): State<Served>, body: axum::body::Bytes) -> axum::response::Response {
    use axum::response::IntoResponse;
    served.requests.fetch_add(1, Ordering::Relaxed);
    if !served.delay.is_zero() {
        tokio::time::sleep(served.delay).await;
    }
    let request: async_graphql::Request = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(error) => {
            return (axum::http::StatusCode::BAD_REQUEST, error.to_string()).into_response();
        }
    };
    let response = served.schema.execute(request).await;
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&response).expect("responses serialize"),
    )
        .into_response()
}
