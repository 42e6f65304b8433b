-- The shop's relational core: who bought what. Comments become GraphQL descriptions.
CREATE TABLE users (
    id          bigint PRIMARY KEY,
    name        text        NOT NULL,
    email       text        NOT NULL UNIQUE,
    country     char(2)     NOT NULL,
    created_at  timestamptz NOT NULL
);
COMMENT ON TABLE users IS 'A customer of the shop.';
COMMENT ON COLUMN users.country IS 'ISO 3166-1 alpha-2 country code.';

CREATE TABLE products (
    id          bigint PRIMARY KEY,
    name        text          NOT NULL,
    category    text          NOT NULL,
    brand       text          NOT NULL,
    price       numeric(10,2) NOT NULL CHECK (price >= 0),
    description text,
    in_stock    boolean       NOT NULL DEFAULT true,
    created_at  timestamptz   NOT NULL
);
COMMENT ON TABLE products IS 'Something the shop sells.';
CREATE INDEX products_category_idx ON products (category);

CREATE TABLE orders (
    id          bigint PRIMARY KEY,
    user_id     bigint        NOT NULL REFERENCES users (id),
    status      text          NOT NULL,
    total       numeric(12,2) NOT NULL,
    created_at  timestamptz   NOT NULL
);
COMMENT ON TABLE orders IS 'A purchase by one user, of one or more products.';
CREATE INDEX orders_user_id_idx ON orders (user_id);
CREATE INDEX orders_created_at_idx ON orders (created_at);

CREATE TABLE order_items (
    order_id    bigint        NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
    line        integer       NOT NULL,
    product_id  bigint        NOT NULL REFERENCES products (id),
    quantity    integer       NOT NULL CHECK (quantity > 0),
    unit_price  numeric(10,2) NOT NULL,
    PRIMARY KEY (order_id, line)
);
COMMENT ON TABLE order_items IS 'One line of an order.';
CREATE INDEX order_items_product_id_idx ON order_items (product_id);

-- Bookkeeping of the demo loader, kept out of the public schema the subgraph exposes.
CREATE SCHEMA polygraph_demo;
CREATE TABLE polygraph_demo.loaded (
    singleton   boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seed        bigint      NOT NULL,
    scale       bigint      NOT NULL,
    version     integer     NOT NULL,
    loaded_at   timestamptz NOT NULL DEFAULT now()
);
