// Queries a gateway through Apollo Client with its persisted-queries link (APQ, SHA-256), as an
// app would, and records what went over the wire.
// Usage: node apq-client.mjs URL QUERY [QUERY ...]
// Prints {"results": [{data, errors}], "sent": [{hash, text}]} and exits 0.
import { createHash } from "node:crypto";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";

const [url, ...queries] = process.argv.slice(2);
const sent = [];
const recordingFetch = async (input, init) => {
  const body = JSON.parse(init.body);
  sent.push({
    hash: body.extensions?.persistedQuery?.sha256Hash ?? null,
    text: typeof body.query === "string" ? body.query : null,
  });
  return fetch(input, init);
};
const sha256 = (text) => createHash("sha256").update(text).digest("hex");
const client = new ApolloClient({
  cache: new InMemoryCache(),
  link: ApolloLink.from([
    new PersistedQueryLink({ sha256 }),
    new HttpLink({ uri: url, fetch: recordingFetch }),
  ]),
});
const results = [];
for (const query of queries) {
  try {
    const result = await client.query({ query: gql(query), fetchPolicy: "network-only" });
    results.push({ data: result.data ?? null, errors: result.error ? [String(result.error)] : [] });
  } catch (error) {
    results.push({ data: null, errors: [String(error?.message ?? error)] });
  }
}
process.stdout.write(JSON.stringify({ results, sent }));
