# Sourced by start.sh and create-admin.sh. The chart mounts its Secrets as files (one per variable) in
# $HOMECI_SECRETS_DIR instead of pod environment variables; `load_secret NAME` exports NAME from its file.
# A variable that is already set wins; no file (or no $HOMECI_SECRETS_DIR) leaves NAME as it was.
load_secret() {
  [ -n "${HOMECI_SECRETS_DIR:-}" ] && [ -f "$HOMECI_SECRETS_DIR/$1" ] || return 0
  eval "[ -z \"\${$1:-}\" ]" || return 0
  value=$(cat "$HOMECI_SECRETS_DIR/$1") || exit 1
  export "$1=$value"
}
