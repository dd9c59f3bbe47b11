// npm test: builds the jobchat binary once, then runs every test file with
// node's test runner, one file at a time, each against servers of its own
// built from that binary. Extra arguments go to `node --test` (for example
// a single file: `npm test -- test/apollo.test.js`).

import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

import { buildBinary, E2E_DIR } from './harness.js';

const dir = mkdtempSync(path.join(tmpdir(), 'jobchat-e2e-bin-'));
let code = 1;
try {
  const started = Date.now();
  const bin = await buildBinary(dir);
  process.stderr.write(`built ${bin} in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);

  const args = process.argv.slice(2);
  const files = args.filter((a) => !a.startsWith('-'));
  const flags = args.filter((a) => a.startsWith('-'));
  const child = spawn(process.execPath, [
    '--test', '--test-concurrency=1', '--test-timeout=120000', ...flags,
    ...(files.length > 0 ? files : ['test/']),
  ], {
    cwd: E2E_DIR,
    stdio: 'inherit',
    env: { ...process.env, JOBCHAT_E2E_BIN: bin },
  });
  for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => child.kill(sig));
  code = await new Promise((resolve) => child.on('exit', (c, s) => resolve(c ?? (s ? 1 : 0))));
} catch (e) {
  process.stderr.write(`${e.message}\n`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
process.exit(code);
