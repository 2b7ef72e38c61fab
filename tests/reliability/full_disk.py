"""Full-disk reliability test: the load and the checks (full_disk.sh owns the small file system,
the trap and the cleanup).

Runs spated on a small, nearly empty file system (the data dir given), with 1 MiB segments so
they roll, and two streams of 2 shards each. Two writers (one per stream, boto3, retries off)
send PutRecords batches of unique 1-4 KiB records until the disk is full (every entry of several
batches in a row refused), then keep writing while a reader checks the streams. Asserts:
  (a) every refused entry and every whole-request error is Kinesis-shaped (an ErrorCode / a JSON
      __type out of KINESIS_ERROR_CODES); a dropped connection or a non-JSON answer fails;
  (b) while full and under write load, GetRecords from TRIM_HORIZON returns exactly the
      acknowledged records, per shard in sequence order, byte for byte (a prefix of them while
      writers race; all of them once they stop);
  (c) DeleteStream of one stream frees space and PutRecords on the other succeeds again
      (bounded retry, 30 s);
  (d) after a SIGTERM and a restart on the same data dir, every acknowledged record of the
      remaining stream is read back exactly once, byte for byte, in order, and nothing that was
      refused appears; the shard accepts writes again (not wedged); the log has no panic.
Prints what spated answered when full (codes, messages, counts) and a PASS/FAIL line.

    full_disk.py SPATED_BINARY DATA_DIR WORK_DIR
Environment: SEED (random seed), FILL_SECS (cap on the fill phase, default 90).
"""
import os
import random
import sys
import threading
import time
from collections import Counter

from spate_harness import (ClientError, Ledger, Spated, compare_stream, describe_error,
                           explain_unacked, free_port, kinesis_shaped, log, log_tail, make_client,
                           panics_in_log, read_stream, shard_files, wait_active, wait_gone)

MAX_LINES = 4  # problems printed per check (the count of all of them is printed too)

BATCH = 64             # records per PutRecords
FULL_STREAK = 6        # batches in a row with every entry refused = "full" for that writer
KEEP_WRITING_SECS = 4  # writes against the full disk while the reader checks
FILL_SECS = float(os.environ.get("FILL_SECS", "90"))


class Writer(threading.Thread):
    """Sends PutRecords batches to one stream until told to stop (or its caps run out)."""

    def __init__(self, endpoint, stream, ledger, lock, rng, errors, stop, deadline):
        super().__init__(daemon=True, name=f"writer-{stream}")
        self.client = make_client(endpoint)
        self.stream, self.ledger, self.lock, self.rng = stream, ledger, lock, rng
        self.errors, self.stop_event, self.deadline = errors, stop, deadline
        self.n = 0
        self.streak = 0          # batches in a row with every entry refused
        self.full_at = None      # when the streak first reached FULL_STREAK
        self.batches = 0
        self.fatal = None        # a non-Kinesis error: the test fails

    def make_record(self):
        self.n += 1
        head = f"{self.stream}-{self.n:09d}-".encode()
        size = self.rng.randint(1024, 4096)
        return head + self.rng.randbytes(size - len(head))

    def put_batch(self):
        datas = [self.make_record() for _ in range(BATCH)]
        self.batches += 1
        batch_no = f"{self.stream}#{self.batches}"
        with self.lock:
            for i, d in enumerate(datas):
                self.ledger.origin[d] = (batch_no, i)
        entries = [{"Data": d, "PartitionKey": f"k{self.rng.randrange(1 << 30)}"} for d in datas]
        try:
            r = self.client.put_records(StreamName=self.stream, Records=entries)
        except ClientError as e:
            code, detail = describe_error(e)
            with self.lock:
                self.errors[("request", code, detail)] += 1
                for d in datas:
                    self.ledger.refused[d] = f"request {code}"
            if not kinesis_shaped(e):
                self.fatal = f"PutRecords answered a non-Kinesis error: {code} {detail}"
            return 0
        except Exception as e:  # connection dropped, timeout: a batch in doubt, and a failure
            with self.lock:
                self.ledger.in_doubt.update(datas)
            self.fatal = f"PutRecords got no Kinesis answer: {describe_error(e)[1]}"
            return 0
        ok = 0
        with self.lock:
            for d, res in zip(datas, r["Records"]):
                if "SequenceNumber" in res:
                    ok += 1
                    self.ledger.acked[d] = (self.stream, res["ShardId"], int(res["SequenceNumber"]))
                else:
                    code = res.get("ErrorCode")
                    msg = res.get("ErrorMessage", "")
                    self.errors[("entry", code, msg[:120])] += 1
                    self.ledger.refused[d] = f"entry {code}"
                    if code not in ("InternalFailure", "ServiceUnavailable",
                                    "ProvisionedThroughputExceededException") \
                            and not str(code).startswith("KMS"):
                        self.fatal = f"PutRecords entry failed with a non-Kinesis ErrorCode {code!r}"
        if len(r["Records"]) != len(datas):
            self.fatal = f"PutRecords answered {len(r['Records'])} entries for {len(datas)}"
        if r.get("FailedRecordCount", 0) != len(datas) - ok:
            self.fatal = (f"FailedRecordCount {r.get('FailedRecordCount')} but "
                          f"{len(datas) - ok} entries failed")
        return ok

    def run(self):
        while not self.stop_event.is_set() and time.monotonic() < self.deadline \
                and self.fatal is None:
            ok = self.put_batch()
            self.streak = self.streak + 1 if ok == 0 else 0
            if self.streak >= FULL_STREAK and self.full_at is None:
                self.full_at = time.monotonic()


def df(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def main():
    binary, data_dir, work = sys.argv[1], sys.argv[2], sys.argv[3]
    seed = int(os.environ.get("SEED", str(int(time.time()))))
    log(f"seed {seed} (SEED={seed} reproduces the record sizes and keys)")
    rng = random.Random(seed)
    failures = []

    def fail(msg):
        failures.append(msg)
        log("FAIL: " + msg)

    def report(check, problems, counts, evidence=True):
        """One FAIL line per problem (at most MAX_LINES printed), then evidence for records
        present that were never acknowledged."""
        for p in problems[:MAX_LINES]:
            fail(f"{check}: {p}")
        if len(problems) > MAX_LINES:
            failures.extend(f"{check}: {p}" for p in problems[MAX_LINES:])
            log(f"FAIL: {check}: ... and {len(problems) - MAX_LINES} more like these")
        unacked = counts.pop("unacked", [])
        if unacked and evidence:
            log(f"evidence ({check}): records the client was told failed, yet stored:")
            for line in explain_unacked(ledger, unacked):
                log("    " + line)
            log("    shard directories (segment files are named by their first offset):")
            for line in shard_files(data_dir):
                log("        " + line)

    spated = Spated(binary, data_dir, free_port(), os.path.join(work, "spated.log"),
                    os.path.join(work, "spated.pid"),
                    ["--segment-bytes", "1MiB", "--quotas", "off", "--shutdown-timeout-secs", "10"])
    spated.start()
    client = make_client(spated.endpoint)
    keep, drop = "fd-keep", "fd-drop"
    for s in (keep, drop):
        client.create_stream(StreamName=s, ShardCount=2)
    for s in (keep, drop):
        wait_active(client, s)
    log(f"spated up on {spated.endpoint}; free space {df(data_dir) >> 20} MiB")

    ledger, lock, errors = Ledger(), threading.Lock(), Counter()
    t0 = time.monotonic()

    # ---- fill until full --------------------------------------------------------------------
    stop = threading.Event()
    writers = [Writer(spated.endpoint, s, ledger, lock, random.Random(rng.random()), errors, stop,
                      t0 + FILL_SECS) for s in (keep, drop)]
    for w in writers:
        w.start()
    while time.monotonic() < t0 + FILL_SECS and any(w.is_alive() for w in writers):
        if all(w.full_at is not None for w in writers) or any(w.fatal for w in writers):
            break
        time.sleep(0.2)
    full = all(w.full_at is not None for w in writers)
    log(f"fill: {len(ledger.acked)} acknowledged, {len(ledger.refused)} refused in "
        f"{time.monotonic() - t0:.1f} s; free space {df(data_dir) >> 10} KiB; full={full}")
    if not full and not any(w.fatal for w in writers):
        fail(f"disk never filled in {FILL_SECS} s (no writer saw {FULL_STREAK} fully refused "
             f"batches in a row)")

    # ---- (b) reads while full, writers still running ----------------------------------------
    reader = make_client(spated.endpoint, read_timeout=60)
    racing_reads = {}
    if full:
        read_start = time.monotonic()
        with lock:
            acked_before = {s: Counter(v[1] for v in ledger.acked.values() if v[0] == s)
                            for s in (keep, drop)}
        for s in (keep, drop):
            try:
                racing_reads[s] = read_stream(reader, s)
            except Exception as e:
                fail(f"(b) GetRecords on {s} while full failed: {describe_error(e)}")
        while time.monotonic() < read_start + KEEP_WRITING_SECS:
            time.sleep(0.1)
    stop.set()
    for w in writers:
        w.join(60)
        if w.is_alive():
            fail(f"{w.name} still blocked in a request 60 s after stop (wedged?)")
        if w.fatal:
            fail(f"(a) {w.name}: {w.fatal}")

    log("what spated answered to writes it could not take:")
    for (kind, code, detail), n in sorted(errors.items(), key=lambda kv: -kv[1]):
        log(f"    {n:6d} x {kind} {code}: {detail}")
    if not errors:
        fail("(a) no write was ever refused")

    for s, read in racing_reads.items():
        problems, counts = compare_stream(ledger, s, read, exact=False)
        short = [f"{sh}: {sum(1 for _ in read.get(sh, []))} read < {n} acknowledged before "
                 f"the read" for sh, n in acked_before[s].items() if len(read.get(sh, [])) < n]
        log(f"(b) while full, racing writers: {s}: {counts['read']} read, consistent="
            f"{not problems and not short}")
        report(f"(b) reading {s} while full under write load", problems + short, counts,
               evidence=False)

    # single PutRecord calls against the full disk: what does the non-batch API answer?
    single = Counter()
    for i in range(20):
        d = f"{keep}-single-{i:04d}-".encode() + rng.randbytes(4000)
        with lock:
            ledger.origin[d] = (f"{keep}#single", i)
        try:
            r = client.put_record(StreamName=keep, Data=d, PartitionKey=f"single-{i}")
            with lock:
                ledger.acked[d] = (keep, r["ShardId"], int(r["SequenceNumber"]))
            single[("acknowledged", None, "")] += 1
        except ClientError as e:
            code, detail = describe_error(e)
            with lock:
                ledger.refused[d] = f"PutRecord {code}"
            single[("PutRecord", code, detail)] += 1
            if not kinesis_shaped(e):
                fail(f"(a) PutRecord answered a non-Kinesis error: {code} {detail}")
        except Exception as e:
            with lock:
                ledger.in_doubt.add(d)
            fail(f"(a) PutRecord got no Kinesis answer: {describe_error(e)[1]}")
    log("what 20 single PutRecord calls got while full:")
    for (kind, code, detail), n in single.items():
        log(f"    {n:6d} x {kind} {code or ''} {detail}")

    # writers stopped, disk still full: the exact check
    for s in (keep, drop):
        try:
            problems, counts = compare_stream(ledger, s, read_stream(reader, s))
        except Exception as e:
            problems, counts = [f"GetRecords failed: {describe_error(e)}"], {}
        log(f"(b) while full, writers stopped: {s}: "
            f"{ {k: v for k, v in counts.items() if k != 'unacked'} }")
        report(f"(b) reading {s} while full", problems, counts)

    # ---- (c) DeleteStream frees space; writes succeed again ---------------------------------
    free_full = df(data_dir)
    try:
        client.delete_stream(StreamName=drop)
        wait_gone(client, drop)
    except Exception as e:
        fail(f"(c) DeleteStream {drop}: {describe_error(e)}")
    w = Writer(spated.endpoint, keep, ledger, lock, random.Random(rng.random()), errors,
               threading.Event(), 0)
    w.n = writers[0].n
    recovered_at = None
    c0 = time.monotonic()
    for _ in range(300):
        if time.monotonic() > c0 + 30:
            break
        if w.put_batch() == BATCH and not w.fatal:
            recovered_at = time.monotonic() - c0
            break
        if w.fatal:
            break
        time.sleep(0.1)
    log(f"(c) free space {free_full >> 10} KiB while full, {df(data_dir) >> 10} KiB after "
        f"DeleteStream")
    if w.fatal:
        fail(f"(c) {w.fatal}")
    if recovered_at is None:
        fail("(c) PutRecords still refused 30 s after DeleteStream freed space")
    else:
        log(f"(c) a whole PutRecords batch succeeded {recovered_at:.2f} s after DeleteStream")
        for _ in range(5):  # a little more traffic after recovery
            w.put_batch()
        if w.fatal:
            fail(f"(c) {w.fatal}")

    # ---- (d) restart: exactly the acknowledged records, once --------------------------------
    code = spated.stop()
    log(f"(d) spated exit code after SIGTERM: {code}")
    if code != 0:
        fail(f"(d) spated exited with {code} on SIGTERM (expected 0)")
    spated.start()
    client = make_client(spated.endpoint, read_timeout=60)
    streams = client.list_streams()["StreamNames"]
    if drop in streams:
        fail(f"(d) deleted stream {drop} is back after restart")
    try:
        problems, counts = compare_stream(ledger, keep, read_stream(client, keep))
    except Exception as e:
        problems, counts = [f"GetRecords failed: {describe_error(e)}"], {}
    log(f"(d) after restart, {keep}: {({k: v for k, v in counts.items() if k != 'unacked'})}")
    report(f"(d) after restart, {keep}", problems, counts, evidence=False)
    w.client = make_client(spated.endpoint)
    if w.put_batch() != BATCH:
        fail(f"(d) PutRecords after restart not fully accepted: {w.fatal or 'entries refused'}")

    spated.stop()
    panics = panics_in_log(spated.log_path)
    if panics:
        fail("spated log mentions a panic:\n" + "\n".join(panics[:10]))
    log(f"total {time.monotonic() - t0:.1f} s")
    if failures:
        log(f"spated log tail ({spated.log_path}):\n{log_tail(spated.log_path)}")
        by_check = Counter(f[:3] if f.startswith("(") else "other" for f in failures)
        log("problems by check: " + ", ".join(f"{k} {v}" for k, v in sorted(by_check.items())))
        print(f"FAIL full_disk: {len(failures)} problem(s); first: {failures[0]}", flush=True)
        return 1
    print(f"PASS full_disk: {len(ledger.acked)} acknowledged records checked", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
