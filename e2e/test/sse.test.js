// graphql-sse in "distinct connections mode" (singleConnection: false): each
// operation is its own POST to /query with Accept: text/event-stream, and
// the server streams `next` events, then a `complete` event (GraphQL over
// Server-Sent Events protocol).

import assert from 'node:assert/strict';

import { createClient } from 'graphql-sse';

import { Collector, MESSAGE_ADDED, suite, withTimeout, WAIT_MS } from '../lib/harness.js';

function sseFor(server, token) {
  return createClient({
    url: server.httpURL,
    singleConnection: false,
    retryAttempts: 0,
    headers: token ? { authorization: `Bearer ${token}` } : {},
  });
}

/** Subscribes and records the stream's events next to what reaches the sink. */
function subscribe(client, payload, name) {
  const c = new Collector(name);
  c.events = [];
  let connected;
  c.connected = withTimeout(new Promise((resolve) => { connected = resolve; }), WAIT_MS, `${name} to connect`);
  c.connected.catch(() => {});
  c.dispose = client.subscribe(payload, c.sink, {
    connected: () => connected(),
    message: (m) => { c.events.push(m.event); },
  });
  return c;
}

suite('graphql-sse (distinct connections mode)', (env) => {
  env.test('a query streams next, then complete', async () => {
    const client = sseFor(env.server, env.ana.token);
    const q = subscribe(client, { query: '{ me { id displayName } }' }, 'sse query');
    try {
      await q.until((c) => c.completed, 'the query stream to complete');
      assert.deepEqual(q.items, [{ data: { me: { id: env.ana.id, displayName: env.ana.name } } }]);
      assert.deepEqual(q.events, ['next', 'complete']);
    } finally {
      q.dispose();
      client.dispose();
    }
  });

  env.test('messageAdded: receive a sent message, then complete', async () => {
    const conv = await env.newConversation('Clean the gutters');
    const client = sseFor(env.server, env.ana.token);
    const live = subscribe(client, { query: MESSAGE_ADDED, variables: { c: conv.id, after: 0 } }, 'sse messageAdded');
    try {
      await live.connected;
      // afterSeq 0 replays the system message first.
      const first = await live.nth(1);
      assert.equal(first.errors, undefined, `errors: ${JSON.stringify(first.errors)}`);
      assert.equal(first.data.messageAdded.seq, 1);
      assert.equal(first.data.messageAdded.messageType, 'SYSTEM');

      const sent = await env.send(env.ben, conv.id, 'Ladder is in the garage', 'sse-1');
      const got = await live.nth(2);
      assert.equal(got.data.messageAdded.id, sent.id);
      assert.equal(got.data.messageAdded.seq, 2);
      assert.equal(got.data.messageAdded.messageText, 'Ladder is in the garage');
      assert.equal(got.data.messageAdded.senderId, env.ben.id);
      assert.deepEqual(live.events, ['next', 'next']);
      assert.equal(live.completed, false, 'the stream completed on its own');

      // Disposing ends the stream: the sink completes.
      live.dispose();
      await live.until((c) => c.completed, 'the subscription to complete after dispose');
      assert.deepEqual(live.errors, []);
    } finally {
      live.dispose();
      client.dispose();
    }
  });

  env.test('without a token the subscription is refused', async () => {
    const conv = await env.newConversation('Fix the gate');
    const client = sseFor(env.server, null);
    const c = subscribe(client, { query: MESSAGE_ADDED, variables: { c: conv.id, after: 0 } }, 'unauthenticated sse');
    try {
      await c.until((x) => x.errors.length > 0 || x.items.length > 0 || x.completed, 'a refusal', { allowErrors: true });
      // Refused before the stream (an HTTP 401) or in it (a next event
      // with an UNAUTHENTICATED error); a broken stream is no refusal.
      const status = c.errors.find((e) => e?.response)?.response?.status;
      const inStream = c.items.some((r) => r.errors?.some((e) => e.extensions?.code === 'UNAUTHENTICATED'));
      assert.ok(status === 401 || inStream,
        `no UNAUTHENTICATED refusal: HTTP status ${status}, items ${JSON.stringify(c.items)}, errors ${c.errors.map(String)}`);
      assert.ok(!c.items.some((r) => r.data?.messageAdded), 'messages were streamed without a token');
    } finally {
      c.dispose();
      client.dispose();
    }
  });
});
