// The jobchat playground: GraphiQL with a fetcher that authenticates both of
// jobchat's transports from GraphiQL's Headers tab.
//
// Queries and mutations go to the endpoint as HTTP POSTs carrying the tab's
// headers. Subscriptions go over graphql-transport-ws to the same endpoint on
// the same host, and the tab's headers become the connection_init payload,
// which is where jobchat's websocket authentication reads the token (a
// browser cannot set headers on the upgrade request). So one
// {"Authorization": "Bearer <token>"} serves both.
//
// Loaded after React, ReactDOM, GraphiQL and graphql-ws (the globals React,
// ReactDOM, GraphiQL and graphqlWs); its settings come from the page's
// <script id="playground-config" type="application/json">.
(function () {
  'use strict';

  const config = JSON.parse(document.getElementById('playground-config').textContent);
  const httpURL = new URL(config.endpoint, window.location.href);
  const wsURL = new URL(httpURL);
  wsURL.protocol = httpURL.protocol === 'https:' ? 'wss:' : 'ws:';

  // operationType tells which operation of the document GraphiQL runs, the
  // way the server picks it: the named one, or the only one.
  function operationType(params, documentAST) {
    if (!documentAST || !documentAST.definitions) {
      return 'query'; // GraphiQL's own introspection has no documentAST
    }
    const ops = documentAST.definitions.filter((d) => d.kind === 'OperationDefinition');
    const op = params.operationName
      ? ops.find((d) => d.name && d.name.value === params.operationName)
      : ops.length === 1 ? ops[0] : undefined;
    return op ? op.operation : 'query';
  }

  // stringHeaders keeps the headers a fetch can send: GraphiQL hands over
  // the parsed JSON object, whose values need not be strings.
  function stringHeaders(headers) {
    const out = {};
    for (const [name, value] of Object.entries(headers || {})) {
      if (value !== null && value !== undefined) {
        out[name] = String(value);
      }
    }
    return out;
  }

  async function fetchHTTP(params, headers) {
    const res = await fetch(httpURL, {
      method: 'POST',
      credentials: 'same-origin',
      headers: Object.assign(
        { 'Content-Type': 'application/json', Accept: 'application/json' },
        stringHeaders(headers),
      ),
      body: JSON.stringify(params),
    });
    const text = await res.text();
    try {
      return JSON.parse(text);
    } catch (err) {
      return { errors: [{ message: `HTTP ${res.status} ${res.statusText}: ${text}` }] };
    }
  }

  // The websocket client for the current headers. A client sends its
  // connection params once per socket, so different headers need a new
  // client; the old one is disposed, which ends a subscription still running
  // with the old headers. Clients are lazy: the socket opens with the first
  // subscription and closes after the last.
  let ws = null; // { key, client }

  function wsClient(headers) {
    const params = stringHeaders(headers);
    const key = JSON.stringify(params);
    if (ws && ws.key === key) {
      return ws.client;
    }
    if (ws) {
      ws.client.dispose();
    }
    const client = graphqlWs.createClient({
      url: wsURL.href,
      connectionParams: params,
      lazy: true,
      retryAttempts: 2,
      // 4403 is jobchat refusing the token: retrying will not change that.
      shouldRetry: (e) => !(e && typeof e.code === 'number' && e.code >= 4400 && e.code < 4500),
    });
    ws = { key, client };
    return client;
  }

  // wsError turns what graphql-ws reports into GraphQL-style errors for
  // GraphiQL to show: GraphQL errors as they are, a close event (4403: the
  // token was refused) or a failed socket as a message.
  function wsError(e) {
    if (Array.isArray(e)) {
      return e;
    }
    if (e instanceof Error) {
      return [{ message: e.message }];
    }
    if (e && typeof e.code === 'number') {
      const reason = e.reason ? `: ${e.reason}` : '';
      return [{ message: `WebSocket closed with code ${e.code}${reason}` }];
    }
    return [{ message: `WebSocket to ${wsURL.href} failed` }];
  }

  function subscribeWS(params, headers) {
    const client = wsClient(headers);
    return {
      subscribe(observer) {
        const dispose = client.subscribe(params, {
          next: (value) => observer.next(value),
          error: (e) => observer.error(wsError(e)),
          complete: () => observer.complete(),
        });
        return { unsubscribe: dispose };
      },
    };
  }

  function fetcher(params, opts) {
    const headers = (opts && opts.headers) || {};
    if (operationType(params, opts && opts.documentAST) === 'subscription') {
      return subscribeWS(params, headers);
    }
    return fetchHTTP(params, headers);
  }

  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    React.createElement(GraphiQL, {
      fetcher,
      defaultQuery: config.defaultQuery,
      defaultHeaders: config.defaultHeaders,
      defaultEditorToolsVisibility: 'headers',
      isHeadersEditorEnabled: true,
      // Tokens stay out of localStorage unless the user turns persistence
      // on in GraphiQL's settings; it also keeps two tabs, one per user,
      // from sharing one token.
      shouldPersistHeaders: false,
      inputValueDeprecation: true,
    }),
  );
})();
