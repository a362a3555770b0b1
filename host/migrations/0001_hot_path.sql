-- The execution hot path: upstream ff-backend-sqlite's tables, column names, types and
-- defaults for everything the implemented operations read or write. Raw-SQL seeding written
-- against upstream's schema works unchanged against this one.

-- One row per execution: the authoritative state.
CREATE TABLE ff_exec_core (
    partition_key       INTEGER NOT NULL,
    execution_id        BLOB    NOT NULL,
    flow_id             BLOB,
    lane_id             TEXT    NOT NULL,
    attempt_index       INTEGER NOT NULL DEFAULT 0,
    lifecycle_phase     TEXT    NOT NULL,
    ownership_state     TEXT    NOT NULL,
    eligibility_state   TEXT    NOT NULL,
    public_state        TEXT    NOT NULL,
    attempt_state       TEXT    NOT NULL,
    blocking_reason     TEXT,
    cancellation_reason TEXT,
    cancelled_by        TEXT,
    priority            INTEGER NOT NULL DEFAULT 0,
    created_at_ms       INTEGER NOT NULL,
    terminal_at_ms      INTEGER,
    deadline_at_ms      INTEGER,
    payload             BLOB,
    result              BLOB,
    policy              TEXT,
    raw_fields          TEXT    NOT NULL DEFAULT '{}',
    started_at_ms       INTEGER,
    lease_reclaim_count INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (partition_key, execution_id)
);
CREATE INDEX ff_exec_core_lane_phase_idx ON ff_exec_core (partition_key, lane_id, lifecycle_phase);
CREATE INDEX ff_exec_core_flow_idx ON ff_exec_core (partition_key, flow_id) WHERE flow_id IS NOT NULL;
CREATE INDEX ff_exec_core_deadline_idx ON ff_exec_core (partition_key, deadline_at_ms)
    WHERE deadline_at_ms IS NOT NULL;

-- One row per (execution, attempt index). `lease_epoch` is the fencing token.
CREATE TABLE ff_attempt (
    partition_key       INTEGER NOT NULL,
    execution_id        BLOB    NOT NULL,
    attempt_index       INTEGER NOT NULL,
    worker_id           TEXT,
    worker_instance_id  TEXT,
    lease_epoch         INTEGER NOT NULL DEFAULT 0,
    lease_expires_at_ms INTEGER,
    started_at_ms       INTEGER,
    terminal_at_ms      INTEGER,
    outcome             TEXT,
    usage               TEXT,
    policy              TEXT,
    raw_fields          TEXT    NOT NULL DEFAULT '{}',
    PRIMARY KEY (partition_key, execution_id, attempt_index)
);
CREATE INDEX ff_attempt_lease_expiry_idx ON ff_attempt (partition_key, lease_expires_at_ms)
    WHERE lease_expires_at_ms IS NOT NULL;
CREATE INDEX ff_attempt_worker_idx ON ff_attempt (partition_key, worker_id) WHERE worker_id IS NOT NULL;

-- Claim and reclaim grants: a scheduler's permission for one worker to claim one execution.
CREATE TABLE ff_claim_grant (
    partition_key       INTEGER NOT NULL,
    grant_id            BLOB    NOT NULL,
    execution_id        BLOB    NOT NULL,
    kind                TEXT    NOT NULL CHECK (kind IN ('claim', 'reclaim')),
    worker_id           TEXT    NOT NULL,
    worker_instance_id  TEXT    NOT NULL,
    lane_id             TEXT,
    capability_hash     TEXT,
    worker_capabilities TEXT    NOT NULL DEFAULT '[]',
    route_snapshot_json TEXT,
    admission_summary   TEXT,
    grant_ttl_ms        INTEGER NOT NULL,
    issued_at_ms        INTEGER NOT NULL,
    expires_at_ms       INTEGER NOT NULL,
    PRIMARY KEY (partition_key, grant_id)
);
CREATE INDEX ff_claim_grant_execution_idx ON ff_claim_grant (partition_key, execution_id);
CREATE INDEX ff_claim_grant_expiry_idx ON ff_claim_grant (expires_at_ms);

-- Lease-history outbox. `execution_id` is the bare lowercase UUID text.
CREATE TABLE ff_lease_event (
    event_id       INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id   TEXT    NOT NULL,
    lease_id       TEXT,
    event_type     TEXT    NOT NULL,
    occurred_at_ms INTEGER NOT NULL,
    partition_key  INTEGER NOT NULL,
    namespace      TEXT,
    instance_tag   TEXT
);
CREATE INDEX ff_lease_event_partition_key_idx ON ff_lease_event (partition_key, event_id);
CREATE INDEX ff_lease_event_namespace_idx ON ff_lease_event (partition_key, namespace)
    WHERE namespace IS NOT NULL;
CREATE INDEX ff_lease_event_instance_tag_idx ON ff_lease_event (partition_key, instance_tag)
    WHERE instance_tag IS NOT NULL;

-- Completion outbox.
CREATE TABLE ff_completion_event (
    partition_key    INTEGER NOT NULL,
    event_id         INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id     BLOB    NOT NULL,
    flow_id          BLOB,
    outcome          TEXT    NOT NULL,
    namespace        TEXT,
    instance_tag     TEXT,
    occurred_at_ms   INTEGER NOT NULL,
    committed_at_ms  INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)),
    dispatched_at_ms INTEGER
);
CREATE UNIQUE INDEX ff_completion_event_partition_event_idx ON ff_completion_event (partition_key, event_id);
CREATE INDEX ff_completion_event_pending_dispatch_idx ON ff_completion_event (partition_key, committed_at_ms)
    WHERE dispatched_at_ms IS NULL;
CREATE INDEX ff_completion_event_lookup_idx ON ff_completion_event (partition_key, execution_id, occurred_at_ms);

-- Required capabilities of an execution (matched against a worker's capability set).
CREATE TABLE ff_execution_capabilities (
    execution_id BLOB NOT NULL,
    capability   TEXT NOT NULL,
    PRIMARY KEY (execution_id, capability)
) WITHOUT ROWID;
CREATE INDEX ff_execution_capabilities_capability_idx ON ff_execution_capabilities (capability, execution_id);

-- Lanes seen by create_execution.
CREATE TABLE ff_lane_registry (
    lane_id          TEXT    NOT NULL PRIMARY KEY,
    registered_at_ms INTEGER NOT NULL,
    registered_by    TEXT    NOT NULL
);

-- The open suspension of a suspended execution.
CREATE TABLE ff_suspension_current (
    partition_key    INTEGER NOT NULL,
    execution_id     BLOB    NOT NULL,
    suspension_id    BLOB    NOT NULL,
    suspended_at_ms  INTEGER NOT NULL,
    timeout_at_ms    INTEGER,
    reason_code      TEXT,
    condition        TEXT    NOT NULL,
    satisfied_set    TEXT    NOT NULL DEFAULT '[]',
    member_map       TEXT    NOT NULL DEFAULT '{}',
    timeout_behavior TEXT,
    PRIMARY KEY (partition_key, execution_id)
);
CREATE INDEX ff_suspension_current_suspended_idx ON ff_suspension_current (partition_key, suspended_at_ms);
CREATE INDEX ff_suspension_current_timeout_idx ON ff_suspension_current (partition_key, timeout_at_ms)
    WHERE timeout_at_ms IS NOT NULL;
