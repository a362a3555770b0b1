// The composed engine (`ffwasm guest compose -o engine.wasm`) in Node, through jco.
//
//   npm install                                  # jco and the preview2 shim
//   npx jco transpile engine.wasm -o build/engine --name engine
//   node engine.mjs build/engine ./data [claims]
//
// Runs create → grant → claim → renew → complete → read on `<data>/flowfabric.sqlite` (one
// transaction per call, as everywhere), then a failing call (completing again: the execution is
// no longer active), then `claims` sequential create + claim pairs timed (default 0). Prints one
// JSON line per step; exits non-zero when a step does not do what it should.
//
// Two things the shim (0.26.1) needs: a preopened directory (it gives none by default), and
// read-write opens without the `mutate-directory` flag, which it refuses with "unsupported"
// although Rust's std and SQLite both ask for it.

import { randomUUID } from 'node:crypto';
import { resolve, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { _setPreopens, types } from '@bytecodealliance/preview2-shim/filesystem';
import { _setEnv } from '@bytecodealliance/preview2-shim/cli';

const [transpiled, dataDir, claims = '0'] = process.argv.slice(2);
if (!transpiled || !dataDir) {
  console.error('usage: node engine.mjs <transpiled-dir> <data-dir> [claims]');
  process.exit(2);
}

const openAt = types.Descriptor.prototype.openAt;
types.Descriptor.prototype.openAt = function (pathFlags, path, openFlags, descriptorFlags) {
  return openAt.call(this, pathFlags, path, openFlags, { ...descriptorFlags, mutateDirectory: false });
};
_setPreopens({ '/data': resolve(dataDir) });
_setEnv({ FF_DB: '/data/flowfabric.sqlite' });

const { scheduling, leaseHolder, reads } = await import(
  pathToFileURL(join(resolve(transpiled), 'engine.js')).href
);

const lane = 'default';
const now = () => BigInt(Date.now());
const report = (step, value) =>
  console.log(JSON.stringify({ step, ...value }, (_, v) => (typeof v === 'bigint' ? Number(v) : v)));

function create() {
  const executionId = `{fp:0}:${randomUUID()}`;
  scheduling.createExecution({
    executionId,
    namespace: 'node',
    laneId: lane,
    executionKind: 'demo',
    inputPayload: new TextEncoder().encode('{}'),
    payloadEncoding: 'json',
    priority: 0,
    creatorIdentity: 'examples/node',
    idempotencyKey: undefined,
    tags: [],
    policyJson: undefined,
    requiredCapabilities: [],
    delayUntil: undefined,
    executionDeadlineAt: undefined,
    now: now(),
  });
  return executionId;
}

// The flow.
const executionId = create();
report('create', { executionId });
scheduling.issueClaimGrant({
  executionId,
  laneId: lane,
  workerId: 'node-worker',
  workerInstanceId: 'node-worker-1',
  capabilityHash: undefined,
  routeSnapshotJson: undefined,
  admissionSummary: undefined,
  workerCapabilities: [],
  grantTtlMs: 60000n,
  now: now(),
});
report('grant', { executionId });
const attemptId = randomUUID();
const claimed = scheduling.claimExecution({
  executionId,
  workerId: 'node-worker',
  workerInstanceId: 'node-worker-1',
  laneId: lane,
  leaseId: randomUUID(),
  leaseTtlMs: 30000n,
  attemptId,
  expectedAttemptIndex: 0,
  attemptPolicyJson: undefined,
  attemptTimeoutMs: undefined,
  executionDeadlineAt: undefined,
  now: now(),
});
report('claim', { leaseEpoch: claimed.leaseEpoch, attemptIndex: claimed.attemptIndex });
const fence = { leaseId: claimed.leaseId, leaseEpoch: claimed.leaseEpoch, attemptId: claimed.attemptId };
const expires = leaseHolder.renewLease({
  executionId,
  attemptIndex: claimed.attemptIndex,
  fence,
  leaseTtlMs: 30000n,
  now: now(),
});
report('renew', { expires });
const complete = () =>
  leaseHolder.completeExecution({
    executionId,
    fence,
    attemptIndex: claimed.attemptIndex,
    resultPayload: new TextEncoder().encode('done'),
    resultEncoding: 'text',
    source: { tag: 'lease-holder' },
    now: now(),
  });
complete();
report('complete', { executionId });
const view = reads.readExecution(executionId, now());
report('read', { publicState: view.publicState });
if (view.publicState !== 'completed') {
  throw new Error(`expected completed, read ${view.publicState}`);
}

// A failing call: an `err` result is thrown as a ComponentError (its payload in `.payload`).
try {
  complete();
  throw new Error('completing twice succeeded');
} catch (error) {
  if (!error.payload) throw error;
  report('complete-again', { error: error.payload.tag });
}

// Sequential claims, timed.
const count = Number(claims);
if (count > 0) {
  const ids = [];
  let started = performance.now();
  for (let i = 0; i < count; i++) ids.push(create());
  const creating = (performance.now() - started) / 1000;
  started = performance.now();
  for (const id of ids) {
    scheduling.issueGrantAndClaim({
      executionId: id,
      laneId: lane,
      leaseDurationMs: 30000n,
      leaseId: randomUUID(),
      attemptId: randomUUID(),
      now: now(),
    });
  }
  const claiming = (performance.now() - started) / 1000;
  report('claim-loop', {
    count,
    createPerSecond: Math.round(count / creating),
    claimsPerSecond: Math.round(count / claiming),
  });
}
