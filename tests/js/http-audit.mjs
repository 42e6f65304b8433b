// Runs the GraphQL-over-HTTP server audits of the `graphql-http` package
// against a running GraphQL endpoint.
//
// Usage: node http-audit.mjs URL
//
// Prints one JSON object on stdout:
//   {"results":[{"id","name","status","reason"[,"response"]}, ...]}
// in the order graphql-http lists its audits. `name` starts with the
// audit's requirement level (MUST, SHOULD or MAY); `status` is as graphql-http
// reports it: "ok", or for a failed audit "error" (MUST), "warn" (SHOULD) or
// "notice" (MAY). `reason` is null for "ok". A failed audit also carries
// `response`: the HTTP status, content type and start of the body it got.
//
// An audit that throws instead of failing (graphql-http treats that as fatal,
// e.g. the connection was refused or timed out) is reported the same way,
// with its status by requirement level and a reason starting "fatal: ".
//
// Exits 0 whenever the audits ran, whatever they found: the caller decides
// what fails. Exits 2 on bad usage, and 1 if the audits could not run at all
// (every one of them was fatal, e.g. nothing listens at URL).

import { serverAudits } from 'graphql-http';

const REQUEST_TIMEOUT_MS = 10_000;
const BODY_EXCERPT_CHARS = 500;

const url = process.argv[2];
if (!url || process.argv.length > 3) {
  process.stderr.write('usage: node http-audit.mjs URL\n');
  process.exit(2);
}
try {
  new URL(url);
} catch {
  process.stderr.write(`http-audit: not a URL: ${url}\n`);
  process.exit(2);
}

// Bounds every request so that a server that hangs cannot hang the audit.
function fetchWithTimeout(input, init = {}) {
  return fetch(input, { ...init, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
}

function statusForLevel(name) {
  if (name.startsWith('MUST')) return 'error';
  if (name.startsWith('SHOULD')) return 'warn';
  return 'notice';
}

async function describeResponse(response) {
  if (!response) return null;
  let body = null;
  try {
    body = await response.clone().text();
    if (body.length > BODY_EXCERPT_CHARS) body = `${body.slice(0, BODY_EXCERPT_CHARS)}...`;
  } catch {
    // The audit consumed the body already; report what is left.
  }
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    body,
  };
}

function errorMessage(err) {
  if (err instanceof Error) {
    const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
    return `${err.name}: ${err.message}${cause}`;
  }
  return String(err);
}

const audits = serverAudits({ url, fetchFn: fetchWithTimeout });
const results = [];
let fatal = 0;
let lastFatal = null;

// One at a time, so the server sees one request at a time and the results
// do not depend on scheduling.
for (const { id, name, fn } of audits) {
  let result;
  try {
    result = await fn();
  } catch (err) {
    fatal += 1;
    lastFatal = err;
    results.push({ id, name, status: statusForLevel(name), reason: `fatal: ${errorMessage(err)}` });
    continue;
  }
  if (result.status === 'ok') {
    results.push({ id, name, status: 'ok', reason: null });
  } else {
    results.push({
      id,
      name,
      status: result.status,
      reason: result.reason,
      response: await describeResponse(result.response),
    });
  }
}

if (audits.length === 0 || fatal === audits.length) {
  process.stderr.write(
    `http-audit: could not audit ${url}: ${lastFatal ? errorMessage(lastFatal) : 'no audits'}\n`,
  );
  process.exit(1);
}

process.stdout.write(`${JSON.stringify({ results })}\n`);

const count = (status) => results.filter((r) => r.status === status).length;
process.stderr.write(
  `http-audit: ${results.length} audits: ${count('ok')} ok, ${count('error')} error, ` +
    `${count('warn')} warn, ${count('notice')} notice\n`,
);
