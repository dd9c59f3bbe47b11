// The old Django Channels socket, /ws/chat/{conversationId}/ (issue 8,
// Semantics 7), as the marketplace's existing frontend uses it: a plain
// WebSocket (the `ws` package, sending the page's Origin as a browser
// does), the token in the query string, a cookie or a header, and the old
// JSON frames, checked field by field against the reference document and
// against the same message read through GraphQL.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { binary, Collector, MESSAGE_ADDED, mintToken, sleep, suite, withTimeout, WAIT_MS } from '../lib/harness.js';
import { RFC3339_UTC } from '../lib/live.js';

/** The keys of a message in the old frames, as the reference document lists them. */
const FRAME_KEYS = ['conversation_id', 'id', 'is_read', 'message_text', 'message_type', 'sender_id', 'sender_name', 'timestamp'];

/** The URL of the old socket for a conversation, with the token as a query parameter if given. */
function oldURL(server, conversationId, token) {
  const u = new URL(`ws://127.0.0.1:${server.port}/ws/chat/${encodeURIComponent(conversationId)}/`);
  if (token !== undefined) u.searchParams.set('token', token);
  return u.toString();
}

/**
 * Opens the old socket like the frontend's `new WebSocket(url)` does, and
 * resolves once it is open, with the parsed frames collected. headers add
 * to the browser's (Origin; a Cookie when the test gives one).
 */
async function openOld(server, conversationId, { token, headers = {} } = {}) {
  const ws = new WebSocket(oldURL(server, conversationId, token), { origin: server.origin, headers });
  const frames = new Collector('old socket frames');
  const closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  ws.on('message', (data, isBinary) => {
    if (isBinary) {
      frames.sink.error(new Error('the old socket sent a binary frame'));
      return;
    }
    try {
      frames.sink.next(JSON.parse(data.toString()));
    } catch (e) {
      frames.sink.error(new Error(`the old socket sent a frame that is not JSON: ${data.toString().slice(0, 200)}`));
    }
  });
  // The server never closes the socket in these tests: a close fails the
  // waits at once, naming the code, rather than letting them time out.
  let closing = false;
  closed.then(({ code, reason }) => {
    if (!closing) frames.sink.error(new Error(`the server closed the old socket: ${code} ${JSON.stringify(reason)}`));
    frames.sink.complete();
  });
  await withTimeout(new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`handshake refused: HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  }), WAIT_MS, `the old socket for ${conversationId} to open`);
  ws.on('error', (e) => frames.sink.error(e));
  return {
    ws,
    frames,
    closed,
    send: (payload) => ws.send(typeof payload === 'string' ? payload : JSON.stringify(payload)),
    close: async () => {
      closing = true;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
      await withTimeout(closed, WAIT_MS, 'the old socket to close');
    },
  };
}

/** Tries to open the old socket and returns the HTTP status that refused it; fails if it opens. */
async function refusedStatus(server, conversationId, { token, headers = {} } = {}) {
  const ws = new WebSocket(oldURL(server, conversationId, token), { origin: server.origin, headers });
  try {
    return await withTimeout(new Promise((resolve, reject) => {
      ws.once('open', () => reject(new Error('the handshake succeeded')));
      ws.once('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode);
      });
      ws.once('error', reject);
    }), WAIT_MS, 'the handshake to be answered');
  } finally {
    ws.terminate();
  }
}

/** The conversation's message with seq, read through GraphQL over HTTP as user. */
async function messageBySeq(env, user, conversationId, seq) {
  // Message cursors are opaque: page from the start.
  const data = await env.gql(user.token, `query($c: ID!) {
    conversation(id: $c) { messages(first: 100) { edges { node {
      id conversationId seq senderId senderName messageText messageType timestamp isRead
    } } } }
  }`, { c: conversationId });
  const node = data.conversation.messages.edges.map((e) => e.node).find((m) => m.seq === seq);
  assert.ok(node, `no message with seq ${seq}`);
  return node;
}

/**
 * Checks an old frame field by field: the types the reference document
 * gives, and the values of the same message read through GraphQL.
 */
function assertFrame(frame, type, m) {
  assert.deepEqual(Object.keys(frame).sort(), ['message', 'type'], `frame keys: ${JSON.stringify(frame)}`);
  assert.equal(frame.type, type);
  const b = frame.message;
  assert.deepEqual(Object.keys(b).sort(), FRAME_KEYS, `message keys: ${JSON.stringify(b)}`);
  assert.equal(typeof b.id, 'string', 'id is a string');
  assert.equal(b.id, m.id);
  assert.equal(typeof b.conversation_id, 'string', 'conversation_id is a string');
  assert.equal(b.conversation_id, m.conversationId);
  if (m.messageType === 'SYSTEM') {
    assert.equal(b.sender_id, null, 'sender_id is null for SYSTEM messages');
  } else {
    assert.equal(typeof b.sender_id, 'string', 'sender_id is a string');
    assert.equal(b.sender_id, m.senderId);
  }
  assert.equal(b.sender_name, m.senderName);
  assert.equal(b.message_text, m.messageText);
  assert.equal(b.message_type, m.messageType);
  assert.match(b.timestamp, RFC3339_UTC, 'timestamp is RFC 3339 in UTC');
  assert.equal(Date.parse(b.timestamp), Date.parse(m.timestamp), `timestamp ${b.timestamp} is the message's ${m.timestamp}`);
  assert.equal(typeof b.is_read, 'boolean', 'is_read is a boolean');
  assert.equal(b.is_read, m.isRead);
}

/** A graphql-ws client as user. */
function graphqlWS(server, user) {
  return createClient({
    url: server.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
  });
}

suite('the old Django Channels socket (/ws/chat/{id}/)', (env) => {
  env.test('a message crosses between the old socket and GraphQL both ways', async () => {
    const conv = await env.newConversation('Replace the boiler');
    const gqlws = graphqlWS(env.server, env.ben);
    const live = new Collector('Ben\'s messageAdded');
    const unsubscribe = gqlws.subscribe({ query: MESSAGE_ADDED, variables: { c: conv.id, after: 1 } }, {
      next: (r) => (r.errors ? live.sink.error(r.errors) : live.sink.next(r.data.messageAdded)),
      error: live.sink.error,
      complete: live.sink.complete,
    });
    const old = await openOld(env.server, conv.id, { token: env.ana.token });
    try {
      // Ana's old frontend sends; her socket gets the frame back, as
      // every socket of the conversation does.
      old.send({ message: 'hi', type: 'TEXT' });
      const hi = await old.frames.nth(1);
      const hiMsg = await messageBySeq(env, env.ana, conv.id, 2);
      assert.equal(hiMsg.messageText, 'hi');
      assert.equal(hiMsg.senderId, env.ana.id);
      assert.equal(hiMsg.senderName, env.ana.name);
      assert.equal(hiMsg.messageType, 'TEXT');
      assert.equal(hiMsg.isRead, false);
      assertFrame(hi, 'message', hiMsg);

      // A GraphQL subscriber sees the same message.
      const got = await live.nth(1);
      assert.equal(got.id, hi.message.id);
      assert.equal(got.seq, 2);
      assert.equal(got.messageText, 'hi');
      assert.equal(got.senderId, env.ana.id);
      assert.equal(got.messageType, 'TEXT');

      // A message sent through GraphQL reaches the old socket.
      const sent = await env.send(env.ben, conv.id, 'Hello from GraphQL', 'old-socket-1');
      const fromGraphQL = await old.frames.nth(2);
      assert.equal(fromGraphQL.message.id, sent.id);
      assertFrame(fromGraphQL, 'message', await messageBySeq(env, env.ana, conv.id, sent.seq));
      assert.equal(fromGraphQL.message.sender_id, env.ben.id);
      assert.equal(fromGraphQL.message.sender_name, env.ben.name);

      // A SYSTEM message from the job-service: sender_id null.
      const sys = (await env.gql(env.serviceToken, `mutation($c: ID!) {
        postSystemMessage(conversationId: $c, messageText: "The worker has arrived.", idempotencyKey: "old-socket-sys") { id seq }
      }`, { c: conv.id })).postSystemMessage;
      const sysFrame = await old.frames.nth(3);
      assert.equal(sysFrame.message.id, sys.id);
      assert.equal(sysFrame.message.message_type, 'SYSTEM');
      assert.equal(sysFrame.message.sender_id, null);
      assertFrame(sysFrame, 'message', await messageBySeq(env, env.ana, conv.id, sys.seq));

      await live.nth(3);
      assert.deepEqual(live.items.map((m) => m.seq), [2, 3, 4], 'the GraphQL subscriber got every message once');
      await sleep(200);
      assert.deepEqual(old.frames.items.map((f) => f.message.id), [hi.message.id, sent.id, sys.id], 'every message once on the old socket');
      assert.deepEqual(live.errors, []);
    } finally {
      unsubscribe();
      await gqlws.dispose();
      await old.close();
    }
  });

  env.test('edits and deletions go out as message_updated', async () => {
    const conv = await env.newConversation('Fit the blinds');
    const old = await openOld(env.server, conv.id, { token: env.ana.token });
    try {
      old.send({ message: 'See you at nien', type: 'TEXT' });
      const first = await old.frames.nth(1);
      assert.equal(first.type, 'message');
      assert.equal(first.message.is_read, false);
      const id = first.message.id;

      // Ben reads it; Ana corrects it: the update shows both.
      await env.gql(env.ben.token, 'mutation($c: ID!) { markRead(conversationId: $c) { myLastReadSeq } }', { c: conv.id });
      await env.gql(env.ana.token, 'mutation($m: ID!) { editMessage(messageId: $m, messageText: "See you at nine") { id } }', { m: id });
      const edited = await old.frames.nth(2);
      assertFrame(edited, 'message_updated', await messageBySeq(env, env.ana, conv.id, 2));
      assert.equal(edited.message.id, id);
      assert.equal(edited.message.message_text, 'See you at nine');
      assert.equal(edited.message.is_read, true);

      // Ana withdraws it: the text is gone from the frontend too.
      await env.gql(env.ana.token, 'mutation($m: ID!) { deleteMessage(messageId: $m) { id } }', { m: id });
      const deleted = await old.frames.nth(3);
      assertFrame(deleted, 'message_updated', await messageBySeq(env, env.ana, conv.id, 2));
      assert.equal(deleted.message.id, id);
      assert.equal(deleted.message.message_text, '');
      await sleep(200);
      assert.equal(old.frames.items.length, 3, `frames: ${JSON.stringify(old.frames.items)}`);
    } finally {
      await old.close();
    }
  });

  env.test('invalid JSON and blank messages are ignored; the socket stays open', async () => {
    const conv = await env.newConversation('Seal the bath');
    const old = await openOld(env.server, conv.id, { token: env.ana.token });
    try {
      for (const junk of [
        'not json at all',
        '{"message": "unterminated',
        '{"message":"","type":"TEXT"}',
        '{"message":"   ","type":"TEXT"}',
        '{"message":"\\n\\t \\r\\n","type":"TEXT"}',
        '{"type":"TEXT"}',
      ]) old.send(junk);
      old.send({ message: 'after the noise', type: 'TEXT' });
      const frame = await old.frames.nth(1);
      assert.equal(frame.type, 'message');
      assert.equal(frame.message.message_text, 'after the noise');
      await sleep(300);
      assert.equal(old.frames.items.length, 1, `only the valid message came back: ${JSON.stringify(old.frames.items)}`);
      assert.equal(old.ws.readyState, WebSocket.OPEN, 'the socket is still open');
      assert.deepEqual(old.frames.errors, []);
      const { conversation } = await env.gql(env.ana.token, 'query($c: ID!) { conversation(id: $c) { lastSeq } }', { c: conv.id });
      assert.equal(conversation.lastSeq, 2, 'nothing but the valid message was stored');
    } finally {
      await old.close();
    }
  });

  env.test('a refused send gets an error frame with the GraphQL code; the socket stays open', async () => {
    const conv = await env.newConversation('Lay the patio');
    const old = await openOld(env.server, conv.id, { token: env.ana.token });
    try {
      // Validation: NUL characters are refused, as on sendMessage.
      old.send({ message: 'nul\u0000here', type: 'TEXT' });
      const bad = await old.frames.nth(1);
      assert.equal(bad.type, 'error');
      assert.equal(bad.code, 'BAD_USER_INPUT');
      assert.equal(typeof bad.message, 'string');
      assert.ok(bad.message.length > 0);

      // A closed conversation is read-only.
      await env.gql(env.serviceToken, 'mutation($c: ID!) { closeConversation(conversationId: $c) { status } }', { c: conv.id });
      old.send({ message: 'Can we talk about the price?', type: 'TEXT' });
      const closed = await old.frames.nth(2);
      assert.equal(closed.type, 'error');
      assert.equal(closed.code, 'FAILED_PRECONDITION');
      assert.match(closed.message, /closed/i);

      // Reopened, the same socket sends again.
      await env.gql(env.serviceToken, 'mutation($c: ID!) { reopenConversation(conversationId: $c) { status } }', { c: conv.id });
      old.send({ message: 'Can we talk about the price?', type: 'TEXT' });
      const ok = await old.frames.nth(3);
      assert.equal(ok.type, 'message');
      assert.equal(ok.message.message_text, 'Can we talk about the price?');
      assert.equal(old.ws.readyState, WebSocket.OPEN);
      const { conversation } = await env.gql(env.ana.token, 'query($c: ID!) { conversation(id: $c) { lastSeq } }', { c: conv.id });
      assert.equal(conversation.lastSeq, 2, 'the refused sends stored nothing');
    } finally {
      await old.close();
    }
  });

  env.test('the token from a query parameter, the Authorization header or the cookie', async () => {
    const conv = await env.newConversation('Service the boiler');
    const ways = {
      'token query parameter': { token: env.ana.token },
      'Authorization header': { headers: { authorization: `Bearer ${env.ana.token}` } },
      'jobchat_token cookie': { headers: { cookie: `sessionid=abc; jobchat_token=${env.ana.token}` } },
    };
    const sockets = {};
    try {
      for (const [way, opts] of Object.entries(ways)) sockets[way] = await openOld(env.server, conv.id, opts);
      const sent = await env.send(env.ben, conv.id, 'Everyone hears this.');
      for (const [way, s] of Object.entries(sockets)) {
        const f = await s.frames.nth(1);
        assert.equal(f.message.id, sent.id, way);
        assert.equal(f.message.sender_id, env.ben.id, way);
      }
    } finally {
      for (const s of Object.values(sockets)) await s.close();
    }
  });

  env.test('refused at the handshake with 403', async () => {
    const conv = await env.newConversation('Prune the hedge');
    const bin = await binary();
    const stranger = await mintToken(bin, '--sub', `eve-${randomBytes(3).toString('hex')}`, '--name', 'Eve Stranger');
    const cases = {
      'a bad token': [conv.id, { token: 'not-a-jwt' }],
      'a token signed with another secret': [conv.id, { token: `${env.ana.token.slice(0, -4)}AAAA` }],
      'no token': [conv.id, {}],
      'a bad cookie': [conv.id, { headers: { cookie: 'jobchat_token=not-a-jwt' } }],
      'a stranger to the conversation': [conv.id, { token: stranger }],
      'an unknown conversation': ['no-such-conversation', { token: env.ana.token }],
      'a service token': [conv.id, { token: env.serviceToken }],
    };
    for (const [what, [id, opts]] of Object.entries(cases)) {
      assert.equal(await refusedStatus(env.server, id, opts), 403, what);
    }
    // The conversation is still reachable with a good token.
    const ok = await openOld(env.server, conv.id, { token: env.ana.token });
    await ok.close();
  });
});
