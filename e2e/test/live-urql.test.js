// urql (@urql/core: fetchExchange + subscriptionExchange over graphql-ws)
// drives the live features of issue 8: the inbox stream across one user's
// devices (a read on the laptop drops the badge on the phone), and
// reactions, whose reactedByMe each viewer sees for themselves.

import assert from 'node:assert/strict';

import { Client, fetchExchange, gql, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Collector, sleep, suite, withTimeout, WAIT_MS } from '../lib/harness.js';
import { CONVERSATION_ACTIVITY, INBOX_UPDATED, kinds, probeLive, RFC3339_UTC } from '../lib/live.js';

const SEND = gql`
  mutation Send($in: SendMessageInput!) {
    sendMessage(input: $in) { id seq }
  }
`;

const MARK_READ = gql`
  mutation MarkRead($c: ID!, $upTo: Int) {
    markRead(conversationId: $c, upToSeq: $upTo) { id unreadCount myLastReadSeq }
  }
`;

const UNREAD_TOTAL = gql`query UnreadTotal { unreadTotal }`;

const REACTION_FIELDS = 'id reactions { emoji count reactedByMe }';

const ADD_REACTION = gql`
  mutation AddReaction($m: ID!, $e: String!) { addReaction(messageId: $m, emoji: $e) { ${REACTION_FIELDS} } }
`;

const REMOVE_REACTION = gql`
  mutation RemoveReaction($m: ID!, $e: String!) { removeReaction(messageId: $m, emoji: $e) { ${REACTION_FIELDS} } }
`;

/** A urql client as user: one "device" with a socket of its own. */
function urqlFor(server, user) {
  const ws = createClient({
    url: server.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
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
          return { subscribe: (sink) => ({ unsubscribe: ws.subscribe(payload, sink) }) };
        },
      }),
    ],
  });
  const subs = [];
  return {
    client,
    /** Subscribes; the collector receives the subscription field's value. */
    watch(query, variables, field, name) {
      const c = new Collector(name);
      subs.push(client.subscription(query, variables).subscribe((r) => {
        if (r.error) c.sink.error(r.error);
        else c.sink.next(r.data[field]);
      }));
      return c;
    },
    /** Runs a query or mutation and returns its data, failing on an error. */
    async run(source, what) {
      const r = await withTimeout(source.toPromise(), WAIT_MS, what);
      assert.equal(r.error, undefined, `${what}: ${r.error}`);
      return r.data;
    },
    async close() {
      for (const s of subs) s.unsubscribe();
      await ws.dispose();
    },
  };
}

/** The reaction groups as plain [emoji, count, reactedByMe] triples. */
const groups = (m) => m.reactions.map((g) => [g.emoji, g.count, g.reactedByMe]);

suite('urql: inbox across devices, reactions per viewer', (env) => {
  env.test('a read on one device reaches the inbox stream of another', async () => {
    const conv = await env.newConversation('Hang the shelves');
    const phone = urqlFor(env.server, env.ana);
    const laptop = urqlFor(env.server, env.ana);
    const ben = urqlFor(env.server, env.ben);
    try {
      const inbox = phone.watch(gql`${INBOX_UPDATED}`, {}, 'inboxUpdated', "Ana's phone inboxUpdated");
      await probeLive(env, conv.id, [{ collector: inbox, inbox: true }]);
      const from = inbox.items.length;
      const mine = (k) => kinds(inbox, k, from).filter((e) => e.conversation.id === conv.id);
      const base = (await laptop.run(laptop.client.query(UNREAD_TOTAL, {}), 'unreadTotal')).unreadTotal;
      assert.ok(base >= 1, "the conversation's system message is unread");

      // Ben sends two messages: the phone's inbox follows, badge up.
      for (const [i, text] of ['Which wall?', 'I have the drill.'].entries()) {
        const sent = (await ben.run(ben.client.mutation(SEND, {
          in: { conversationId: conv.id, messageText: text, clientMessageId: `live-urql-${i}` },
        }), 'sendMessage')).sendMessage;
        assert.equal(sent.seq, 2 + i);
        await inbox.until(() => mine('MESSAGE_ADDED').length === i + 1, `MESSAGE_ADDED #${i + 1}`);
        const ev = mine('MESSAGE_ADDED')[i];
        assert.equal(ev.unreadTotal, base + 1 + i);
        assert.equal(ev.conversation.unreadCount, 2 + i);
        assert.equal(ev.conversation.lastSeq, sent.seq);
        assert.equal(ev.conversation.lastMessage.id, sent.id);
        assert.equal(ev.conversation.lastMessage.messageText, text);
      }

      // The laptop reads up to seq 2, then everything: the phone sees two
      // READ events, each with the badge after the change.
      const part = (await laptop.run(laptop.client.mutation(MARK_READ, { c: conv.id, upTo: 2 }), 'markRead(2)')).markRead;
      assert.equal(part.myLastReadSeq, 2);
      assert.equal(part.unreadCount, 1);
      await inbox.until(() => mine('READ').length >= 1, 'READ after markRead(upToSeq: 2) on the laptop');
      let rd = mine('READ')[0];
      assert.equal(rd.conversation.myLastReadSeq, 2);
      assert.equal(rd.conversation.unreadCount, 1);
      assert.equal(rd.unreadTotal, base, 'the phone badge drops by the two messages read');

      await laptop.run(laptop.client.mutation(MARK_READ, { c: conv.id }), 'markRead()');
      await inbox.until(() => mine('READ').length >= 2, 'READ after markRead() on the laptop');
      rd = mine('READ')[1];
      assert.equal(rd.conversation.myLastReadSeq, 3);
      assert.equal(rd.conversation.unreadCount, 0);
      assert.equal(rd.unreadTotal, base - 1, 'the phone badge: this conversation read to the end');
      const now = (await phone.run(phone.client.query(UNREAD_TOTAL, {}), 'unreadTotal on the phone')).unreadTotal;
      assert.equal(now, rd.unreadTotal, 'the event carries the total a query gives');

      await sleep(200);
      assert.equal(mine('READ').length, 2, `one READ per markRead that moved the pointer: ${JSON.stringify(mine('READ'))}`);
      assert.deepEqual(inbox.errors, []);
    } finally {
      await phone.close();
      await laptop.close();
      await ben.close();
    }
  });

  env.test('reactions: REACTIONS_CHANGED with reactedByMe per viewer', async () => {
    const conv = await env.newConversation('Clean the gutters');
    const ana = urqlFor(env.server, env.ana);
    const ben = urqlFor(env.server, env.ben);
    try {
      const activity = gql`${CONVERSATION_ACTIVITY}`;
      const anaAct = ana.watch(activity, { c: conv.id }, 'conversationActivity', "Ana's conversationActivity");
      const benAct = ben.watch(activity, { c: conv.id }, 'conversationActivity', "Ben's conversationActivity");
      await probeLive(env, conv.id, [{ collector: anaAct }, { collector: benAct }]);
      const anaFrom = anaAct.items.length;
      const benFrom = benAct.items.length;
      const changes = (c, from) => kinds(c, 'REACTIONS_CHANGED', from);

      const msg = (await ben.run(ben.client.mutation(SEND, {
        in: { conversationId: conv.id, messageText: 'Gutters done, photos attached.', clientMessageId: 'live-urql-r' },
      }), 'sendMessage')).sendMessage;

      // Each step: who reacts, the mutation, and the groups each of the two
      // viewers must see on their own subscription.
      const steps = [
        { who: 'ana', op: ADD_REACTION, emoji: '👍', ana: [['👍', 1, true]], ben: [['👍', 1, false]] },
        { who: 'ben', op: ADD_REACTION, emoji: '👍', ana: [['👍', 2, true]], ben: [['👍', 2, true]] },
        { who: 'ben', op: ADD_REACTION, emoji: '❤️', ana: [['👍', 2, true], ['❤️', 1, false]], ben: [['👍', 2, true], ['❤️', 1, true]] },
        { who: 'ana', op: REMOVE_REACTION, emoji: '👍', ana: [['👍', 1, false], ['❤️', 1, false]], ben: [['👍', 1, true], ['❤️', 1, true]] },
      ];
      for (const [i, s] of steps.entries()) {
        const actor = s.who === 'ana' ? ana : ben;
        const field = s.op === ADD_REACTION ? 'addReaction' : 'removeReaction';
        const what = `${s.who} ${field} ${s.emoji}`;
        const returned = (await actor.run(actor.client.mutation(s.op, { m: msg.id, e: s.emoji }), what))[field];
        assert.equal(returned.id, msg.id);
        assert.deepEqual(groups(returned), s[s.who], `${what}: the mutation's message, as the reactor sees it`);

        for (const [viewer, c, from] of [['ana', anaAct, anaFrom], ['ben', benAct, benFrom]]) {
          await c.until(() => changes(c, from).length >= i + 1, `REACTIONS_CHANGED #${i + 1} (${what})`);
          const ev = changes(c, from)[i];
          assert.equal(ev.conversationId, conv.id);
          assert.equal(ev.actor?.id, env[s.who].id, `${what}: the actor`);
          assert.match(ev.at, RFC3339_UTC);
          assert.equal(ev.message?.id, msg.id);
          assert.equal(ev.message.seq, msg.seq);
          assert.equal(ev.message.messageText, 'Gutters done, photos attached.');
          assert.deepEqual(groups(ev.message), s[viewer], `${what}: the groups ${viewer} sees`);
        }
      }

      // Adding a reaction that is there changes nothing.
      const again = (await ana.run(ana.client.mutation(ADD_REACTION, { m: msg.id, e: '❤️' }), 'ana addReaction ❤️')).addReaction;
      assert.deepEqual(groups(again), [['👍', 1, false], ['❤️', 2, true]]);
      const twice = (await ana.run(ana.client.mutation(ADD_REACTION, { m: msg.id, e: '❤️' }), 'ana addReaction ❤️ again')).addReaction;
      assert.deepEqual(groups(twice), [['👍', 1, false], ['❤️', 2, true]], 'addReaction is idempotent');

      await sleep(200);
      assert.deepEqual(anaAct.errors, []);
      assert.deepEqual(benAct.errors, []);
    } finally {
      await ana.close();
      await ben.close();
    }
  });
});
