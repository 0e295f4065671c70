#!/bin/sh
# Ensure the homeci admin in Gogs and keep its password and e-mail in step with the admin Secret.
#
#   create-admin.sh           one pass, then exit: 0 when the admin exists afterwards, 1 (one line why)
#                             when it does not.
#   create-admin.sh --watch   the same pass, then (admin sync on) every $HOMECI_ADMIN_SYNC_INTERVAL
#                             seconds re-read the admin Secret's files (the kubelet updates them in
#                             place) and run the pass again when their hash changed. Exit 1 only when the
#                             first pass cannot ensure the admin; exit 0 when Gogs ($GOGS_PID) is gone.
#
# One pass:
#   1. wait (bounded) until Gogs answers /healthcheck, i.e. `gogs web` has migrated the database;
#   2. GET /api/v1/users/<name> (public): 404 -> `gogs admin create-user --admin` against the same
#      app.ini (same database); "already exists" from a concurrent run counts as success;
#   3. admin sync on: does the Secret's password authenticate (Basic auth on the token list)?
#      yes -> keep the maintenance token (created once, HOMECI_STATE_DIR/maintenance-token, mode 0600)
#             and apply a changed e-mail;
#      no  -> with the maintenance token, PATCH /api/v1/admin/users/<name> with the new password (and
#             e-mail), then prove it with a Basic-auth call. Without a token: one line saying what to do.
# Every outcome is one log line on stderr; no secret is ever logged, passed on a command line to curl
# or written anywhere but the token file.
set -u

# shellcheck source=secrets.sh
. "$(dirname "$0")/secrets.sh"

GOGS_BIN="${GOGS_BIN:-/app/gogs/gogs}"
GOGS_CONFIG="${GOGS_CONFIG:-/etc/gogs/app.ini}"
GOGS_URL="${GOGS_URL:-http://127.0.0.1:3000}"
ATTEMPTS="${GOGS_ADMIN_WAIT_ATTEMPTS:-90}"
INTERVAL="${GOGS_ADMIN_WAIT_INTERVAL:-2}"
SYNC="${HOMECI_ADMIN_SYNC:-false}"
SYNC_INTERVAL="${HOMECI_ADMIN_SYNC_INTERVAL:-10}"
STATE_DIR="${HOMECI_STATE_DIR:-/data/homeci}"
TOKEN_FILE="$STATE_DIR/maintenance-token"
TOKEN_NAME="homeci-maintenance"
NL='
'
# Variables set by the caller win over the Secret's files (as in secrets.sh); files are re-read each pass.
ENV_USERNAME="${GOGS_ADMIN_USERNAME:-}"
ENV_PASSWORD="${GOGS_ADMIN_PASSWORD:-}"
ENV_EMAIL="${GOGS_ADMIN_EMAIL:-}"

log() { printf 'create-admin: %s\n' "$*" >&2; }

# secret NAME VALUE_FROM_ENV: that value, else the file NAME in $HOMECI_SECRETS_DIR (trailing newlines
# dropped), else "".
secret() {
  if [ -n "$2" ]; then
    printf '%s' "$2"
  elif [ -n "${HOMECI_SECRETS_DIR:-}" ] && [ -f "$HOMECI_SECRETS_DIR/$1" ]; then
    cat "$HOMECI_SECRETS_DIR/$1"
  fi
}

# Reads the identity into ADMIN_USER, ADMIN_PASSWORD, ADMIN_EMAIL; 1 (one line) when a key is missing.
read_identity() {
  ADMIN_USER=$(secret GOGS_ADMIN_USERNAME "$ENV_USERNAME")
  ADMIN_PASSWORD=$(secret GOGS_ADMIN_PASSWORD "$ENV_PASSWORD")
  ADMIN_EMAIL=$(secret GOGS_ADMIN_EMAIL "$ENV_EMAIL")
  [ -n "$ADMIN_USER" ] || { log "GOGS_ADMIN_USERNAME is not set (key username of the admin Secret)"; return 1; }
  [ -n "$ADMIN_PASSWORD" ] || { log "GOGS_ADMIN_PASSWORD is not set (key password of the admin Secret)"; return 1; }
  [ -n "$ADMIN_EMAIL" ] || { log "GOGS_ADMIN_EMAIL is not set (key email of the admin Secret)"; return 1; }
}

# The hash the watch compares: changes when any of the three values changes.
identity_hash() {
  printf '%s\n%s\n%s' "$ADMIN_USER" "$ADMIN_PASSWORD" "$ADMIN_EMAIL" | sha256sum | cut -d' ' -f1
}

# HTTP status of an unauthenticated GET, "000" when the server cannot be reached.
status_of() {
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" 2>/dev/null) || code=000
  echo "${code:-000}"
}

# Text for a double-quoted string in JSON or in a curl config file: \ and " escaped.
quoted() { printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g'; }

# api METHOD PATH AUTH [JSON]: sets CODE (HTTP status, 000 unreachable) and BODY. AUTH is
# "basic" (the Secret's user and password) or "token" (the maintenance token). Credentials and the body
# reach curl through its config on stdin, never its command line.
api() {
  if [ "$3" = basic ]; then
    auth="Basic $(printf '%s:%s' "$ADMIN_USER" "$ADMIN_PASSWORD" | base64 | tr -d '\n')"
  else
    auth="token $(cat "$TOKEN_FILE" 2>/dev/null)"
  fi
  out=$({
    printf 'header = "Authorization: %s"\n' "$auth"
    if [ -n "${4:-}" ]; then
      printf 'header = "Content-Type: application/json"\n'
      printf 'data-binary = "%s"\n' "$(quoted "$4")"
    fi
  } | curl -s -K - -X "$1" -w "$NL%{http_code}" --max-time 10 "$GOGS_URL$2" 2>/dev/null) || true
  CODE=${out##*"$NL"}
  BODY=${out%"$NL"*}
  case "$CODE" in [0-9][0-9][0-9]) ;; *) CODE=000 ;; esac
}

# json_raw FIELD: the raw JSON token ("..." with its escapes) of string FIELD in $BODY, or "".
json_raw() {
  printf '%s' "$BODY" | sed -n -E "s/.*\"$1\":[[:space:]]*(\"([^\"\\\\]|\\\\.)*\").*/\\1/p"
}

lower() { printf '%s' "$1" | tr '[:upper:]' '[:lower:]'; }

# One line from a Gogs error answer (its "message", else the status).
why() {
  msg=$(printf '%s' "$BODY" | sed -n -E 's/.*"message":[[:space:]]*"(([^"\\]|\\.)*)".*/\1/p')
  printf 'HTTP %s%s\n' "$CODE" "${msg:+: $msg}"
}

wait_healthy() {
  i=0
  while [ "$(status_of "$GOGS_URL/healthcheck")" != 200 ]; do
    i=$((i + 1))
    if [ "$i" -ge "$ATTEMPTS" ]; then
      log "Gogs did not become healthy at $GOGS_URL/healthcheck after $ATTEMPTS tries; admin not created"
      return 1
    fi
    sleep "$INTERVAL"
  done
}

# Creates the admin when missing (QUIET=yes: no line when it exists).
ensure_admin() {
  code=$(status_of "$GOGS_URL/api/v1/users/$ADMIN_USER")
  case "$code" in
    200) [ "${QUIET:-}" = yes ] || log "admin '$ADMIN_USER' already exists"; return 0 ;;
    404) ;;
    *) log "unexpected HTTP $code from $GOGS_URL/api/v1/users/$ADMIN_USER; admin not created"; return 1 ;;
  esac
  if out=$("$GOGS_BIN" admin create-user --name "$ADMIN_USER" --password "$ADMIN_PASSWORD" \
    --email "$ADMIN_EMAIL" --admin --config "$GOGS_CONFIG" 2>&1); then
    log "created admin '$ADMIN_USER'"
    return 0
  fi
  case "$out" in
    *"already exists"*)
      log "admin '$ADMIN_USER' was created concurrently; nothing to do"
      return 0
      ;;
  esac
  log "gogs admin create-user failed for '$ADMIN_USER': $(echo "$out" | tail -n 1)"
  return 1
}

# Creates the maintenance token with the Secret's (working) password when the file is missing.
# 0 = a token file exists afterwards.
ensure_token() {
  [ -s "$TOKEN_FILE" ] && return 0
  for name in "$TOKEN_NAME" "$TOKEN_NAME-$(date +%s)"; do
    api POST "/api/v1/users/$ADMIN_USER/tokens" basic "{\"name\":\"$name\"}"
    [ "$CODE" = 422 ] && continue # a token of that name exists (its value is not readable): next name
    break
  done
  sha=$(printf '%s' "$BODY" | sed -n -E 's/.*"sha1":[[:space:]]*"([0-9a-f]+)".*/\1/p')
  if [ "$CODE" != 201 ] || [ -z "$sha" ]; then
    log "could not create the maintenance token for '$ADMIN_USER' ($(why)); a later password change will not be applied"
    return 1
  fi
  if ! (umask 077 && mkdir -p "$STATE_DIR" && printf '%s' "$sha" > "$TOKEN_FILE.new" &&
    mv -f "$TOKEN_FILE.new" "$TOKEN_FILE"); then
    log "could not write the maintenance token to $TOKEN_FILE; a later password change will not be applied"
    return 1
  fi
  log "kept maintenance token '$name' of '$ADMIN_USER' in $TOKEN_FILE (used to apply password changes)"
}

# PATCH /api/v1/admin/users/<name> with AUTH, the user's current full name (raw JSON from $BODY, read
# just before), e-mail EMAIL_JSON (raw) and password PASSWORD ("" = unchanged). Gogs sets every field of
# this form, so the ones homeci does not manage are sent as they are (website and location cannot be read
# through the API and are cleared; login source 0 = local, as create-user made it).
patch_admin() {
  full_name=$(json_raw full_name)
  body="{\"source_id\":0,\"login_name\":\"\",\"full_name\":${full_name:-\"\"},\"email\":$2"
  body="$body,\"password\":\"$(quoted "$3")\",\"website\":\"\",\"location\":\"\"}"
  api PATCH "/api/v1/admin/users/$ADMIN_USER" "$1" "$body"
}

# The e-mail to send: Gogs' current one (raw) when equal ignoring case (Gogs stores it lower case and
# refuses to "change" it to itself), else the Secret's. Sets EMAIL_JSON and EMAIL_CHANGED.
email_to_send() {
  current=$(json_raw email)
  EMAIL_CHANGED=no
  if [ -n "$current" ] && [ "$(lower "$current")" = "\"$(lower "$(quoted "$ADMIN_EMAIL")")\"" ]; then
    EMAIL_JSON=$current
  else
    EMAIL_JSON="\"$(quoted "$(lower "$ADMIN_EMAIL")")\""
    EMAIL_CHANGED=yes
  fi
}

# Apply the Secret's password and e-mail. 0 = done or nothing to do or reported; 2 = Gogs unreachable.
sync_admin() {
  case "$ADMIN_PASSWORD$ADMIN_EMAIL" in
    *[[:cntrl:]]*)
      log "the admin Secret's password or e-mail contains a control character; not applied to '$ADMIN_USER'"
      return 0
      ;;
  esac
  api GET "/api/v1/users/$ADMIN_USER/tokens" basic
  case "$CODE" in
    200)
      ensure_token
      api GET "/api/v1/users/$ADMIN_USER" basic
      [ "$CODE" = 200 ] || { log "reading admin '$ADMIN_USER' answered $(why)"; return 2; }
      email_to_send
      [ "$EMAIL_CHANGED" = yes ] || return 0
      patch_admin basic "$EMAIL_JSON" ""
      if [ "$CODE" = 200 ]; then
        log "applied the admin Secret's e-mail to '$ADMIN_USER'"
      else
        log "could not apply the admin Secret's e-mail to '$ADMIN_USER' ($(why))"
      fi
      return 0
      ;;
    401 | 403) ;;
    000) log "Gogs at $GOGS_URL did not answer; admin sync retried later"; return 2 ;;
    *) log "checking the admin's password answered $(why); admin sync retried later"; return 2 ;;
  esac
  if [ ! -s "$TOKEN_FILE" ]; then
    log "Gogs refuses the admin Secret's password for '$ADMIN_USER' and there is no maintenance token" \
      "(an install older than password sync): put the password Gogs knows back into the Secret, wait for" \
      "'kept maintenance token' here, then set the new one"
    return 0
  fi
  api GET "/api/v1/users/$ADMIN_USER" token
  case "$CODE" in
    200) ;;
    000) log "Gogs at $GOGS_URL did not answer; admin sync retried later"; return 2 ;;
    *) log "reading admin '$ADMIN_USER' with the maintenance token answered $(why); password not applied"; return 0 ;;
  esac
  email_to_send
  patch_admin token "$EMAIL_JSON" "$ADMIN_PASSWORD"
  case "$CODE" in
    200) ;;
    401 | 403)
      log "Gogs refuses the maintenance token ($(why)): it was deleted or its user is no longer an admin;" \
        "remove $TOKEN_FILE, put the password Gogs knows back into the Secret, then set the new one"
      return 0
      ;;
    000) log "Gogs at $GOGS_URL did not answer; admin sync retried later"; return 2 ;;
    *) log "could not set the admin Secret's password for '$ADMIN_USER' ($(why))"; return 0 ;;
  esac
  api GET "/api/v1/users/$ADMIN_USER/tokens" basic
  if [ "$CODE" = 200 ]; then
    what=password
    [ "$EMAIL_CHANGED" = yes ] && what="password and e-mail"
    log "applied the admin Secret's new $what to '$ADMIN_USER' (Gogs accepts it, the old password no longer works)"
    return 0
  fi
  log "set the admin Secret's password for '$ADMIN_USER' but Gogs still refuses it ($(why))"
  return 0
}

# One pass. 1 = the admin does not exist; 2 = Gogs unreachable during the sync (try again).
pass() {
  read_identity || return 1
  ensure_admin || return 1
  [ "$SYNC" = true ] || return 0
  sync_admin
}

wait_healthy || exit 1
pass
status=$?
[ "$status" -eq 1 ] && exit 1
[ "${1:-}" = --watch ] && [ "$SYNC" = true ] || exit 0

# The watch: a hash of the three values, compared every SYNC_INTERVAL seconds; a pass only on a change
# (and again after Gogs did not answer).
last=""
[ "$status" -eq 0 ] && last=$(identity_hash)
# A TERM (start.sh stopping) also ends the pending sleep: nothing of the watch outlives it.
nap=""
trap 'if [ -n "$nap" ]; then kill "$nap" 2>/dev/null; wait "$nap"; fi; exit 0' TERM INT
while :; do
  if [ -n "${GOGS_PID:-}" ] && ! kill -0 "$GOGS_PID" 2>/dev/null; then
    exit 0
  fi
  sleep "$SYNC_INTERVAL" &
  nap=$!
  wait "$nap"
  nap=""
  if ! read_identity 2>/dev/null; then
    [ "$last" = incomplete ] || read_identity
    last=incomplete
    continue
  fi
  now=$(identity_hash)
  [ "$now" = "$last" ] && continue
  QUIET=yes ensure_admin || continue
  sync_admin
  [ "$?" -eq 2 ] || last=$now
done
