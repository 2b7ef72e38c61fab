"""Self-test of lazyfs.py's power-loss model (power_cut.sh runs it before the spated test, so a
broken file system is never taken for a broken server). Owns nothing but these checks.

    lazyfs_selftest.py WORK_DIR     (mounts WORK_DIR/mnt over WORK_DIR/backing, as root)

Checks, after a power cut: synced data with a synced name survives; unsynced data, unsynced
names (create, rename, unlink, mkdir) do not; fallocate + write + fdatasync keeps size and bytes;
a shared mmap sees writes made with pwrite; every change after the cut fails with EIO; a clean
unmount keeps everything. Prints PASS/FAIL lines; exits 1 on any failure.
"""
import errno
import mmap
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
failures = []
passed = []


def check(cond, what):
    print(("PASS " if cond else "FAIL ") + "lazyfs: " + what, flush=True)
    (passed if cond else failures).append(what)
    if not cond:
        failures.append(what)


def mount(backing, mnt):
    proc = subprocess.Popen([sys.executable, "-W", "ignore", os.path.join(HERE, "lazyfs.py"),
                             backing, mnt], stderr=subprocess.PIPE)
    for _ in range(100):
        if os.path.ismount(mnt):
            return proc
        if proc.poll() is not None:
            raise RuntimeError(f"lazyfs exited: {proc.stderr.read().decode()}")
        time.sleep(0.05)
    raise RuntimeError("lazyfs did not mount in 5 s")


def umount(proc, mnt):
    subprocess.run(["fusermount", "-u", mnt], check=True)
    proc.wait(20)


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_file(path, data, sync):
    fd = os.open(path, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        return None


def main():
    work = sys.argv[1]
    backing, m = os.path.join(work, "backing"), os.path.join(work, "mnt")
    os.makedirs(backing, exist_ok=True)
    os.makedirs(m, exist_ok=True)
    with open(os.path.join(backing, "pre"), "wb") as f:
        f.write(b"pre")
    with open(os.path.join(backing, "old"), "wb") as f:
        f.write(b"old")

    proc = mount(backing, m)
    try:
        write_file(f"{m}/a", b"x", sync=True)
        write_file(f"{m}/b", b"y", sync=False)
        fsync_dir(m)
        with open(f"{m}/a", "ab") as f:                      # unsynced append
            f.write(b"more")
        write_file(f"{m}/cat.tmp", b"catalog", sync=True)  # the atomic-replace dance
        os.rename(f"{m}/cat.tmp", f"{m}/cat")
        os.mkdir(f"{m}/e")
        write_file(f"{m}/e/f", b"e", sync=True)
        fsync_dir(f"{m}/e")
        fsync_dir(m)
        # the root is never synced again: these name changes must all be lost
        write_file(f"{m}/c", b"z", sync=True)               # name never synced
        os.rename(f"{m}/old", f"{m}/new")                    # rename, never synced
        os.unlink(f"{m}/pre")                                # unlink, never synced
        os.mkdir(f"{m}/d")
        write_file(f"{m}/d/f", b"d", sync=True)
        fsync_dir(f"{m}/d")                                  # d's own entry never synced
        # a segment: fallocate 1 MiB, write, fdatasync; then an unsynced write after it
        fd = os.open(f"{m}/e/seg", os.O_CREAT | os.O_RDWR, 0o644)
        os.posix_fallocate(fd, 0, 1 << 20)
        os.pwrite(fd, b"frame-1", 0)
        os.fdatasync(fd)
        fsync_dir(f"{m}/e")
        os.pwrite(fd, b"frame-2", 4096)
        mm = mmap.mmap(fd, 1 << 20, mmap.MAP_SHARED, mmap.PROT_READ)
        check(mm[:7] == b"frame-1" and mm[4096:4103] == b"frame-2",
              "a shared mmap sees bytes written with pwrite")
        check(read(f"{m}/a") == b"xmore", "reads see unsynced writes")
        with open(f"{m}/.lazyfs-cut", "w"):
            pass
        try:
            os.pwrite(fd, b"late", 0)
            late = "write succeeded"
        except OSError as e:
            late = errno.errorcode.get(e.errno)
        try:
            os.fdatasync(fd)
            late_sync = "fdatasync succeeded"
        except OSError as e:
            late_sync = errno.errorcode.get(e.errno)
        check(late == "EIO" and late_sync == "EIO", f"after the cut: write {late}, "
              f"fdatasync {late_sync} (want EIO, EIO)")
        mm.close()
        os.close(fd)
    finally:
        umount(proc, m)

    check(read(f"{backing}/a") == b"x", "synced data under a synced name survives; an "
          "unsynced append does not")
    check(read(f"{backing}/b") == b"", "a synced name whose data was never synced is empty")
    check(read(f"{backing}/c") is None, "a synced file whose name was never synced is gone")
    check(read(f"{backing}/cat") == b"catalog" and read(f"{backing}/cat.tmp") is None,
          "write tmp + fdatasync + rename + dir fsync: the new name holds the data")
    check(read(f"{backing}/old") == b"old" and read(f"{backing}/new") is None,
          "an unsynced rename is undone")
    check(read(f"{backing}/pre") == b"pre", "an unsynced unlink is undone")
    check(not os.path.exists(f"{backing}/d"), "a directory whose entry was never synced is gone")
    check(read(f"{backing}/e/f") == b"e", "a synced directory with a synced entry keeps its file")
    seg = read(f"{backing}/e/seg")
    check(seg is not None and len(seg) == 1 << 20 and seg[:7] == b"frame-1"
          and seg[4096:4103] == bytes(7), "fallocate + write + fdatasync survives (size and "
          "bytes); a later unsynced write does not")
    check(not os.path.exists(f"{backing}/.lazyfs"), "the object store is gone after the cut")

    # a clean unmount keeps everything, synced or not
    proc = mount(backing, m)
    try:
        check(read(f"{m}/a") == b"x" and read(f"{m}/e/f") == b"e", "remount shows the "
              "durable tree")
        write_file(f"{m}/g", b"g", sync=False)
        os.mkdir(f"{m}/h")
    finally:
        umount(proc, m)
    check(read(f"{backing}/g") == b"g" and os.path.isdir(f"{backing}/h"),
          "a clean unmount keeps unsynced data and names")

    print(f"lazyfs self-test: {len(passed)} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
