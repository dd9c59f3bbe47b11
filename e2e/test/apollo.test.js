// Apollo Client 4: queries and mutations over HttpLink, the messageAdded
// subscription over GraphQLWsLink (graphql-ws, graphql-transport-ws
// subprotocol), split by operation type; subscribed messages land in the
// normalized cache and markRead updates the cached conversation.

import assert from 'node:assert/strict';

import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Collector, describeError, MESSAGE_FIELDS, suite, withTimeout, WAIT_MS } from '../lib/harness.js';

const INBOX = gql`
  query Inbox {
    conversations(first: 20) {
      edges {
        node {
          id
          job { id title }
          myRole
          otherParticipant { id displayName }
          lastSeq
          unreadCount
          myLastReadSeq
          lastMessage { id seq messageText }
        }
      }
    }
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
  mutation MarkRead($c: ID!) {
    markRead(conversationId: $c) { id unreadCount myLastReadSeq lastSeq }
  }
`;

const MESSAGE_FRAGMENT = gql`
  fragment CachedMessage on Message { id seq messageText senderId senderName messageType }
`;

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
  return { client, ws, close: async () => { client.stop(); await ws.dispose(); } };
}

function inboxNode(data, conversationId) {
  const edge = data.conversations.edges.find((e) => e.node.id === conversationId);
  assert.ok(edge, `conversation ${conversationId} not in the inbox: ${JSON.stringify(data)}`);
  return edge.node;
}

suite('Apollo Client 4 (HttpLink + GraphQLWsLink)', (env) => {
  env.test('inbox, live message into the cache, unread counts and markRead', async () => {
    const conv = await env.newConversation('Fix the kitchen sink');
    const ana = apolloFor(env.server, env.ana);
    const ben = apolloFor(env.server, env.ben);
    let sub;
    try {
      // Ana's inbox: one conversation with Ben, the system message unread.
      const inbox = await withTimeout(ana.client.query({ query: INBOX, fetchPolicy: 'network-only' }), WAIT_MS, 'inbox query');
      assert.equal(inbox.error, undefined, `inbox error: ${describeError(inbox.error)}`);
      let node = inboxNode(inbox.data, conv.id);
      assert.equal(node.job.title, 'Fix the kitchen sink');
      assert.equal(node.myRole, 'CLIENT');
      assert.deepEqual({ ...node.otherParticipant }, { __typename: 'Profile', id: env.ben.id, displayName: env.ben.name });
      assert.equal(node.lastSeq, 1);
      assert.equal(node.unreadCount, 1, 'the system message is unread');
      assert.equal(inbox.data.unreadTotal, 1);

      // Ana subscribes from the last seq she has; Ben sends.
      const live = new Collector('apollo messageAdded');
      sub = ana.client.subscribe({ query: MESSAGE_ADDED, variables: { c: conv.id, after: node.lastSeq } }).subscribe({
        next: (r) => (r.error ? live.sink.error(r.error) : live.sink.next(r.data)),
        error: live.sink.error,
        complete: live.sink.complete,
      });
      const sent = await withTimeout(ben.client.mutate({
        mutation: SEND,
        variables: { in: { conversationId: conv.id, messageText: 'Hi Ana, I can start on Monday.', clientMessageId: 'apollo-1' } },
      }), WAIT_MS, 'sendMessage');
      assert.equal(sent.error, undefined, `sendMessage error: ${describeError(sent.error)}`);
      assert.equal(sent.data.sendMessage.seq, 2);

      const got = (await live.nth(1)).messageAdded;
      assert.equal(got.id, sent.data.sendMessage.id);
      assert.equal(got.seq, 2);
      assert.equal(got.messageText, 'Hi Ana, I can start on Monday.');
      assert.equal(got.senderId, env.ben.id);
      assert.equal(got.senderName, env.ben.name);
      assert.equal(got.messageType, 'TEXT');
      assert.equal(got.clientMessageId, 'apollo-1');
      assert.equal(got.conversationId, conv.id);

      // The subscribed message is in Ana's normalized cache.
      const cacheId = ana.client.cache.identify({ __typename: 'Message', id: got.id });
      assert.equal(cacheId, `Message:${got.id}`);
      const cached = ana.client.readFragment({ id: cacheId, fragment: MESSAGE_FRAGMENT });
      assert.ok(cached, 'subscribed message not in the cache');
      assert.deepEqual({ ...cached }, {
        __typename: 'Message', id: got.id, seq: 2, messageText: 'Hi Ana, I can start on Monday.',
        senderId: env.ben.id, senderName: env.ben.name, messageType: 'TEXT',
      });

      // Unread counts: Ana has the system message and Ben's; Ben's own
      // message moved his read pointer to it.
      const after = await ana.client.query({ query: INBOX, fetchPolicy: 'network-only' });
      node = inboxNode(after.data, conv.id);
      assert.equal(node.lastSeq, 2);
      assert.equal(node.unreadCount, 2);
      assert.equal(node.lastMessage.id, got.id);
      assert.equal(after.data.unreadTotal, 2);
      const benInbox = await ben.client.query({ query: INBOX, fetchPolicy: 'network-only' });
      const benNode = inboxNode(benInbox.data, conv.id);
      assert.equal(benNode.myRole, 'WORKER');
      assert.equal(benNode.unreadCount, 0);
      assert.equal(benNode.myLastReadSeq, 2);
      assert.equal(benInbox.data.unreadTotal, 0);

      // markRead: the mutation's Conversation updates the cached inbox entry.
      const marked = await ana.client.mutate({ mutation: MARK_READ, variables: { c: conv.id } });
      assert.equal(marked.error, undefined, `markRead error: ${describeError(marked.error)}`);
      assert.equal(marked.data.markRead.unreadCount, 0);
      assert.equal(marked.data.markRead.myLastReadSeq, 2);
      const fromCache = ana.client.readQuery({ query: INBOX });
      assert.ok(fromCache, 'inbox not in the cache');
      const cachedNode = inboxNode(fromCache, conv.id);
      assert.equal(cachedNode.unreadCount, 0, 'markRead did not update the cached conversation');
      assert.equal(cachedNode.myLastReadSeq, 2);
      const total = await ana.client.query({ query: gql`{ unreadTotal }`, fetchPolicy: 'network-only' });
      assert.equal(total.data.unreadTotal, 0);

      // A second live message reaches the same subscription.
      await env.send(env.ben, conv.id, 'See you then.');
      const second = (await live.nth(2)).messageAdded;
      assert.equal(second.seq, 3);
      assert.equal(second.messageText, 'See you then.');
      assert.equal(live.items.length, 2, 'no duplicate deliveries');
      assert.deepEqual(live.errors, []);
    } finally {
      sub?.unsubscribe();
      await ana.close();
      await ben.close();
    }
  });
});
