{{/*
app.ini for Gogs 0.14. Deliberately absent: [server] ROOT_URL (ignored since 0.13, EXTERNAL_URL replaces
it), [service] (ignored since 0.12, [auth] replaces it), APP_NAME (now BRAND_NAME) and [mailer] (now
[email]). Secrets come in by ${VAR} expansion.
*/}}
{{- define "homeci-gogs.appIni" -}}
{{- $host := include "homeci-lib.host" (dict "ctx" . "component" "git") -}}
BRAND_NAME = {{ .Values.config.appName }}
RUN_USER = git
RUN_MODE = prod

[server]
PROTOCOL = http
DOMAIN = {{ $host }}
EXTERNAL_URL = https://{{ $host }}/
HTTP_ADDR = 0.0.0.0
HTTP_PORT = 3000
LOCAL_ROOT_URL = http://127.0.0.1:3000/
OFFLINE_MODE = {{ .Values.config.offlineMode }}
APP_DATA_PATH = /data/gogs/data
{{- if .Values.ssh.enabled }}
DISABLE_SSH = false
START_SSH_SERVER = true
SSH_DOMAIN = {{ $host }}
SSH_PORT = {{ .Values.ssh.port }}
SSH_LISTEN_HOST = 0.0.0.0
SSH_LISTEN_PORT = 2222
SSH_ROOT_PATH = /data/git/.ssh
{{- else }}
DISABLE_SSH = true
START_SSH_SERVER = false
{{- end }}

[repository]
ROOT = /data/git/gogs-repositories
DEFAULT_BRANCH = {{ include "homeci-gogs.defaultBranch" . }}

[repository.upload]
TEMP_PATH = /data/gogs/data/tmp/uploads

[database]
{{- if eq .Values.database.type "postgres" }}
{{- $pg := .Values.database.postgres }}
TYPE = postgres
HOST = {{ $pg.host }}:{{ $pg.port }}
NAME = {{ $pg.name }}
USER = {{ $pg.user }}
PASSWORD = ${GOGS_DATABASE_PASSWORD}
SSL_MODE = {{ $pg.sslMode }}
{{- else }}
TYPE = sqlite3
PATH = /data/gogs/data/gogs.db
{{- end }}

[security]
INSTALL_LOCK = true
SECRET_KEY = ${GOGS_SECRET_KEY}
COOKIE_SECURE = true
LOCAL_NETWORK_ALLOWLIST = {{ include "homeci-gogs.allowlist" . }}

[auth]
DISABLE_REGISTRATION = true
REQUIRE_SIGNIN_VIEW = {{ .Values.config.requireSigninView }}
ENABLE_REGISTRATION_CAPTCHA = false

[webhook]
TYPES = gogs
SKIP_TLS_VERIFY = false

[session]
PROVIDER = file
PROVIDER_CONFIG = /data/gogs/data/sessions
COOKIE_SECURE = true

[picture]
DISABLE_GRAVATAR = {{ .Values.config.offlineMode }}
AVATAR_UPLOAD_PATH = /data/gogs/data/avatars
REPOSITORY_AVATAR_UPLOAD_PATH = /data/gogs/data/repo-avatars

[attachment]
PATH = /data/gogs/data/attachments

[lfs]
OBJECTS_PATH = /data/gogs/data/lfs-objects

[email]
ENABLED = false

[log]
MODE = console
LEVEL = {{ .Values.config.logLevel }}
ROOT_PATH = /data/gogs/log
{{- end -}}
