// Uploads with Apollo Client 4 and apollo-upload-client's UploadHttpLink
// (the GraphQL multipart request spec): Ana uploads a photo, sends it as an
// IMAGE message, Ben sees it arrive on his messageAdded subscription and
// loads the file and its thumbnail through their signed URLs, as an <img>
// would, without a token.

import assert from 'node:assert/strict';

import { ApolloClient, ApolloLink, InMemoryCache, gql } from '@apollo/client';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions';
import UploadHttpLink from 'apollo-upload-client/UploadHttpLink.mjs';
import { OperationTypeNode } from 'graphql';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

import { Collector, describeError, suite, withTimeout, WAIT_MS } from '../lib/harness.js';

const ATTACHMENT_FIELDS = 'id url thumbnailUrl fileName mimeType sizeBytes width height';

const UPLOAD = gql`
  mutation Upload($c: ID!, $file: Upload!) {
    uploadAttachment(conversationId: $c, file: $file) { ${ATTACHMENT_FIELDS} }
  }
`;

const SEND = gql`
  mutation Send($in: SendMessageInput!) {
    sendMessage(input: $in) { id seq messageType attachment { ${ATTACHMENT_FIELDS} } }
  }
`;

const MESSAGE_ADDED = gql`
  subscription OnMessageAdded($c: ID!, $after: Int) {
    messageAdded(conversationId: $c, afterSeq: $after) { id seq messageType senderId attachment { ${ATTACHMENT_FIELDS} } }
  }
`;

// A 2×2 PNG with a tEXt chunk ("Comment: taken at 51.5N 0.1W"), which the
// server strips.
const PHOTO = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAG3RFWHRDb21tZW50AHRha2VuIGF0IDUxLjVOIDAuMVey9pxU' +
  'AAAAEklEQVR4nGP4zwAE/0Ho////AB/uBftt3M6tAAAAAElFTkSuQmCC',
  'base64',
);

function uploadClient(server, user) {
  const ws = createClient({
    url: server.wsURL,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${user.token}` },
    retryAttempts: 0,
    lazy: true,
  });
  // The preflight header is jobchat's CSRF guard for multipart requests,
  // as Apollo Server's.
  const http = new UploadHttpLink({
    uri: server.httpURL,
    headers: { authorization: `Bearer ${user.token}`, 'Apollo-Require-Preflight': 'true' },
  });
  const link = ApolloLink.split(
    ({ operationType }) => operationType === OperationTypeNode.SUBSCRIPTION,
    new GraphQLWsLink(ws),
    http,
  );
  const client = new ApolloClient({ link, cache: new InMemoryCache() });
  return { client, close: async () => { client.stop(); await ws.dispose(); } };
}

suite('Uploads (Apollo Client 4 + apollo-upload-client)', (env) => {
  env.test('upload a photo, send it as an IMAGE, see it live, load it by its signed URL', async () => {
    const conv = await env.newConversation('Leaking sink');
    const ana = uploadClient(env.server, env.ana);
    const ben = uploadClient(env.server, env.ben);
    let sub;
    try {
      const live = new Collector('messageAdded with an attachment');
      sub = ben.client.subscribe({ query: MESSAGE_ADDED, variables: { c: conv.id, after: 1 } }).subscribe({
        next: (r) => (r.error ? live.sink.error(r.error) : live.sink.next(r.data)),
        error: live.sink.error,
        complete: live.sink.complete,
      });

      const file = new File([PHOTO], 'sink.png', { type: 'application/octet-stream' }); // the server sniffs
      const up = await withTimeout(ana.client.mutate({ mutation: UPLOAD, variables: { c: conv.id, file } }), WAIT_MS, 'uploadAttachment');
      assert.equal(up.error, undefined, `upload error: ${describeError(up.error)}`);
      const a = up.data.uploadAttachment;
      assert.equal(a.mimeType, 'image/png');
      assert.equal(a.fileName, 'sink.png');
      assert.equal(a.width, 2);
      assert.equal(a.height, 2);
      assert.match(a.url, /^\/files\/.+\/sink\.png\?exp=\d+&sig=/);
      assert.ok(a.thumbnailUrl, 'an image has a thumbnail');
      assert.ok(a.sizeBytes < PHOTO.length, 'the comment chunk was stripped');

      const sent = await withTimeout(ana.client.mutate({
        mutation: SEND,
        variables: { in: { conversationId: conv.id, messageType: 'IMAGE', attachment: { id: a.id } } },
      }), WAIT_MS, 'sendMessage');
      assert.equal(sent.error, undefined, `send error: ${describeError(sent.error)}`);

      const got = (await live.nth(1)).messageAdded;
      assert.equal(got.id, sent.data.sendMessage.id);
      assert.equal(got.messageType, 'IMAGE');
      assert.equal(got.senderId, env.ana.id);
      assert.equal(got.attachment.id, a.id);
      assert.equal(got.attachment.width, 2);

      // No token: the URL carries its own permission.
      const res = await fetch(env.server.origin + got.attachment.url);
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'image/png');
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
      const body = Buffer.from(await res.arrayBuffer());
      assert.equal(body.length, a.sizeBytes);
      assert.ok(!body.includes('taken at'), 'the stored photo keeps its comment');
      const thumb = await fetch(env.server.origin + got.attachment.thumbnailUrl);
      assert.equal(thumb.status, 200);
      assert.equal(thumb.headers.get('content-type'), 'image/jpeg');

      // A tampered URL is refused.
      // Change the signature's first character to one it is not, so the URL
      // really differs (a fixed replacement is a no-op one time in 64).
      const forgedURL = got.attachment.url.replace(/sig=(.)/, (_, c) => 'sig=' + (c === 'A' ? 'B' : 'A'));
      assert.notEqual(forgedURL, got.attachment.url);
      const forged = await fetch(env.server.origin + forgedURL);
      assert.equal(forged.status, 403);
      assert.deepEqual(live.errors, []);
    } finally {
      sub?.unsubscribe();
      await ana.close();
      await ben.close();
    }
  });

  env.test('a multipart request without the preflight header is refused with 400', async () => {
    const conv = await env.newConversation('Leaking sink');
    const form = new FormData();
    form.append('operations', JSON.stringify({
      query: 'mutation($c: ID!, $f: Upload!) { uploadAttachment(conversationId: $c, file: $f) { id } }',
      variables: { c: conv.id, f: null },
    }));
    form.append('map', JSON.stringify({ 0: ['variables.f'] }));
    form.append('0', new File([PHOTO], 'sink.png'));
    const res = await fetch(env.server.httpURL, { method: 'POST', body: form, headers: { authorization: `Bearer ${env.ana.token}` } });
    assert.equal(res.status, 400);
    const body = await res.json();
    assert.match(body.errors[0].message, /Apollo-Require-Preflight/);
  });
});
