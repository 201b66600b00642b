#!/bin/sh
# deploy/install.sh PREFIX APP: the install steps of deploy/Dockerfile's build stage, as one script so a test
# runs exactly them outside Docker. Installs Steppe from this checkout into PREFIX/venv (its Node comes from
# the nodejs-bin package), the runners into PREFIX/runners with the Node runner's packages, and the project
# in APP's own packages: its npm packages (package-lock.json: npm ci) and its requirements.txt.
set -eu
prefix="$1"
app="$2"
src="$(cd "$(dirname "$0")/.." && pwd)"
python3 -m venv "$prefix/venv"
pip="$prefix/venv/bin/python -m pip --disable-pip-version-check --no-input"
$pip install --no-cache-dir "$src"
# npm from nodejs-bin: the image needs no Debian nodejs/npm
npm() { "$prefix/venv/bin/python" -W ignore -m nodejs.npm "$@"; }

mkdir -p "$prefix/runners"
for lang in python node ruby; do
  rm -rf "${prefix:?}/runners/$lang"
  cp -R "$src/runners/$lang" "$prefix/runners/$lang"
done
rm -rf "$prefix/runners/node/node_modules"
(cd "$prefix/runners/node" && npm ci --omit=dev --no-audit --no-fund --loglevel=error)

cd "$app"
if [ -f package-lock.json ]; then
  npm ci --omit=dev --no-audit --no-fund --loglevel=error
elif [ -f package.json ]; then
  npm install --omit=dev --no-audit --no-fund --loglevel=error
fi
if [ -f requirements.txt ]; then
  $pip install --no-cache-dir -r requirements.txt
fi
