"""Shared helpers for the Python real-client tests (boto3). Not a test by itself."""
import hashlib
import os
import random
import string
import sys
import time
import traceback

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

DUMMY_KEY = "A"
DUMMY_SECRET = "s"
REGION = "us-east-1"


class StepFailed(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise StepFailed(msg)


def unique_name(prefix):
    suffix = "".join(random.choice(string.ascii_lowercase + string.digits) for _ in range(10))
    return f"{prefix}-{int(time.time())}-{suffix}"


def make_client(endpoint, read_timeout=30):
    # Explicit dummy credentials and region: the client never looks at a credentials chain
    # (no instance metadata lookups, no ~/.aws files).
    return boto3.session.Session(
        aws_access_key_id=DUMMY_KEY,
        aws_secret_access_key=DUMMY_SECRET,
        region_name=REGION,
    ).client(
        "kinesis",
        endpoint_url=endpoint,
        config=Config(
            retries={"max_attempts": 2, "mode": "standard"},
            connect_timeout=5,
            read_timeout=read_timeout,
        ),
    )


def error_code(exc):
    if isinstance(exc, ClientError):
        return exc.response.get("Error", {}).get("Code")
    return None


def hash_key(partition_key):
    """Kinesis routing: the 128-bit MD5 of the UTF-8 partition key, as an integer."""
    return int(hashlib.md5(partition_key.encode("utf-8")).hexdigest(), 16)


def shard_for_key(shards, partition_key):
    h = hash_key(partition_key)
    for s in shards:
        r = s["HashKeyRange"]
        if int(r["StartingHashKey"]) <= h <= int(r["EndingHashKey"]):
            return s["ShardId"]
    return None


class Runner:
    """Runs named steps in order, printing one PASS/FAIL line per step. A failed step marks the client
    failed; after a failed fatal step (the default) the remaining steps are skipped (reported as SKIP),
    while a failed step run with fatal=False lets the next steps run. Cleanup callbacks always run."""

    def __init__(self, client_name):
        self.client_name = client_name
        self.failed = False
        self.stopped = False
        self.passed = 0
        self.cleanups = []

    def step(self, name, fn, *args, fatal=True, **kwargs):
        if self.stopped:
            print(f"SKIP {self.client_name}: {name}", flush=True)
            return None
        ok, result = self._run(name, fn, *args, **kwargs)
        if not ok and fatal:
            self.stopped = True
        return result

    def _run(self, name, fn, *args, **kwargs):
        t0 = time.monotonic()
        try:
            result = fn(*args, **kwargs)
        except StepFailed as e:
            return self._fail(name, str(e), t0), None
        except ClientError as e:
            return self._fail(name, f"unexpected {error_code(e)}: {e}", t0), None
        except BotoCoreError as e:  # connection refused, timeouts, unparsable responses
            return self._fail(name, f"{type(e).__name__}: {e}", t0), None
        except Exception as e:  # noqa: BLE001 - any client error is a test failure
            traceback.print_exc(file=sys.stdout)
            return self._fail(name, f"{type(e).__name__}: {e}", t0), None
        self.passed += 1
        print(f"PASS {self.client_name}: {name} ({time.monotonic() - t0:.2f}s)", flush=True)
        return True, result

    def _fail(self, name, msg, t0):
        self.failed = True
        print(f"FAIL {self.client_name}: {name} ({time.monotonic() - t0:.2f}s): {msg}", flush=True)
        return False

    def finish(self):
        for name, fn in reversed(self.cleanups):
            try:
                fn()
                print(f"cleanup {self.client_name}: {name}: done", flush=True)
            except Exception as e:  # noqa: BLE001 - cleanup is best effort
                print(f"cleanup {self.client_name}: {name}: ignored {type(e).__name__}: {e}", flush=True)
        verdict = "FAIL" if self.failed else "PASS"
        print(f"{verdict} {self.client_name} ({self.passed} steps passed)", flush=True)
        return 1 if self.failed else 0


def endpoint_from_argv():
    if len(sys.argv) != 2:
        print(f"usage: {os.path.basename(sys.argv[0])} ENDPOINT (e.g. http://127.0.0.1:4567)", file=sys.stderr)
        sys.exit(2)
    return sys.argv[1]


def wait_stream_status(kinesis, stream, want="ACTIVE", tries=100, delay=0.2):
    """Poll DescribeStreamSummary (bounded) until StreamStatus == want; return the summary."""
    last = None
    for _ in range(tries):
        s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        last = s.get("StreamStatus")
        if last == want:
            return s
        time.sleep(delay)
    raise StepFailed(f"stream {stream} not {want} after {tries} tries (last status {last})")


def wait_stream_gone(kinesis, stream, tries=100, delay=0.2):
    """Poll DescribeStreamSummary (bounded) until it raises ResourceNotFoundException; DELETING is
    the only status tolerated on the way."""
    for _ in range(tries):
        try:
            s = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
        except ClientError as e:
            check(error_code(e) == "ResourceNotFoundException",
                  f"expected ResourceNotFoundException, got {error_code(e)}: {e}")
            return
        check(s.get("StreamStatus") == "DELETING",
              f"after DeleteStream the stream is {s.get('StreamStatus')}, expected DELETING or gone")
        time.sleep(delay)
    raise StepFailed(f"stream {stream} still DELETING after {tries} tries")


def delete_stream_quietly(kinesis, stream, **kwargs):
    """Cleanup: delete the stream if it exists, waiting (bounded) while it is still CREATING/UPDATING."""
    for _ in range(25):
        try:
            kinesis.delete_stream(StreamName=stream, **kwargs)
            return
        except ClientError as e:
            if error_code(e) == "ResourceNotFoundException":
                return
            if error_code(e) != "ResourceInUseException":
                raise
        time.sleep(0.2)
    raise StepFailed(f"stream {stream} still in use after 25 tries")
