-- Budgets, quota policies and admission: upstream SQLite's tables (its migrations 0002, 0012,
-- 0013 and 0020) in their final shapes, so that a database holds the same rows upstream's would.
-- Every row has partition_key = 0. Policy limits live in `policy_json` (`hard_limits`,
-- `soft_limits`, `reset_interval_ms`, `on_hard_limit`, `on_soft_limit`); usage counters are one
-- row per (budget, dimension); dedup rows remember the outcome of a keyed report; the ledger
-- (`ff_budget_usage_by_exec`) attributes spend to an execution by its bare UUID.

CREATE TABLE ff_budget_policy (
    partition_key      INTEGER NOT NULL,
    budget_id          TEXT    NOT NULL,
    policy_json        TEXT    NOT NULL,
    created_at_ms      INTEGER NOT NULL,
    updated_at_ms      INTEGER NOT NULL,
    scope_type         TEXT    NOT NULL DEFAULT '',
    scope_id           TEXT    NOT NULL DEFAULT '',
    enforcement_mode   TEXT    NOT NULL DEFAULT '',
    breach_count       INTEGER NOT NULL DEFAULT 0,
    soft_breach_count  INTEGER NOT NULL DEFAULT 0,
    last_breach_at_ms  INTEGER,
    last_breach_dim    TEXT,
    next_reset_at_ms   INTEGER,
    PRIMARY KEY (partition_key, budget_id)
);

-- The reset pass finds due budgets through this index.
CREATE INDEX ff_budget_policy_reset_due_idx
    ON ff_budget_policy (partition_key, next_reset_at_ms)
    WHERE next_reset_at_ms IS NOT NULL;

CREATE TABLE ff_budget_usage (
    partition_key     INTEGER NOT NULL,
    budget_id         TEXT    NOT NULL,
    dimensions_key    TEXT    NOT NULL,
    current_value     INTEGER NOT NULL DEFAULT 0,
    last_reset_at_ms  INTEGER,
    updated_at_ms     INTEGER NOT NULL,
    PRIMARY KEY (partition_key, budget_id, dimensions_key)
);

CREATE TABLE ff_budget_usage_dedup (
    partition_key  INTEGER NOT NULL,
    dedup_key      TEXT    NOT NULL,
    outcome_json   TEXT    NOT NULL,
    applied_at_ms  INTEGER NOT NULL,
    expires_at_ms  INTEGER NOT NULL,
    PRIMARY KEY (partition_key, dedup_key)
);

CREATE INDEX ff_budget_usage_dedup_expires_idx
    ON ff_budget_usage_dedup (partition_key, expires_at_ms);

CREATE TABLE ff_budget_usage_by_exec (
    partition_key   INTEGER NOT NULL,
    budget_id       TEXT    NOT NULL,
    execution_id    TEXT    NOT NULL,
    dimensions_key  TEXT    NOT NULL,
    delta_total     INTEGER NOT NULL DEFAULT 0,
    updated_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (partition_key, budget_id, execution_id, dimensions_key)
);

CREATE INDEX ff_budget_usage_by_exec_release_idx
    ON ff_budget_usage_by_exec (partition_key, budget_id, execution_id);

CREATE TABLE ff_quota_policy (
    partition_key                INTEGER NOT NULL,
    quota_policy_id              TEXT    NOT NULL,
    requests_per_window_seconds  INTEGER NOT NULL,
    max_requests_per_window      INTEGER NOT NULL,
    active_concurrency_cap       INTEGER NOT NULL,
    active_concurrency           INTEGER NOT NULL DEFAULT 0,
    created_at_ms                INTEGER NOT NULL,
    updated_at_ms                INTEGER NOT NULL,
    PRIMARY KEY (partition_key, quota_policy_id)
);

CREATE TABLE ff_quota_window (
    partition_key    INTEGER NOT NULL,
    quota_policy_id  TEXT    NOT NULL,
    dimension        TEXT    NOT NULL DEFAULT '',
    admitted_at_ms   INTEGER NOT NULL,
    execution_id     TEXT    NOT NULL,
    PRIMARY KEY (partition_key, quota_policy_id, dimension, admitted_at_ms, execution_id)
);

CREATE TABLE ff_quota_admitted (
    partition_key    INTEGER NOT NULL,
    quota_policy_id  TEXT    NOT NULL,
    execution_id     TEXT    NOT NULL,
    admitted_at_ms   INTEGER NOT NULL,
    expires_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (partition_key, quota_policy_id, execution_id)
);

CREATE INDEX ff_quota_admitted_expires_idx
    ON ff_quota_admitted (partition_key, expires_at_ms);
