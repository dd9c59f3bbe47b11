// The README's "Five minutes with the playground", run as written: the
// command of its first block starts the built binary (on a free port, with
// a temp data dir and no JOBCHAT_JWT_SECRET, as on a newcomer's machine);
// the ids and tokens come from what `--demo` prints; then every GraphQL
// block runs in order, in the tab of the user the prose names, the way the
// playground sends it (queries and mutations POSTed with the Headers-tab
// text, subscriptions over graphql-transport-ws with it as the
// connection_init payload). Running a block in a tab stops the subscription
// that tab was running, as in GraphiQL.
//
// What the prose promises is checked where the walkthrough makes it: the
// replay starts with the system message, a sent message reaches the other
// tab's messageAdded, the inbox shows the `unreadCount: N` the prose names,
// markRead drops an unread count the inbox showed to 0,
// setTyping reaches the other tab's conversationActivity as TYPING_STARTED
// then TYPING_STOPPED. And `--demo` prints the same operations, in the same
// order. A README edit that breaks any of this fails here.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';

import { parse, print } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Collector, sleep, suite, WAIT_MS } from '../lib/harness.js';
import { fill, parseWalkthrough, readWalkthrough, serverArgs } from '../lib/readme.js';

const walkthrough = readWalkthrough();
const [command, ...operations] = walkthrough.blocks;
assert.equal(command?.lang, 'sh', 'the walkthrough starts with the shell command that starts the server');
assert.ok(operations.length > 0 && operations.every((b) => b.lang === 'graphql'),
  `after its command the walkthrough has GraphQL blocks only: ${operations.map((b) => b.lang).join(', ')}`);

/** The payload of a JWT. */
function claims(jwt) {
  return JSON.parse(Buffer.from(jwt.split('.')[1], 'base64url').toString('utf8'));
}

/**
 * What `--demo` printed: { block, conversationId, tokens: { Ana, Ben,
 * service }, playground } from the server's output.
 */
function demoBlock(output) {
  const text = output.join('\n');
  const start = text.indexOf('=== jobchat demo');
  const end = text.indexOf('\n=====', start);
  assert.ok(start >= 0 && end > start, `--demo printed no demo block:\n${text.slice(0, 3000)}`);
  const block = text.slice(start, end);
  const conversationId = /Conversation (\S+) for job/.exec(block)?.[1];
  assert.ok(conversationId, `no conversation id in the demo block:\n${block}`);
  const tokens = {};
  for (const [jwt] of block.matchAll(/\beyJ[\w-]*\.[\w-]+\.[\w-]+/g)) {
    const c = claims(jwt);
    if (c.role === 'service') tokens.service = jwt;
    else if (c.sub === 'demo-ana') tokens.Ana = jwt;
    else if (c.sub === 'demo-ben') tokens.Ben = jwt;
  }
  assert.deepEqual(Object.keys(tokens).sort(), ['Ana', 'Ben', 'service'], `the demo block has tokens for Ana, Ben and the service:\n${block}`);
  const playground = /Playground: (\S+)/.exec(block)?.[1];
  return { block, conversationId, tokens, playground };
}

/** The operations the demo block prints, one a line, each printed canonically. */
function demoOperations(block) {
  return block.split('\n')
    .map((l) => l.trim())
    .filter((l) => /^(subscription|mutation|query)\b|^\{\s*[_A-Za-z]/.test(l)) // not {"Authorization": …}
    .map((l) => print(parse(l)));
}

/** POSTs query with the Headers-tab headers, as the playground does. */
async function post(url, headers, query) {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json', ...headers },
    body: JSON.stringify({ query }),
    signal: AbortSignal.timeout(WAIT_MS),
  });
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    throw new Error(`POST ${url}: HTTP ${res.status}, not JSON: ${text.slice(0, 300)}`);
  }
}

/**
 * Waits until a live-only subscription (conversationActivity, inboxUpdated)
 * is in place: the job-service closes and reopens the conversation, which
 * changes nothing else, until the collector has seen the reopening (in the
 * README's own selection, which may hold no more than the kind).
 */
async function untilLive(env, conversationId, collector, field) {
  const kind = field === 'inboxUpdated' ? 'CONVERSATION_UPDATED' : 'CONVERSATION_REOPENED';
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const mark = collector.items.length;
    for (const op of ['closeConversation(conversationId: $c, reason: "e2e probe")', 'reopenConversation(conversationId: $c)']) {
      await env.gql(env.serviceToken, `mutation($c: ID!) { ${op} { status } }`, { c: conversationId });
    }
    const roundEnd = Math.min(Date.now() + 500, deadline);
    while (Date.now() < roundEnd) {
      if (collector.errors.length > 0) throw new Error(`${collector.name} errored: ${JSON.stringify(collector.errors[0])}`);
      if (collector.items.slice(mark).some((e) => e.kind === kind)) return;
      await sleep(25);
    }
    if (Date.now() >= deadline) throw new Error(`${collector.name} not live after ${WAIT_MS} ms of close/reopen probes`);
  }
}

/** The root field of a one-operation document. */
function rootField(doc) {
  return doc.definitions[0].selectionSet.selections[0].name.value;
}

suite('the README walkthrough, as written', (env) => {
  env.test(`"Five minutes with the playground": the command and ${operations.length} operations`, async (t) => {
    const demo = demoBlock(env.server.output);
    env.serviceToken = demo.tokens.service; // for untilLive
    const ids = { '<id>': demo.conversationId };

    // The playground is where --demo says.
    assert.equal(demo.playground, `${env.server.origin}/`);
    const page = await fetch(demo.playground, { signal: AbortSignal.timeout(WAIT_MS) });
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<div id="graphiql">/);

    // --demo prints the walkthrough's operations, in its order.
    const readme = operations.map((b) => print(parse(fill(b.text, ids))));
    assert.deepEqual(demoOperations(demo.block), readme, '--demo prints the README walkthrough\'s operations');

    const tabs = {}; // user -> { sub: { name, field, collector, stop } | null }
    const unread = {}; // user -> the demo conversation's unreadCount the inbox last showed
    const subscriptions = () => Object.entries(tabs).flatMap(([user, tab]) => (tab.sub ? [{ user, ...tab.sub }] : []));
    try {
      for (const block of operations) {
        const { user, step } = block;
        let what = `step ${step}, as ${user}: ${block.text.split('\n')[0]}`;
        const headers = JSON.parse(fill(walkthrough.headers[user], {
          "<Ana's token>": demo.tokens.Ana,
          "<Ben's token>": demo.tokens.Ben,
        }));
        const query = fill(block.text, ids);
        const doc = parse(query);
        // GraphiQL refuses an anonymous operation beside another one.
        assert.equal(doc.definitions.length, 1, `${what}: a block is one operation, since it replaces the editor's content`);
        const type = doc.definitions[0].operation;
        const field = rootField(doc);
        what = `step ${step}, as ${user}: ${type} ${field}`;
        t.diagnostic(what);

        // Running something in a tab stops its subscription.
        const tab = (tabs[user] ??= { sub: null });
        if (tab.sub) {
          tab.sub.stop();
          tab.sub = null;
        }

        if (type === 'subscription') {
          const collector = new Collector(`${user}'s ${field}`);
          const client = createClient({
            url: env.server.wsURL,
            webSocketImpl: WebSocket,
            connectionParams: headers,
            retryAttempts: 0,
          });
          const sink = collector.sink;
          const dispose = client.subscribe({ query }, {
            next: (v) => (v.errors ? sink.error(v.errors) : sink.next(v.data[field])),
            error: sink.error,
            complete: sink.complete,
          });
          tab.sub = { name: what, field, collector, stop: () => { dispose(); client.dispose(); } };
          if (field === 'messageAdded') {
            // afterSeq: 0 replays the history, the system message first.
            const first = await collector.nth(1);
            assert.equal(first.seq, 1, `${what}: the replay starts at seq 1`);
            assert.equal(first.messageType, 'SYSTEM', `${what}: the first message is the system message`);
            assert.match(first.messageText, /has been accepted/);
          } else {
            // Live only: wait until it is in place before the next block acts.
            await untilLive(env, demo.conversationId, collector, field);
          }
          continue;
        }

        const body = await post(env.server.httpURL, headers, query);
        assert.equal(body.errors, undefined, `${what}: GraphQL errors: ${JSON.stringify(body.errors)}`);
        const data = body.data[field];
        const others = subscriptions().filter((s) => s.user !== user);
        if (field === 'sendMessage') {
          // "The message appears in Ana's tab at once."
          const watchers = others.filter((s) => s.field === 'messageAdded');
          assert.ok(watchers.length > 0, `${what}: no other tab runs messageAdded to see the message`);
          for (const s of watchers) {
            await s.collector.until((c) => c.items.some((m) => m.seq === data.seq), `the message (seq ${data.seq}) in ${s.user}'s tab`);
          }
        } else if (field === 'conversations') {
          const node = data.edges.map((e) => e.node).find((n) => n.id === demo.conversationId);
          assert.ok(node, `${what}: the inbox lists the demo conversation`);
          unread[user] = node.unreadCount;
          const claimed = /`unreadCount: (\d+)`/.exec(block.prose);
          if (claimed) assert.equal(node.unreadCount, Number(claimed[1]), `${what}: the unreadCount the README says the inbox shows`);
        } else if (field === 'markRead') {
          // The count drops: from what the inbox showed (unread) to 0.
          if (unread[user] !== undefined) {
            assert.ok(unread[user] > 0, `${what}: ${user}'s inbox showed unreadCount ${unread[user]}, so markRead shows no count dropping`);
          }
          assert.equal(data.unreadCount, 0, `${what}: unreadCount after markRead`);
          const claimed = /`unreadCount` drops to (\d+)/.exec(block.prose);
          if (claimed) assert.equal(data.unreadCount, Number(claimed[1]), `${what}: the unreadCount the README says markRead shows`);
          unread[user] = 0;
        } else if (field === 'setTyping') {
          // The other tab sees TYPING_STARTED at once, TYPING_STOPPED when it expires.
          assert.equal(data, true);
          const watchers = others.filter((s) => s.field === 'conversationActivity');
          assert.ok(watchers.length > 0, `${what}: no other tab runs conversationActivity to see the typing`);
          for (const s of watchers) {
            const started = await s.collector.until((c) => c.items.some((e) => e.kind === 'TYPING_STARTED'), `TYPING_STARTED in ${s.user}'s tab`);
            const ev = started.items.find((e) => e.kind === 'TYPING_STARTED');
            if (ev.actor) assert.equal(ev.actor.displayName, 'Ben Worker');
            // JOBCHAT_TYPING_TTL is 6 s.
            await s.collector.until((c) => c.items.some((e) => e.kind === 'TYPING_STOPPED'), `TYPING_STOPPED in ${s.user}'s tab`, { ms: 12_000 });
          }
        }
      }
    } finally {
      for (const s of subscriptions()) s.stop();
    }
  }, { timeout: 90_000 });
}, { serverArgs: serverArgs(command.text), jwtSecret: false });

// Keep the parser honest about the shapes the README may take.

describe('reading the walkthrough', () => {
  it('finds the command, the operations and who runs each', () => {
    const md = [
      '# x', '## Five minutes with the playground', '',
      '1. Start:', '', '   ```sh', '   go build -o jobchat ./cmd/jobchat && ./jobchat --demo   # the demo', '   ```', '',
      '2. Ana\'s tab: paste `{"Authorization": "Bearer <Ana\'s token>"}` and run:', '', '   ```graphql', '   { me { id } }', '   ```', '',
      '3. As Ben (`{"Authorization": "Bearer <Ben\'s token>"}`):', '', '   ```graphql', '   mutation {', '     a', '   }', '   ```', '',
      '   Then mark it read:', '', '   ```graphql', '   mutation { b }', '   ```', '',
      '## Next', '```graphql', '{ not }', '```',
    ].join('\n');
    const w = parseWalkthrough(md);
    assert.deepEqual(w.blocks.map((b) => [b.lang, b.step, b.user]), [['sh', 1, undefined], ['graphql', 2, 'Ana'], ['graphql', 3, 'Ben'], ['graphql', 3, 'Ben']]);
    assert.equal(w.blocks[2].text, 'mutation {\n  a\n}');
    assert.deepEqual(serverArgs(w.blocks[0].text), ['--demo']);
    assert.deepEqual(serverArgs('go run ./cmd/jobchat --demo'), ['--demo']);
    assert.throws(() => serverArgs('curl localhost:8080'), /not a command/);
    assert.throws(() => fill('{ a(id: "<id>") b(x: "<other>") }', { '<id>': '1' }), /unknown placeholder <other>/);
  });

  it('fails when the prose does not say who runs a block', () => {
    const md = '## Five minutes with the playground\n\n1. Run:\n\n   ```graphql\n   { me { id } }\n   ```\n';
    assert.throws(() => parseWalkthrough(md), /does not say who runs/);
  });
});
