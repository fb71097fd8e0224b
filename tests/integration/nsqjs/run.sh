#!/bin/sh
# Installs the pinned nsqjs into <workdir> (npm; a failed install fails the test) and runs the
# interoperability script there.
# usage: run.sh <workdir> <nsqd host> <nsqd tcp port> <count> <mode> <nsqd http port> [<lookupd http port>]
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$1
shift
mkdir -p "$work"
cp "$here/package.json" "$here/test.js" "$work/"
cd "$work"
if ! cmp -s package.json node_modules/.installed-package.json 2>/dev/null; then
    npm install --no-audit --no-fund --no-package-lock --loglevel=error
    cp package.json node_modules/.installed-package.json
fi
exec node test.js "$@"
