#!/usr/bin/env bash
# Rebuilds gateway/assets/graphiql/, the GraphiQL page the gateway embeds in
# its binary, from the npm packages pinned in graphiql-src/package-lock.json.
#
# Usage: gateway/assets/build-graphiql.sh
# Needs: node and npm (network access to the npm registry).
#
# Steps: `npm ci` in a temporary directory (nothing is installed into the
# repository), then copy the prebuilt UMD bundles of React, ReactDOM and
# GraphiQL plus the hand-written files of graphiql-src/ into graphiql/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$here/graphiql-src"
out="$here/graphiql"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

cp "$src/package.json" "$src/package-lock.json" "$work/"
(
  cd "$work"
  npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
)
mods="$work/node_modules"

# Refuse to build if the installed versions differ from the pins.
for pkg in graphiql react react-dom; do
  want="$(node -p "require('$src/package.json').dependencies['$pkg']")"
  got="$(node -p "require('$mods/$pkg/package.json').version")"
  if [ "$want" != "$got" ]; then
    echo "build-graphiql: $pkg is $got, expected $want" >&2
    exit 1
  fi
done

rm -rf "$out"
mkdir -p "$out"

cp "$mods/react/umd/react.production.min.js" "$out/"
cp "$mods/react-dom/umd/react-dom.production.min.js" "$out/"
cp "$mods/graphiql/graphiql.min.css" "$out/"
# The bundle ends with a source-map comment naming a 4 MB map that is not
# shipped; drop the comment so browser dev tools do not ask for it.
sed -e '/^\/\/# sourceMappingURL=/d' "$mods/graphiql/graphiql.min.js" > "$out/graphiql.min.js"

cp "$src/index.html" "$src/polygraph.js" "$src/polygraph.css" "$out/"

{
  for pkg in graphiql react react-dom; do
    version="$(node -p "require('$mods/$pkg/package.json').version")"
    echo "================================================================"
    echo "$pkg $version"
    echo "================================================================"
    cat "$mods/$pkg/LICENSE"
    echo
  done
} > "$out/LICENSES.txt"

# Every asset index.html refers to must have been copied.
grep -o '/graphiql/[A-Za-z0-9._-]*' "$out/index.html" | sort -u | while read -r ref; do
  if [ ! -f "$out/${ref#/graphiql/}" ]; then
    echo "build-graphiql: index.html refers to missing $ref" >&2
    exit 1
  fi
done

echo "Built $out:"
(cd "$out" && ls -l | tail -n +2 && du -ch . | tail -n 1)
