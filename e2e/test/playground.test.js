// The playground in a real browser (headless chromium through
// puppeteer-core): Ana pastes her token into the Headers tab and runs the
// demo subscription; Ben, in a second tab, sends a message through
// GraphiQL's operation picker; Ana's event list holds both the replayed
// system message and the new message; stopping and running again clears the
// list; a server shutdown shows on the socket's status line. The console
// stays clean throughout: no errors, no Content-Security-Policy violations.
// Screenshots go to a temp dir, named in the test's diagnostics.

import assert from 'node:assert/strict';

import { EDITOR, findChromium, launch, screenshot, screenshotDir, typeInto, watchConsole } from '../lib/browser.js';
import { suite, WAIT_MS } from '../lib/harness.js';

const chromium = findChromium();

/** The demo's subscription, as `--demo` prints it and the README shows it. */
const demoSubscription = (id) =>
  `subscription { messageAdded(conversationId: "${id}", afterSeq: 0) { seq senderName messageType messageText timestamp } }`;

const HELLO = 'Hi Ana, I can start on Monday.';

/** Opens the playground in a new tab, as user, with the token typed into the Headers tab. */
async function openAs(browser, env, user) {
  const page = await browser.newPage();
  const problems = await watchConsole(page, user.name);
  const res = await page.goto(`${env.server.origin}/`, { waitUntil: 'load', timeout: WAIT_MS });
  assert.equal(res.status(), 200);
  await page.waitForSelector(EDITOR.query, { timeout: WAIT_MS });
  const headers = `{"Authorization": "Bearer ${user.token}"}`;
  assert.equal(await typeInto(page, EDITOR.headers, headers), headers, 'the Headers tab holds what was typed');
  return { page, problems };
}

/** The socket status line's phase and close code. */
const socketState = (page) => page.$eval('#jobchat-socket', (el) => ({
  phase: el.dataset.phase, code: el.dataset.code, text: el.textContent,
}));

/** The event list: [{ type, text }], oldest first. */
const eventList = (page) => page.$$eval('#jobchat-events li', (items) => items.map((li) => ({
  type: li.dataset.type, text: li.querySelector('.jobchat-event-text').textContent,
})));

/** Waits until the event list satisfies pred, failing with what it holds. */
async function waitForEvents(page, pred, what) {
  const deadline = Date.now() + WAIT_MS;
  let events = [];
  for (;;) {
    events = await eventList(page);
    if (pred(events)) return events;
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; the event list holds ${JSON.stringify(events)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function waitForSocket(page, phase, code) {
  const sel = `#jobchat-socket[data-phase="${phase}"]${code ? `[data-code="${code}"]` : ''}`;
  try {
    await page.waitForSelector(sel, { timeout: WAIT_MS });
  } catch (e) {
    throw new Error(`socket status not ${phase} ${code ?? ''}: ${JSON.stringify(await socketState(page))}`);
  }
}

/** The messages in the event list's next events. */
const messages = (events) => events.filter((e) => e.type === 'next').map((e) => JSON.parse(e.text).messageAdded);

suite('the playground in headless chromium', (env) => {
  // The page routes by reading the operation text itself (GraphiQL's own
  // parse lags behind the editor), so the reading gets a table of its own.
  env.test('the page picks the operation the server runs', async () => {
    const cases = [
      ['{ me { id } }', undefined, { type: 'query', name: '' }],
      ['subscription { messageAdded(conversationId: "c") { seq } }', undefined, { type: 'subscription', name: '' }],
      ['# subscription {\nmutation M { markRead(conversationId: "{") { unreadCount } }', undefined, { type: 'mutation', name: 'M' }],
      ['mutation Send { a } query Inbox { b }', 'Inbox', { type: 'query', name: 'Inbox' }],
      ['mutation Send { a } query Inbox { b }', 'Send', { type: 'mutation', name: 'Send' }],
      ['mutation Send { a } query Inbox { b }', undefined, null],
      ['subscription S($in: In = {a: "}", b: {c: 1}}) @live { x(y: """ { """) }', undefined, { type: 'subscription', name: 'S' }],
      ['query @dir(a: {b: 1}) { x }', undefined, { type: 'query', name: '' }],
      ['fragment F on Message { seq } subscription Live { m { ...F } }', undefined, { type: 'subscription', name: 'Live' }],
      // A name the document lacks is GraphiQL's, from the previous text.
      ['subscription { m }', 'Inbox', { type: 'subscription', name: '' }],
      ['', undefined, null],
    ];
    const browser = await launch(chromium.path);
    try {
      const page = await browser.newPage();
      const problems = await watchConsole(page, 'page');
      await page.goto(`${env.server.origin}/`, { waitUntil: 'load', timeout: WAIT_MS });
      await page.waitForSelector(EDITOR.query, { timeout: WAIT_MS });
      for (const [query, name, want] of cases) {
        const got = await page.evaluate((q, n) => window.jobchatPlayground.operationOf(q, n), query, name);
        assert.deepEqual(got, want, `operationOf(${JSON.stringify(query)}, ${name})`);
      }
      assert.deepEqual(problems, [], 'the console is clean');
    } finally {
      await browser.close();
    }
  });

  env.test('a subscription lists every event, shows its socket, and the console stays clean', async (t) => {
    const conv = await env.newConversation();
    const shots = screenshotDir();
    t.diagnostic(`screenshots: ${shots}`);
    const browser = await launch(chromium.path);
    try {
      // Ana: the demo subscription, run with the play button.
      const ana = await openAs(browser, env, env.ana);
      await waitForSocket(ana.page, 'idle');
      const sub = demoSubscription(conv.id);
      assert.equal(await typeInto(ana.page, EDITOR.query, sub), sub);
      await ana.page.click('.graphiql-execute-button');
      await waitForSocket(ana.page, 'live');
      let events = await waitForEvents(ana.page, (es) => messages(es).length >= 1, 'the replayed system message');
      assert.deepEqual(messages(events).map((m) => [m.seq, m.messageType]), [[1, 'SYSTEM']]);
      assert.match(messages(events)[0].messageText, /Fix the kitchen sink/);
      await screenshot(ana.page, shots, `${env.db.name}-1-ana-replayed`);

      // Ben, in a second tab: two operations, so GraphiQL's picker asks
      // which to run (the picker once broke the CSP); he picks Send.
      const ben = await openAs(browser, env, env.ben);
      const ops = `mutation Send { sendMessage(input: {conversationId: "${conv.id}", messageText: "${HELLO}"}) { seq } } query Inbox { unreadTotal }`;
      assert.equal(await typeInto(ben.page, EDITOR.query, ops), ops);
      await ben.page.waitForSelector('.graphiql-execute-button[aria-haspopup="menu"]', { timeout: WAIT_MS });
      await ben.page.click('.graphiql-execute-button');
      await ben.page.waitForSelector('[role="menuitem"]', { visible: true, timeout: WAIT_MS });
      await screenshot(ben.page, shots, `${env.db.name}-2-ben-picker`);
      await ben.page.locator('[role="menuitem"]::-p-text(Send)').setTimeout(WAIT_MS).click();
      await ben.page.waitForFunction(() => {
        const cm = document.querySelector('.graphiql-response .CodeMirror');
        return cm && /"seq": 2/.test(cm.CodeMirror.getValue());
      }, { timeout: WAIT_MS });
      await screenshot(ben.page, shots, `${env.db.name}-3-ben-sent`);

      // Ana's list: the replayed system message, then Ben's, newest last.
      events = await waitForEvents(ana.page, (es) => messages(es).length >= 2, "Ben's message in Ana's list");
      assert.deepEqual(messages(events).map((m) => [m.seq, m.messageType, m.senderName]), [
        [1, 'SYSTEM', null],
        [2, 'TEXT', env.ben.name],
      ]);
      assert.equal(messages(events)[1].messageText, HELLO);
      assert.equal((await socketState(ana.page)).phase, 'live');
      await screenshot(ana.page, shots, `${env.db.name}-4-ana-both-events`);

      // Stop: the list keeps the events and says so; the lazy socket closes
      // normally. Run again: the list starts over with the replay.
      await ana.page.click('.graphiql-execute-button');
      events = await waitForEvents(ana.page, (es) => es.at(-1)?.type === 'stopped', 'the stop in the list');
      assert.equal(messages(events).length, 2);
      await waitForSocket(ana.page, 'closed', '1000');
      await ana.page.click('.graphiql-execute-button');
      await waitForSocket(ana.page, 'live');
      events = await waitForEvents(ana.page, (es) => messages(es).length >= 2, 'the replay after running again');
      assert.deepEqual(events.map((e) => e.type), ['next', 'next'], 'a new run starts with an empty list');

      assert.deepEqual([...ana.problems, ...ben.problems], [], 'the console is clean');

      // A shutdown closes the socket with 1001: the status line and the
      // list say so, and GraphiQL's result shows it as the error.
      // (The suite's last test: the server stays down.)
      await env.server.stop();
      await waitForSocket(ana.page, 'closed', '1001');
      events = await waitForEvents(ana.page, (es) => es.at(-1)?.type === 'error', 'the close in the list');
      assert.match(events.at(-1).text, /1001/);
      assert.match((await socketState(ana.page)).text, /closed with code 1001/);
      await screenshot(ana.page, shots, `${env.db.name}-5-ana-shutdown`);
      assert.deepEqual([...ana.problems, ...ben.problems], [], 'the console is clean after the shutdown');
    } finally {
      await browser.close();
    }
  }, { timeout: 120_000 });
}, { skip: chromium.skip, missing: chromium.missing });
