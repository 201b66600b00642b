#!/usr/bin/env bash
# Installs the Node runner's dependencies (sucrase) and those of every Node fixture or example project
# in the repo (e.g. zod), so tests never install anything at run time. Safe to run again.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  echo "runners/node/setup.sh: node and npm are required (Node >= 18)" >&2
  exit 1
fi

install() {
  local dir="$1"
  # a package.json that only sets "type" (or declares nothing to install) needs no npm run
  if ! node -e 'const p = require(process.argv[1]); process.exit(Object.keys({...p.dependencies, ...p.devDependencies}).length ? 0 : 1)' "$dir/package.json"; then
    return
  fi
  echo "runners/node/setup.sh: installing in ${dir#"$repo"/}"
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

install "$here"
for root in "$repo/tests" "$repo/examples"; do
  [ -d "$root" ] || continue
  while IFS= read -r pkg; do
    install "$(dirname "$pkg")"
  done < <(find "$root" -name node_modules -prune -o -name package.json -type f -print | sort)
done
