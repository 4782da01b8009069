// Subscribes to one AI task with the graphql-ws reference client, exactly as an app would,
// and prints the first event as one JSON line.
//
//   node subscribe.mjs ws://127.0.0.1:8080/graphql <token> gid://stratix/AiTask/<uuid>
//
// Exits 0 after the first event, 1 on an error or when nothing arrives within 15 s.
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';

const [url, token, taskId] = process.argv.slice(2);
if (!url || !token || !taskId) {
  console.error('usage: node subscribe.mjs <ws url> <token> <task global id>');
  process.exit(2);
}

const client = createClient({
  url,
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: `Bearer ${token}` },
  retryAttempts: 0,
});

const timer = setTimeout(() => {
  console.error('no event within 15 s');
  process.exit(1);
}, 15_000);

const query = `subscription ($taskId: ID) {
  aiTaskUpdated(taskId: $taskId) { cursor op id node { status } }
}`;

const unsubscribe = client.subscribe(
  { query, variables: { taskId } },
  {
    next: (event) => {
      console.log(JSON.stringify(event));
      clearTimeout(timer);
      unsubscribe();
      client.dispose().then(() => process.exit(event.errors ? 1 : 0));
    },
    error: (error) => {
      console.error('subscription error:', error instanceof Error ? error.message : JSON.stringify(error));
      process.exit(1);
    },
    complete: () => {},
  },
);
