// subscriptions-transport-ws: the legacy `graphql-ws` subprotocol
// (connection_init with connectionParams, start, data, stop, complete), as
// older Apollo apps still speak it.

import assert from 'node:assert/strict';

import stws from 'subscriptions-transport-ws';
import WebSocket from 'ws';

import { Collector, MESSAGE_ADDED, sleep, suite, withTimeout, WAIT_MS } from '../lib/harness.js';

const { SubscriptionClient } = stws;

/** Opens a legacy client and waits for connection_ack. */
async function connect(server, user) {
  let acked;
  const ack = new Promise((resolve, reject) => {
    acked = (error) => (error ? reject(new Error(`connection_error: ${JSON.stringify(error)}`)) : resolve());
  });
  const client = new SubscriptionClient(server.wsURL, {
    connectionParams: { authorization: `Bearer ${user.token}` },
    reconnect: false,
    connectionCallback: acked,
  }, WebSocket);
  try {
    await withTimeout(ack, WAIT_MS, 'connection_ack on the legacy protocol');
  } catch (e) {
    client.close();
    throw e;
  }
  return client;
}

/** Runs one operation over the client and collects what it sends until complete. */
function operation(client, query, variables) {
  const c = new Collector(`legacy ${query.slice(0, 40)}`);
  const sub = client.request({ query, variables }).subscribe(c.sink);
  return { c, sub };
}

suite('subscriptions-transport-ws (legacy graphql-ws subprotocol)', (env) => {
  env.test('query, subscribe, receive, unsubscribe', async () => {
    const conv = await env.newConversation('Mow the lawn');
    const client = await connect(env.server, env.ana);
    try {
      assert.equal(client.client.protocol, 'graphql-ws', 'negotiated subprotocol');

      // A query over the socket: one data message, then complete.
      const me = operation(client, '{ me { id displayName } }');
      await me.c.until((c) => c.completed, 'the query to complete');
      assert.deepEqual(me.c.items, [{ data: { me: { id: env.ana.id, displayName: env.ana.name } } }]);

      // Subscribe after the system message; Ben sends.
      const live = operation(client, MESSAGE_ADDED, { c: conv.id, after: 1 });
      const sent = await env.send(env.ben, conv.id, 'The mower is in the shed?', 'legacy-1');
      assert.equal(sent.seq, 2);
      const got = await live.c.nth(1);
      assert.equal(got.errors, undefined, `errors: ${JSON.stringify(got.errors)}`);
      assert.equal(got.data.messageAdded.id, sent.id);
      assert.equal(got.data.messageAdded.seq, 2);
      assert.equal(got.data.messageAdded.messageText, 'The mower is in the shed?');
      assert.equal(got.data.messageAdded.senderId, env.ben.id);
      assert.equal(got.data.messageAdded.clientMessageId, 'legacy-1');

      // Unsubscribe (stop); later messages must not arrive, and the socket
      // still serves operations.
      live.sub.unsubscribe();
      await env.send(env.ben, conv.id, 'Never mind, found it.');
      const again = operation(client, 'query($c: ID!) { conversation(id: $c) { lastSeq } }', { c: conv.id });
      await again.c.until((c) => c.completed, 'a query after stop to complete');
      assert.equal(again.c.items[0]?.data?.conversation?.lastSeq, 3);
      await sleep(300);
      assert.equal(live.c.items.length, 1, `a stopped subscription received more: ${JSON.stringify(live.c.items)}`);
      assert.deepEqual(live.c.errors, []);
    } finally {
      client.close();
    }
  });

  env.test('an invalid token is refused with connection_error', async () => {
    const bad = { token: 'not-a-jwt' };
    await assert.rejects(connect(env.server, bad), /connection_error/);
  });
});
