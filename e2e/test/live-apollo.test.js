// Apollo Client 4 (HttpLink + GraphQLWsLink, split by operation type)
// drives the live features of issue 8 as the apps would: the worker's
// inbox and the chat's activity stream follow the client typing, sending,
// and the worker's delivery and read ticks.

import assert from 'node:assert/strict';

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Collector, describeError, sleep, suite, withTimeout, WAIT_MS } from '../lib/harness.js';
import { CONVERSATION_ACTIVITY, INBOX_UPDATED, kinds, probeLive, RFC3339_UTC } from '../lib/live.js';

const ACTIVITY = gql`${CONVERSATION_ACTIVITY}`;
const INBOX = gql`${INBOX_UPDATED}`;

const SET_TYPING = gql`
  mutation SetTyping($c: ID!, $typing: Boolean!) { setTyping(conversationId: $c, typing: $typing) }
`;

const SEND = gql`
  mutation Send($in: SendMessageInput!) {
    sendMessage(input: $in) { id seq messageText status }
  }
`;

const MARK_DELIVERED = gql`
  mutation MarkDelivered($c: ID!, $upTo: Int!) {
    markDelivered(conversationId: $c, upToSeq: $upTo) { id myLastDeliveredSeq myLastReadSeq }
  }
`;

const MARK_READ = gql`
  mutation MarkRead($c: ID!, $upTo: Int) {
    markRead(conversationId: $c, upToSeq: $upTo) { id myLastDeliveredSeq myLastReadSeq unreadCount }
  }
`;

const TICKS = gql`
  query Ticks($c: ID!) {
    conversation(id: $c) {
      id otherLastDeliveredSeq otherLastReadSeq
      messages(last: 1) { edges { node { id seq status isRead } } }
    }
  }
`;

const UNREAD_TOTAL = gql`query UnreadTotal { unreadTotal }`;

function apolloFor(server, user) {
  const ws = createClient({
    url: server.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
    lazy: true,
  });
  const http = new HttpLink({ uri: server.httpURL, headers: { authorization: `Bearer ${user.token}` } });
  const link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(ws),
    http,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  const subs = [];
  return {
    client,
    /** Subscribes; the collector receives the subscription field's value. */
    watch(query, variables, field, name) {
      const c = new Collector(name);
      subs.push(client.subscribe({ query, variables }).subscribe({
        next: (r) => (r.error ? c.sink.error(r.error) : c.sink.next(r.data[field])),
        error: c.sink.error,
        complete: c.sink.complete,
      }));
      return c;
    },
    async mutate(mutation, variables, what) {
      const r = await withTimeout(client.mutate({ mutation, variables }), WAIT_MS, what);
      assert.equal(r.error, undefined, `${what}: ${describeError(r.error)}`);
      return r.data;
    },
    async query(query, variables, what) {
      const r = await withTimeout(client.query({ query, variables, fetchPolicy: 'network-only' }), WAIT_MS, what);
      assert.equal(r.error, undefined, `${what}: ${describeError(r.error)}`);
      return r.data;
    },
    async close() {
      for (const s of subs) s.unsubscribe();
      client.stop();
      await ws.dispose();
    },
  };
}

suite('Apollo Client 4: inbox stream, typing, delivery and read ticks', (env) => {
  env.test('the worker sees the client type and send; the client sees the ticks', async () => {
    const conv = await env.newConversation('Tile the bathroom');
    const ana = apolloFor(env.server, env.ana); // the client
    const ben = apolloFor(env.server, env.ben); // the worker
    try {
      const benInbox = ben.watch(INBOX, {}, 'inboxUpdated', "Ben's inboxUpdated");
      const benActivity = ben.watch(ACTIVITY, { c: conv.id }, 'conversationActivity', "Ben's conversationActivity");
      const anaInbox = ana.watch(INBOX, {}, 'inboxUpdated', "Ana's inboxUpdated");
      const anaActivity = ana.watch(ACTIVITY, { c: conv.id }, 'conversationActivity', "Ana's conversationActivity");
      await probeLive(env, conv.id, [
        { collector: benInbox, inbox: true },
        { collector: benActivity },
        { collector: anaInbox, inbox: true },
        { collector: anaActivity },
      ]);
      const benFrom = benActivity.items.length;
      const anaFrom = anaActivity.items.length;
      const benInboxFrom = benInbox.items.length;
      const anaInboxFrom = anaInbox.items.length;
      const benBase = (await ben.query(UNREAD_TOTAL, {}, "Ben's unreadTotal")).unreadTotal;
      assert.ok(benBase >= 1, "the conversation's system message is unread for Ben");

      // Ana types: one TYPING_STARTED for Ben, however often she renews it.
      const typing = [];
      for (let i = 0; i < 3; i++) {
        typing.push((await ana.mutate(SET_TYPING, { c: conv.id, typing: true }, 'setTyping(true)')).setTyping);
      }
      assert.deepEqual(typing, [true, true, true], 'setTyping returns true');
      await benActivity.until((c) => kinds(c, 'TYPING_STARTED', benFrom).length >= 1, 'TYPING_STARTED');
      const [started] = kinds(benActivity, 'TYPING_STARTED', benFrom);
      assert.equal(started.conversationId, conv.id);
      assert.equal(started.actor?.id, env.ana.id);
      assert.equal(started.actor?.displayName, env.ana.name);
      assert.equal(started.upToSeq, null);
      assert.equal(started.message, null);
      assert.match(started.at, RFC3339_UTC);

      // Ana sends: Ben's inbox gets the message, and her typing stops.
      const sentAt = Date.now();
      const sent = (await ana.mutate(SEND, {
        in: { conversationId: conv.id, messageText: 'The tiles arrive on Tuesday.', clientMessageId: 'live-apollo-1' },
      }, 'sendMessage')).sendMessage;
      assert.equal(sent.seq, 2);
      assert.equal(sent.status, 'SENT', 'nobody else has received it yet');

      await benInbox.until((c) => kinds(c, 'MESSAGE_ADDED', benInboxFrom).some((e) => e.conversation.id === conv.id),
        'MESSAGE_ADDED on the inbox');
      const added = kinds(benInbox, 'MESSAGE_ADDED', benInboxFrom).filter((e) => e.conversation.id === conv.id);
      assert.equal(added.length, 1, `one MESSAGE_ADDED: ${JSON.stringify(added)}`);
      assert.equal(added[0].unreadTotal, benBase + 1, "Ben's unreadTotal after the message");
      assert.equal(added[0].conversation.lastSeq, 2);
      assert.equal(added[0].conversation.unreadCount, 2, 'the system message and Ana\'s are unread');
      assert.equal(added[0].conversation.status, 'OPEN');
      const last = added[0].conversation.lastMessage;
      assert.deepEqual([last?.id, last?.seq, last?.messageText], [sent.id, 2, 'The tiles arrive on Tuesday.'], 'lastMessage');

      await benActivity.until((c) => kinds(c, 'TYPING_STOPPED', benFrom).length >= 1, 'TYPING_STOPPED after the send');
      const [stopped] = kinds(benActivity, 'TYPING_STOPPED', benFrom);
      assert.equal(stopped.actor?.id, env.ana.id);
      assert.equal(stopped.conversationId, conv.id);
      assert.ok(Date.now() - sentAt < 4000, 'the send stopped the typing, not the 6 s TTL');
      assert.equal(kinds(benActivity, 'TYPING_STARTED', benFrom).length, 1, 'TYPING_STARTED once for three setTyping(true)');

      // Ben's apps receive the message, then he reads it: Ana's activity
      // gets DELIVERED, then READ, with his pointer.
      const delivered = (await ben.mutate(MARK_DELIVERED, { c: conv.id, upTo: 2 }, 'markDelivered')).markDelivered;
      assert.equal(delivered.myLastDeliveredSeq, 2);
      await anaActivity.until((c) => kinds(c, 'DELIVERED', anaFrom).length >= 1, 'DELIVERED');
      const [dlv] = kinds(anaActivity, 'DELIVERED', anaFrom);
      assert.equal(dlv.actor?.id, env.ben.id);
      assert.equal(dlv.upToSeq, 2);
      assert.equal(dlv.conversationId, conv.id);
      assert.match(dlv.at, RFC3339_UTC);
      let ticks = (await ana.query(TICKS, { c: conv.id }, 'ticks after markDelivered')).conversation;
      assert.equal(ticks.otherLastDeliveredSeq, 2);
      assert.equal(ticks.messages.edges[0].node.id, sent.id);
      assert.equal(ticks.messages.edges[0].node.status, 'DELIVERED');
      assert.equal(ticks.messages.edges[0].node.isRead, false);

      const read = (await ben.mutate(MARK_READ, { c: conv.id, upTo: 2 }, 'markRead')).markRead;
      assert.equal(read.myLastReadSeq, 2);
      assert.equal(read.unreadCount, 0);
      await anaActivity.until((c) => kinds(c, 'READ', anaFrom).length >= 1, 'READ');
      const [rd] = kinds(anaActivity, 'READ', anaFrom);
      assert.equal(rd.actor?.id, env.ben.id);
      assert.equal(rd.upToSeq, 2);
      const order = anaActivity.items.slice(anaFrom).map((e) => e.kind).filter((k) => k === 'DELIVERED' || k === 'READ');
      assert.deepEqual(order, ['DELIVERED', 'READ'], 'one DELIVERED, then one READ');

      ticks = (await ana.query(TICKS, { c: conv.id }, 'ticks after markRead')).conversation;
      assert.equal(ticks.otherLastReadSeq, 2);
      assert.equal(ticks.otherLastDeliveredSeq, 2);
      assert.equal(ticks.messages.edges[0].node.status, 'READ', "the client's query shows the message READ");
      assert.equal(ticks.messages.edges[0].node.isRead, true);

      // Ben's own read reaches his inbox (his badge drops).
      await benInbox.until((c) => kinds(c, 'READ', benInboxFrom).some((e) => e.conversation.id === conv.id), 'READ on the inbox');
      const benRead = kinds(benInbox, 'READ', benInboxFrom).find((e) => e.conversation.id === conv.id);
      assert.equal(benRead.conversation.unreadCount, 0);
      assert.equal(benRead.conversation.myLastReadSeq, 2);
      assert.equal(benRead.unreadTotal, benBase - 1);

      // The typer gets no typing events of her own; her send is one
      // MESSAGE_ADDED on her inbox, not a READ as well.
      await sleep(300);
      const anaTyping = anaActivity.items.slice(anaFrom).filter((e) => e.kind.startsWith('TYPING_'));
      assert.deepEqual(anaTyping, [], "the typer's own subscription got typing events");
      const anaOwn = anaInbox.items.slice(anaInboxFrom).filter((e) => e.conversation.id === conv.id);
      assert.deepEqual(anaOwn.map((e) => e.kind), ['MESSAGE_ADDED'], "Ana's inbox events for her own send");
      assert.equal(anaOwn[0].conversation.myLastReadSeq, 2, "a send moves the sender's read pointer silently");
      assert.equal(anaOwn[0].conversation.unreadCount, 0);

      for (const c of [benInbox, benActivity, anaInbox, anaActivity]) assert.deepEqual(c.errors, [], c.name);
    } finally {
      await ana.close();
      await ben.close();
    }
  });
});
