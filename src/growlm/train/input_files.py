"""The token files a run reads: stamped in the run's manifest when it starts, checked when it resumes.

At the start the manifest records, for every file of the shard folder's splits, its size, modification time and the
sha256 that `growlm data prepare` recorded when it wrote the file (so nothing is hashed at the start). A resume
stats every file: a size that differs is refused at once; a file whose modification time differs is hashed and
refused unless its bytes are still the recorded ones (a copy or a touch passes). A resume on a large corpus thus
reads only the files that were touched; an edit that keeps both the size and the modification time is not seen
(that takes intent, not accident). Shards written before growlm recorded file hashes: a changed size or time is
refused, as nothing can tell whether the bytes changed.
"""

from __future__ import annotations

import os
from pathlib import Path

from growlm.data.shards import ShardSet
from growlm.io.hashing import sha256_file


def stamps(shards: Path) -> dict[str, dict]:
    """name -> {"size", "mtime_ns", "sha256"} of every file the shard folder's splits read."""
    found = {}
    for name, sha256 in ShardSet(shards).files().items():
        stat = os.stat(shards / name)
        found[name] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": sha256}
    return found


def changed(shards: Path, recorded: dict[str, dict]) -> str | None:
    """What differs from the stamps a run recorded (the first file, said in words), or None."""
    for name, stamp in recorded.items():
        path = shards / name
        if not path.is_file():
            return f"the token file {path} is gone"
        stat = os.stat(path)
        if stat.st_size != stamp["size"]:
            return (
                f"the token file {path} changed since the run started ({stat.st_size:,} bytes, was {stamp['size']:,})"
            )
        if stat.st_mtime_ns == stamp["mtime_ns"]:
            continue
        if stamp["sha256"] is None:
            return f"the token file {path} was modified since the run started (and its shards record no hash to check)"
        if sha256_file(path) != stamp["sha256"]:
            return f"the token file {path} changed since the run started (its sha256 is not the one recorded)"
    return None
