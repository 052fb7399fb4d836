"""Started as root inside the image: give the data volume to the image's user, then become that user.

Some hosts mount a volume root-owned, which the image's non-root user cannot write (Railway does, and
runs the image as root when told to with RAILWAY_RUN_UID=0). The image names its user in KEYMUX_RUN_AS;
outside the image (unset) nothing happens. Done first thing, before any config or key is read.
"""

from __future__ import annotations

import os


def drop_root() -> None:
    user = os.environ.get("KEYMUX_RUN_AS")
    if not user or not hasattr(os, "getuid") or os.getuid() != 0:
        return
    import pwd

    entry = pwd.getpwnam(user)
    uid, gid = entry.pw_uid, entry.pw_gid
    data = os.environ.get("KEYMUX_DATA_DIR", "/data")
    if os.path.isdir(data):
        # The directory and what lies directly in it (the ledger and its WAL files), not a whole tree.
        for path in [data, *(os.path.join(data, name) for name in os.listdir(data))]:
            if os.lstat(path).st_uid == 0:
                os.lchown(path, uid, gid)
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    os.environ["HOME"] = entry.pw_dir
