#!/bin/sh
# homeci Gogs entrypoint: starts `gogs web`, then makes sure the admin user exists (create-admin.sh)
# in the same pod, so the admin is created against the very database Gogs has just migrated
# (SQLite on a ReadWriteOnce volume cannot be opened by a separate Job pod on another node).
# With admin sync on (HOMECI_ADMIN_SYNC=true) create-admin.sh then stays, watching the admin Secret's
# files, until Gogs exits. SIGTERM/SIGINT are forwarded to both; a failed first admin step stops Gogs
# so the pod restarts loudly.
set -u

GOGS_BIN="${GOGS_BIN:-/app/gogs/gogs}"
GOGS_CONFIG="${GOGS_CONFIG:-/etc/gogs/app.ini}"
SCRIPTS_DIR="${SCRIPTS_DIR:-$(dirname "$0")}"

# Gogs itself needs the secrets app.ini expands (${GOGS_SECRET_KEY}, ${GOGS_DATABASE_PASSWORD}); the admin
# identity is left to create-admin.sh.
# shellcheck source=secrets.sh
. "$SCRIPTS_DIR/secrets.sh"
load_secret GOGS_SECRET_KEY
load_secret GOGS_DATABASE_PASSWORD

for dir in ${GOGS_DATA_DIRS:-}; do
  mkdir -p "$dir"
done

gogs_pid=""
admin_pid=""
stopping=""
# shellcheck disable=SC2086 # the pids are empty until started: kill then gets fewer arguments
trap 'stopping=yes; kill -TERM $gogs_pid $admin_pid 2>/dev/null' TERM INT

"$GOGS_BIN" web --config "$GOGS_CONFIG" &
gogs_pid=$!

GOGS_PID=$gogs_pid sh "$SCRIPTS_DIR/create-admin.sh" --watch &
admin_pid=$!

# `wait` returns early when a trapped signal arrives: keep waiting until the child is really gone.
wait_for() {
  status=0
  while :; do
    wait "$1"
    status=$?
    kill -0 "$1" 2>/dev/null || break
  done
  return "$status"
}

wait_for "$admin_pid"
admin_status=$?
if [ "$admin_status" -ne 0 ] && [ -z "$stopping" ] && kill -0 "$gogs_pid" 2>/dev/null; then
  echo "start.sh: the admin user could not be ensured (see create-admin above); stopping Gogs" >&2
  kill -TERM "$gogs_pid" 2>/dev/null
  wait_for "$gogs_pid"
  exit 1
fi

wait_for "$gogs_pid"
gogs_status=$?
# The watch ends by itself once Gogs is gone; end it now, and reap it, so nothing outlives this script.
kill -TERM "$admin_pid" 2>/dev/null
wait "$admin_pid" 2>/dev/null
exit "$gogs_status"
