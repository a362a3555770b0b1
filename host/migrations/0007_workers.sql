-- The worker registry (RFC-025), the scheduler-routed claim path and the operator outbox.

-- One live-or-lapsed registration per (namespace, worker instance). `lanes` and `capabilities`
-- are JSON arrays of strings (never comma-joined, so any string reads back as written). Live
-- while `last_heartbeat_ms + liveness_ttl_ms > now`.
CREATE TABLE ff_worker_registry (
    namespace          TEXT    NOT NULL,
    worker_instance_id TEXT    NOT NULL,
    worker_id          TEXT    NOT NULL,
    lanes              TEXT    NOT NULL DEFAULT '[]',
    capabilities       TEXT    NOT NULL DEFAULT '[]',
    last_heartbeat_ms  INTEGER NOT NULL,
    liveness_ttl_ms    INTEGER NOT NULL,
    registered_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (namespace, worker_instance_id)
);
-- The expiry sweep: registrations by the time they lapse.
CREATE INDEX ff_worker_registry_expiry_idx
    ON ff_worker_registry (last_heartbeat_ms + liveness_ttl_ms);

-- Audit trail of registry changes (`registered`, `heartbeat`, `marked_dead`, `ttl_swept`);
-- a second event of the same kind for the same instance in the same millisecond is dropped.
CREATE TABLE ff_worker_registry_event (
    namespace          TEXT    NOT NULL,
    worker_instance_id TEXT    NOT NULL,
    event_kind         TEXT    NOT NULL,
    event_at_ms        INTEGER NOT NULL,
    reason             TEXT,
    PRIMARY KEY (namespace, worker_instance_id, event_at_ms, event_kind)
);

-- `scan-eligible-executions`: one partition of one lane, eligible rows best first.
CREATE INDEX ff_exec_core_route_scan_idx
    ON ff_exec_core (partition_key, lane_id, priority DESC, created_at_ms, execution_id)
    WHERE lifecycle_phase = 'runnable' AND eligibility_state = 'eligible_now';

-- The operator outbox `change_priority` writes to (`ff_operator_event`, upstream's shape) is
-- created by 0003_flows.sql.

