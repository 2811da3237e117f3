"""Where the site may be written, and replacing it in one step.

`shoplens report --out DIR` writes only into a new folder, an empty folder, or a folder that
holds an earlier shoplens site (it has a `.shoplens-site` marker file). It never writes through
a symbolic link: the site is built in a fresh sibling folder, which then takes the place of
`DIR` by rename; an earlier site is removed only once the new one is in place.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SITE_MARKER = ".shoplens-site"
SITE_FORMAT = 1


class SiteFolderError(Exception):
    """The --out folder cannot take the site; the message names the folder and the cause."""


def marker_format(folder: Path) -> int | None:
    """The format version of the shoplens site in `folder`, or None if it holds none.

    The marker must be a regular file (not a symbolic link) reading `shoplens-site format N`.
    """
    marker = folder / SITE_MARKER
    if marker.is_symlink() or not marker.is_file():
        return None
    try:
        words = marker.read_text(encoding="utf-8").split()
    except (OSError, UnicodeDecodeError):
        return None
    if len(words) == 3 and words[:2] == ["shoplens-site", "format"] and words[2].isdigit():
        return int(words[2])
    return None


def check_site_folder(out: Path) -> None:
    """Raise SiteFolderError unless `out` may take the site (see the module docstring)."""
    if out.is_symlink():
        raise SiteFolderError(
            f"refusing to write the site to {out}: it is a symbolic link "
            "(pass the folder it points to)"
        )
    real = out.resolve()
    if real == Path(real.anchor):
        raise SiteFolderError(
            f"refusing to write the site to {out}: the root folder; choose a folder of its own"
        )
    if not out.exists():
        return
    if not out.is_dir():
        raise SiteFolderError(f"refusing to write the site to {out}: it is not a folder")
    if os.path.ismount(real):
        raise SiteFolderError(
            f"refusing to write the site to {out}: it is a mount point and cannot be replaced "
            "in one step; choose a folder inside it"
        )
    if marker_format(out) is not None:
        return
    try:
        empty = not any(out.iterdir())
    except OSError as exc:
        raise SiteFolderError(f"cannot read the folder {out}: {exc.strerror}") from exc
    if not empty:
        raise SiteFolderError(
            f"refusing to write the site to {out}: the folder is not empty and holds no "
            f"shoplens site (no {SITE_MARKER} file); choose a new or empty folder"
        )


@contextmanager
def new_site(out: Path) -> Iterator[Path]:
    """Yield a fresh folder beside `out` to build the site in; on success it replaces `out`.

    The folder gets the marker and the permissions of the folder it replaces (or the usual
    ones for a new folder). If the build fails it is removed and `out` is left as it was.
    """
    check_site_folder(out)
    real = out.resolve()
    try:
        real.parent.mkdir(parents=True, exist_ok=True)
        staging = real.parent / f".{real.name}.shoplens-new-{secrets.token_hex(4)}"
        staging.mkdir()
    except OSError as exc:
        raise SiteFolderError(f"cannot create a folder beside {out}: {exc}") from exc
    try:
        if real.is_dir():
            staging.chmod(real.stat().st_mode & 0o7777)
        (staging / SITE_MARKER).write_text(
            f"shoplens-site format {SITE_FORMAT}\n", encoding="utf-8"
        )
        yield staging
        _replace(staging, out, real)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _replace(staging: Path, out: Path, real: Path) -> None:
    """Put `staging` in the place of `real` (= `out` resolved); remove an earlier site after."""
    check_site_folder(out)  # again: the folder may have changed during the build
    if not real.exists() or not any(real.iterdir()):
        try:
            os.replace(staging, real)  # a new path, or an empty folder (rename replaces it)
        except OSError as exc:
            raise SiteFolderError(f"cannot write the site to {out}: {exc}") from exc
        return
    old = real.parent / f".{real.name}.shoplens-old-{secrets.token_hex(4)}"
    try:
        os.rename(real, old)
    except OSError as exc:
        raise SiteFolderError(f"cannot replace the site in {out}: {exc}") from exc
    try:
        os.rename(staging, real)
    except OSError as exc:
        os.rename(old, real)
        raise SiteFolderError(f"cannot replace the site in {out}: {exc}") from exc
    try:
        shutil.rmtree(old)
    except OSError as exc:
        raise SiteFolderError(
            f"the new site is in {out}, but the earlier one could not be removed from {old}: {exc}"
        ) from exc
