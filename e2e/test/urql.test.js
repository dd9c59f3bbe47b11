// urql (@urql/core): queries and mutations through fetchExchange (urql
// sends queries as GET when they fit in a URL, mutations as POST),
// subscriptions through subscriptionExchange over a graphql-ws client.

import assert from 'node:assert/strict';

import { Client, fetchExchange, gql, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Collector, describeError, MESSAGE_FIELDS, suite, withTimeout, WAIT_MS } from '../lib/harness.js';

const CONVERSATION = gql`
  query Conversation($c: ID!) {
    conversation(id: $c) { id lastSeq unreadCount myRole job { title } otherParticipant { id displayName } }
    unreadTotal
  }
`;

const MESSAGE_ADDED = gql`
  subscription OnMessageAdded($c: ID!, $after: Int) {
    messageAdded(conversationId: $c, afterSeq: $after) { ${MESSAGE_FIELDS} }
  }
`;

const SEND = gql`
  mutation Send($in: SendMessageInput!) {
    sendMessage(input: $in) { ${MESSAGE_FIELDS} }
  }
`;

const MARK_READ = gql`
  mutation MarkRead($c: ID!, $upTo: Int) {
    markRead(conversationId: $c, upToSeq: $upTo) { id unreadCount myLastReadSeq }
  }
`;

function urqlFor(server, user) {
  const sockets = [];
  const ws = createClient({
    url: server.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
    on: { connected: (socket) => sockets.push(socket) },
  });
  const client = new Client({
    url: server.httpURL,
    requestPolicy: 'network-only',
    fetchOptions: { headers: { authorization: `Bearer ${user.token}` } },
    exchanges: [
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const payload = { ...request, query: request.query || '' };
          return {
            subscribe(sink) {
              return { unsubscribe: ws.subscribe(payload, sink) };
            },
          };
        },
      }),
    ],
  });
  return { client, ws, sockets };
}

const run = (source, what) => withTimeout(source.toPromise(), WAIT_MS, what);

suite('urql (fetchExchange + subscriptionExchange over graphql-ws)', (env) => {
  env.test('query, subscription receives a sent message, mutations', async () => {
    const conv = await env.newConversation('Paint the fence');
    const ana = urqlFor(env.server, env.ana);
    const ben = urqlFor(env.server, env.ben);
    let sub;
    try {
      const q = await run(ana.client.query(CONVERSATION, { c: conv.id }), 'conversation query');
      assert.equal(q.error, undefined, `query error: ${q.error}`);
      assert.equal(q.data.conversation.id, conv.id);
      assert.equal(q.data.conversation.job.title, 'Paint the fence');
      assert.equal(q.data.conversation.myRole, 'CLIENT');
      assert.equal(q.data.conversation.otherParticipant.id, env.ben.id);
      assert.equal(q.data.conversation.lastSeq, 1);
      assert.equal(q.data.conversation.unreadCount, 1);

      // Subscribe from seq 0: the stored system message comes first, then
      // the live ones.
      const live = new Collector('urql messageAdded');
      sub = ana.client.subscription(MESSAGE_ADDED, { c: conv.id, after: 0 }).subscribe((r) => {
        if (r.error) live.sink.error(r.error);
        else live.sink.next(r.data.messageAdded);
      });
      const first = await live.nth(1);
      assert.equal(ana.sockets.length, 1);
      assert.equal(ana.sockets[0].protocol, 'graphql-transport-ws', 'negotiated subprotocol');
      assert.equal(first.seq, 1);
      assert.equal(first.messageType, 'SYSTEM');
      assert.equal(first.senderId, null);
      assert.equal(first.messageText, "Job 'Paint the fence' has been accepted. Chat is now active.");

      const sent = await run(ben.client.mutation(SEND, {
        in: { conversationId: conv.id, messageText: 'On my way with the brushes', clientMessageId: 'urql-1' },
      }), 'sendMessage');
      assert.equal(sent.error, undefined, `sendMessage error: ${sent.error}`);
      assert.equal(sent.data.sendMessage.seq, 2);
      assert.equal(sent.data.sendMessage.senderId, env.ben.id);

      const got = await live.nth(2);
      assert.equal(got.id, sent.data.sendMessage.id);
      assert.equal(got.seq, 2);
      assert.equal(got.messageText, 'On my way with the brushes');
      assert.equal(got.senderName, env.ben.name);

      // Retrying the mutation with the same clientMessageId returns the
      // first message and stores nothing new.
      const again = await run(ben.client.mutation(SEND, {
        in: { conversationId: conv.id, messageText: 'On my way with the brushes', clientMessageId: 'urql-1' },
      }), 'sendMessage retry');
      assert.equal(again.error, undefined, `sendMessage retry error: ${again.error}`);
      assert.equal(again.data.sendMessage.id, sent.data.sendMessage.id);
      assert.equal(again.data.sendMessage.seq, 2);

      // Ana marks the system message read only: one unread left.
      const marked = await run(ana.client.mutation(MARK_READ, { c: conv.id, upTo: 1 }), 'markRead');
      assert.equal(marked.error, undefined, `markRead error: ${marked.error}`);
      assert.equal(marked.data.markRead.unreadCount, 1);
      assert.equal(marked.data.markRead.myLastReadSeq, 1);
      const q2 = await run(ana.client.query(CONVERSATION, { c: conv.id }), 'conversation query after markRead');
      assert.equal(q2.data.conversation.lastSeq, 2);
      assert.equal(q2.data.conversation.unreadCount, 1);
      assert.equal(q2.data.unreadTotal, 1);

      // Ana's own message over urql reaches her subscription too.
      const mine = await run(ana.client.mutation(SEND, {
        in: { conversationId: conv.id, messageText: 'Great, thanks!', clientMessageId: 'urql-2' },
      }), 'sendMessage as Ana');
      assert.equal(mine.error, undefined, `sendMessage error: ${mine.error}`);
      const third = await live.nth(3);
      assert.equal(third.seq, 3);
      assert.equal(third.id, mine.data.sendMessage.id);
      assert.deepEqual(live.items.map((m) => m.seq), [1, 2, 3], 'the retried send was delivered once');
    } finally {
      sub?.unsubscribe();
      await ana.ws.dispose();
      await ben.ws.dispose();
    }
  });

  env.test('an invalid token: the socket closes with 4403 Forbidden', async () => {
    const conv = await env.newConversation('Fix the gate');
    const bad = urqlFor(env.server, { token: 'not-a-jwt' });
    const c = new Collector('unauthenticated urql messageAdded');
    const sub = bad.client.subscription(MESSAGE_ADDED, { c: conv.id, after: 0 }).subscribe((r) => {
      if (r.error) c.sink.error(r.error);
      else c.sink.next(r.data);
    });
    try {
      await c.until((x) => x.errors.length > 0 || x.items.length > 0, 'a refusal', { allowErrors: true });
      assert.deepEqual(c.items, [], 'messages were delivered to an invalid token');
      // urql wraps the CloseEvent in a CombinedError's networkError.
      const close = c.errors[0]?.networkError ?? c.errors[0];
      assert.equal(close?.code, 4403, `want close 4403, got ${describeError(close)} / ${c.errors[0]}`);
    } finally {
      sub.unsubscribe();
      await bad.ws.dispose();
    }
  });
});
