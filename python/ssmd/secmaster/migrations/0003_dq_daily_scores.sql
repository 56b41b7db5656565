-- ssmd dq: one score per check, venue and day (docs/dq.md). `check` names what was
-- checked (`trades:<instrument>`, `secmaster`); a re-run of the same check, venue and
-- day replaces its row. `details` holds the report (checks, figures) as JSON.
CREATE TABLE dq_daily_scores (
    check_date  date NOT NULL,
    venue       text NOT NULL,
    "check"     text NOT NULL,
    score       double precision NOT NULL CHECK (score >= 0 AND score <= 100),
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (check_date, venue, "check")
);
