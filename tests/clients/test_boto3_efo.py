#!/usr/bin/env python3
"""Real-client test: boto3 enhanced fan-out against a Kinesis endpoint (Spate). Usage: test_boto3_efo.py ENDPOINT

Creates a 2-shard stream, puts records with one partition key (so all land on one shard), registers a
stream consumer, waits for it to be ACTIVE, calls SubscribeToShard with TRIM_HORIZON on that shard,
reads the event stream until all records are seen (bounded by time), checks they arrive in put order,
then deregisters the consumer and deletes the stream. run.sh runs it only when SPATE_EFO=1.
"""
import sys
import threading
import time

from botocore.exceptions import ClientError

from common import (Runner, StepFailed, check, delete_stream_quietly, endpoint_from_argv, error_code,
                    make_client, unique_name, wait_stream_gone, wait_stream_status)

NAME = "boto3-efo"
N_RECORDS = 8
READ_DEADLINE_S = 10.0


def main():
    endpoint = endpoint_from_argv()
    # read_timeout bounds each blocking read of the event stream
    k = make_client(endpoint, read_timeout=READ_DEADLINE_S + 5)
    r = Runner(NAME)
    stream = unique_name("spate-ct-efo")
    consumer_name = unique_name("spate-ct-consumer")
    print(f"{NAME}: endpoint {endpoint}, stream {stream}, consumer {consumer_name}", flush=True)
    st = {"written": []}

    def create():
        k.create_stream(StreamName=stream, ShardCount=2)
        r.cleanups.append(("delete stream", lambda: delete_stream_quietly(k, stream, EnforceConsumerDeletion=True)))
        s = wait_stream_status(k, stream, "ACTIVE")
        st["arn"] = s["StreamARN"]

    def put():
        for i in range(N_RECORDS):
            data = f"efo-record-{i}-{stream}".encode() + bytes([0, 0xFF, i])
            resp = k.put_record(StreamName=stream, Data=data, PartitionKey="efo-pk")
            st["written"].append({"data": data, "shard": resp["ShardId"], "seq": resp["SequenceNumber"]})
        shards = {w["shard"] for w in st["written"]}
        check(len(shards) == 1, f"one partition key landed on several shards: {shards}")
        st["shard"] = shards.pop()

    def register():
        resp = k.register_stream_consumer(StreamARN=st["arn"], ConsumerName=consumer_name)
        c = resp["Consumer"]
        check(c["ConsumerName"] == consumer_name, f"ConsumerName {c['ConsumerName']!r}")
        check(c["ConsumerStatus"] in ("CREATING", "ACTIVE"), f"ConsumerStatus {c['ConsumerStatus']}")
        st["consumer_arn"] = c["ConsumerARN"]
        r.cleanups.append(("deregister consumer", lambda: deregister_quietly(k, st["consumer_arn"])))

    def wait_consumer_active():
        last = None
        for _ in range(100):
            c = k.describe_stream_consumer(ConsumerARN=st["consumer_arn"])["ConsumerDescription"]
            last = c["ConsumerStatus"]
            if last == "ACTIVE":
                check(c["StreamARN"] == st["arn"], f"consumer StreamARN {c['StreamARN']!r}")
                break
            time.sleep(0.2)
        check(last == "ACTIVE", f"consumer not ACTIVE after 100 tries (last {last})")
        listed = k.list_stream_consumers(StreamARN=st["arn"])["Consumers"]
        check(consumer_name in [c["ConsumerName"] for c in listed], f"consumer not in ListStreamConsumers {listed}")

    def subscribe_and_read():
        resp = k.subscribe_to_shard(ConsumerARN=st["consumer_arn"], ShardId=st["shard"],
                                    StartingPosition={"Type": "TRIM_HORIZON"})
        stream_events = resp["EventStream"]
        got, events, err = [], [], []

        def reader():
            try:
                for ev in stream_events:
                    if "SubscribeToShardEvent" not in ev:
                        err.append(f"unexpected event {ev}")
                        return
                    e = ev["SubscribeToShardEvent"]
                    events.append(e)
                    got.extend(e["Records"])
                    if len(got) >= N_RECORDS:
                        return
            except Exception as e:  # noqa: BLE001 - reported by the step
                err.append(f"{type(e).__name__}: {e}")

        t = threading.Thread(target=reader, daemon=True)
        t0 = time.monotonic()
        t.start()
        t.join(READ_DEADLINE_S)  # bounded: the daemon thread is abandoned if still blocked
        elapsed = time.monotonic() - t0
        errs = list(err)  # before close(), which may make a blocked reader raise
        try:
            stream_events.close()
        except Exception:  # noqa: BLE001
            pass
        check(not errs, f"event stream error after {elapsed:.1f}s: {errs}")
        check(len(got) >= N_RECORDS,
              f"saw {len(got)} of {N_RECORDS} records in {elapsed:.1f}s over {len(events)} events")
        print(f"  {len(got)} records in {len(events)} events, {elapsed:.2f}s", flush=True)
        written = st["written"]
        check([x["Data"] for x in got] == [w["data"] for w in written],
              f"records out of order or different:\n  got  {[x['Data'] for x in got]}\n  want {[w['data'] for w in written]}")
        check([x["SequenceNumber"] for x in got] == [w["seq"] for w in written], "sequence numbers differ")
        check(all(x["PartitionKey"] == "efo-pk" for x in got), "partition keys differ")
        last = events[-1]
        check("ContinuationSequenceNumber" in last and "MillisBehindLatest" in last,
              f"event lacks ContinuationSequenceNumber/MillisBehindLatest: {sorted(last)}")

    def split_and_follow():
        # The first subscription to this shard may still count as live for 5 s (as on AWS).
        time.sleep(5.2)
        last_seq = st["written"][-1]["seq"]
        resp = k.subscribe_to_shard(ConsumerARN=st["consumer_arn"], ShardId=st["shard"],
                                    StartingPosition={"Type": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": last_seq})
        parent_events = resp["EventStream"]
        shard = [s for s in k.list_shards(StreamName=stream)["Shards"] if s["ShardId"] == st["shard"]][0]
        lo = int(shard["HashKeyRange"]["StartingHashKey"])
        hi = int(shard["HashKeyRange"]["EndingHashKey"])
        k.split_shard(StreamName=stream, ShardToSplit=st["shard"], NewStartingHashKey=str((lo + hi) // 2 + 1))
        wait_stream_status(k, stream, "ACTIVE")
        after = k.put_record(StreamName=stream, Data=b"after-split", PartitionKey="efo-pk")
        children, err = [], []

        def read_parent():
            try:
                for ev in parent_events:
                    e = ev.get("SubscribeToShardEvent", {})
                    if e.get("ChildShards"):
                        children.extend(e["ChildShards"])
            except Exception as e:  # noqa: BLE001
                err.append(f"{type(e).__name__}: {e}")

        t = threading.Thread(target=read_parent, daemon=True)
        t.start()
        t.join(READ_DEADLINE_S)
        check(not err, f"parent event stream error: {err}")
        check(not t.is_alive(), "the parent's event stream did not end after the split")
        ids = sorted(c["ShardId"] for c in children)
        check(len(ids) == 2 and after["ShardId"] in ids, f"ChildShards {ids}, record went to {after['ShardId']}")
        check(all(c["ParentShards"] == [st["shard"]] for c in children), f"ParentShards: {children}")
        resp = k.subscribe_to_shard(ConsumerARN=st["consumer_arn"], ShardId=after["ShardId"],
                                    StartingPosition={"Type": "TRIM_HORIZON"})
        child_events = resp["EventStream"]
        got = []

        def read_child():
            try:
                for ev in child_events:
                    got.extend(ev.get("SubscribeToShardEvent", {}).get("Records", []))
                    if got:
                        return
            except Exception as e:  # noqa: BLE001
                err.append(f"{type(e).__name__}: {e}")

        t = threading.Thread(target=read_child, daemon=True)
        t.start()
        t.join(READ_DEADLINE_S)
        try:
            child_events.close()
        except Exception:  # noqa: BLE001
            pass
        check(not err, f"child event stream error: {err}")
        check([x["Data"] for x in got] == [b"after-split"], f"child delivered {got}")

    def deregister():
        k.deregister_stream_consumer(ConsumerARN=st["consumer_arn"])
        r.cleanups[:] = [c for c in r.cleanups if c[0] != "deregister consumer"]
        for _ in range(100):
            try:
                c = k.describe_stream_consumer(ConsumerARN=st["consumer_arn"])["ConsumerDescription"]
            except ClientError as e:
                check(error_code(e) == "ResourceNotFoundException", f"got {error_code(e)}: {e}")
                return
            check(c["ConsumerStatus"] == "DELETING", f"after deregister the consumer is {c['ConsumerStatus']}")
            time.sleep(0.2)
        raise StepFailed("consumer still DELETING after 100 tries")

    def delete():
        k.delete_stream(StreamName=stream)
        r.cleanups.clear()
        wait_stream_gone(k, stream)

    r.step("CreateStream (2 shards) + wait ACTIVE", create)
    r.step(f"PutRecord x{N_RECORDS} (one partition key)", put)
    r.step("RegisterStreamConsumer", register)
    r.step("wait consumer ACTIVE (DescribeStreamConsumer) + ListStreamConsumers", wait_consumer_active)
    r.step(f"SubscribeToShard TRIM_HORIZON: all records, in order, within {READ_DEADLINE_S:.0f}s", subscribe_and_read,
           fatal=False)
    r.step("SplitShard: the parent's stream ends with ChildShards; the child delivers the next record",
           split_and_follow, fatal=False)
    r.step("DeregisterStreamConsumer then DescribeStreamConsumer -> ResourceNotFoundException", deregister)
    r.step("DeleteStream", delete)
    return r.finish()


def deregister_quietly(k, consumer_arn):
    try:
        k.deregister_stream_consumer(ConsumerARN=consumer_arn)
    except ClientError as e:
        if error_code(e) != "ResourceNotFoundException":
            raise


if __name__ == "__main__":
    # the reader thread is a daemon: a read still blocked at exit does not keep the process alive
    sys.exit(main())
