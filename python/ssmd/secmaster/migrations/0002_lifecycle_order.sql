-- ssmd lifecycle consumer: where each event came from, and whether it moved the market.
-- `stream_seq` is the JetStream stream sequence of the bus message (with the line's index
-- in it: seq * 1000 + index), so a later event is recognised as later whatever its own times.
ALTER TABLE market_lifecycle_events ADD COLUMN stream_seq bigint;
ALTER TABLE market_lifecycle_events ADD COLUMN applied boolean NOT NULL DEFAULT false;
CREATE INDEX market_lifecycle_events_applied_idx
    ON market_lifecycle_events (market_ticker, stream_seq) WHERE applied;
