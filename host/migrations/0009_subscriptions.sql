-- The last two subscriptions' outboxes: what each delivered signal did, and execution tag
-- changes.

-- The effect `deliver_signal` answered for the signal (`resume_condition_satisfied`,
-- `appended_to_waitpoint`), so `subscribe_signal_delivery` reports it (upstream stores none and
-- reports every delivery as satisfied). NULL on rows written before this column existed.
ALTER TABLE ff_signal_event ADD COLUMN effect TEXT;

-- The instance-tag outbox (no upstream table: upstream's backends write no tag events). One row
-- per change `set_execution_tag` makes: `attached` for the new `key=value`, preceded by
-- `cleared` for the old pair when it replaces another value. `execution_id` is the bare UUID
-- text, as in the other outboxes. `subscribe_instance_tags` takes no filter, so the rows carry no
-- namespace or instance-tag labels.
CREATE TABLE ff_instance_tag_event (
    event_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id   TEXT    NOT NULL,
    event_type     TEXT    NOT NULL CHECK (event_type IN ('attached', 'cleared')),
    tag            TEXT    NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    partition_key  INTEGER NOT NULL
);
