-- Suspension, waitpoints and signals. Table shapes follow upstream ff-backend-sqlite 0.15 so
-- that rows carry across SQL backends; additions are marked.

-- The waitpoint HMAC keystore. Host-owned: the SQL policy refuses every guest statement that
-- touches it (docs/security.md); the host signs and verifies tokens for the guest.
-- Addition: `expires_at_ms`, set on a kid when a rotation retires it (its grace period); a
-- retired kid verifies tokens only until then (NULL: no limit, as upstream rows have).
CREATE TABLE ff_waitpoint_hmac (
    kid           TEXT    NOT NULL PRIMARY KEY,
    secret        BLOB    NOT NULL,
    rotated_at_ms INTEGER NOT NULL,
    active        INTEGER NOT NULL DEFAULT 1,
    expires_at_ms INTEGER
);

-- One row per waitpoint (pending until a suspension binds it, then active).
CREATE TABLE ff_waitpoint_pending (
    partition_key         INTEGER NOT NULL,
    waitpoint_id          BLOB    NOT NULL,
    execution_id          BLOB    NOT NULL,
    token_kid             TEXT    NOT NULL,
    token                 TEXT    NOT NULL,
    created_at_ms         INTEGER NOT NULL,
    expires_at_ms         INTEGER,
    condition             TEXT,
    waitpoint_key         TEXT    NOT NULL DEFAULT '',
    state                 TEXT    NOT NULL DEFAULT 'pending',
    required_signal_names TEXT    NOT NULL DEFAULT '[]',
    activated_at_ms       INTEGER,
    PRIMARY KEY (partition_key, waitpoint_id)
);
CREATE INDEX ff_waitpoint_pending_expires_idx ON ff_waitpoint_pending (partition_key, expires_at_ms)
    WHERE expires_at_ms IS NOT NULL;
CREATE INDEX ff_waitpoint_pending_exec_idx ON ff_waitpoint_pending (partition_key, execution_id);

-- The suspend replay cache. Difference from upstream: keyed by execution too (upstream keys by
-- partition and key only, so two executions sharing a key shared an outcome), and entries
-- expire (`expires_at_ms`).
CREATE TABLE ff_suspend_dedup (
    partition_key   INTEGER NOT NULL,
    execution_id    BLOB    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    outcome_json    TEXT    NOT NULL,
    created_at_ms   INTEGER NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (partition_key, execution_id, idempotency_key)
);

-- The signal-delivery outbox.
CREATE TABLE ff_signal_event (
    event_id        INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id    TEXT    NOT NULL,
    signal_id       TEXT    NOT NULL,
    waitpoint_id    TEXT,
    source_identity TEXT,
    delivered_at_ms INTEGER NOT NULL,
    partition_key   INTEGER NOT NULL,
    namespace       TEXT,
    instance_tag    TEXT
);
CREATE INDEX ff_signal_event_partition_key_idx ON ff_signal_event (partition_key, event_id);
CREATE INDEX ff_signal_event_namespace_idx ON ff_signal_event (partition_key, namespace)
    WHERE namespace IS NOT NULL;
CREATE INDEX ff_signal_event_instance_tag_idx ON ff_signal_event (partition_key, instance_tag)
    WHERE instance_tag IS NOT NULL;

-- Addition: signal idempotency (upstream SQL backends ignore `idempotency_key`): one row per
-- (execution, key) until `expires_at_ms`.
CREATE TABLE ff_signal_dedup (
    partition_key   INTEGER NOT NULL,
    execution_id    BLOB    NOT NULL,
    idempotency_key TEXT    NOT NULL,
    signal_id       TEXT    NOT NULL,
    expires_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (partition_key, execution_id, idempotency_key)
);

-- An execution that ends (completed, failed, cancelled, expired) closes its suspension: the
-- suspension row (kept after a resume so that the resumed worker can observe its signals) and
-- any waitpoint left open. A trigger, so that every terminal path does it at no extra call.
CREATE TRIGGER ff_exec_core_terminal_closes_suspension
    AFTER UPDATE OF lifecycle_phase ON ff_exec_core
    WHEN NEW.lifecycle_phase = 'terminal' AND OLD.lifecycle_phase <> 'terminal'
BEGIN
    DELETE FROM ff_suspension_current
        WHERE partition_key = NEW.partition_key AND execution_id = NEW.execution_id;
    DELETE FROM ff_waitpoint_pending
        WHERE partition_key = NEW.partition_key AND execution_id = NEW.execution_id;
END;
