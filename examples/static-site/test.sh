#!/bin/sh
# The page must carry the version placeholder the build fills in, and VERSION must be a version.
set -eu
grep -q '@VERSION@' site/index.html || { echo "site/index.html lost its @VERSION@ placeholder"; exit 1; }
grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.-]+)?$' VERSION || { echo "VERSION is not a version: $(cat VERSION)"; exit 1; }
echo "site ok: version $(cat VERSION)"
