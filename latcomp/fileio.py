"""Safe file input and output.

Output is atomic: a temp file in the target directory, fsync, then one rename (or
hard link). A reader (or a process killed with ``kill -9`` mid-write) sees either
the old file or the complete new one, never a partial file. Where Linux allows, the
temp file has no name until it is complete (``O_TMPFILE``, :func:`atomic_write_stream`),
so a killed process leaves nothing; elsewhere temp names are short
(``.latcomp-PID-XXXXXXXX.tmp``, whatever the length of the output's name), removed on
any exception (SIGTERM too, inside :func:`signals_as_exceptions`), and those left by a
killed process are removed by the next write into the same directory. An operating-system
error names the output, never a temp file. An output is never one of the inputs
(:func:`check_not_an_input`).

Input (:func:`read_input`) is a regular file of bounded size, or standard input for
``-``: a FIFO or a device (``/dev/zero``) is refused at once instead of blocking or
filling memory.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import InputError, LimitError, OutputError

#: Largest input file read by ``latcomp encode``/``decode``/``info`` (docs/codec.md).
MAX_INPUT_BYTES = 1 << 30
#: Names of temp files and directories: ``.latcomp-<pid>-<random>.tmp``.
_TEMP_NAME = re.compile(r"\.latcomp-(\d+)-[A-Za-z0-9_]+\.tmp")


def _temp_prefix() -> str:
    return f".latcomp-{os.getpid()}-"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _running(pid: int) -> bool:
    """Whether process ``pid`` exists (an unknown answer counts as yes: its files are kept)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _remove(path: str | os.PathLike) -> None:
    """Remove a file, link or directory tree; errors are ignored (a later run tries again)."""
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def remove_stale_temps(directory: str | os.PathLike) -> None:
    """Remove the temp files and directories of latcomp processes that no longer run (killed ones)."""
    try:
        names = os.listdir(directory)
    except OSError:
        return
    for name in names:
        match = _TEMP_NAME.fullmatch(name)
        if match and not _running(int(match.group(1))):
            _remove(os.path.join(directory, name))


def _publish_file(tmp: str, path: Path, overwrite: bool) -> None:
    """Move the finished ``tmp`` to ``path``; without ``overwrite`` only if ``path`` does not exist.

    Exclusive creation is race-free: a hard link fails on an existing name, so of two
    processes writing the same new name exactly one succeeds. Where the file system has
    no hard links, the name is claimed with O_EXCL first (it is briefly empty).
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(f"{path} exists; pass --force to overwrite") from None
    except OSError:
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            raise FileExistsError(f"{path} exists; pass --force to overwrite") from None
        os.replace(tmp, path)
    else:
        os.unlink(tmp)


def _user_path(exc: OSError, path: str | os.PathLike) -> OSError:
    """``exc`` naming the output ``path`` (not a temp file's name, or no name at all: "No space left on device")."""
    if exc.errno is None or exc.strerror is None:
        return exc  # raised with a message of its own (e.g. "exists; pass --force")
    return type(exc)(exc.errno, exc.strerror, os.fspath(path))


def atomic_write(path: str | os.PathLike, write: Callable[[Path], None], overwrite: bool = True) -> None:
    """Call ``write(tmp_path)`` to produce the content, then atomically move it to ``path``.

    ``overwrite=False`` creates ``path`` exclusively (FileExistsError if it exists, also when
    another process creates it meanwhile). An operating-system error names ``path``.
    """
    path = Path(path)
    remove_stale_temps(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(), suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _user_path(exc, path) from None
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        _publish_file(tmp, path, overwrite)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise _user_path(exc, path) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _unnamed_file(directory: Path) -> int | None:
    """A file descriptor of a new file without a name in ``directory`` (Linux ``O_TMPFILE``: a process killed
    while writing it leaves nothing behind), or None where the system or file system has none."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(directory, flag | os.O_RDWR, 0o666)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT):
            return None
        raise


def _link_unnamed(fd: int, path: Path) -> bool:
    """Give the unnamed file ``fd`` the name ``path`` (FileExistsError if it exists): ``linkat`` through /proc,
    else with ``AT_EMPTY_PATH``; False where neither is allowed (then nothing was named)."""
    try:
        os.link(f"/proc/self/fd/{fd}", path, follow_symlinks=True)
        return True
    except FileExistsError:
        raise
    except OSError:
        pass
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    func = ctypes.CDLL(None, use_errno=True).linkat
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
    at_fdcwd, at_empty_path = -100, 0x1000
    if func(fd, b"", at_fdcwd, os.fsencode(path), at_empty_path) == 0:
        return True
    if ctypes.get_errno() == errno.EEXIST:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), os.fspath(path))
    return False


def _name_unnamed(fd: int, path: Path, overwrite: bool) -> bool:
    """Give the unnamed file ``fd`` the name ``path`` (as :func:`_publish_file`): without ``overwrite`` a link,
    exclusive; with it, a link to a temp name, then one rename. False where the file cannot be linked."""
    if not overwrite:
        try:
            return _link_unnamed(fd, path)
        except FileExistsError:
            raise FileExistsError(f"{path} exists; pass --force to overwrite") from None
    tmp = path.parent / f"{_temp_prefix()}{os.urandom(6).hex()}.tmp"
    if not _link_unnamed(fd, tmp):
        return False
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return True


def _copy_named(fd: int, path: Path, overwrite: bool) -> None:
    """Where an unnamed file cannot be linked: its content copied into a named temp file (:func:`atomic_write`)."""
    def copy(tmp: Path) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        with os.fdopen(os.dup(fd), "rb") as source, open(tmp, "wb") as target:
            shutil.copyfileobj(source, target)

    atomic_write(path, copy, overwrite)


def atomic_write_stream(path: str | os.PathLike, write: Callable[[BinaryIO], None], overwrite: bool = True) -> None:
    """Call ``write(file)`` to produce the content, then atomically give it the name ``path``.

    Like :func:`atomic_write`, but the content is written to a file without a name where the
    system allows (Linux): until it is complete nothing is visible, so a ``kill -9`` leaves no
    temp file at all. Elsewhere, :func:`atomic_write`.
    """
    path = Path(path)
    remove_stale_temps(path.parent)
    try:
        fd = _unnamed_file(path.parent)
    except OSError as exc:
        raise _user_path(exc, path) from None
    if fd is None:
        def write_named(tmp: Path) -> None:
            with open(tmp, "wb") as f:
                write(f)
        atomic_write(path, write_named, overwrite)
        return
    try:
        with os.fdopen(fd, "wb", closefd=False) as f:
            write(f)
        os.fsync(fd)
        if not _name_unnamed(fd, path, overwrite):
            _copy_named(fd, path, overwrite)
    except OSError as exc:
        raise _user_path(exc, path) from None
    finally:
        os.close(fd)


def atomic_write_dir(path: str | os.PathLike, fill: Callable[[Path], None], overwrite: bool = False) -> None:
    """Call ``fill(tmp_dir)`` to produce a directory, then move it to ``path`` in one step.

    A new ``path`` is created exclusively. With ``overwrite``, an existing directory is
    exchanged with the new one atomically (Linux ``renameat2``; elsewhere two renames) and
    then removed, so no file of the old directory remains.
    """
    path = Path(path)
    remove_stale_temps(path.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(), suffix=".tmp", dir=path.parent))
    except OSError as exc:
        raise _user_path(exc, path) from None
    try:
        fill(tmp)
        os.chmod(tmp, 0o777 & ~_umask())
        if overwrite and os.path.isdir(path) and not os.path.islink(path):
            if not _renameat2(tmp, path, _RENAME_EXCHANGE):  # tmp now holds the old directory
                old = tempfile.mkdtemp(prefix=_temp_prefix(), suffix=".tmp", dir=path.parent)
                os.rename(path, old)  # replaces the empty directory just made
                os.rename(tmp, path)
                tmp = Path(old)
            _remove(tmp)
        else:
            try:
                if not _renameat2(tmp, path, _RENAME_NOREPLACE):
                    os.mkdir(path)  # claim the name: only one process can
                    os.rename(tmp, path)  # replaces the empty directory just made
            except FileExistsError:
                raise FileExistsError(f"{path} exists; pass --force to overwrite") from None
    except OSError as exc:
        _remove(tmp)
        raise _user_path(exc, path) from None
    except BaseException:
        _remove(tmp)
        raise


_RENAME_NOREPLACE, _RENAME_EXCHANGE = 1, 2


def _renameat2(src: str | os.PathLike, dst: str | os.PathLike, flags: int) -> bool:
    """Linux ``renameat2(src, dst, flags)``; False where the system or file system lacks it."""
    if not sys.platform.startswith("linux"):
        return False
    import ctypes

    try:
        func = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd = -100
    if func(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EPERM):
        return False
    raise OSError(err, os.strerror(err), os.fspath(dst))


def atomic_write_bytes(path: str | os.PathLike, data: bytes, overwrite: bool = True) -> None:
    """Write ``data`` to ``path`` atomically (``overwrite=False``: only if it does not exist; see
    :func:`atomic_write_stream`)."""
    atomic_write_stream(path, lambda f: f.write(data), overwrite)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


# --------------------------------------------------------------------------- safe inputs and outputs


def _file_kind(mode: int) -> str:
    kinds = [(stat.S_ISREG, "a regular file"), (stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
             (stat.S_ISLNK, "a symbolic link")]
    return next((what for test, what in kinds if test(mode)), "a special file")


def _read_bounded(stream: BinaryIO, name: str, limit: int, size_hint: int = 0) -> bytes:
    """Read ``stream`` to its end, refusing more than ``limit`` bytes; memory grows with what is read."""
    parts, total = [], 0
    while True:
        part = stream.read(min(max(size_hint + 1, 1 << 20), limit + 1 - total))
        if not part:
            return b"".join(parts)
        parts.append(part)
        total += len(part)
        if total > limit:
            raise LimitError(f"{name}: more than the limit of {limit} bytes")


def read_input(path: str | os.PathLike, limit: int | None = None) -> bytes:
    """All bytes of an input: a regular file of at most ``limit`` bytes (default :data:`MAX_INPUT_BYTES`),
    or standard input for ``-``.

    A FIFO, a device (also behind a symbolic link, e.g. to ``/dev/zero``), a socket or a
    directory fails at once with :class:`InputError`; the file is opened non-blocking, so
    opening a FIFO cannot hang. A terminal is refused as standard input.
    """
    limit = MAX_INPUT_BYTES if limit is None else limit
    if os.fspath(path) == "-":
        if sys.stdin is None or sys.stdin.isatty():
            raise InputError("standard input is a terminal; pipe or redirect a file into it")
        return _read_bounded(sys.stdin.buffer, "standard input", limit)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOCTTY", 0))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except OSError as exc:
        raise InputError(f"{path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{path}: is {_file_kind(st.st_mode)}, not a regular file")
        if st.st_size > limit:
            raise LimitError(f"{path}: {st.st_size} bytes, more than the limit of {limit} bytes")
        with os.fdopen(fd, "rb", closefd=False) as f:
            return _read_bounded(f, str(path), limit, st.st_size)
    finally:
        os.close(fd)


def check_output(path: str | os.PathLike, force: bool, directory: bool = False) -> None:
    """Refuse an output before any work is done (:class:`OutputError`).

    A symbolic link or a special file (FIFO, device, socket) is never written through or
    replaced, even with ``force``; neither is a directory where a file is due or a file
    where a directory is. Anything else that exists needs ``force``. The parent directory
    must exist.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        parent = Path(path).absolute().parent
        if not parent.is_dir():
            raise OutputError(f"{parent}: output directory does not exist") from None
        return
    except OSError as exc:  # e.g. a name too long for the file system
        raise OutputError(f"{path}: {exc.strerror or exc}") from None
    wanted = stat.S_ISDIR if directory else stat.S_ISREG
    if not wanted(st.st_mode):
        raise OutputError(f"{path}: is {_file_kind(st.st_mode)}; latcomp writes only "
                          f"{'directories' if directory else 'regular files'} and never replaces a link or "
                          f"special file")
    if not force:
        raise OutputError(f"{path} exists; pass --force to overwrite")


def check_not_an_input(out: str | os.PathLike, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an output that is one of the ``inputs`` (the same file, also through a link, a hard link or
    another path) or, for a directory, one that holds an input (it would be replaced as a whole)."""
    try:
        out_stat = os.stat(out)
    except OSError:
        return  # a new name: no input is it
    inside = os.path.realpath(out) + os.sep
    for item in inputs:
        if os.fspath(item) == "-":
            continue
        try:
            st = os.stat(item)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (out_stat.st_dev, out_stat.st_ino):
            raise OutputError(f"{out} is the input {os.fspath(item)}; latcomp never writes over its input")
        if stat.S_ISDIR(out_stat.st_mode) and os.path.realpath(item).startswith(inside):
            raise OutputError(f"{out} holds the input {os.fspath(item)}; latcomp never replaces its input")


def write_stdout(data: bytes) -> None:
    """Write binary output to standard output (``-o -``); a terminal is refused."""
    if sys.stdout is None or sys.stdout.isatty():
        raise OutputError("standard output is a terminal; redirect it to a file or a pipe")
    sys.stdout.flush()
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


@contextlib.contextmanager
def signals_as_exceptions() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise SystemExit(128 + signal number), as Ctrl-C
    raises KeyboardInterrupt, so that temp files are removed on the way out."""
    signals = [getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, stop) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
