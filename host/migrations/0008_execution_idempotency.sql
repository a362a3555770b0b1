-- `create_execution`'s idempotency keys (ff-core: "the idempotency_key + a default dedup_ttl_ms
-- of a day make duplicate submissions idempotent"): one row per (namespace, key) naming the
-- execution first created with it, live until `expires_at_ms`. An expired row is replaced by
-- the next submission with the same key. `execution_id` is the 16-byte UUID, as in
-- `ff_exec_core`.

CREATE TABLE ff_execution_idempotency (
    namespace        TEXT    NOT NULL,
    idempotency_key  TEXT    NOT NULL,
    partition_key    INTEGER NOT NULL,
    execution_id     BLOB    NOT NULL,
    expires_at_ms    INTEGER NOT NULL,
    PRIMARY KEY (namespace, idempotency_key)
);
