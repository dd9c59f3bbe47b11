// The e2e harness: builds the real jobchat binary, runs it on a throwaway
// database (SQLite in a temp dir, or a PostgreSQL schema of its own), mints
// tokens with the binary's `token` command, and gives tests small helpers
// with a timeout on every wait.
//
// Each test file calls suite(title, body): body runs once per database, each
// time against a fresh server. A server's log is printed when one of the
// suite's tests (or its setup) fails.

import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '..');

/** The HS256 secret every server and every minted token of the suite uses. */
export const JWT_SECRET = 'jobchat-e2e-secret-0123456789abcdefghijklmnop';

/** The longest any single wait in a test may take. */
export const WAIT_MS = 10_000;

// ---------------------------------------------------------------------------
// Waiting

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves like promise, or rejects after ms with a message naming what. */
export function withTimeout(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Collects what a subscription delivers (a graphql-ws style sink: next,
 * error, complete) so that a test can wait for it with a deadline.
 */
export class Collector {
  constructor(name = 'subscription') {
    this.name = name;
    this.items = [];
    this.errors = [];
    this.completed = false;
    this.waiters = new Set();
  }

  /** A sink object to hand to a client's subscribe. */
  get sink() {
    return {
      next: (v) => this.#push(() => this.items.push(v)),
      error: (e) => this.#push(() => this.errors.push(e)),
      complete: () => this.#push(() => { this.completed = true; }),
    };
  }

  #push(change) {
    change();
    for (const w of this.waiters) w();
  }

  /**
   * Waits until pred(this) is true. Rejects at once on an error (unless
   * allowErrors), and after ms. what names the wait in the failure.
   */
  until(pred, what, { ms = WAIT_MS, allowErrors = false } = {}) {
    return withTimeout(new Promise((resolve, reject) => {
      const check = () => {
        if (!allowErrors && this.errors.length > 0) {
          this.waiters.delete(check);
          reject(new Error(`${this.name} errored while waiting for ${what}: ${describeError(this.errors[0])}`));
          return;
        }
        let ok = false;
        try {
          ok = pred(this);
        } catch (e) {
          this.waiters.delete(check);
          reject(e);
          return;
        }
        if (ok) {
          this.waiters.delete(check);
          resolve(this);
        }
      };
      this.waiters.add(check);
      check();
    }), ms, `${this.name}: ${what} (got ${this.items.length} items: ${JSON.stringify(this.items).slice(0, 500)})`);
  }

  /** Waits for at least n items and returns the n-th (1-based). */
  async nth(n, opts) {
    await this.until((c) => c.items.length >= n, `item #${n}`, opts);
    return this.items[n - 1];
  }
}

/** Renders whatever a client reports as an error (Error, CloseEvent, GraphQL errors array). */
export function describeError(e) {
  if (e == null) return String(e);
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  if (Array.isArray(e)) return JSON.stringify(e);
  if (typeof e === 'object' && 'code' in e && 'reason' in e) return `close ${e.code} ${JSON.stringify(e.reason)}`;
  try {
    return JSON.stringify(e);
  } catch {
    return String(e);
  }
}

// ---------------------------------------------------------------------------
// The binary

let ownBinary;

/**
 * The path of the jobchat binary: $JOBCHAT_E2E_BIN (set by lib/run.js, which
 * builds it once per run), or one built now into a temp dir for this process.
 */
export async function binary() {
  if (process.env.JOBCHAT_E2E_BIN) return process.env.JOBCHAT_E2E_BIN;
  if (!ownBinary) {
    ownBinary = (async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'jobchat-e2e-bin-'));
      process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
      return buildBinary(dir);
    })();
  }
  return ownBinary;
}

/** Runs `go build -o <dir>/jobchat ./cmd/jobchat` in the repository root. */
export async function buildBinary(dir) {
  const out = path.join(dir, 'jobchat');
  const env = { ...process.env, PATH: `${process.env.PATH ?? ''}:/usr/local/go/bin` };
  try {
    await execFileP('go', ['build', '-o', out, './cmd/jobchat'], { cwd: REPO_ROOT, env, timeout: 300_000 });
  } catch (e) {
    throw new Error(`go build ./cmd/jobchat failed:\n${e.stderr || e.message}`);
  }
  return out;
}

/**
 * The environment for the binary: ours, without any JOBCHAT_* from outside,
 * with the suite's JWT secret unless jwtSecret is false (the server then
 * makes a development secret in its data dir, as on a newcomer's machine).
 */
function binaryEnv(extra, { jwtSecret = true } = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('JOBCHAT_')) env[k] = v;
  }
  if (jwtSecret) env.JOBCHAT_JWT_SECRET = JWT_SECRET;
  return { ...env, ...extra };
}

/** Mints a token with `jobchat token ...args`. */
export async function mintToken(bin, ...args) {
  const { stdout } = await execFileP(bin, ['token', ...args], { env: binaryEnv({}), timeout: WAIT_MS });
  const tok = stdout.trim();
  assert.match(tok, /^[\w-]+\.[\w-]+\.[\w-]+$/, `jobchat token ${args.join(' ')} printed no JWT: ${stdout}`);
  return tok;
}

// ---------------------------------------------------------------------------
// The server process

/**
 * A jobchat server process; start, stop and start again on the same port.
 * args are the command line (`serve` unless given: `--demo` starts the
 * server with the demo); jwtSecret false leaves JOBCHAT_JWT_SECRET unset.
 * output holds what the process printed, line by line, as printed.
 */
export class Server {
  constructor(bin, env, { args = ['serve'], jwtSecret = true } = {}) {
    this.bin = bin;
    this.env = env;
    this.args = args;
    this.jwtSecret = jwtSecret;
    this.port = 0;
    this.proc = null;
    this.log = [];
    this.output = [];
    this.starts = 0;
  }

  get httpURL() {
    return `http://127.0.0.1:${this.port}/query`;
  }

  get wsURL() {
    return `ws://127.0.0.1:${this.port}/query`;
  }

  get origin() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts the server (on its previous port, if it had one) and waits for /readyz. */
  async start() {
    assert.equal(this.proc, null, 'server already running');
    const run = ++this.starts;
    const proc = spawn(this.bin, this.args, {
      env: binaryEnv({ ...this.env, JOBCHAT_ADDR: `127.0.0.1:${this.port}` }, { jwtSecret: this.jwtSecret }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc = proc;
    // Never leave a server behind, even if the test process dies.
    const reap = () => proc.kill('SIGKILL');
    process.once('exit', reap);
    const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
    proc.exited = exited;
    exited.then(() => process.removeListener('exit', reap));
    exited.then(({ code, signal }) => this.log.push(`[run ${run}] process exited: code=${code} signal=${signal}`));

    const listening = new Promise((resolve) => {
      for (const stream of [proc.stdout, proc.stderr]) {
        createInterface({ input: stream }).on('line', (line) => {
          this.log.push(`[run ${run}] ${line}`);
          this.output.push(line);
          if (line.includes('jobchat listening')) {
            try {
              const addr = JSON.parse(line).addr;
              resolve(Number(addr.slice(addr.lastIndexOf(':') + 1)));
            } catch {
              // not JSON: ignore, readiness polling will tell
            }
          }
        });
      }
    });
    const port = await withTimeout(
      Promise.race([listening, exited.then((x) => { throw new Error(`server exited before listening: ${JSON.stringify(x)}`); })]),
      30_000, 'the server to log "jobchat listening"');
    if (this.port !== 0) assert.equal(port, this.port, 'restarted server listens on another port');
    this.port = port;

    const deadline = Date.now() + WAIT_MS;
    for (;;) {
      try {
        const res = await fetch(`${this.origin}/readyz`, { signal: AbortSignal.timeout(2000) });
        if (res.status === 200) return;
      } catch {
        // not yet
      }
      if (Date.now() > deadline) throw new Error('server not ready: /readyz did not answer 200 within 10 s');
      await sleep(50);
    }
  }

  /** Stops the server with SIGTERM (SIGKILL after 10 s) and waits for it to exit. */
  async stop(signal = 'SIGTERM') {
    const proc = this.proc;
    if (!proc) return;
    this.proc = null;
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const killer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
    await proc.exited;
    clearTimeout(killer);
  }

  dumpLog(title) {
    process.stderr.write(`\n----- jobchat server log (${title}) -----\n${this.log.join('\n')}\n----- end of server log -----\n`);
  }
}

// ---------------------------------------------------------------------------
// HTTP GraphQL

/** POSTs one GraphQL operation and returns the parsed response body. */
export async function postGraphQL(url, token, query, variables = {}) {
  const headers = { 'content-type': 'application/json', accept: 'application/graphql-response+json, application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: JSON.stringify({ query, variables }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  let body;
  try {
    body = JSON.parse(text);
  } catch {
    throw new Error(`POST ${url}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
  return body;
}

// ---------------------------------------------------------------------------
// Databases and suites

/**
 * The databases to run every suite on: SQLite always; PostgreSQL when
 * JOBCHAT_TEST_POSTGRES_URL is set. With CI=true a missing URL fails.
 */
export function databases() {
  const list = [{ name: 'sqlite' }];
  const url = process.env.JOBCHAT_TEST_POSTGRES_URL;
  if (url) list.push({ name: 'postgres', url });
  else if (process.env.CI === 'true') list.push({ name: 'postgres', missing: 'CI=true but JOBCHAT_TEST_POSTGRES_URL is not set: CI must run the e2e suite on PostgreSQL' });
  else list.push({ name: 'postgres', skip: 'JOBCHAT_TEST_POSTGRES_URL is not set' });
  return list;
}

/**
 * Everything a test needs: the server, tokens, users and helpers. options:
 * skip (a reason: every test is registered as skipped, and nothing starts),
 * serverArgs and jwtSecret (for the Server).
 */
export class Env {
  constructor(db, title, { skip = '', serverArgs, jwtSecret = true } = {}) {
    this.db = db;
    this.title = `${title} (${db.name})`;
    this.skip = skip;
    this.serverArgs = serverArgs;
    this.jwtSecret = jwtSecret;
    this.failed = false;
    this.unfinished = new Set();
    this.server = null;
    const tag = randomBytes(3).toString('hex');
    this.ana = { id: `ana-${tag}`, name: 'Ana Client', token: '' };
    this.ben = { id: `ben-${tag}`, name: 'Ben Worker', token: '' };
    this.serviceToken = '';
    this.dataDir = '';
    this.schema = '';
  }

  async setUp() {
    const bin = await binary();
    this.dataDir = mkdtempSync(path.join(tmpdir(), 'jobchat-e2e-data-'));
    const env = {
      JOBCHAT_DATA_DIR: this.dataDir,
      JOBCHAT_SEND_RATE: '0',
      JOBCHAT_LOG_FORMAT: 'json',
      JOBCHAT_LOG_LEVEL: process.env.E2E_LOG_LEVEL ?? 'info',
      JOBCHAT_SHUTDOWN_TIMEOUT: '3s',
    };
    if (this.db.url) env.JOBCHAT_DATABASE_URL = await this.#createSchema();
    this.server = new Server(bin, env, { args: this.serverArgs, jwtSecret: this.jwtSecret });
    if (this.jwtSecret) {
      [this.ana.token, this.ben.token, this.serviceToken] = await Promise.all([
        mintToken(bin, '--sub', this.ana.id, '--name', this.ana.name),
        mintToken(bin, '--sub', this.ben.id, '--name', this.ben.name),
        mintToken(bin, '--service'),
      ]);
    }
    await this.server.start();
  }

  async tearDown() {
    if (this.server) {
      await this.server.stop();
      if (this.failed || this.unfinished.size > 0) this.server.dumpLog(this.title);
    }
    if (this.schema) await this.#dropSchema();
    if (this.dataDir) rmSync(this.dataDir, { recursive: true, force: true });
  }

  // PostgreSQL: a schema of our own; pgx sends unknown URL parameters such
  // as search_path to the server as run-time parameters of every connection.
  async #createSchema() {
    this.schema = `e2e_${randomBytes(6).toString('hex')}`;
    await this.#admin(`CREATE SCHEMA ${this.schema}`);
    const u = new URL(this.db.url);
    u.searchParams.set('search_path', this.schema);
    return u.toString();
  }

  // Drops the schema, after checking that the server's tables were made in
  // it (and so not somewhere shared).
  async #dropSchema() {
    const res = await this.#admin('SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = $1', [this.schema]);
    await this.#admin(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
    if (this.server?.starts > 0) {
      assert.ok(res.rows[0].n > 0, `the server made no tables in schema ${this.schema}: search_path was not honoured`);
    }
  }

  async #admin(sql, params) {
    const { default: pg } = await import('pg');
    const client = new pg.Client({ connectionString: this.db.url, connectionTimeoutMillis: WAIT_MS });
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end();
    }
  }

  /** POSTs an operation as token and returns its data, failing on any error. */
  async gql(token, query, variables) {
    const body = await postGraphQL(this.server.httpURL, token, query, variables);
    assert.equal(body.errors, undefined, `GraphQL errors: ${JSON.stringify(body.errors)}`);
    return body.data;
  }

  /** Opens a conversation between Ana (client) and Ben (worker) as the job-service. */
  async newConversation(jobTitle = 'Fix the kitchen sink') {
    const jobId = `job-${randomUUID()}`;
    const data = await this.gql(this.serviceToken, `mutation($in: CreateConversationInput!) {
      createConversationForJob(input: $in) { id lastSeq job { id title } client { id } worker { id } }
    }`, {
      in: {
        jobId,
        jobTitle,
        client: { id: this.ana.id, displayName: this.ana.name },
        worker: { id: this.ben.id, displayName: this.ben.name },
        systemMessage: `Job '${jobTitle}' has been accepted. Chat is now active.`,
      },
    });
    const conv = data.createConversationForJob;
    assert.equal(conv.job.id, jobId);
    assert.equal(conv.client.id, this.ana.id);
    assert.equal(conv.worker.id, this.ben.id);
    assert.equal(conv.lastSeq, 1, 'a new conversation holds its system message, seq 1');
    return conv;
  }

  /** Sends a TEXT message as user over HTTP and returns {id, seq, messageText}. */
  async send(user, conversationId, messageText, clientMessageId = randomUUID()) {
    const data = await this.gql(user.token, `mutation($in: SendMessageInput!) {
      sendMessage(input: $in) { id seq messageText clientMessageId }
    }`, { in: { conversationId, messageText, clientMessageId } });
    return data.sendMessage;
  }

  /**
   * it(), remembering a failure (or a test that never finished, such as one
   * cancelled by its timeout) so that tearDown prints the server log.
   */
  test(name, fn, { timeout = 30_000 } = {}) {
    if (this.skip) {
      it(name, { skip: this.skip }, () => {});
      return;
    }
    it(name, { timeout }, async (t) => {
      this.unfinished.add(name);
      try {
        await fn(t);
      } catch (e) {
        this.failed = true;
        throw e;
      } finally {
        this.unfinished.delete(name);
      }
    });
  }
}

/**
 * Registers body(env) once per database, each inside a describe with a fresh
 * server started before and stopped after.
 *
 * A suite that cannot run here (no PostgreSQL URL, or what options.skip
 * names) registers its tests with the runner's skip option, so that the
 * summary counts them as skipped; nothing is started. With CI=true what is
 * missing is a failure instead (options.missing, or the database's). Other
 * options go to Env.
 */
export function suite(title, body, { skip = '', missing = '', ...options } = {}) {
  for (const db of databases()) {
    describe(`${title} [${db.name}]`, () => {
      const failure = db.missing || missing;
      if (failure) {
        it('has what it needs to run', () => assert.fail(failure));
        return;
      }
      const env = new Env(db, title, { ...options, skip: db.skip || skip });
      if (!env.skip) {
        before(async () => {
          try {
            await env.setUp();
          } catch (e) {
            env.failed = true;
            throw e;
          }
        }, { timeout: 120_000 });
        after(() => env.tearDown(), { timeout: 30_000 });
      }
      body(env);
    });
  }
}

/** The fields of Message the tests ask for. */
export const MESSAGE_FIELDS = 'id conversationId seq senderId senderName messageType messageText clientMessageId timestamp';

export const MESSAGE_ADDED = `subscription OnMessageAdded($c: ID!, $after: Int) {
  messageAdded(conversationId: $c, afterSeq: $after) { ${MESSAGE_FIELDS} }
}`;
