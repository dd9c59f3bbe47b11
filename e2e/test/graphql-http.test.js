// graphql-http's server audits (the GraphQL over HTTP spec) against /query,
// authenticated. Prints passed/failed counts per requirement level and the
// failures, writes them to audit-report.json, and fails on any MUST failure.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

import { auditServer } from 'graphql-http';

import { E2E_DIR, suite, withTimeout } from '../lib/harness.js';

const LEVELS = ['MUST', 'SHOULD', 'MAY'];
const REPORT = path.join(E2E_DIR, 'audit-report.json');

// Every database's run adds its entry; the file holds this run's results only.
const report = { generatedAt: new Date().toISOString(), runs: {} };

suite('graphql-http server audits', (env) => {
  env.test('no MUST audit fails', async (t) => {
    const authedFetch = (input, init = {}) => {
      const headers = new Headers(init.headers);
      headers.set('authorization', `Bearer ${env.ana.token}`);
      return fetch(input, { ...init, headers, signal: AbortSignal.timeout(10_000) });
    };
    const results = await withTimeout(auditServer({ url: env.server.httpURL, fetchFn: authedFetch }), 60_000, 'the audits');
    assert.ok(results.length > 0, 'no audits ran');

    const counts = Object.fromEntries(LEVELS.map((l) => [l, { passed: 0, failed: 0 }]));
    const failures = [];
    for (const r of results) {
      const level = LEVELS.find((l) => r.name.startsWith(`${l} `));
      assert.ok(level, `audit ${r.id} has no level in its name: ${r.name}`);
      if (r.status === 'ok') {
        counts[level].passed++;
        continue;
      }
      counts[level].failed++;
      let body = '';
      try {
        body = (await r.response.clone().text()).slice(0, 300);
      } catch {
        // body already read or none
      }
      failures.push({
        id: r.id, level, status: r.status, name: r.name, reason: r.reason,
        httpStatus: r.response?.status, contentType: r.response?.headers?.get('content-type') ?? null, body,
      });
    }

    const summary = LEVELS.map((l) => `${l}: ${counts[l].passed} passed, ${counts[l].failed} failed`).join('; ');
    t.diagnostic(`audits (${results.length}): ${summary}`);
    for (const f of failures) {
      t.diagnostic(`${f.status.toUpperCase()} ${f.id} ${f.name} -- ${f.reason} (HTTP ${f.httpStatus}, ${f.contentType})`);
    }
    report.runs[env.db.name] = { total: results.length, counts, failures };
    writeFileSync(REPORT, `${JSON.stringify(report, null, 2)}\n`);

    const mustFailures = failures.filter((f) => f.level === 'MUST');
    assert.deepEqual(mustFailures.map((f) => `${f.id} ${f.name}: ${f.reason}`), [], 'MUST audits failed');
  }, { timeout: 90_000 });
});
