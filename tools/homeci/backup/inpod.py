"""The commands backup and restore run inside the stack's own containers (through the API server's
exec): Gogs' own dump and ``tar`` in the Gogs container, Python's ``sqlite3`` (online backup API) and
``tarfile`` in the Gogs bridge container, which shares Drone's data volume (the Drone image has no
shell and no sqlite3). Paths are the chart's: ``/data`` is each pod's data volume."""

from __future__ import annotations

GOGS_ENV = (
    ". /opt/homeci/secrets.sh; load_secret GOGS_SECRET_KEY; load_secret GOGS_DATABASE_PASSWORD; "
    'GOGS="${GOGS_BIN:-/app/gogs/gogs}"; CONF="${GOGS_CONFIG:-/etc/gogs/app.ini}"; '
)
# Gogs' portable dump of its database (every table as JSON), written on the data volume (the pod's
# /tmp is small), sent to stdout, removed. Gogs logs to stdout: sent to stderr.
GOGS_DUMP = GOGS_ENV + (
    "set -e; w=/data/.homeci-backup; rm -rf \"$w\"; mkdir -p \"$w\"; "
    "\"$GOGS\" backup --database-only --config \"$CONF\" --tempdir \"$w\" --target \"$w\" "
    "--archive-name database.zip >&2; cat \"$w/database.zip\"; rm -rf \"$w\""
)
# What Gogs keeps beside its database: repositories, attachments, avatars, LFS objects, and homeci's
# own state (the admin-sync maintenance token, which lives in the database too).
GOGS_FILES = ("git/gogs-repositories", "gogs/data", "homeci")
GOGS_EXCLUDE = ("gogs/data/gogs.db", "gogs/data/gogs.db-journal", "gogs/data/sessions", "gogs/data/tmp")
GOGS_TAR = (
    "set -e; cd /data; set --; for d in " + " ".join(GOGS_FILES) + "; do [ -e \"$d\" ] && set -- \"$@\" \"$d\"; "
    "done; tar -cf - " + " ".join(f"--exclude={x}" for x in GOGS_EXCLUDE) + " \"$@\""
)
RESTORE_DIR = "/data/.homeci-restore"
GOGS_RESTORE = GOGS_ENV + (
    f"set -e; w={RESTORE_DIR}; cd /data; "
    "rm -rf git/gogs-repositories homeci gogs/data/avatars gogs/data/repo-avatars gogs/data/attachments "
    "gogs/data/lfs-objects gogs/data/sessions; "
    "tar -xf \"$w/files.tar\"; "
    "\"$GOGS\" restore --database-only --config \"$CONF\" --tempdir \"$w\" --from \"$w/database.zip\" >&2; "
    "rm -rf \"$w\"; echo restored"
)

# Python (stdlib) in the bridge container. The online backup copies a consistent snapshot while
# Drone keeps writing; it is written next to the database, streamed, removed.
DRONE_DUMP = """
import os, sqlite3, sys
db, tmp = "/data/database.sqlite", "/data/.homeci-backup.sqlite"
src = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=60)
dst = sqlite3.connect(tmp)
src.backup(dst)
dst.close()
src.close()
with open(tmp, "rb") as f:
    while chunk := f.read(1 << 16):
        sys.stdout.buffer.write(chunk)
sys.stdout.buffer.flush()
os.unlink(tmp)
"""
DRONE_TAR = """
import os, sys, tarfile
with tarfile.open(fileobj=sys.stdout.buffer, mode="w|") as tar:
    if os.path.isdir("/data/gogs-bridge"):
        tar.add("/data/gogs-bridge", arcname="gogs-bridge")
"""
DRONE_BUILDS = """
import sqlite3
con = sqlite3.connect("file:/data/database.sqlite?mode=ro", uri=True, timeout=60)
print(con.execute("select count(*) from builds").fetchone()[0], con.execute("select count(*) from repos where repo_active").fetchone()[0])
"""
DRONE_RESTORE = f"""
import os, shutil, sqlite3, tarfile
w = "{RESTORE_DIR}"
con = sqlite3.connect(f"{{w}}/database.sqlite")
check = con.execute("pragma integrity_check").fetchone()[0]
con.close()
if check != "ok":
    raise SystemExit(f"the archived Drone database fails its integrity check: {{check}}")
for suffix in ("-journal", "-wal", "-shm"):
    if os.path.exists("/data/database.sqlite" + suffix):
        os.unlink("/data/database.sqlite" + suffix)
os.replace(f"{{w}}/database.sqlite", "/data/database.sqlite")
shutil.rmtree("/data/gogs-bridge", ignore_errors=True)
with tarfile.open(f"{{w}}/files.tar") as tar:
    tar.extractall("/data", filter="data")
shutil.rmtree(w)
print("restored")
"""
# Reads exactly <size> bytes of stdin into <file> (the exec protocol cannot signal the end of stdin).
UPLOAD = """
import os, sys
size, name = int(sys.argv[1]), sys.argv[2]
os.makedirs(os.path.dirname(name), exist_ok=True)
with open(name, "wb") as out:
    while size > 0:
        chunk = sys.stdin.buffer.read(min(size, 1 << 16))
        if not chunk:
            raise SystemExit(f"stdin ended {size} bytes early")
        out.write(chunk)
        size -= len(chunk)
"""


def upload_command(python: bool, size: int, name: str) -> list[str]:
    """The command that writes ``size`` bytes of stdin to ``name`` (``head -c`` where no Python)."""
    if python:
        return ["python3", "-c", UPLOAD, str(size), name]
    return ["sh", "-c", 'mkdir -p "$(dirname "$2")" && head -c "$1" > "$2"', "sh", str(size), name]
