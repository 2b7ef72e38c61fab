"""Power-cut reliability test: the load, the cuts and the checks (power_cut.sh owns the trap and
the time cap; lazyfs.py owns what a power loss keeps).

CUTS times: mount lazyfs over WORK/backing, start spated (--durability always) on it, check what
the previous cut left (below), then run a mixed load for a random 1-4 s and cut the power at a
random moment: lazyfs drops every unsynced byte and name, spated is killed with SIGKILL, lazyfs is
unmounted. After the last cut, one more mount + start + check, then a clean stop.

Load, with boto3 (retries off), all on 127.0.0.1:
  * PutRecords batches (1-50 unique records of 256 B - 2 KiB) on pc-a (2 shards) and on pc-b;
  * a SplitShard of pc-b's widest open shard at a random moment, while pc-b is being written;
  * an enhanced fan-out reader: RegisterStreamConsumer on pc-a (once) and SubscribeToShard from
    TRIM_HORIZON on one shard, noting every record it is sent.
Checks after each restart (every shard, closed parents included, read from TRIM_HORIZON):
  * every acknowledged record is there, at its acknowledged shard and sequence number, byte for
    byte, in sequence order per shard; none appears twice;
  * no record appears that was refused before the cut; records whose request was in flight at
    the cut may be there or not (counted); those found become "acknowledged" for later cycles,
    those missing must never show up later;
  * every record the fan-out reader was sent is there (readers must only see durable records);
  * a SplitShard that was answered 200 before the cut left its child shards; the consumer whose
    registration was answered is still there;
  * spated's log has no panic.
Prints per-cut counts and totals: acknowledged, read back, lost, duplicated, in doubt.

    power_cut.py SPATED_BINARY WORK_DIR
Environment: CUTS (default 3), SEED, LOAD_MIN_SECS / LOAD_MAX_SECS (cut moment, default 1 / 4),
SPATED_ARGS (extra spated flags; only to check the checker: `SPATED_ARGS="--durability never"`
must make the test fail with lost records).
"""
import os
import random
import subprocess
import sys
import threading
import time

from spate_harness import (ClientError, Ledger, Spated, compare_stream, describe_error,
                           explain_unacked, free_port, kinesis_shaped, list_shards, log, log_tail,
                           make_client, panics_in_log, read_stream, wait_active)

HERE = os.path.dirname(os.path.abspath(__file__))
CUTS = int(os.environ.get("CUTS", "3"))
LOAD_MIN = float(os.environ.get("LOAD_MIN_SECS", "1"))
LOAD_MAX = float(os.environ.get("LOAD_MAX_SECS", "4"))
STREAM_A, STREAM_B, CONSUMER = "pc-a", "pc-b", "pc-efo"
MAX_LINES = 6


class Cut:
    """Set by the main thread just before it cuts the power: answers processed after it cannot
    tell whether a refused entry reached the disk."""

    def __init__(self):
        self.event = threading.Event()


class Writer(threading.Thread):
    def __init__(self, endpoint, stream, ledger, lock, rng, cut, counter, problems):
        super().__init__(daemon=True, name=f"writer-{stream}")
        self.client = make_client(endpoint, read_timeout=15)
        self.stream, self.ledger, self.lock, self.rng = stream, ledger, lock, rng
        self.cut, self.counter, self.problems = cut, counter, problems
        self.acked = self.requests = 0

    def run(self):
        for _ in range(100000):
            if self.cut.event.is_set():
                return
            n = self.rng.randint(1, 50)
            datas = []
            with self.lock:
                for _ in range(n):
                    self.counter[self.stream] += 1
                    head = f"{self.stream}-{self.counter[self.stream]:09d}-".encode()
                    d = head + self.rng.randbytes(self.rng.randint(256, 2048) - len(head))
                    datas.append(d)
                    self.ledger.origin[d] = (f"{self.stream}#{self.counter[self.stream]}", 0)
            entries = [{"Data": d, "PartitionKey": f"k{self.rng.randrange(1 << 20)}"}
                       for d in datas]
            self.requests += 1
            try:
                r = self.client.put_records(StreamName=self.stream, Records=entries)
            except Exception as e:
                with self.lock:
                    if self.cut.event.is_set():
                        self.ledger.in_doubt.update(datas)
                    elif isinstance(e, ClientError) and kinesis_shaped(e):
                        for d in datas:
                            self.ledger.refused[d] = f"request {describe_error(e)[0]}"
                    else:
                        self.ledger.in_doubt.update(datas)
                        self.problems.append(f"{self.stream}: PutRecords before the cut got no "
                                             f"Kinesis answer: {describe_error(e)[1]}")
                if self.cut.event.is_set():
                    return
                time.sleep(0.05)
                continue
            with self.lock:
                late = self.cut.event.is_set()
                for d, res in zip(datas, r["Records"]):
                    if "SequenceNumber" in res:
                        self.acked += 1
                        self.ledger.acked[d] = (self.stream, res["ShardId"],
                                                int(res["SequenceNumber"]))
                    elif late:
                        self.ledger.in_doubt.add(d)
                    else:
                        self.ledger.refused[d] = f"entry {res.get('ErrorCode')}"


class Splitter(threading.Thread):
    """Splits pc-b's widest open shard after `delay` s; notes the children once answered."""

    def __init__(self, endpoint, delay, cut):
        super().__init__(daemon=True, name="splitter")
        self.client = make_client(endpoint, read_timeout=30)
        self.delay, self.cut = delay, cut
        self.answered = False
        self.children = set()
        self.error = None

    def run(self):
        if self.cut.event.wait(self.delay):
            return
        try:
            shards = [s for s in list_shards(self.client, STREAM_B)
                      if "EndingSequenceNumber" not in s["SequenceNumberRange"]]
            before = {s["ShardId"] for s in list_shards(self.client, STREAM_B)}
            widest = max(shards, key=lambda s: int(s["HashKeyRange"]["EndingHashKey"])
                         - int(s["HashKeyRange"]["StartingHashKey"]))
            lo = int(widest["HashKeyRange"]["StartingHashKey"])
            hi = int(widest["HashKeyRange"]["EndingHashKey"])
            self.client.split_shard(StreamName=STREAM_B, ShardToSplit=widest["ShardId"],
                                    NewStartingHashKey=str((lo + hi) // 2 + 1))
            self.answered = not self.cut.event.is_set()
            self.children = {s["ShardId"] for s in list_shards(self.client, STREAM_B)} - before
        except Exception as e:
            if not self.cut.event.is_set():
                self.error = describe_error(e)


class FanOut(threading.Thread):
    """SubscribeToShard from TRIM_HORIZON on one shard of pc-a; notes every record sent."""

    def __init__(self, endpoint, consumer_arn, shard_id, cut):
        super().__init__(daemon=True, name="efo")
        self.client = make_client(endpoint, read_timeout=10)
        self.consumer_arn, self.shard_id, self.cut = consumer_arn, shard_id, cut
        self.seen = []
        self.events = 0
        self.error = None

    def run(self):
        try:
            r = self.client.subscribe_to_shard(ConsumerARN=self.consumer_arn,
                                               ShardId=self.shard_id,
                                               StartingPosition={"Type": "TRIM_HORIZON"})
            for ev in r["EventStream"]:
                e = ev.get("SubscribeToShardEvent")
                if e is None:
                    continue
                self.events += 1
                self.seen.extend((int(x["SequenceNumber"]), x["Data"]) for x in e["Records"])
                if self.cut.event.is_set() or self.events > 100000:
                    return
        except Exception as e:
            if not self.cut.event.is_set():
                self.error = describe_error(e)


class LazyMount:
    def __init__(self, backing, mnt, log_path, pid_file):
        self.backing, self.mnt, self.log_path, self.pid_file = backing, mnt, log_path, pid_file
        self.proc = None

    def mount(self):
        with open(self.log_path, "ab") as f:
            self.proc = subprocess.Popen([sys.executable, "-W", "ignore",
                                          os.path.join(HERE, "lazyfs.py"), self.backing, self.mnt],
                                         stdout=f, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL)
        with open(self.pid_file, "w") as f:
            f.write(str(self.proc.pid))
        for _ in range(200):
            if os.path.ismount(self.mnt):
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"lazyfs exited with {self.proc.returncode}: "
                                   f"{log_tail(self.log_path, 10)}")
            time.sleep(0.05)
        raise RuntimeError("lazyfs did not mount in 10 s")

    def cut(self):
        with open(os.path.join(self.mnt, ".lazyfs-cut"), "w"):
            pass

    def unmount(self):
        """fusermount -u, retried for 10 s (after a SIGKILL the kernel may still hold spated's
        files for a moment: io_uring tears down asynchronously), then a lazy unmount."""
        for attempt in range(100):
            r = subprocess.run(["fusermount", "-u", self.mnt], capture_output=True)
            if r.returncode == 0:
                if attempt:
                    log(f"lazyfs unmounted after {attempt + 1} tries "
                        f"({r.stderr.decode().strip() or 'busy'} before)")
                break
            last = r.stderr.decode().strip()
            time.sleep(0.1)
        else:
            log(f"fusermount -u kept failing ({last}); lazy unmount")
            subprocess.run(["umount", "-l", self.mnt], capture_output=True)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise RuntimeError("lazyfs did not exit 30 s after unmount")
        if self.proc.returncode != 0:
            raise RuntimeError(f"lazyfs exited with {self.proc.returncode}: "
                               f"{log_tail(self.log_path, 10)}")
        if os.path.exists(os.path.join(self.backing, ".lazyfs")):
            raise RuntimeError("lazyfs left its object store behind (durable state not written)")


def main():
    binary, work = sys.argv[1], sys.argv[2]
    seed = int(os.environ.get("SEED", str(int(time.time()))))
    rng = random.Random(seed)
    log(f"seed {seed} (SEED={seed} reproduces cut moments, record sizes and keys); CUTS={CUTS}")
    backing, mnt = os.path.join(work, "backing"), os.path.join(work, "mnt")
    os.makedirs(os.path.join(backing, "data"), exist_ok=True)  # durable before the first mount
    os.makedirs(mnt, exist_ok=True)
    fs = LazyMount(backing, mnt, os.path.join(work, "lazyfs.log"), os.path.join(work, "lazyfs.pid"))
    port = free_port()
    spated = Spated(binary, os.path.join(mnt, "data"), port, os.path.join(work, "spated.log"),
                    os.path.join(work, "spated.pid"), ["--segment-bytes", "1MiB", "--quotas", "off",
                     *os.environ.get("SPATED_ARGS", "").split()])
    ledger, lock = Ledger(), threading.Lock()
    counter = {STREAM_A: 0, STREAM_B: 0}
    failures = []
    totals = {"acknowledged": 0, "read": 0, "lost": 0, "duplicated": 0,
              "in_doubt": 0, "in_doubt_present": 0, "unacknowledged_present": 0}
    expected_shards = {STREAM_B: set()}
    consumer_arn = None
    efo_seen, efo_seen_total = [], 0
    t0 = time.monotonic()

    def fail(msg):
        failures.append(msg)
        log("FAIL: " + msg)

    for cycle in range(CUTS + 1):
        fs.mount()
        spated.start(ready_timeout=60)
        client = make_client(spated.endpoint, read_timeout=60)
        if cycle == 0:
            client.create_stream(StreamName=STREAM_A, ShardCount=2)
            client.create_stream(StreamName=STREAM_B, ShardCount=1)
            wait_active(client, STREAM_A)
            wait_active(client, STREAM_B)
            arn = client.describe_stream_summary(
                StreamName=STREAM_A)["StreamDescriptionSummary"]["StreamARN"]
            consumer_arn = client.register_stream_consumer(
                StreamARN=arn, ConsumerName=CONSUMER)["Consumer"]["ConsumerARN"]
            for _ in range(100):
                c = client.describe_stream_consumer(ConsumerARN=consumer_arn)
                if c["ConsumerDescription"]["ConsumerStatus"] == "ACTIVE":
                    break
                time.sleep(0.1)
        else:
            # ---- check what the previous cut left --------------------------------------------
            in_doubt_before = len(ledger.in_doubt)
            cycle_counts = {}
            present_all = set()  # every record read back after this cut
            for s in (STREAM_A, STREAM_B):
                try:
                    wait_active(client, s)
                    read = read_stream(client, s)
                except Exception as e:
                    fail(f"cut {cycle}: reading {s} after restart failed: {describe_error(e)}")
                    continue
                problems, counts = compare_stream(ledger, s, read, exact=True,
                                                  allow_in_doubt=True)
                for p in problems[:MAX_LINES]:
                    fail(f"cut {cycle}: {p}")
                if len(problems) > MAX_LINES:
                    failures.extend(f"cut {cycle}: {p}" for p in problems[MAX_LINES:])
                    log(f"FAIL: cut {cycle}: ... and {len(problems) - MAX_LINES} more")
                if counts.get("unacked"):
                    for line in explain_unacked(ledger, [u for u in counts["unacked"]
                                                         if u[2] not in ledger.in_doubt]):
                        log("    evidence: " + line)
                # in-doubt records now decided: present ones are durable from now on
                for shard, recs in read.items():
                    for seq, data, _pk in recs:
                        present_all.add(data)
                        if data in ledger.in_doubt:
                            ledger.in_doubt.discard(data)
                            ledger.acked[data] = (s, shard, seq)
                if s == STREAM_B:
                    have = set(read)
                    missing = expected_shards[STREAM_B] - have
                    if missing:
                        fail(f"cut {cycle}: shards created by an acknowledged SplitShard are gone "
                             f"after the cut: {sorted(missing)}")
                for k in ("acknowledged", "read", "lost", "duplicated", "in_doubt_present",
                          "unacknowledged_present"):
                    cycle_counts[k] = cycle_counts.get(k, 0) + counts.get(k, 0)
            # records in doubt and not found are gone: they must never come back
            for d in ledger.in_doubt:
                ledger.refused[d] = "in flight at a cut, absent after it"
            ledger.in_doubt.clear()
            lost_seen = [d for d in efo_seen if d not in present_all]
            if lost_seen:
                fail(f"cut {cycle}: {len(lost_seen)} record(s) the fan-out reader was sent are "
                     f"gone after the cut (first {lost_seen[0][:24]!r})")
            try:
                client.describe_stream_consumer(ConsumerARN=consumer_arn)
            except Exception as e:
                fail(f"cut {cycle}: the registered consumer is gone after the cut: "
                     f"{describe_error(e)}")
            for k, v in cycle_counts.items():  # the latest check's sizes, the sum of problems
                totals[k] = v if k in ("acknowledged", "read") else totals.get(k, 0) + v
            totals["in_doubt"] += in_doubt_before
            log(f"after cut {cycle}: acknowledged {cycle_counts.get('acknowledged')}, read back "
                f"{cycle_counts.get('read')}, lost {cycle_counts.get('lost')}, duplicated "
                f"{cycle_counts.get('duplicated')}, in flight at the cut {in_doubt_before} "
                f"(present {cycle_counts.get('in_doubt_present')}), never acknowledged but "
                f"present {cycle_counts.get('unacknowledged_present')}; fan-out reader had "
                f"seen {len(efo_seen)}, all present: {not lost_seen}")
        if cycle == CUTS:
            break

        # ---- load, then cut ----------------------------------------------------------------
        cut = Cut()
        problems = []
        writers = [Writer(spated.endpoint, s, ledger, lock, random.Random(rng.random()), cut,
                          counter, problems) for s in (STREAM_A, STREAM_B)]
        load_secs = rng.uniform(LOAD_MIN, LOAD_MAX)
        splitter = Splitter(spated.endpoint, rng.uniform(0.1, load_secs + 0.5), cut)
        shard_a = sorted(s["ShardId"] for s in list_shards(client, STREAM_A))[0]
        efo = FanOut(spated.endpoint, consumer_arn, shard_a, cut)
        for t in writers + [splitter, efo]:
            t.start()
        time.sleep(load_secs)
        cut.event.set()
        fs.cut()
        spated.kill()
        for t in writers + [splitter, efo]:
            t.join(30)
            if t.is_alive():
                fail(f"cut {cycle + 1}: {t.name} still blocked 30 s after the cut")
        fs.unmount()
        for p in problems:
            fail(f"cut {cycle + 1}: {p}")
        if splitter.error and splitter.error[0] not in ("LimitExceededException",
                                                        "ResourceInUseException"):
            fail(f"cut {cycle + 1}: SplitShard failed before the cut: {splitter.error}")
        if splitter.answered:
            expected_shards[STREAM_B] |= splitter.children
        if efo.error:
            fail(f"cut {cycle + 1}: SubscribeToShard failed before the cut: {efo.error}")
        efo_seen = [d for _seq, d in efo.seen]
        efo_seen_total += len(efo_seen)
        unknown = [d for d in efo_seen if d not in ledger.acked and d not in ledger.in_doubt]
        if unknown:
            fail(f"cut {cycle + 1}: the fan-out reader was sent {len(unknown)} record(s) that "
                 f"were neither acknowledged nor in flight")
        log(f"cut {cycle + 1} of {CUTS} after {load_secs:.2f} s of load: "
            f"{sum(w.acked for w in writers)} acknowledged in {sum(w.requests for w in writers)} "
            f"PutRecords, {len(ledger.in_doubt)} in flight; split "
            f"{'answered' if splitter.answered else 'not answered'}"
            f"{' (' + ','.join(sorted(splitter.children)) + ')' if splitter.children else ''}; "
            f"fan-out reader saw {len(efo_seen)} records in {efo.events} events")

    code = spated.stop()
    fs.unmount()
    if code != 0:
        fail(f"spated exited with {code} on SIGTERM at the end")
    panics = panics_in_log(spated.log_path)
    if panics:
        fail("spated log mentions a panic:\n" + "\n".join(panics[:10]))
    log(f"totals over {CUTS} cuts: acknowledged {totals['acknowledged']}, read back (last "
        f"check) {totals['read']}, lost {totals['lost']}, duplicated {totals['duplicated']}, in "
        f"flight at cuts {totals['in_doubt']} (present {totals['in_doubt_present']}), never "
        f"acknowledged but present {totals['unacknowledged_present']}; fan-out records checked "
        f"{efo_seen_total}; {time.monotonic() - t0:.1f} s")
    if failures:
        log(f"spated log tail:\n{log_tail(spated.log_path)}")
        print(f"FAIL power_cut: {len(failures)} problem(s); first: {failures[0]}", flush=True)
        return 1
    print(f"PASS power_cut: {CUTS} cuts, {totals['acknowledged']} acknowledged records, none "
          f"lost or duplicated", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
