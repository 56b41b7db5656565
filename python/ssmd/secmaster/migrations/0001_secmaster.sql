-- ssmd secmaster: venue metadata synced from the venues' REST APIs (DESIGN §6).
--
-- Keys use the venues' own names. Every row keeps `raw` (the venue's record,
-- without the quote/volume fields that change on every trade, see
-- docs/secmaster.md) and `updated_at` (set only when the row's content
-- changed). A venue that stops listing an instrument gets `status =
-- 'delisted'` and `delisted_at`; nothing is deleted.

-- Kalshi ---------------------------------------------------------------------

CREATE TABLE series (
    ticker          text PRIMARY KEY,
    title           text,
    category        text,
    tags            text[],
    frequency       text,
    fee_type        text,
    fee_multiplier  numeric,
    status          text NOT NULL DEFAULT 'active',
    raw             jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delisted_at     timestamptz
);
CREATE INDEX series_category_idx ON series (category);

CREATE TABLE series_fees (
    source_id       text PRIMARY KEY,          -- the fee change's `id`
    series_ticker   text NOT NULL,
    fee_type        text NOT NULL,
    fee_multiplier  numeric,
    effective_from  timestamptz NOT NULL,      -- `scheduled_ts`
    effective_to    timestamptz,               -- the next change of the same series
    status          text NOT NULL DEFAULT 'active',
    raw             jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    delisted_at     timestamptz
);
CREATE INDEX series_fees_series_idx ON series_fees (series_ticker, effective_from);

CREATE TABLE events (
    event_ticker            text PRIMARY KEY,
    series_ticker           text NOT NULL,
    title                   text,
    sub_title               text,
    mutually_exclusive      boolean,
    collateral_return_type  text,
    strike_date             timestamptz,
    strike_period           text,
    status                  text NOT NULL DEFAULT 'active',
    raw                     jsonb NOT NULL,
    updated_at              timestamptz NOT NULL DEFAULT now(),
    delisted_at             timestamptz
);
CREATE INDEX events_series_idx ON events (series_ticker);

CREATE TABLE markets (
    ticker                   text PRIMARY KEY,
    event_ticker             text NOT NULL,
    market_type              text,
    title                    text,
    yes_sub_title            text,
    no_sub_title             text,
    status                   text NOT NULL,
    open_time                timestamptz,
    close_time               timestamptz,
    expected_expiration_time timestamptz,
    latest_expiration_time   timestamptz,
    strike_type              text,
    floor_strike             numeric,
    cap_strike               numeric,
    tick_size                numeric,       -- smallest `price_ranges` step, in dollars
    price_level_structure    text,
    can_close_early          boolean,
    fractional_trading_enabled boolean,
    notional_value_dollars   numeric,
    result                   text,
    settlement_value_dollars numeric,
    settlement_ts            timestamptz,
    raw                      jsonb NOT NULL,
    updated_at               timestamptz NOT NULL DEFAULT now(),
    delisted_at              timestamptz
);
CREATE INDEX markets_event_idx ON markets (event_ticker);
CREATE INDEX markets_status_idx ON markets (status);
CREATE INDEX markets_close_idx ON markets (close_time);

-- Kalshi lifecycle (market_lifecycle_v2 from the bus, DESIGN §7). Inserts are
-- idempotent on `dedupe_key` (e.g. the bus message id or ticker:type:ts).
CREATE TABLE market_lifecycle_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedupe_key      text NOT NULL UNIQUE,
    market_ticker   text NOT NULL,
    event_type      text NOT NULL,
    event_ts        timestamptz,
    received_at     timestamptz NOT NULL DEFAULT now(),
    raw             jsonb NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX market_lifecycle_events_market_idx ON market_lifecycle_events (market_ticker, event_ts);

-- Kraken: spot (AssetPairs) and perpetuals (Futures instruments) -------------

CREATE TABLE pairs (
    pair             text PRIMARY KEY,          -- AssetPairs key (XXBTZUSD) or futures symbol (PF_XBTUSD)
    market_type      text NOT NULL CHECK (market_type IN ('spot', 'perpetual')),
    symbol           text NOT NULL,             -- WebSocket name: v2 `BTC/USD`, futures `PF_XBTUSD`
    altname          text,
    wsname           text,
    base             text,
    quote            text,
    status           text NOT NULL,
    tick_size        numeric,
    price_precision  integer,
    qty_precision    integer,
    ordermin         numeric,
    costmin          numeric,
    contract_size    numeric,
    opening_date     timestamptz,
    raw              jsonb NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delisted_at      timestamptz
);
CREATE INDEX pairs_symbol_idx ON pairs (symbol);

-- Polymarket: Gamma markets (conditions) and their CLOB tokens ---------------

CREATE TABLE polymarket_conditions (
    condition_id       text PRIMARY KEY,        -- Gamma `conditionId` = WS `market`
    gamma_market_id    text,
    question_id        text,
    question           text,
    slug               text,
    category           text,
    event_id           text,
    event_slug         text,
    outcomes           text[],
    neg_risk           boolean,
    active             boolean,
    closed             boolean,
    archived           boolean,
    accepting_orders   boolean,
    enable_order_book  boolean,
    start_date         timestamptz,
    end_date           timestamptz,
    tick_size          numeric,
    min_order_size     numeric,
    status             text NOT NULL,
    raw                jsonb NOT NULL,
    updated_at         timestamptz NOT NULL DEFAULT now(),
    delisted_at        timestamptz
);
CREATE INDEX polymarket_conditions_slug_idx ON polymarket_conditions (slug);
CREATE INDEX polymarket_conditions_status_idx ON polymarket_conditions (status);

CREATE TABLE polymarket_tokens (
    token_id       text PRIMARY KEY,            -- `clobTokenIds[i]` = WS `asset_id`
    condition_id   text NOT NULL,
    outcome        text,
    outcome_index  integer,
    status         text NOT NULL DEFAULT 'active',
    raw            jsonb NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    delisted_at    timestamptz
);
CREATE INDEX polymarket_tokens_condition_idx ON polymarket_tokens (condition_id);

-- One read-only view over every venue ----------------------------------------

CREATE VIEW instruments AS
SELECT 'kalshi'::text                AS venue,
       m.ticker                      AS instrument_id,
       m.ticker                      AS symbol,
       COALESCE(NULLIF(m.title, ''), e.title || ': ' || m.yes_sub_title, m.yes_sub_title) AS title,
       m.status                      AS status,
       COALESCE(m.market_type, 'binary') AS kind,
       s.category                    AS category,
       m.tick_size                   AS tick_size,
       m.open_time                   AS opens_at,
       m.close_time                  AS closes_at,
       m.updated_at                  AS updated_at
  FROM markets m
  LEFT JOIN events e ON e.event_ticker = m.event_ticker
  LEFT JOIN series s ON s.ticker = e.series_ticker
UNION ALL
SELECT CASE p.market_type WHEN 'spot' THEN 'kraken' ELSE 'kraken-futures' END,
       p.pair,
       p.symbol,
       COALESCE(p.base || '/' || p.quote, p.symbol),
       p.status,
       p.market_type,
       NULL::text,
       p.tick_size,
       p.opening_date,
       NULL::timestamptz,
       p.updated_at
  FROM pairs p
UNION ALL
SELECT 'polymarket',
       c.condition_id,
       c.slug,
       c.question,
       c.status,
       CASE WHEN cardinality(c.outcomes) = 2 THEN 'binary' ELSE 'multi' END,
       c.category,
       c.tick_size,
       c.start_date,
       c.end_date,
       c.updated_at
  FROM polymarket_conditions c;

COMMENT ON VIEW instruments IS
    'ssmd: every venue''s instruments (read-only): venue, instrument_id, symbol, title, status, kind, category, tick_size, opens_at, closes_at, updated_at';
