// Helpers for the live features (issue 8): the inbox and activity
// subscriptions' selections, and a probe that tells when subscriptions are
// live. Activity and inbox events are live only, never replayed, so a test
// must know its subscriptions are in place on the server before it acts.

import { sleep, WAIT_MS } from './harness.js';

/** The fields of ConversationActivity the tests ask for. */
export const ACTIVITY_FIELDS = `kind conversationId actor { id displayName } upToSeq at
  message { id seq status messageText reactions { emoji count reactedByMe } }`;

export const CONVERSATION_ACTIVITY = `subscription OnActivity($c: ID!) {
  conversationActivity(conversationId: $c) { ${ACTIVITY_FIELDS} }
}`;

/** The fields of InboxEvent the tests ask for. */
export const INBOX_FIELDS = `kind unreadTotal
  conversation { id lastSeq unreadCount myLastReadSeq status lastMessage { id seq messageText } }`;

export const INBOX_UPDATED = `subscription OnInbox { inboxUpdated { ${INBOX_FIELDS} } }`;

/** An RFC 3339 time in UTC, as the Time scalar writes it. */
export const RFC3339_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;

/** Events of kind in c's items, from index from on. */
export const kinds = (c, kind, from = 0) => c.items.slice(from).filter((e) => e.kind === kind);

/**
 * Waits until every watcher's subscription is live. A watcher is
 * { collector, inbox: bool }: its collector holds the events themselves
 * (the inboxUpdated or conversationActivity object). Each round, the
 * job-service closes and reopens the conversation, which changes nothing
 * else and broadcasts CONVERSATION_REOPENED on the activity stream and
 * CONVERSATION_UPDATED (status OPEN) on the participants' inboxes; once one
 * round has reached every watcher, each has received everything broadcast
 * before it, and so will receive what comes next. Events of the probe stay
 * in the collectors: tests select the kinds they check.
 */
export async function probeLive(env, conversationId, watchers, { ms = WAIT_MS } = {}) {
  const deadline = Date.now() + ms;
  const seen = (w, from) => w.collector.items.slice(from).some((e) => (w.inbox
    ? e.kind === 'CONVERSATION_UPDATED' && e.conversation?.id === conversationId && e.conversation?.status === 'OPEN'
    : e.kind === 'CONVERSATION_REOPENED' && e.conversationId === conversationId));
  for (let round = 1; ; round++) {
    const marks = watchers.map((w) => w.collector.items.length);
    await env.gql(env.serviceToken, 'mutation($c: ID!) { closeConversation(conversationId: $c, reason: "e2e probe") { status } }', { c: conversationId });
    await env.gql(env.serviceToken, 'mutation($c: ID!) { reopenConversation(conversationId: $c) { status } }', { c: conversationId });
    const roundEnd = Math.min(Date.now() + 500, deadline);
    for (;;) {
      for (const w of watchers) {
        if (w.collector.errors.length > 0) {
          throw new Error(`${w.collector.name} errored while probing: ${JSON.stringify(w.collector.errors[0])}`);
        }
      }
      if (watchers.every((w, i) => seen(w, marks[i]))) return round;
      if (Date.now() > roundEnd) break;
      await sleep(25);
    }
    if (Date.now() > deadline) {
      const missing = watchers.filter((w, i) => !seen(w, marks[i])).map((w) => w.collector.name);
      throw new Error(`subscriptions not live after ${round} close/reopen probes in ${ms} ms: ${missing.join(', ')}`);
    }
  }
}
