-- The lane scanner (the handle-based `claim`): the best claimable execution of one lane, in
-- every partition, ordered by priority (highest first), then age, then key. Only runnable
-- executions are indexed; the key columns make the index serve the whole ORDER BY, so the
-- scan stops at the first row that passes the remaining filters.
CREATE INDEX ff_exec_core_claim_scan_idx
    ON ff_exec_core (lane_id, priority DESC, created_at_ms, partition_key, execution_id)
    WHERE lifecycle_phase = 'runnable';
