// Resume: a graphql-ws client keeps a messageAdded subscription while Ben
// sends a stream of messages; the socket is cut twice — once by the network
// (a TCP proxy drops it), once by a server restart (SIGTERM, then the same
// binary on the same port and database). The client retries, and each retry
// re-sends the subscription with afterSeq = the last seq it saw. Every seq
// must arrive exactly once, in order.
//
// graphql-ws re-sends the same subscribe payload object on every retry (it
// is serialised again each time), so afterSeq is a getter over the last
// seq seen: each retry asks for exactly what the client has not got.

import assert from 'node:assert/strict';

import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Collector, MESSAGE_ADDED, postGraphQL, sleep, suite } from '../lib/harness.js';
import { Proxy } from '../lib/proxy.js';

const TOTAL = 30; // messages Ben sends
const DROP_AT = 10; // the proxy cuts the socket after this many are sent
const RESTART_AT = 20; // the server restarts after this many are sent

const SEND = `mutation($in: SendMessageInput!) { sendMessage(input: $in) { id seq } }`;

suite('graphql-ws resume with afterSeq across drops and a restart', (env) => {
  env.test('every seq exactly once, in order', async (t) => {
    const conv = await env.newConversation('Move the piano');
    const proxy = await new Proxy(env.server.port).listen();
    const events = { connected: 0, closed: [] };
    let lastSeq = 0;
    const client = createClient({
      url: `ws://127.0.0.1:${proxy.port}/query`,
      webSocketImpl: WebSocket,
      connectionParams: () => ({ authorization: `Bearer ${env.ana.token}` }),
      retryAttempts: 50,
      shouldRetry: () => true,
      retryWait: () => sleep(100),
      on: {
        connected: () => { events.connected++; },
        closed: (e) => { events.closed.push(e?.code); },
      },
    });
    const live = new Collector('resuming messageAdded');
    const seqs = [];
    const dispose = client.subscribe({
      query: MESSAGE_ADDED,
      variables: {
        c: conv.id,
        get after() { return lastSeq; },
      },
    }, {
      next: (r) => {
        if (r.errors) {
          live.sink.error(r.errors);
          return;
        }
        const m = r.data.messageAdded;
        seqs.push(m.seq);
        lastSeq = m.seq;
        live.sink.next(m);
      },
      error: live.sink.error,
      complete: live.sink.complete,
    });

    let restart;
    try {
      // The system message (seq 1) is replayed first.
      const first = await live.nth(1);
      assert.equal(first.seq, 1);
      assert.equal(first.messageType, 'SYSTEM');

      const deadline = Date.now() + 30_000;
      for (let i = 1; i <= TOTAL; i++) {
        // Send with retries on the same clientMessageId: a send lost in a
        // restart is retried and stored once.
        for (;;) {
          assert.ok(Date.now() < deadline, `could not send message ${i} within 30 s`);
          try {
            const body = await postGraphQL(env.server.httpURL, env.ben.token, SEND, {
              in: { conversationId: conv.id, messageText: `message ${i}`, clientMessageId: `resume-${i}` },
            });
            if (!body.errors) {
              assert.equal(body.data.sendMessage.seq, i + 1, `message ${i} got seq ${body.data.sendMessage.seq}`);
              break;
            }
          } catch (e) {
            if (e instanceof assert.AssertionError) throw e;
            // server down: retry
          }
          await sleep(50);
        }
        if (i === DROP_AT) {
          const dropped = proxy.dropAll();
          assert.equal(dropped, 1, 'the subscriber had one socket through the proxy');
        }
        if (i === RESTART_AT) {
          restart = env.server.stop().then(() => env.server.start());
        }
        await sleep(10);
      }
      await restart;

      await live.until((c) => c.items.length >= TOTAL + 1 && c.items.at(-1).seq >= TOTAL + 1,
        `seq ${TOTAL + 1}`, { ms: 20_000 });
      await sleep(200); // let any duplicate arrive
      const want = Array.from({ length: TOTAL + 1 }, (_, k) => k + 1);
      t.diagnostic(`connected ${events.connected} times; close codes ${JSON.stringify(events.closed)}; server started ${env.server.starts} times`);
      assert.deepEqual(seqs, want, 'seqs received: each exactly once, in order');
      assert.deepEqual(live.items.slice(1).map((m) => m.messageText), want.slice(1).map((k) => `message ${k - 1}`));
      assert.deepEqual(live.errors, []);
      assert.equal(live.completed, false, 'the subscription completed instead of resuming');
      assert.ok(events.connected >= 3, `the client connected ${events.connected} times, want at least 3 (start, after the drop, after the restart); closes: ${events.closed}`);
    } finally {
      dispose();
      await client.dispose();
      await proxy.close();
      await restart?.catch(() => {});
    }
  }, { timeout: 60_000 });
});
