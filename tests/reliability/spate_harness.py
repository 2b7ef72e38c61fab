"""Shared harness for the real-daemon reliability tests (full_disk.py, power_cut.py).

Owns: starting and stopping one `spated` process (SIGTERM or SIGKILL, a pid file the shell
script's trap uses as a backstop, the log appended to one file across restarts), boto3 clients
with retries off, reading whole streams back (every shard, closed parents included), the
check that an error is Kinesis-shaped, and the exact comparison of what was acknowledged with
what was read. Not a test by itself.

Every wait here is bounded in time; every read loop in count.
"""
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

REGION = "us-east-1"

# Error codes a Kinesis client may see; a disk-full or power-cut condition must surface as one of
# these (never a dropped connection or a non-JSON 500).
KINESIS_ERROR_CODES = {
    "InternalFailure", "ServiceUnavailable", "ProvisionedThroughputExceededException",
    "LimitExceededException", "ResourceInUseException", "ResourceNotFoundException",
    "InvalidArgumentException", "ExpiredIteratorException", "ExpiredNextTokenException",
    "AccessDeniedException", "ValidationException", "KMSAccessDeniedException",
    "KMSDisabledException", "KMSInvalidStateException", "KMSNotFoundException",
    "KMSOptInRequired", "KMSThrottlingException",
}


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Spated:
    """One spated on `data_dir`, listening on 127.0.0.1:`port`. start() may be called again
    after stop()/kill() (a restart on the same data directory)."""

    def __init__(self, binary, data_dir, port, log_path, pid_file, extra_args=()):
        self.binary = binary
        self.data_dir = data_dir
        self.port = port
        self.log_path = log_path
        self.pid_file = pid_file
        self.extra_args = list(extra_args)
        self.proc = None
        self.endpoint = f"http://127.0.0.1:{port}"

    def start(self, ready_timeout=30.0):
        args = [self.binary, "--data-dir", self.data_dir, "--listen", f"127.0.0.1:{self.port}",
                "--cores", "2", "--log-level", "warn"]
        if "--durability" not in self.extra_args:
            args += ["--durability", "always"]
        args += self.extra_args
        with open(self.log_path, "ab") as f:
            f.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(args)}\n".encode())
            self.proc = subprocess.Popen(args, stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        with open(self.pid_file, "w") as f:
            f.write(str(self.proc.pid))
        deadline = time.monotonic() + ready_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"spated exited with {self.proc.returncode} during startup "
                                   f"(log: {self.log_path})")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except Exception:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"spated not healthy after {ready_timeout} s (log: {self.log_path})")

    def stop(self, timeout=30.0):
        """SIGTERM, then wait; returns the exit code (SIGKILL after `timeout`, reported as None)."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            return None

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None


def make_client(endpoint, read_timeout=30):
    """boto3 Kinesis client, dummy credentials, no retries (every error is seen as it is)."""
    return boto3.session.Session(
        aws_access_key_id="A", aws_secret_access_key="s", region_name=REGION,
    ).client("kinesis", endpoint_url=endpoint, config=Config(
        retries={"max_attempts": 1}, connect_timeout=5, read_timeout=read_timeout))


def describe_error(exc):
    """(code, detail) for an exception from a boto3 call."""
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        ctype = meta.get("HTTPHeaders", {}).get("content-type", "")
        return err.get("Code"), (f"HTTP {meta.get('HTTPStatusCode')} content-type={ctype!r} "
                                 f"message={err.get('Message')!r}")
    return None, f"{type(exc).__name__}: {exc}"


def kinesis_shaped(exc):
    """True if `exc` is a Kinesis error answer: a JSON body whose __type is a Kinesis code."""
    if not isinstance(exc, ClientError):
        return False  # a dropped connection, a timeout, ...
    code, _ = describe_error(exc)
    ctype = exc.response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("content-type", "")
    return code in KINESIS_ERROR_CODES and "json" in ctype


def wait_active(client, stream, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = client.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        if d["StreamStatus"] == "ACTIVE":
            return
        time.sleep(0.1)
    raise RuntimeError(f"stream {stream} not ACTIVE after {timeout} s")


def wait_gone(client, stream, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            client.describe_stream_summary(StreamName=stream)
        except ClientError as e:
            if describe_error(e)[0] == "ResourceNotFoundException":
                return
            raise
        time.sleep(0.1)
    raise RuntimeError(f"stream {stream} still exists {timeout} s after DeleteStream")


def list_shards(client, stream):
    shards, token = [], None
    for _ in range(1000):
        r = (client.list_shards(NextToken=token) if token
             else client.list_shards(StreamName=stream))
        shards += r["Shards"]
        token = r.get("NextToken")
        if not token:
            return shards
    raise RuntimeError("ListShards did not end in 1000 pages")


def read_shard(client, stream, shard_id, timeout=60.0, max_calls=5000):
    """Every record of one shard from TRIM_HORIZON: [(sequence int, data bytes, partition key)].
    Ends at a closed shard's end (no NextShardIterator) or, for an open shard, at the first empty
    answer with MillisBehindLatest 0."""
    it = client.get_shard_iterator(StreamName=stream, ShardId=shard_id,
                                   ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    out = []
    deadline = time.monotonic() + timeout
    for _ in range(max_calls):
        if time.monotonic() > deadline:
            raise RuntimeError(f"reading {stream}/{shard_id} took over {timeout} s "
                               f"({len(out)} records so far): wedged shard?")
        r = client.get_records(ShardIterator=it, Limit=10000)
        for rec in r["Records"]:
            out.append((int(rec["SequenceNumber"]), rec["Data"], rec["PartitionKey"]))
        it = r.get("NextShardIterator")
        if it is None:
            return out
        if not r["Records"] and r.get("MillisBehindLatest", 0) == 0:
            return out
    raise RuntimeError(f"reading {stream}/{shard_id} did not end in {max_calls} calls")


def read_stream(client, stream):
    """{shard id: records} for every shard the stream lists (closed ones too)."""
    return {s["ShardId"]: read_shard(client, stream, s["ShardId"])
            for s in list_shards(client, stream)}


class Ledger:
    """What was acknowledged and what was refused, keyed by the record's unique data payload.
    acked: data -> (stream, shard, sequence int); refused: data -> error code; in_doubt: data of
    records whose request got no answer (allowed to be present or absent, at most once)."""

    def __init__(self):
        self.acked = {}
        self.refused = {}
        self.in_doubt = set()
        self.origin = {}  # data -> (batch number, entry index), for evidence

    def acked_by_shard(self, stream):
        by = {}
        for data, (s, shard, seq) in self.acked.items():
            if s == stream:
                by.setdefault(shard, []).append((seq, data))
        for v in by.values():
            v.sort()
        return by


def compare_stream(ledger, stream, read, exact=True, allow_in_doubt=False):
    """Checks what was read of `stream` against the ledger. Returns (problems, counts).
    exact: every acknowledged record must be present (else: read must be a prefix of what was
    acknowledged per shard, for reads racing with writers). Every record read must be
    acknowledged (or, with allow_in_doubt, in doubt), at its acknowledged shard and sequence
    number, byte for byte, once, in sequence order."""
    problems = []
    acked = ledger.acked_by_shard(stream)
    counts = {"acknowledged": sum(len(v) for v in acked.values()), "read": 0, "lost": 0,
              "duplicated": 0, "unacknowledged_present": 0, "in_doubt_present": 0}
    unacked = []  # (shard, seq, data) of records read that were never acknowledged
    seen = set()
    for shard, records in read.items():
        last = -1
        for seq, data, _pk in records:
            counts["read"] += 1
            if seq <= last:
                problems.append(f"{stream}/{shard}: sequence {seq} after {last} (out of order)")
            last = seq
            if data in seen:
                counts["duplicated"] += 1
                problems.append(f"{stream}/{shard}: record {data[:24]!r}... read twice")
                continue
            seen.add(data)
            if data in ledger.acked:
                s, sh, sq = ledger.acked[data]
                if (s, sh, sq) != (stream, shard, seq):
                    problems.append(f"{stream}/{shard}@{seq}: record {data[:24]!r} was "
                                    f"acknowledged as {s}/{sh}@{sq}")
            elif allow_in_doubt and data in ledger.in_doubt:
                counts["in_doubt_present"] += 1
            else:
                counts["unacknowledged_present"] += 1
                unacked.append((shard, seq, data))
                why = ("refused with " + ledger.refused[data]) if data in ledger.refused else (
                    "in doubt" if data in ledger.in_doubt else "never sent")
                problems.append(f"{stream}/{shard}@{seq}: record {data[:24]!r}... was never "
                                f"acknowledged ({why})")
    for shard, want in acked.items():
        got = [(seq, data) for seq, data, _ in read.get(shard, []) if data in ledger.acked]
        if exact:
            missing = [w for w in want if w[1] not in seen]
            counts["lost"] += len(missing)
            for seq, data in missing[:5]:
                problems.append(f"{stream}/{shard}@{seq}: acknowledged record {data[:24]!r}... "
                                f"missing")
            if len(missing) > 5:
                problems.append(f"{stream}/{shard}: ... {len(missing) - 5} more missing")
            if not missing and got != want:
                problems.append(f"{stream}/{shard}: records read differ from those acknowledged "
                                f"(order or bytes)")
        elif got != want[:len(got)]:
            problems.append(f"{stream}/{shard}: records read are not a prefix of those "
                            f"acknowledged ({len(got)} read, {len(want)} acknowledged)")
    counts["unacked"] = unacked
    return problems, counts


def explain_unacked(ledger, unacked, limit=6):
    """Evidence lines for records read that were never acknowledged: per shard, the sequence
    numbers, and for each PutRecords batch they came from, which entries landed and what the
    client was told for that batch."""
    lines = []
    by_shard = {}
    for shard, seq, data in unacked:
        by_shard.setdefault(shard, []).append((seq, data))
    for shard, recs in sorted(by_shard.items()):
        batches = {}
        for seq, data in recs:
            b, i = ledger.origin.get(data, (None, None))
            batches.setdefault(b, []).append((i, seq, ledger.refused.get(data, "?")))
        lines.append(f"{shard}: {len(recs)} never-acknowledged record(s) present, sequence "
                     f"numbers ...{str(recs[0][0])[-8:]} to ...{str(recs[-1][0])[-8:]} "
                     f"(last 8 digits), from {len(batches)} PutRecords batch(es)")
        for b, entries in list(sorted(batches.items(), key=lambda kv: str(kv[0])))[:limit]:
            acked_in_batch = sum(1 for d, o in ledger.origin.items() if o[0] == b
                                 and d in ledger.acked)
            refused_in_batch = sum(1 for d, o in ledger.origin.items() if o[0] == b
                                   and d in ledger.refused)
            codes = sorted({c for _, _, c in entries})
            lines.append(f"    batch {b}: entries {[i for i, _, _ in entries]} present at "
                         f"...{[str(s)[-6:] for _, s, _ in entries]}; client was told {codes} "
                         f"for them; batch had {acked_in_batch} acknowledged, "
                         f"{refused_in_batch} refused entries")
    return lines


def shard_files(data_dir, tail=3):
    """The last few file names of every shard directory (segments are named by first offset)."""
    out = []
    root = os.path.join(data_dir, "streams")
    try:
        for stream in sorted(os.listdir(root)):
            for shard in sorted(os.listdir(os.path.join(root, stream))):
                names = sorted(os.listdir(os.path.join(root, stream, shard)))
                out.append(f"streams/{stream}/{shard}: ... {' '.join(names[-tail:])}")
    except OSError as e:
        out.append(f"(cannot list {root}: {e})")
    return out


def panics_in_log(path):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if "panicked" in line or "panic" in line.lower()]


def log_tail(path, n=30):
    """The log's last n lines, without the repeated 'PutRecords entries failed' warnings."""
    try:
        with open(path, "rb") as f:
            lines = [line for line in f.read().decode("utf-8", "replace").splitlines()
                     if "PutRecords entries failed" not in line]
    except FileNotFoundError:
        return "(no log)"
    return "\n".join("    | " + line for line in lines[-n:])


__all__ = [name for name in dir() if not name.startswith("_")] + ["BotoCoreError", "ClientError",
                                                                  "sys", "os"]
