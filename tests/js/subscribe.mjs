// Subscribes to a gateway with a real client library, as an app would, and prints the first
// event it receives.
// Usage: node subscribe.mjs TRANSPORT URL QUERY [MATCH] [TOKEN]
//   TRANSPORT: graphql-ws (WebSocket, graphql-transport-ws), graphql-sse (Server-Sent Events,
//   distinct connections) or apollo (Apollo Client's HttpLink: multipart HTTP subscriptions).
//   MATCH: the first event whose JSON contains this text is the one (others are skipped).
// Prints {"event": {data, errors}} and exits 0, or {"error": "..."} and exits 1.
import WebSocket from "ws";
import { createClient as createWsClient } from "graphql-ws";
import { createClient as createSseClient } from "graphql-sse";
import { ApolloClient, HttpLink, InMemoryCache, gql } from "@apollo/client";

const [transport, url, query, match, token] = process.argv.slice(2);
const finish = (out, code) => {
  process.stdout.write(JSON.stringify(out));
  process.exit(code);
};
const failed = (error) =>
  finish({ error: String(error?.reason ?? error?.message ?? JSON.stringify(error)) }, 1);
const received = (event) => {
  if (!match || JSON.stringify(event).includes(match)) finish({ event }, 0);
};
const completed = () => finish({ error: "the subscription completed without an event" }, 1);
setTimeout(() => finish({ error: "no event within 20 s" }, 1), 20_000);
const authorization = token ? { Authorization: `Bearer ${token}` } : {};

if (transport === "graphql-ws") {
  const client = createWsClient({
    url,
    webSocketImpl: WebSocket,
    retryAttempts: 0,
    connectionParams: authorization,
  });
  client.subscribe(
    { query },
    { next: received, error: failed, complete: completed },
  );
} else if (transport === "graphql-sse") {
  const client = createSseClient({ url, retryAttempts: 0, headers: authorization });
  client.subscribe(
    { query },
    { next: received, error: failed, complete: completed },
  );
} else if (transport === "apollo") {
  const client = new ApolloClient({
    cache: new InMemoryCache(),
    link: new HttpLink({ uri: url, headers: authorization }),
  });
  client.subscribe({ query: gql(query) }).subscribe({
    next: (result) =>
      received({ data: result.data ?? null, errors: result.error ? [String(result.error)] : [] }),
    error: failed,
    complete: completed,
  });
} else {
  finish({ error: `unknown transport ${transport}` }, 1);
}
