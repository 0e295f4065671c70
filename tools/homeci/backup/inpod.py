"""The commands backup and restore run inside the stack's own containers (through the API server's
exec): Gogs' own dump and ``tar`` in the Gogs container, Python's ``sqlite3`` (online backup API) and
``tarfile`` in the Gogs bridge container, which shares Drone's data volume (the Drone image has no
shell and no sqlite3). Paths are the chart's: ``/data`` is each pod's data volume."""

from __future__ import annotations

from homeci.backup.script import SCRIPT

# The archive's in-container commands are defined once, in the chart's backup script (the scheduled
# backup runs the same): Gogs' dump, the tar of its files, Drone's online backup, the bridge's files.
GOGS_ENV: str = SCRIPT.GOGS_ENV
GOGS_DUMP: str = SCRIPT.GOGS_DUMP
GOGS_TAR: str = SCRIPT.GOGS_TAR
DRONE_DUMP: str = SCRIPT.DRONE_DUMP
DRONE_TAR: str = SCRIPT.DRONE_TAR

RESTORE_DIR = "/data/.homeci-restore"
GOGS_RESTORE = GOGS_ENV + (
    f"set -e; w={RESTORE_DIR}; cd /data; "
    "rm -rf git/gogs-repositories homeci gogs/data/avatars gogs/data/repo-avatars gogs/data/attachments "
    "gogs/data/lfs-objects gogs/data/sessions; "
    "tar -xf \"$w/files.tar\"; "
    "\"$GOGS\" restore --database-only --config \"$CONF\" --tempdir \"$w\" --from \"$w/database.zip\" >&2; "
    "rm -rf \"$w\"; echo restored"
)

DRONE_BUILDS = """
import sqlite3
con = sqlite3.connect("file:/data/database.sqlite?mode=ro", uri=True, timeout=60)
builds = con.execute("select count(*) from builds").fetchone()[0]
active = con.execute("select count(*) from repos where repo_active").fetchone()[0]
print(builds, active)
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
