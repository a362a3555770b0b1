-- Attempt output streams (upstream's 0001 shapes): frames, the summary document, and the
-- best-effort retention state. A stream is (partition_key, execution_id, attempt_index); frames
-- are ordered by (ts_ms, seq), the primary key, so a page starts at its cursor by index.
CREATE TABLE ff_stream_frame (
    partition_key INTEGER NOT NULL,
    execution_id  BLOB    NOT NULL,
    attempt_index INTEGER NOT NULL,
    ts_ms         INTEGER NOT NULL,
    seq           INTEGER NOT NULL,
    fields        TEXT    NOT NULL,
    mode          TEXT    NOT NULL,
    created_at_ms INTEGER NOT NULL,
    PRIMARY KEY (partition_key, execution_id, attempt_index, ts_ms, seq)
);

CREATE TABLE ff_stream_summary (
    partition_key    INTEGER NOT NULL,
    execution_id     BLOB    NOT NULL,
    attempt_index    INTEGER NOT NULL,
    document_json    TEXT    NOT NULL,
    version          INTEGER NOT NULL DEFAULT 0,
    patch_kind       TEXT,
    last_updated_ms  INTEGER NOT NULL,
    first_applied_ms INTEGER NOT NULL,
    PRIMARY KEY (partition_key, execution_id, attempt_index)
);

CREATE TABLE ff_stream_meta (
    partition_key       INTEGER NOT NULL,
    execution_id        BLOB    NOT NULL,
    attempt_index       INTEGER NOT NULL,
    ema_rate_hz         REAL    NOT NULL DEFAULT 0,
    last_append_ts_ms   INTEGER NOT NULL DEFAULT 0,
    maxlen_applied_last INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (partition_key, execution_id, attempt_index)
);
