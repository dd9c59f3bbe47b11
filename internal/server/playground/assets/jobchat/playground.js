// The jobchat playground: GraphiQL with a fetcher that authenticates both of
// jobchat's transports from GraphiQL's Headers tab, and a panel under the
// result that lists a subscription's events and shows the socket's state.
//
// Queries and mutations go to the endpoint as HTTP POSTs carrying the tab's
// headers. Subscriptions go over graphql-transport-ws to the same endpoint on
// the same host, and the tab's headers become the connection_init payload,
// which is where jobchat's websocket authentication reads the token (a
// browser cannot set headers on the upgrade request). So one
// {"Authorization": "Bearer <token>"} serves both.
//
// GraphiQL's result pane shows only the latest value of a subscription, so
// the history that afterSeq replays would flash by: the panel keeps every
// event of the running (or last) subscription, newest last, and is cleared
// when another operation starts. Its status line follows the socket:
// connecting, live, or closed with its code and reason, so a server that
// shuts down (1001) or a connection that is lost leaves a visible sign.
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

  // GraphiQL's menus and dialogs insert a <style> element while open (their
  // scroll lock, from react-remove-scroll-bar). The page's CSP admits it by
  // this response's nonce, which that library reads from this global (the
  // get-nonce convention); see contentSecurityPolicy in playground.go.
  window.__webpack_nonce__ = config.styleNonce;

  const h = React.createElement;

  // How long the server may take to answer the client's ping before the
  // socket counts as lost. The client pings after keepAliveMs of silence.
  const keepAliveMs = 10000;
  const pongTimeoutMs = 5000;
  // The panel keeps at most this many events (the oldest go first).
  const maxEvents = 500;

  // What a close code means here: the codes of the README's table, and the
  // client's own.
  const closeMeanings = {
    1000: 'no subscription is running',
    1001: 'the server went away: run the subscription again once it is back',
    1006: 'the connection was lost',
    1008: 'the client read too slowly',
    1009: 'a message was too large',
    1011: 'the server failed',
    4400: 'the server refused a message',
    4401: 'subscribe before connection_ack',
    4403: 'the token was refused or expired',
    4406: 'no supported subprotocol',
    4408: 'connection_init came too late',
    4409: 'an operation id was reused',
    4429: 'a second connection_init',
    4499: 'the connection was lost',
  };

  // ---------------------------------------------------------------------
  // The panel's state: a small store the panel renders with
  // useSyncExternalStore.

  let state = {
    // phase: idle | connecting | opened | live | closed (with code, reason)
    socket: { phase: 'idle' },
    // The last operation run from the editor: { id, kind, name, running }.
    op: null,
    // Its events: { n, at, type: next | error | complete | stopped, text }.
    events: [],
    dropped: 0,
  };
  const listeners = new Set();

  function update(change) {
    state = Object.assign({}, state, change(state));
    for (const listener of listeners) {
      listener();
    }
  }

  function subscribeState(listener) {
    listeners.add(listener);
    return () => listeners.delete(listener);
  }

  let lastOpId = 0;

  // startOperation clears the panel for an operation run from the editor
  // and returns its id, which its events carry.
  function startOperation(kind, name) {
    const id = ++lastOpId;
    update(() => ({ op: { id, kind, name, running: kind === 'subscription' }, events: [], dropped: 0 }));
    return id;
  }

  function addEvent(opId, type, text, ends) {
    update((s) => {
      if (!s.op || s.op.id !== opId) {
        return {}; // an earlier operation's, after the panel moved on
      }
      const last = s.events[s.events.length - 1];
      const event = { n: last ? last.n + 1 : 1, at: new Date(), type, text };
      let events = s.events.concat([event]);
      let dropped = s.dropped;
      if (events.length > maxEvents) {
        dropped += events.length - maxEvents;
        events = events.slice(events.length - maxEvents);
      }
      const op = ends ? Object.assign({}, s.op, { running: false }) : s.op;
      return { events, dropped, op };
    });
  }

  // ---------------------------------------------------------------------
  // The fetcher

  // operationOf tells which operation of the document query runs, the way
  // the server picks it: the one named operationName, or the only one. It
  // returns { type: query | mutation | subscription, name } (name is '' for
  // an anonymous one), or null when there is no such operation (the server
  // will say so).
  //
  // It reads the text itself rather than GraphiQL's documentAST, which
  // GraphiQL re-parses a moment after each edit: an operation pasted and run
  // at once would otherwise be routed by the document that was there before.
  // Only the top level matters: the keyword and name that open each
  // definition, or a bare "{" (an anonymous query); comments, strings,
  // parentheses (variables and arguments, whose object values have braces
  // of their own) and selection sets are skipped.
  function operationOf(query, operationName) {
    const ops = [];
    const n = query.length;
    let depth = 0; // of { }
    let parens = 0; // of ( ), at depth 0
    let opened = false; // a keyword opened a definition whose { is still to come
    let naming = false; // the next name is that definition's
    let i = 0;
    while (i < n) {
      const c = query[i];
      if (c === '#') {
        while (i < n && query[i] !== '\n' && query[i] !== '\r') i++;
      } else if (c === '"') {
        if (query.startsWith('"""', i)) {
          i += 3;
          while (i < n && !query.startsWith('"""', i)) i += query.startsWith('\\"""', i) ? 4 : 1;
          i += 3;
        } else {
          i++;
          while (i < n && query[i] !== '"' && query[i] !== '\n') i += query[i] === '\\' ? 2 : 1;
          i++;
        }
      } else if (depth > 0) {
        if (c === '{') depth++;
        else if (c === '}') depth--;
        i++;
      } else if (c === '(') {
        parens++;
        naming = false;
        i++;
      } else if (c === ')') {
        parens--;
        i++;
      } else if (parens > 0) {
        i++;
      } else if (c === '{') {
        if (!opened) ops.push({ type: 'query', name: '' });
        opened = false;
        naming = false;
        depth++;
        i++;
      } else if (/[_A-Za-z]/.test(c)) {
        const word = /^[_A-Za-z][_0-9A-Za-z]*/.exec(query.slice(i, i + 256))[0];
        i += word.length;
        if (naming) {
          ops[ops.length - 1].name = word;
          naming = false;
        } else if (!opened && (word === 'query' || word === 'mutation' || word === 'subscription')) {
          ops.push({ type: word, name: '' });
          opened = true;
          naming = true;
        } else if (!opened && word === 'fragment') {
          opened = true; // not an operation; its { is no anonymous query
        }
      } else {
        if (c === '@') naming = false;
        i++;
      }
    }
    const named = operationName ? ops.find((op) => op.name === operationName) : null;
    // GraphiQL's operationName comes from the same late parse: a name the
    // document does not have is the previous document's.
    return named || (ops.length === 1 ? ops[0] : null);
  }

  // The page's own helpers, for the e2e suite and the curious in the console.
  window.jobchatPlayground = { operationOf };

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
  let ws = null; // { key, client, gen }
  let gen = 0;

  // socketPhase records what the current client's socket does; a disposed
  // client's events are ignored.
  function socketPhase(clientGen, socket) {
    if (clientGen === gen) {
      update(() => ({ socket }));
    }
  }

  function wsClient(headers) {
    const params = stringHeaders(headers);
    const key = JSON.stringify(params);
    if (ws && ws.key === key) {
      return ws.client;
    }
    if (ws) {
      ws.client.dispose();
    }
    const clientGen = ++gen;
    let pongTimer = null;
    let lost = false;
    const client = graphqlWs.createClient({
      url: wsURL.href,
      connectionParams: params,
      lazy: true,
      // No retries: a retried subscription is run again from the start
      // (afterSeq: 0 replays the history a second time) and hides the
      // break. Here a closed socket ends the subscription, says why in the
      // result and the status line, and the user runs it again.
      retryAttempts: 0,
      // Ping when the socket has been quiet, and count it as lost when no
      // pong comes back: a dead connection otherwise looks live forever.
      keepAlive: keepAliveMs,
      on: {
        connecting: () => socketPhase(clientGen, { phase: 'connecting' }),
        opened: () => socketPhase(clientGen, { phase: 'opened' }),
        connected: () => {
          lost = false;
          socketPhase(clientGen, { phase: 'live' });
        },
        ping: (received) => {
          if (!received) {
            clearTimeout(pongTimer);
            pongTimer = setTimeout(() => {
              lost = true;
              client.terminate();
            }, pongTimeoutMs);
          }
        },
        pong: (received) => {
          if (received) {
            clearTimeout(pongTimer);
          }
        },
        closed: (e) => {
          clearTimeout(pongTimer);
          const code = e && typeof e.code === 'number' ? e.code : 1006;
          const reason = lost ? `no pong within ${pongTimeoutMs / 1000} s` : (e && e.reason) || '';
          socketPhase(clientGen, { phase: 'closed', code, reason });
        },
      },
    });
    ws = { key, client, gen: clientGen };
    return client;
  }

  // closeText says what a close event means: its code, its reason and what
  // the code means here.
  function closeText(code, reason) {
    let text = `closed with code ${code}`;
    if (reason) {
      text += `: ${reason}`;
    }
    if (closeMeanings[code]) {
      text += ` (${closeMeanings[code]})`;
    }
    return text;
  }

  // wsError turns what graphql-ws reports into GraphQL-style errors for
  // GraphiQL to show: GraphQL errors as they are, a close event (4403: the
  // token was refused) or a failed socket as a message.
  function wsError(e) {
    if (Array.isArray(e)) {
      return e;
    }
    if (e && typeof e.code === 'number') {
      // A close event (graphql-ws's own TerminatedCloseEvent, 4499, is an
      // Error with a code: it means our ping went unanswered).
      const reason = e.code === 4499 ? `no pong within ${pongTimeoutMs / 1000} s` : e.reason;
      return [{ message: `WebSocket ${closeText(e.code, reason)}` }];
    }
    if (e instanceof Error) {
      return [{ message: e.message }];
    }
    return [{ message: `WebSocket to ${wsURL.href} failed` }];
  }

  function subscribeWS(params, headers, opId) {
    const client = wsClient(headers);
    return {
      subscribe(observer) {
        let ended = false;
        const end = (type, text) => {
          if (!ended) {
            ended = true;
            addEvent(opId, type, text, true);
          }
        };
        const dispose = client.subscribe(params, {
          next: (value) => {
            addEvent(opId, 'next', JSON.stringify(value.errors ? value : value.data));
            observer.next(value);
          },
          error: (e) => {
            const errors = wsError(e);
            end('error', errors.map((err) => err.message).join('; '));
            observer.error(errors);
          },
          complete: () => {
            end('complete', 'the server completed the subscription');
            observer.complete();
          },
        });
        return {
          unsubscribe() {
            end('stopped', 'stopped');
            dispose();
          },
        };
      },
    };
  }

  function fetcher(params, opts) {
    const headers = (opts && opts.headers) || {};
    if (!opts || !opts.documentAST) {
      // GraphiQL's own introspection (only the editor's runs carry a
      // document); the panel stays as it is.
      return fetchHTTP(params, headers);
    }
    const op = operationOf(params.query || '', params.operationName);
    if (op) {
      params = Object.assign({}, params, { operationName: op.name || undefined });
    }
    // No such operation: the server says so over HTTP.
    const opId = startOperation(op ? op.type : 'query', op ? op.name : '');
    if (op && op.type === 'subscription') {
      return subscribeWS(params, headers, opId);
    }
    return fetchHTTP(params, headers);
  }

  // ---------------------------------------------------------------------
  // The panel

  function clock(d) {
    const pad = (n, w) => String(n).padStart(w, '0');
    return `${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}.${pad(d.getMilliseconds(), 3)}`;
  }

  function statusText(socket) {
    switch (socket.phase) {
      case 'idle':
        return 'not open (a subscription opens it)';
      case 'connecting':
        return 'connecting…';
      case 'opened':
        return 'open, waiting for connection_ack…';
      case 'live':
        return 'live';
      default:
        return closeText(socket.code, socket.reason);
    }
  }

  function SocketStatus(props) {
    const socket = props.socket;
    return h(
      'div',
      { className: 'jobchat-socket', id: 'jobchat-socket', 'data-phase': socket.phase, 'data-code': socket.code || '' },
      h('span', { className: 'jobchat-socket-dot', 'aria-hidden': 'true' }),
      h('span', { className: 'jobchat-socket-label' }, 'WebSocket '),
      h('span', { className: 'jobchat-socket-text' }, statusText(socket)),
      h('span', { className: 'jobchat-socket-url' }, wsURL.href),
    );
  }

  function EventList(props) {
    const { op, events, dropped } = props;
    const listRef = React.useRef(null);
    const last = events.length > 0 ? events[events.length - 1].n : 0;
    React.useEffect(() => {
      const el = listRef.current;
      if (el) {
        el.scrollTop = el.scrollHeight; // newest last, in view
      }
    }, [last]);
    const count = events.filter((e) => e.type === 'next').length;
    const title = `${op.name ? `${op.name}: ` : ''}${count} event${count === 1 ? '' : 's'}` +
      `${dropped ? ` (the ${dropped} oldest not shown)` : ''}${op.running ? ', waiting for more' : ''}`;
    return h(
      'div',
      { className: 'jobchat-events' },
      h('div', { className: 'jobchat-events-title' }, title),
      h(
        'ol',
        { className: 'jobchat-events-list', id: 'jobchat-events', ref: listRef, 'aria-live': 'polite' },
        events.map((e) =>
          h(
            'li',
            { key: e.n, className: 'jobchat-event', 'data-type': e.type },
            h('span', { className: 'jobchat-event-n' }, e.type === 'next' ? `#${e.n}` : e.type),
            h('time', { className: 'jobchat-event-time', dateTime: e.at.toISOString() }, clock(e.at)),
            h('code', { className: 'jobchat-event-text' }, e.text),
          ),
        ),
      ),
    );
  }

  function LivePanel() {
    const s = React.useSyncExternalStore(subscribeState, () => state);
    return h(
      'div',
      { className: 'jobchat-live' },
      h(SocketStatus, { socket: s.socket }),
      s.op && s.op.kind === 'subscription' ? h(EventList, { op: s.op, events: s.events, dropped: s.dropped }) : null,
    );
  }

  const root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(
    h(
      GraphiQL,
      {
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
      },
      h(GraphiQL.Footer, null, h(LivePanel)),
    ),
  );
})();
