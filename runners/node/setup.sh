#!/usr/bin/env bash
# Installs the Node runner's dependencies (sucrase) and those of every example project (e.g. zod); with
# --tests, those of every Node test fixture and of workbench/ instead, so tests never install anything at
# run time. A folder whose node_modules is newer than its lockfile is left alone. Safe to run again.
# --dry-run: print the folders it would install in.
set -euo pipefail
tests="" dry=""
for arg in "$@"; do
  case "$arg" in
    --tests) tests=1 ;;
    --dry-run) dry=1 ;;
    *) echo "runners/node/setup.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

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
  local done=""
  if [ -f "$dir/package-lock.json" ] && [ "$dir/node_modules/.package-lock.json" -nt "$dir/package-lock.json" ]; then
    done=1  # installed from this lockfile already
  fi
  if [ -n "$dry" ]; then
    echo "npm: ${dir#"$repo"/}${done:+ (installed)}"
    return
  fi
  [ -n "$done" ] && return
  echo "runners/node/setup.sh: installing in ${dir#"$repo"/}"
  if [ -f "$dir/package-lock.json" ]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  else
    (cd "$dir" && npm install --no-audit --no-fund --loglevel=error)
  fi
}

if [ -n "$tests" ]; then
  roots=("$repo/tests")
  [ -f "$repo/workbench/package.json" ] && install "$repo/workbench"
else
  install "$here"
  roots=("$repo/examples")
fi
for root in "${roots[@]}"; do
  [ -d "$root" ] || continue
  while IFS= read -r pkg; do
    install "$(dirname "$pkg")"
  done < <(find "$root" -name node_modules -prune -o -name package.json -type f -print | sort)
done
