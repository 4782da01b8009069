// An embedded admin's subscription across session token expiries, with the graphql-ws
// reference client and the `subscribeResumable` helper of docs/clients.md: a fresh token
// from `connectionParams` at every connection, `after` kept current so that each
// resubscription resumes where the closed socket stopped.
//
//   node resume.mjs ws://127.0.0.1:8080/graphql http://127.0.0.1:9000/token
//
// Prints one JSON line per thing that happens: {"connected":n}, {"closed":code},
// {"resumeAfter":cursor,"reason":...}, {"event":{...}}, {"error":...}. Runs until killed.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, tokenUrl] = process.argv.slice(2);
if (!url || !tokenUrl) {
  console.error('usage: node resume.mjs <ws url> <token url>');
  process.exit(2);
}
const say = (line) => console.log(JSON.stringify(line));

/** Subscribes with `after:` kept current, so reconnects resume without gaps or repeats. */
function subscribeResumable(ws, query, variables, onEvent, onError) {
  const payload = { query, variables: { ...variables, after: null } };
  return ws.subscribe(payload, {
    next: (result) => {
      const resumeAfter = result.extensions?.resumeAfter;
      if (resumeAfter) {
        // The socket is about to close: not an event, just where to resume.
        payload.variables.after = resumeAfter;
        say({ resumeAfter, reason: result.extensions.reason });
        return;
      }
      if (result.errors) return onError(result.errors);
      const event = Object.values(result.data ?? {})[0];
      if (event?.cursor) payload.variables.after = event.cursor;
      onEvent(result.data);
    },
    error: onError,
    complete: () => {},
  });
}

let connections = 0;
const ws = createClient({
  url,
  webSocketImpl: WebSocket,
  // App Bridge's `shopify.idToken()` stands here: a fresh session token per connection.
  connectionParams: async () => {
    const response = await fetch(tokenUrl);
    return { Authorization: `Bearer ${await response.text()}` };
  },
  retryAttempts: Infinity,
  shouldRetry: () => true,
  // Reconnect at once; the default backoff (1 to 4 s) works too, `after` covers the gap.
  retryWait: () => new Promise((resolve) => setTimeout(resolve, 50)),
  on: {
    connected: () => say({ connected: ++connections }),
    closed: (event) => say({ closed: event?.code ?? null }),
  },
});

subscribeResumable(
  ws,
  `subscription ($after: String) {
    rowChanged(tables: [AI_MODELS], after: $after) { cursor op rowId }
  }`,
  {},
  (data) => say({ event: data.rowChanged }),
  (error) => say({ error }),
);
