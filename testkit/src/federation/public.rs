//! The same four subgraphs shaped exactly as the public graphql-gateways-benchmark serves
//! them: its schema (nullable lists and fields), its data sizes (6 users, 9 products, 11
//! reviews whose bodies run 143 to 844 characters, four of them about product 1) and its
//! answers (every review's author is user 1 with the first two reviews, and the reviews
//! subgraph answers any `User` entity with those two reviews). The text is our own filler
//! of the same lengths. The load benchmark's second workload runs over these.

use async_graphql::{ID, Object, SimpleObject};

/// Each review's body length and product, in id order (ids 1 to 11).
const REVIEWS: [(usize, usize); 11] = [
    (445, 1),
    (289, 1),
    (275, 1),
    (143, 1),
    (445, 2),
    (289, 2),
    (275, 2),
    (143, 2),
    (143, 3),
    (143, 4),
    (844, 4),
];

/// (name, username) of users 1 to 6.
const USERS: [(&str, &str); 6] = [
    ("Ada Lovelace", "ada"),
    ("Grace Hopper", "grace"),
    ("Edsger Dijkstra", "edsger"),
    ("Barbara Liskov", "barbara"),
    ("Donald Knuth", "knuth"),
    ("Frances Allen", "frances"),
];

/// (name, price, weight) of products 1 to 9.
const PRODUCTS: [(&str, i64, i64); 9] = [
    ("Desk", 799, 120),
    ("Bench", 1499, 900),
    ("Mug", 12, 25),
    ("Stool", 349, 80),
    ("Radio", 1199, 950),
    ("Kettle", 5999, 350),
    ("Oven", 4599, 2500),
    ("Freezer", 90000, 5500),
    ("Armchair", 8999, 700),
];

/// Whether products 1 to 9 are in stock.
const IN_STOCK: [bool; 9] = [true, false, false, false, true, true, true, false, true];

const FILLER: &str = "Solid build, arrived on time and works as described; the finish is even, \
    the parts fit without force and the manual is short and clear. ";

fn body(length: usize) -> String {
    FILLER.chars().cycle().take(length).collect()
}

fn index(id: &str, count: usize) -> Option<usize> {
    id.parse::<usize>()
        .ok()
        .filter(|&i| (1..=count).contains(&i))
}

// --- accounts -------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
#[graphql(name = "User")]
pub struct User {
    id: ID,
    name: Option<String>,
    #[graphql(shareable)]
    username: Option<String>,
    birthday: Option<i32>,
}

fn user(index: usize) -> User {
    let (name, username) = USERS[index - 1];
    User {
        id: ID(index.to_string()),
        name: Some(name.to_owned()),
        username: Some(username.to_owned()),
        birthday: Some(1_234_567_890),
    }
}

pub struct AccountsQuery;

#[Object(name = "Query")]
impl AccountsQuery {
    async fn me(&self) -> Option<User> {
        Some(user(1))
    }

    async fn user(&self, id: ID) -> Option<User> {
        index(&id, USERS.len()).map(user)
    }

    async fn users(&self) -> Option<Vec<Option<User>>> {
        Some((1..=USERS.len()).map(|i| Some(user(i))).collect())
    }

    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> Option<User> {
        index(&id, USERS.len()).map(user)
    }
}

// --- products -------------------------------------------------------------------------------

#[derive(SimpleObject, Clone)]
#[graphql(name = "Product")]
pub struct Product {
    upc: String,
    name: Option<String>,
    price: Option<i64>,
    weight: Option<i64>,
}

fn product(index: usize) -> Product {
    let (name, price, weight) = PRODUCTS[index - 1];
    Product {
        upc: index.to_string(),
        name: Some(name.to_owned()),
        price: Some(price),
        weight: Some(weight),
    }
}

pub struct ProductsQuery;

#[Object(name = "Query")]
impl ProductsQuery {
    async fn top_products(
        &self,
        #[graphql(default = 5)] first: Option<i32>,
    ) -> Option<Vec<Option<Product>>> {
        let first = usize::try_from(first.unwrap_or(5)).unwrap_or(0);
        Some(
            (1..=PRODUCTS.len())
                .take(first)
                .map(|i| Some(product(i)))
                .collect(),
        )
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> Option<Product> {
        index(&upc, PRODUCTS.len()).map(product)
    }
}

// --- inventory ------------------------------------------------------------------------------

pub struct InventoryProduct {
    upc: String,
    price: Option<i64>,
    weight: Option<i64>,
}

#[Object(name = "Product")]
impl InventoryProduct {
    async fn upc(&self) -> &str {
        &self.upc
    }

    #[graphql(external)]
    async fn price(&self) -> Option<i64> {
        self.price
    }

    #[graphql(external)]
    async fn weight(&self) -> Option<i64> {
        self.weight
    }

    async fn in_stock(&self) -> Option<bool> {
        index(&self.upc, IN_STOCK.len()).map(|i| IN_STOCK[i - 1])
    }

    /// Free above 1,000; otherwise half the weight.
    #[graphql(requires = "price weight")]
    async fn shipping_estimate(&self) -> Option<i64> {
        let price = self.price?;
        if price > 1000 {
            return Some(0);
        }
        Some(self.weight? / 2)
    }
}

pub struct InventoryQuery;

#[Object(name = "Query")]
impl InventoryQuery {
    #[graphql(entity)]
    async fn find_product_by_upc(
        &self,
        #[graphql(key)] upc: String,
        price: Option<i64>,
        weight: Option<i64>,
    ) -> Option<InventoryProduct> {
        index(&upc, IN_STOCK.len()).map(|_| InventoryProduct { upc, price, weight })
    }
}

// --- reviews --------------------------------------------------------------------------------

pub struct Review(usize);

fn first_two() -> Vec<Option<Review>> {
    vec![Some(Review(1)), Some(Review(2))]
}

#[Object(name = "Review")]
impl Review {
    async fn id(&self) -> ID {
        ID(self.0.to_string())
    }

    async fn body(&self) -> Option<String> {
        Some(body(REVIEWS[self.0 - 1].0))
    }

    /// Every review's author is user 1, with the first two reviews.
    #[graphql(provides = "username")]
    async fn author(&self) -> Option<ReviewUser> {
        Some(ReviewUser {
            id: ID("1".into()),
            username: USERS[0].1.to_owned(),
        })
    }

    async fn product(&self) -> Option<ReviewProduct> {
        Some(ReviewProduct {
            upc: REVIEWS[self.0 - 1].1.to_string(),
        })
    }
}

pub struct ReviewUser {
    id: ID,
    username: String,
}

#[Object(name = "User")]
impl ReviewUser {
    async fn id(&self) -> &ID {
        &self.id
    }

    #[graphql(external)]
    async fn username(&self) -> Option<&str> {
        Some(&self.username)
    }

    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        Some(first_two())
    }
}

pub struct ReviewProduct {
    upc: String,
}

#[Object(name = "Product")]
impl ReviewProduct {
    async fn upc(&self) -> &str {
        &self.upc
    }

    async fn reviews(&self) -> Option<Vec<Option<Review>>> {
        Some(
            (1..=REVIEWS.len())
                .filter(|&i| REVIEWS[i - 1].1.to_string() == self.upc)
                .map(|i| Some(Review(i)))
                .collect(),
        )
    }
}

pub struct ReviewsQuery;

#[Object(name = "Query")]
impl ReviewsQuery {
    /// Any user id: the reviews subgraph knows no usernames of its own.
    #[graphql(entity)]
    async fn find_user_by_id(&self, id: ID) -> ReviewUser {
        ReviewUser {
            id,
            username: "user".into(),
        }
    }

    #[graphql(entity)]
    async fn find_product_by_upc(&self, upc: String) -> ReviewProduct {
        ReviewProduct { upc }
    }

    #[graphql(entity)]
    async fn find_review_by_id(&self, id: ID) -> Option<Review> {
        index(&id, REVIEWS.len()).map(Review)
    }
}
