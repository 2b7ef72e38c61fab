"""lazyfs.py: a FUSE pass-through file system that forgets what was never synced, in the spirit
of LazyFS, for power-cut tests (power_cut.py drives it). Owns the model of what survives a power
loss; nothing else.

    lazyfs.py BACKING_DIR MOUNTPOINT      (runs in the foreground until unmounted)

Model (stricter than ext4, as POSIX allows):
  * File data: every write, truncate and fallocate goes to an in-memory copy of the file (the
    "page cache"); reads see it. fsync/fdatasync of the file writes the file's bytes and size to
    its durable copy. Both calls do the same (fdatasync also persists the size, as it must for
    the data to be readable).
  * Names: create, mkdir, unlink, rmdir and rename change only the in-memory directory tree.
    fsync of a directory makes that directory's entries as they are now durable (an entry that
    names a subdirectory makes that subdirectory reachable with the entries it had at its own
    last fsync; an entry naming a file makes the file's durable bytes reachable under that
    name). A file that was fsynced but whose name never became durable is lost, as on a real
    disk; an unlinked file whose removal was never synced comes back.
  * The durable state is kept as one object file per inode in BACKING_DIR/.lazyfs/objects plus
    the durable directory entries in memory. At unmount (or at the power cut) it is written out
    as a plain directory tree in BACKING_DIR (hard links to the objects) and .lazyfs is removed,
    so BACKING_DIR holds exactly what a disk would hold after the event. At mount, the plain tree
    found in BACKING_DIR is taken as durable.
  * Power cut: creating or opening /.lazyfs-cut (e.g. `: > MOUNT/.lazyfs-cut`) drops every
    unsynced byte and name and writes the durable state out at once; from then on every call
    that would change anything (write, fsync, create, rename, ...) fails with EIO, so the process
    above it can acknowledge nothing more. Reads still work. Then kill the process and unmount.
    A clean unmount without a cut is like a clean shutdown: everything is synced first.

Not modelled: torn writes inside a synced range (a sync is all or nothing), reordering of
unsynced writes that did reach the disk (nothing unsynced survives at all), xattrs, symlinks,
hard links made through the mount, permissions (everything is root's). Unlinked open files are
removed at once (hard_remove), never renamed to .fuse_hidden*.
Mount options: no direct_io (the kernel page cache serves shared read-only mmaps of these files),
big_writes + max_write=128 KiB (libfuse 2 would otherwise split writes into 4 KiB requests).
"""
import errno
import os
import shutil
import stat
import sys
import threading
import time

import mfusepy as fuse

CUT_NAME = ".lazyfs-cut"
STORE = ".lazyfs"
FALLOC_FL_KEEP_SIZE = 0x01


def eio():
    return fuse.FuseOSError(errno.EIO)


class Node:
    """A file or directory. Files: `obj` holds the durable bytes; `data` (when not None) the
    current bytes, dirty in [lo, hi) and/or in size. Directories: `children` now, `dchildren`
    as of the last fsync of this directory."""

    def __init__(self, ino, kind, mode, obj=None, size=0):
        self.ino, self.kind, self.mode = ino, kind, mode
        self.children = {} if kind == "dir" else None
        self.dchildren = {} if kind == "dir" else None
        self.obj, self.size = obj, size
        self.data = None
        self.lo, self.hi, self.dirty = None, None, False
        self.opens = 0
        self.mtime = self.ctime = time.time()

    # ---- files ----
    def load(self):
        if self.data is None:
            with open(self.obj, "rb") as f:
                self.data = bytearray(f.read())
            if len(self.data) != self.size:  # cannot happen: clean means object == content
                raise RuntimeError(f"inode {self.ino}: object size {len(self.data)} != {self.size}")

    def mark(self, lo, hi):
        self.lo = lo if self.lo is None else min(self.lo, lo)
        self.hi = hi if self.hi is None else max(self.hi, hi)
        self.dirty = True
        self.mtime = self.ctime = time.time()

    def resize(self, new_size):
        self.load()
        old = self.size
        if new_size < old:
            del self.data[new_size:]
        else:
            self.data.extend(bytes(new_size - old))
        self.size = new_size
        self.mark(min(old, new_size), max(old, new_size))

    def sync(self):
        """Makes the current bytes durable (writes them into the object file)."""
        if not self.dirty:
            return
        fd = os.open(self.obj, os.O_WRONLY)
        try:
            lo, hi = self.lo, min(self.hi, self.size)
            if hi > lo:
                os.pwrite(fd, bytes(self.data[lo:hi]), lo)
            os.ftruncate(fd, self.size)
        finally:
            os.close(fd)
        self.lo = self.hi = None
        self.dirty = False


class LazyFS(fuse.Operations):
    use_ns = True

    def __init__(self, backing):
        self.backing = os.path.abspath(backing)
        self.store = os.path.join(self.backing, STORE)
        self.objects = os.path.join(self.store, "objects")
        self.mutex = threading.RLock()  # not `lock`: that name is FUSE's POSIX-lock call
        self.next_ino = 1
        self.fhs = {}
        self.next_fh = 1
        self.cut = False
        self.finished = False
        self.stats = {"writes": 0, "fsyncs": 0, "dir_fsyncs": 0}
        shutil.rmtree(self.store, ignore_errors=True)  # left by a crash of this program
        os.makedirs(self.objects)
        self.root = self.import_tree()

    # ---- durable state in and out ----
    def new_ino(self):
        self.next_ino += 1
        return self.next_ino

    def import_tree(self):
        """Takes the plain tree in the backing dir as durable: every file is hard-linked as an
        object (so later syncs never touch the old names until the tree is written out)."""
        seen = {}

        def walk(path):
            node = Node(self.new_ino(), "dir", 0o755)
            for name in os.listdir(path):
                if path == self.backing and name == STORE:
                    continue
                p = os.path.join(path, name)
                st = os.lstat(p)
                if stat.S_ISDIR(st.st_mode):
                    child = walk(p)
                elif stat.S_ISREG(st.st_mode):
                    key = (st.st_dev, st.st_ino)
                    child = seen.get(key)
                    if child is None:
                        ino = self.new_ino()
                        obj = os.path.join(self.objects, str(ino))
                        os.link(p, obj)
                        child = Node(ino, "file", stat.S_IMODE(st.st_mode), obj, st.st_size)
                        seen[key] = child
                else:
                    continue  # symlinks etc. are not modelled
                node.children[name] = child
                node.dchildren[name] = child
            return node

        return walk(self.backing)

    def write_out(self, durable):
        """Replaces the plain tree in the backing dir with the durable tree (durable=True) or
        the current one (after a full sync), then removes the object store."""
        staging = os.path.join(self.store, "staging")
        os.mkdir(staging)

        def walk(node, path):
            entries = node.dchildren if durable else node.children
            for name, child in entries.items():
                p = os.path.join(path, name)
                if child.kind == "dir":
                    os.mkdir(p)
                    walk(child, p)
                else:
                    os.link(child.obj, p)

        walk(self.root, staging)
        for name in os.listdir(self.backing):
            if name == STORE:
                continue
            p = os.path.join(self.backing, name)
            if os.path.isdir(p) and not os.path.islink(p):
                shutil.rmtree(p)
            else:
                os.unlink(p)
        for name in os.listdir(staging):
            os.rename(os.path.join(staging, name), os.path.join(self.backing, name))
        shutil.rmtree(self.store)
        fd = os.open(self.backing, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def sync_all(self):
        def walk(node):
            for child in node.children.values():
                if child.kind == "dir":
                    walk(child)
                    child.dchildren = dict(child.children)
                else:
                    child.sync()
            node.dchildren = dict(node.children)

        walk(self.root)
        for node in self.fhs.values():  # open but unlinked files
            if node.kind == "file":
                node.sync()

    def power_cut(self):
        if self.cut:
            return
        self.cut = True
        self.write_out(durable=True)
        self.finished = True
        print(f"lazyfs: power cut; unsynced state dropped ({self.stats})", file=sys.stderr,
              flush=True)

    def destroy(self, path):
        with self.mutex:
            if not self.finished:
                self.sync_all()
                self.write_out(durable=False)
                self.finished = True

    # ---- lookups ----
    def lookup(self, path):
        node = self.root
        for part in path.strip("/").split("/"):
            if not part:
                continue
            if node.kind != "dir" or part not in node.children:
                raise fuse.FuseOSError(errno.ENOENT)
            node = node.children[part]
        return node

    def parent_of(self, path):
        head, name = os.path.split(path.rstrip("/"))
        parent = self.lookup(head or "/")
        if parent.kind != "dir":
            raise fuse.FuseOSError(errno.ENOTDIR)
        return parent, name

    def change(self):
        if self.cut:
            raise eio()

    # ---- attributes ----
    def getattr(self, path, fh=None):
        with self.mutex:
            if path == "/" + CUT_NAME:
                return {"st_mode": stat.S_IFREG | 0o644, "st_nlink": 1, "st_size": 0}
            node = self.fhs[fh] if fh is not None and fh in self.fhs else self.lookup(path)
            ns = int(node.mtime * 1e9)
            st = {"st_ino": node.ino, "st_mtime": ns, "st_ctime": int(node.ctime * 1e9),
                  "st_atime": ns, "st_uid": os.getuid(), "st_gid": os.getgid()}
            if node.kind == "dir":
                st.update(st_mode=stat.S_IFDIR | node.mode, st_nlink=2, st_size=4096)
            else:
                st.update(st_mode=stat.S_IFREG | node.mode, st_nlink=1, st_size=node.size,
                          st_blocks=(node.size + 511) // 512)
            return st

    def chmod(self, path, mode):
        with self.mutex:
            self.change()
            self.lookup(path).mode = stat.S_IMODE(mode)
            return 0

    def chown(self, path, uid, gid):
        return 0

    def utimens(self, path, times=None):
        with self.mutex:
            self.change()
            node = self.lookup(path)
            node.mtime = (times[1] / 1e9) if times else time.time()
            return 0

    def access(self, path, amode):
        with self.mutex:
            if path != "/" + CUT_NAME:
                self.lookup(path)
            return 0

    def statfs(self, path):
        st = os.statvfs(self.backing)
        return {k: getattr(st, k) for k in ("f_bsize", "f_frsize", "f_blocks", "f_bfree",
                                            "f_bavail", "f_files", "f_ffree", "f_favail",
                                            "f_namemax")}

    # ---- directories ----
    def readdir(self, path, fh):
        with self.mutex:
            node = self.lookup(path)
            if node.kind != "dir":
                raise fuse.FuseOSError(errno.ENOTDIR)
            return [".", ".."] + list(node.children)

    def mkdir(self, path, mode):
        with self.mutex:
            self.change()
            parent, name = self.parent_of(path)
            if name in parent.children:
                raise fuse.FuseOSError(errno.EEXIST)
            parent.children[name] = Node(self.new_ino(), "dir", stat.S_IMODE(mode))
            parent.mtime = time.time()
            return 0

    def rmdir(self, path):
        with self.mutex:
            self.change()
            parent, name = self.parent_of(path)
            node = self.lookup(path)
            if node.kind != "dir":
                raise fuse.FuseOSError(errno.ENOTDIR)
            if node.children:
                raise fuse.FuseOSError(errno.ENOTEMPTY)
            del parent.children[name]
            return 0

    def fsyncdir(self, path, datasync, fh):
        with self.mutex:
            self.change()
            node = self.lookup(path)
            node.dchildren = dict(node.children)
            self.stats["dir_fsyncs"] += 1
            return 0

    # ---- names ----
    def create(self, path, mode, fi=None):
        with self.mutex:
            if path == "/" + CUT_NAME:
                self.power_cut()
                return self.new_fh(None)
            self.change()
            parent, name = self.parent_of(path)
            node = parent.children.get(name)
            if node is None:
                ino = self.new_ino()
                obj = os.path.join(self.objects, str(ino))
                open(obj, "wb").close()
                node = Node(ino, "file", stat.S_IMODE(mode), obj, 0)
                node.data = bytearray()
                parent.children[name] = node
                parent.mtime = time.time()
            elif node.kind == "dir":
                raise fuse.FuseOSError(errno.EISDIR)
            else:
                node.resize(0)  # O_CREAT|O_TRUNC on an existing file
            return self.new_fh(node)

    def unlink(self, path):
        with self.mutex:
            self.change()
            parent, name = self.parent_of(path)
            node = self.lookup(path)
            if node.kind == "dir":
                raise fuse.FuseOSError(errno.EISDIR)
            del parent.children[name]
            parent.mtime = time.time()
            return 0

    def rename(self, old, new):
        with self.mutex:
            self.change()
            op, oname = self.parent_of(old)
            node = self.lookup(old)
            np_, nname = self.parent_of(new)
            target = np_.children.get(nname)
            if target is node:
                return 0
            if target is not None:
                if target.kind == "dir" and (node.kind != "dir" or target.children):
                    raise fuse.FuseOSError(errno.ENOTEMPTY if node.kind == "dir" else errno.EISDIR)
                if target.kind != "dir" and node.kind == "dir":
                    raise fuse.FuseOSError(errno.ENOTDIR)
            del op.children[oname]
            np_.children[nname] = node
            op.mtime = np_.mtime = time.time()
            return 0

    # ---- file data ----
    def new_fh(self, node):
        fh = self.next_fh
        self.next_fh += 1
        self.fhs[fh] = node
        if node is not None:
            node.opens += 1
        return fh

    def open(self, path, flags):
        with self.mutex:
            if path == "/" + CUT_NAME:
                self.power_cut()
                return self.new_fh(None)
            node = self.lookup(path)
            if node.kind == "dir":
                raise fuse.FuseOSError(errno.EISDIR)
            if flags & os.O_TRUNC:
                self.change()
                node.resize(0)
            return self.new_fh(node)

    def release(self, path, fh):
        with self.mutex:
            node = self.fhs.pop(fh, None)
            if node is not None:
                node.opens -= 1
                if node.opens == 0 and not node.dirty:
                    node.data = None  # clean: the object holds it
            return 0

    def flush(self, path, fh):
        return 0

    def read(self, path, size, offset, fh):
        with self.mutex:
            if path == "/" + CUT_NAME:
                return b""
            node = self.fhs.get(fh) or self.lookup(path)
            end = min(offset + size, node.size)
            if offset >= end:
                return b""
            if node.data is not None:
                return bytes(node.data[offset:end])
            with open(node.obj, "rb") as f:
                f.seek(offset)
                return f.read(end - offset)

    def write(self, path, data, offset, fh):
        with self.mutex:
            node = self.fhs.get(fh)
            if node is None:
                if path == "/" + CUT_NAME:
                    return len(data)
                node = self.lookup(path)
            self.change()
            node.load()
            end = offset + len(data)
            if end > node.size:
                node.data.extend(bytes(end - node.size))
                node.size = end
            node.data[offset:end] = data
            node.mark(offset, end)
            self.stats["writes"] += 1
            return len(data)

    def truncate(self, path, length, fh=None):
        with self.mutex:
            if path == "/" + CUT_NAME:
                return 0
            self.change()
            node = self.fhs.get(fh) if fh is not None else None
            node = node or self.lookup(path)
            node.resize(length)
            return 0

    def fallocate(self, path, mode, offset, size, fh):
        with self.mutex:
            self.change()
            node = self.fhs.get(fh) or self.lookup(path)
            if mode & ~FALLOC_FL_KEEP_SIZE:
                raise fuse.FuseOSError(errno.EOPNOTSUPP)
            if not mode & FALLOC_FL_KEEP_SIZE and offset + size > node.size:
                node.resize(offset + size)
            return 0

    def fsync(self, path, datasync, fh):
        with self.mutex:
            self.change()
            node = self.fhs.get(fh) or self.lookup(path)
            if node is not None:
                node.sync()
            self.stats["fsyncs"] += 1
            return 0


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    backing, mountpoint = sys.argv[1], sys.argv[2]
    fs = LazyFS(backing)
    try:
        fuse.FUSE(fs, mountpoint, foreground=True, nothreads=False, big_writes=True,
                  max_write=131072, fsname="lazyfs", subtype="lazyfs", hard_remove=True)
    except RuntimeError as e:
        # libfuse returns an error when the connection was aborted rather than unmounted
        # (ECONNABORTED). Harmless once the durable state is written out (after a power cut).
        if not fs.finished:
            print(f"lazyfs: FUSE loop failed ({e}) before the state was written out",
                  file=sys.stderr, flush=True)
            return 1
        print(f"lazyfs: FUSE loop ended with {e} after the state was written out",
              file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
