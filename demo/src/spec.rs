//! The demo ML shop as pure data: a seed and a scale decide every record.
//!
//! Each record is a function of `(seed, kind, id)` alone, through a small counter-based hash
//! ([`Rng`]), so any slice of any table can be produced in any order without generating what
//! comes before it. That is what lets the loaders stream millions of rows in batches, in parallel
//! per database, and still agree on every id: order 17 names the same user in PostgreSQL,
//! ClickHouse and Neo4j.
//!
//! Sizes grow linearly with the scale: scale 1 (the default) is 200 users, 100 products and
//! 1,000 orders; scale 1,000 is a million orders with everything that goes with them.

use std::collections::HashMap;

use chrono::{DateTime, Duration, TimeZone, Utc};

/// What to generate: the same spec always yields the same records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DemoSpec {
    pub seed: u64,
    pub scale: u64,
}

impl Default for DemoSpec {
    fn default() -> Self {
        Self { seed: 42, scale: 1 }
    }
}

/// Record counts per kind for a spec. Derived ones (order items, follows) are counted by
/// generating the cheap part of each record, so they are exact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Counts {
    pub users: u64,
    pub products: u64,
    pub orders: u64,
    pub order_items: u64,
    pub reviews: u64,
    pub clicks: u64,
    pub follows: u64,
    /// Feature snapshots kept in ClickHouse for point-in-time training rows.
    pub feature_history: u64,
}

pub const CATEGORIES: &[&str] = &[
    "electronics",
    "books",
    "home",
    "garden",
    "toys",
    "sports",
    "fashion",
    "beauty",
    "grocery",
    "music",
];
const BRANDS: &[&str] = &[
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Wonka", "Tyrell",
    "Soylent",
];
const ADJECTIVES: &[&str] = &[
    "Compact",
    "Deluxe",
    "Ergonomic",
    "Rustic",
    "Sleek",
    "Smart",
    "Vintage",
    "Wireless",
    "Organic",
    "Portable",
    "Heavy-duty",
    "Minimal",
];
const NOUNS: &[&str] = &[
    "Lamp",
    "Backpack",
    "Keyboard",
    "Blender",
    "Novel",
    "Headphones",
    "Chair",
    "Kettle",
    "Drone",
    "Sneakers",
    "Notebook",
    "Speaker",
    "Planter",
    "Puzzle",
    "Guitar",
    "Jacket",
];
const FIRST_NAMES: &[&str] = &[
    "Ada",
    "Alan",
    "Grace",
    "Linus",
    "Margaret",
    "Dennis",
    "Barbara",
    "Ken",
    "Frances",
    "Edsger",
    "Radia",
    "Tim",
    "Hedy",
    "John",
    "Katherine",
    "Donald",
];
const LAST_NAMES: &[&str] = &[
    "Lovelace",
    "Turing",
    "Hopper",
    "Torvalds",
    "Hamilton",
    "Ritchie",
    "Liskov",
    "Thompson",
    "Allen",
    "Dijkstra",
    "Perlman",
    "Berners-Lee",
    "Lamarr",
    "Backus",
    "Johnson",
    "Knuth",
];
pub const COUNTRIES: &[&str] = &["DE", "FR", "GB", "US", "JP", "BR", "IN", "NO", "ES", "KE"];
pub const ORDER_STATUSES: &[&str] = &["pending", "paid", "shipped", "delivered", "returned"];
const REVIEW_OPENINGS: &[&str] = &[
    "Exactly what I needed",
    "Not worth the price",
    "Better than expected",
    "Arrived late but works",
    "Would buy again",
    "Stopped working after a month",
    "Great value",
    "Mixed feelings",
];
pub const CLICK_EVENT_TYPES: &[&str] = &["view", "click", "add_to_cart", "wishlist"];
/// Features whose history is kept in ClickHouse (and whose latest value is served from Redis).
pub const USER_HISTORY_FEATURES: &[&str] = &["click_rate_7d", "orders_30d"];
/// Number of monthly snapshots per user and history feature.
pub const HISTORY_MONTHS: u64 = 12;
/// Dimensions of the demo embeddings stored as online features.
pub const EMBEDDING_DIMENSIONS: usize = 8;

/// A counter-based generator: `Rng::new(seed, stream, id)` always yields the same sequence.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64, stream: u64, id: u64) -> Self {
        let mut rng = Rng(seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        rng.0 ^= id.wrapping_mul(0xD1B5_4A32_D192_ED03);
        rng.next_u64();
        rng
    }

    /// splitmix64: fast, well distributed, and a pure function of the state.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// A float in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

// Streams keep the kinds of record independent of one another.
const USER: u64 = 1;
const PRODUCT: u64 = 2;
const ORDER: u64 = 3;
const REVIEW: u64 = 4;
const CLICK: u64 = 5;
const FOLLOW: u64 = 6;
const USER_FEATURES: u64 = 7;
const PRODUCT_FEATURES: u64 = 8;
const HISTORY: u64 = 9;

#[derive(Clone, Debug, PartialEq)]
pub struct User {
    pub id: u64,
    pub name: String,
    pub email: String,
    pub country: &'static str,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Product {
    pub id: u64,
    pub name: String,
    pub category: &'static str,
    pub brand: &'static str,
    /// Price in cents; stored as `numeric(10,2)` in PostgreSQL and a double elsewhere.
    pub price_cents: u64,
    pub description: String,
    pub tags: Vec<&'static str>,
    pub in_stock: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct OrderItem {
    pub line: u32,
    pub product_id: u64,
    pub quantity: u32,
    pub unit_price_cents: u64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Order {
    pub id: u64,
    pub user_id: u64,
    pub status: &'static str,
    pub created_at: DateTime<Utc>,
    pub items: Vec<OrderItem>,
}

impl Order {
    pub fn total_cents(&self) -> u64 {
        self.items
            .iter()
            .map(|item| item.unit_price_cents * u64::from(item.quantity))
            .sum()
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Review {
    pub id: u64,
    /// A deterministic 12-byte MongoDB ObjectId for this review.
    pub object_id: [u8; 12],
    pub product_id: u64,
    pub user_id: u64,
    pub rating: u32,
    pub title: String,
    pub body: String,
    pub helpful_votes: u32,
    pub verified_purchase: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Click {
    pub id: u64,
    pub user_id: u64,
    pub product_id: u64,
    pub session_id: String,
    pub event_type: &'static str,
    pub event_time: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct UserFeatures {
    pub user_id: u64,
    pub click_rate_7d: f64,
    pub orders_30d: i64,
    pub avg_order_value: f64,
    pub segment: &'static str,
    pub is_premium: bool,
    pub embedding: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ProductFeatures {
    pub product_id: u64,
    pub ctr_7d: f64,
    pub views_24h: i64,
    pub conversion_rate: f64,
    pub popularity: f64,
    pub embedding: Vec<f64>,
}

/// One historical value of a user feature, as of `event_time`.
#[derive(Clone, Debug, PartialEq)]
pub struct FeatureSnapshot {
    pub user_id: u64,
    pub feature: &'static str,
    pub value: f64,
    pub event_time: DateTime<Utc>,
}

const SEGMENTS: &[&str] = &["new", "casual", "loyal", "at_risk", "vip"];

/// The start of the demo's year of activity; every timestamp falls in the 365 days after it.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0).unwrap()
}

fn moment(rng: &mut Rng) -> DateTime<Utc> {
    epoch() + Duration::seconds(rng.below(365 * 24 * 3600) as i64)
}

fn round2(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn round4(value: f64) -> f64 {
    (value * 10_000.0).round() / 10_000.0
}

impl DemoSpec {
    pub fn users(&self) -> u64 {
        200 * self.scale
    }
    pub fn products(&self) -> u64 {
        100 * self.scale
    }
    pub fn orders(&self) -> u64 {
        1_000 * self.scale
    }
    pub fn reviews(&self) -> u64 {
        400 * self.scale
    }
    pub fn clicks(&self) -> u64 {
        5_000 * self.scale
    }

    pub fn counts(&self) -> Counts {
        let order_items = (1..=self.orders())
            .map(|id| self.order_item_count(id))
            .sum();
        let follows = (1..=self.users())
            .map(|id| self.followees(id).len() as u64)
            .sum();
        Counts {
            users: self.users(),
            products: self.products(),
            orders: self.orders(),
            order_items,
            reviews: self.reviews(),
            clicks: self.clicks(),
            follows,
            feature_history: self.users() * USER_HISTORY_FEATURES.len() as u64 * HISTORY_MONTHS,
        }
    }

    fn rng(&self, stream: u64, id: u64) -> Rng {
        Rng::new(self.seed, stream, id)
    }

    pub fn user(&self, id: u64) -> User {
        let mut rng = self.rng(USER, id);
        let first = rng.pick(FIRST_NAMES);
        let last = rng.pick(LAST_NAMES);
        User {
            id,
            name: format!("{first} {last}"),
            email: format!(
                "{}.{}.{id}@example.com",
                first.to_lowercase(),
                last.to_lowercase()
            ),
            country: rng.pick(COUNTRIES),
            created_at: moment(&mut rng),
        }
    }

    pub fn product(&self, id: u64) -> Product {
        let mut rng = self.rng(PRODUCT, id);
        let adjective = rng.pick(ADJECTIVES);
        let noun = rng.pick(NOUNS);
        let category = rng.pick(CATEGORIES);
        let brand = rng.pick(BRANDS);
        let price_cents = rng.between(199, 49_999);
        let mut tags = vec![category];
        if rng.below(2) == 0 {
            tags.push("bestseller");
        }
        if rng.below(3) == 0 {
            tags.push("eco");
        }
        Product {
            id,
            name: format!("{adjective} {noun} {id}"),
            category,
            brand,
            price_cents,
            description: format!(
                "A {} {} from {brand}, for {category} lovers. Model {id}.",
                adjective.to_lowercase(),
                noun.to_lowercase()
            ),
            tags,
            in_stock: rng.below(10) != 0,
            created_at: moment(&mut rng),
        }
    }

    /// Number of lines of an order, without generating the rest of it.
    pub fn order_item_count(&self, id: u64) -> u64 {
        self.rng(ORDER, id).between(1, 3)
    }

    pub fn order(&self, id: u64) -> Order {
        let mut rng = self.rng(ORDER, id);
        let lines = rng.between(1, 3);
        let user_id = rng.between(1, self.users());
        let status = rng.pick(ORDER_STATUSES);
        let created_at = moment(&mut rng);
        let mut items: Vec<OrderItem> = Vec::with_capacity(lines as usize);
        for line in 1..=lines {
            // Distinct products per order, so co-purchase pairs are real pairs.
            let mut product_id = rng.between(1, self.products());
            while items.iter().any(|item| item.product_id == product_id) && self.products() > 3 {
                product_id = rng.between(1, self.products());
            }
            items.push(OrderItem {
                line: line as u32,
                product_id,
                quantity: rng.between(1, 4) as u32,
                unit_price_cents: self.product(product_id).price_cents,
            });
        }
        Order {
            id,
            user_id,
            status,
            created_at,
            items,
        }
    }

    pub fn review(&self, id: u64) -> Review {
        let mut rng = self.rng(REVIEW, id);
        let product_id = rng.between(1, self.products());
        let user_id = rng.between(1, self.users());
        let rating = rng.between(1, 5) as u32;
        let opening = rng.pick(REVIEW_OPENINGS);
        let mut object_id = [0u8; 12];
        object_id[..4].copy_from_slice(&0x6700_0000u32.to_be_bytes());
        object_id[4..].copy_from_slice(&((self.seed << 40) ^ id).to_be_bytes());
        Review {
            id,
            object_id,
            product_id,
            user_id,
            rating,
            title: format!("{opening} ({rating}/5)"),
            body: format!(
                "{opening}. I rate product {product_id} {rating} out of 5; review number {id}."
            ),
            helpful_votes: rng.below(50) as u32,
            verified_purchase: rng.below(4) != 0,
            created_at: moment(&mut rng),
        }
    }

    pub fn click(&self, id: u64) -> Click {
        let mut rng = self.rng(CLICK, id);
        let user_id = rng.between(1, self.users());
        Click {
            id,
            user_id,
            product_id: rng.between(1, self.products()),
            session_id: format!("s{user_id}-{}", rng.below(20)),
            event_type: rng.pick(CLICK_EVENT_TYPES),
            event_time: moment(&mut rng),
        }
    }

    /// The users a user follows: up to seven distinct others.
    pub fn followees(&self, user_id: u64) -> Vec<u64> {
        let mut rng = self.rng(FOLLOW, user_id);
        let wanted = rng.below(8).min(self.users().saturating_sub(1));
        let mut followees = Vec::with_capacity(wanted as usize);
        while (followees.len() as u64) < wanted {
            let other = rng.between(1, self.users());
            if other != user_id && !followees.contains(&other) {
                followees.push(other);
            }
        }
        followees.sort_unstable();
        followees
    }

    fn embedding(rng: &mut Rng) -> Vec<f64> {
        (0..EMBEDDING_DIMENSIONS)
            .map(|_| round4(rng.unit() * 2.0 - 1.0))
            .collect()
    }

    pub fn user_features(&self, user_id: u64) -> UserFeatures {
        let mut rng = self.rng(USER_FEATURES, user_id);
        UserFeatures {
            user_id,
            click_rate_7d: round4(rng.unit() * 0.3),
            orders_30d: rng.below(12) as i64,
            avg_order_value: round2(5.0 + rng.unit() * 300.0),
            segment: rng.pick(SEGMENTS),
            is_premium: rng.below(5) == 0,
            embedding: Self::embedding(&mut rng),
        }
    }

    pub fn product_features(&self, product_id: u64) -> ProductFeatures {
        let mut rng = self.rng(PRODUCT_FEATURES, product_id);
        ProductFeatures {
            product_id,
            ctr_7d: round4(rng.unit() * 0.2),
            views_24h: rng.below(5_000) as i64,
            conversion_rate: round4(rng.unit() * 0.1),
            popularity: round4(rng.unit()),
            embedding: Self::embedding(&mut rng),
        }
    }

    /// Monthly snapshots of a user's history features, oldest first, at the start of each month
    /// of the demo year. The latest snapshot of each feature equals its online (Redis) value.
    pub fn feature_history(&self, user_id: u64) -> Vec<FeatureSnapshot> {
        let online = self.user_features(user_id);
        let mut rng = self.rng(HISTORY, user_id);
        let mut snapshots =
            Vec::with_capacity(USER_HISTORY_FEATURES.len() * HISTORY_MONTHS as usize);
        for month in 0..HISTORY_MONTHS {
            let event_time = Utc
                .with_ymd_and_hms(2025, month as u32 + 1, 1, 0, 0, 0)
                .unwrap();
            let last = month + 1 == HISTORY_MONTHS;
            let click_rate = if last {
                online.click_rate_7d
            } else {
                round4(rng.unit() * 0.3)
            };
            let orders = if last {
                online.orders_30d as f64
            } else {
                rng.below(12) as f64
            };
            snapshots.push(FeatureSnapshot {
                user_id,
                feature: USER_HISTORY_FEATURES[0],
                value: click_rate,
                event_time,
            });
            snapshots.push(FeatureSnapshot {
                user_id,
                feature: USER_HISTORY_FEATURES[1],
                value: orders,
                event_time,
            });
        }
        snapshots
    }

    /// Products bought together in the same order, with how many orders did so, for every
    /// unordered pair `(a, b)` with `a < b`. Sorted for deterministic loading.
    pub fn co_purchases(&self) -> Vec<(u64, u64, u64)> {
        let mut pairs: HashMap<(u64, u64), u64> = HashMap::new();
        for id in 1..=self.orders() {
            let order = self.order(id);
            for (i, a) in order.items.iter().enumerate() {
                for b in &order.items[i + 1..] {
                    let key = (
                        a.product_id.min(b.product_id),
                        a.product_id.max(b.product_id),
                    );
                    *pairs.entry(key).or_default() += 1;
                }
            }
        }
        let mut pairs: Vec<_> = pairs.into_iter().map(|((a, b), n)| (a, b, n)).collect();
        pairs.sort_unstable();
        pairs
    }

    /// Distinct `(user, product, times)` purchase edges, sorted.
    pub fn purchases(&self) -> Vec<(u64, u64, u64)> {
        let mut edges: HashMap<(u64, u64), u64> = HashMap::new();
        for id in 1..=self.orders() {
            let order = self.order(id);
            for item in &order.items {
                *edges.entry((order.user_id, item.product_id)).or_default() += 1;
            }
        }
        let mut edges: Vec<_> = edges.into_iter().map(|((u, p), n)| (u, p, n)).collect();
        edges.sort_unstable();
        edges
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_spec_same_records() {
        let spec = DemoSpec::default();
        assert_eq!(spec.user(7), spec.user(7));
        assert_eq!(spec.order(99), spec.order(99));
        assert_ne!(spec.user(7), spec.user(8));
        let other = DemoSpec { seed: 43, scale: 1 };
        assert_ne!(spec.user(7), other.user(7));
    }

    #[test]
    fn ids_stay_in_range_and_orders_are_consistent() {
        let spec = DemoSpec { seed: 1, scale: 2 };
        for id in 1..=spec.orders() {
            let order = spec.order(id);
            assert!((1..=spec.users()).contains(&order.user_id));
            assert_eq!(order.items.len() as u64, spec.order_item_count(id));
            for item in &order.items {
                assert!((1..=spec.products()).contains(&item.product_id));
                assert_eq!(
                    item.unit_price_cents,
                    spec.product(item.product_id).price_cents
                );
            }
            let mut products: Vec<_> = order.items.iter().map(|i| i.product_id).collect();
            products.dedup();
            assert_eq!(
                products.len(),
                order.items.len(),
                "order {id} repeats a product"
            );
        }
    }

    #[test]
    fn counts_add_up() {
        let spec = DemoSpec::default();
        let counts = spec.counts();
        let items: u64 = (1..=spec.orders())
            .map(|id| spec.order(id).items.len() as u64)
            .sum();
        assert_eq!(counts.order_items, items);
        assert!(counts.order_items >= counts.orders && counts.order_items <= 3 * counts.orders);
        for user in 1..=spec.users() {
            let followees = spec.followees(user);
            assert!(!followees.contains(&user));
        }
        assert_eq!(counts.users, 200);
        assert_eq!(counts.orders, 1_000);
    }

    #[test]
    fn latest_history_snapshot_matches_online_features() {
        let spec = DemoSpec::default();
        let online = spec.user_features(5);
        let history = spec.feature_history(5);
        let latest_click_rate = history
            .iter()
            .filter(|s| s.feature == "click_rate_7d")
            .max_by_key(|s| s.event_time)
            .unwrap();
        assert!((latest_click_rate.value - online.click_rate_7d).abs() < f64::EPSILON);
    }

    #[test]
    fn object_ids_are_unique_per_review() {
        let spec = DemoSpec::default();
        let mut ids: Vec<_> = (1..=spec.reviews())
            .map(|id| spec.review(id).object_id)
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len() as u64, spec.reviews());
    }
}
