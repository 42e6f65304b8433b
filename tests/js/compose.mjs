// Composes subgraph SDLs with The Guild's federation composition, as Hive does.
// Usage: node compose.mjs NAME=FILE.graphql [NAME=FILE.graphql ...]
// Prints the supergraph SDL and exits 0, or prints the composition errors (CODE: message,
// one per line) and exits 1.
import { readFileSync } from "node:fs";
import { parse } from "graphql";
import { composeServices } from "@theguild/federation-composition";

const services = process.argv.slice(2).map((argument) => {
  const [name, file] = argument.split("=");
  return { name, url: `http://${name}.invalid/graphql`, typeDefs: parse(readFileSync(file, "utf8")) };
});
const result = composeServices(services);
if (result.errors && result.errors.length > 0) {
  for (const error of result.errors) console.error(`${error.extensions?.code ?? "ERROR"}: ${error.message}`);
  process.exit(1);
}
process.stdout.write(result.supergraphSdl);
