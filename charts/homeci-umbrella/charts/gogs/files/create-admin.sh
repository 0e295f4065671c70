#!/bin/sh
# Ensure the homeci admin exists in Gogs. Safe to run any number of times:
#   1. wait (bounded) until Gogs answers /healthcheck, i.e. `gogs web` has migrated the database;
#   2. GET /api/v1/users/<name> (public): 200 -> the admin exists, nothing to do;
#   3. 404 -> `gogs admin create-user --admin` against the same app.ini (same database);
#      "already exists" from a concurrent run counts as success.
# Exit 0 when the admin exists afterwards, 1 (with one line saying why) otherwise.
set -u

# The admin identity: files of the admin Secret in $HOMECI_SECRETS_DIR (as the chart mounts them), unless
# the variables are set.
# shellcheck source=secrets.sh
. "$(dirname "$0")/secrets.sh"
load_secret GOGS_ADMIN_USERNAME
load_secret GOGS_ADMIN_PASSWORD
load_secret GOGS_ADMIN_EMAIL

: "${GOGS_ADMIN_USERNAME:?GOGS_ADMIN_USERNAME is not set (key username of the admin Secret)}"
: "${GOGS_ADMIN_PASSWORD:?GOGS_ADMIN_PASSWORD is not set (key password of the admin Secret)}"
: "${GOGS_ADMIN_EMAIL:?GOGS_ADMIN_EMAIL is not set (key email of the admin Secret)}"
GOGS_BIN="${GOGS_BIN:-/app/gogs/gogs}"
GOGS_CONFIG="${GOGS_CONFIG:-/etc/gogs/app.ini}"
GOGS_URL="${GOGS_URL:-http://127.0.0.1:3000}"
ATTEMPTS="${GOGS_ADMIN_WAIT_ATTEMPTS:-90}"
INTERVAL="${GOGS_ADMIN_WAIT_INTERVAL:-2}"

log() { echo "create-admin: $*" >&2; }

# HTTP status of a GET, "000" when the server cannot be reached.
status_of() {
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null) || code=000
  echo "${code:-000}"
}

i=0
while [ "$(status_of "$GOGS_URL/healthcheck")" != 200 ]; do
  i=$((i + 1))
  if [ "$i" -ge "$ATTEMPTS" ]; then
    log "Gogs did not become healthy at $GOGS_URL/healthcheck after $ATTEMPTS tries; admin not created"
    exit 1
  fi
  sleep "$INTERVAL"
done

code=$(status_of "$GOGS_URL/api/v1/users/$GOGS_ADMIN_USERNAME")
case "$code" in
  200)
    log "admin '$GOGS_ADMIN_USERNAME' already exists; nothing to do"
    exit 0
    ;;
  404) ;;
  *)
    log "unexpected HTTP $code from $GOGS_URL/api/v1/users/$GOGS_ADMIN_USERNAME; admin not created"
    exit 1
    ;;
esac

if out=$("$GOGS_BIN" admin create-user --name "$GOGS_ADMIN_USERNAME" --password "$GOGS_ADMIN_PASSWORD" \
  --email "$GOGS_ADMIN_EMAIL" --admin --config "$GOGS_CONFIG" 2>&1); then
  log "created admin '$GOGS_ADMIN_USERNAME'"
  exit 0
fi
case "$out" in
  *"already exists"*)
    log "admin '$GOGS_ADMIN_USERNAME' was created concurrently; nothing to do"
    exit 0
    ;;
esac
log "gogs admin create-user failed for '$GOGS_ADMIN_USERNAME': $(echo "$out" | tail -n 1)"
exit 1
