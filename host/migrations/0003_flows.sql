-- Flows and dependencies: upstream ff-backend-sqlite's table shapes (ff_flow_core, ff_edge,
-- ff_edge_group, ff_pending_cancel_groups, ff_cancel_backlog, ff_cancel_backlog_member), so raw-SQL
-- seeding written against upstream's schema works unchanged, plus the indexes that keep every
-- flow operation's cost independent of the flow's size.

-- One row per flow. `raw_fields` holds flow_kind, namespace, node_count, edge_count,
-- last_mutation_at_ms, cancellation_policy, cancel_reason and the flow's namespaced tags.
CREATE TABLE ff_flow_core (
    partition_key     INTEGER NOT NULL,
    flow_id           BLOB    NOT NULL,
    graph_revision    INTEGER NOT NULL DEFAULT 0,
    public_flow_state TEXT    NOT NULL,
    created_at_ms     INTEGER NOT NULL,
    terminal_at_ms    INTEGER,
    raw_fields        TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (partition_key, flow_id)
);

-- One row per staged dependency edge. `policy` is the edge record (JSON): dependency_kind,
-- data_passing_ref, edge_state (pending, applied, satisfied, impossible), staged/applied times.
CREATE TABLE ff_edge (
    partition_key  INTEGER NOT NULL,
    flow_id        BLOB    NOT NULL,
    edge_id        BLOB    NOT NULL,
    upstream_eid   BLOB    NOT NULL,
    downstream_eid BLOB    NOT NULL,
    policy         TEXT    NOT NULL,
    policy_version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (partition_key, flow_id, edge_id)
);
CREATE INDEX ff_edge_downstream_idx ON ff_edge (partition_key, flow_id, downstream_eid);
CREATE INDEX ff_edge_upstream_idx ON ff_edge (partition_key, flow_id, upstream_eid);

-- One row per downstream execution with applied edges (or an explicit group policy): the
-- policy and the resolution counters.
CREATE TABLE ff_edge_group (
    partition_key                   INTEGER NOT NULL,
    flow_id                         BLOB    NOT NULL,
    downstream_eid                  BLOB    NOT NULL,
    policy                          TEXT    NOT NULL,
    k_target                        INTEGER NOT NULL DEFAULT 0,
    success_count                   INTEGER NOT NULL DEFAULT 0,
    fail_count                      INTEGER NOT NULL DEFAULT 0,
    skip_count                      INTEGER NOT NULL DEFAULT 0,
    running_count                   INTEGER NOT NULL DEFAULT 0,
    cancel_siblings_pending_flag    INTEGER NOT NULL DEFAULT 0,
    cancel_siblings_pending_members TEXT    NOT NULL DEFAULT '[]',
    PRIMARY KEY (partition_key, flow_id, downstream_eid)
);

-- Edge groups whose sibling upstreams are owed a cancel.
CREATE TABLE ff_pending_cancel_groups (
    partition_key  INTEGER NOT NULL,
    flow_id        BLOB    NOT NULL,
    downstream_eid BLOB    NOT NULL,
    enqueued_at_ms INTEGER NOT NULL,
    PRIMARY KEY (partition_key, flow_id, downstream_eid)
);
CREATE INDEX ff_pending_cancel_groups_enqueued_idx ON ff_pending_cancel_groups (partition_key, enqueued_at_ms);

-- Flow cancellations requested through cancel_flow_header, and the members still owed an ack.
CREATE TABLE ff_cancel_backlog (
    partition_key       INTEGER NOT NULL,
    flow_id             BLOB    NOT NULL,
    requested_at_ms     INTEGER NOT NULL,
    requester           TEXT    NOT NULL DEFAULT '',
    reason              TEXT    NOT NULL DEFAULT '',
    grace_until_ms      INTEGER,
    cancellation_policy TEXT    NOT NULL,
    status              TEXT    NOT NULL DEFAULT 'pending',
    PRIMARY KEY (partition_key, flow_id)
);
CREATE INDEX ff_cancel_backlog_grace_idx ON ff_cancel_backlog (partition_key, grace_until_ms)
    WHERE grace_until_ms IS NOT NULL;

CREATE TABLE ff_cancel_backlog_member (
    partition_key INTEGER NOT NULL,
    flow_id       BLOB    NOT NULL,
    execution_id  TEXT    NOT NULL,
    PRIMARY KEY (partition_key, flow_id, execution_id)
);

-- Operator events (upstream's 0010 shape); flows write `flow_cancel_requested`.
CREATE TABLE IF NOT EXISTS ff_operator_event (
    event_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id   TEXT    NOT NULL,
    event_type     TEXT    NOT NULL
        CHECK (event_type IN ('priority_changed', 'replayed', 'flow_cancel_requested')),
    details        TEXT,
    occurred_at_ms INTEGER NOT NULL,
    partition_key  INTEGER NOT NULL,
    namespace      TEXT,
    instance_tag   TEXT
);
CREATE INDEX IF NOT EXISTS ff_operator_event_partition_key_idx ON ff_operator_event (partition_key, event_id);
