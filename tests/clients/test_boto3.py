#!/usr/bin/env python3
"""Real-client test: boto3 against a Kinesis endpoint (Spate). Usage: test_boto3.py ENDPOINT

Creates a 2-shard stream, writes 11 records (PutRecord + PutRecords), reads them back from every
shard, checks data, partition keys, shards, sequence numbers and hash-key routing, exercises
ListStreams / DescribeStream / tags, an error case, and deletes the stream.
Prints one PASS/FAIL line per step and a final 'PASS boto3' or 'FAIL boto3'; exit code 0 iff all passed.
"""
import sys
import time

from botocore.exceptions import ClientError

from common import (Runner, StepFailed, check, delete_stream_quietly, endpoint_from_argv, error_code,
                    make_client, shard_for_key, unique_name, wait_stream_gone, wait_stream_status)

NAME = "boto3"


def main():
    endpoint = endpoint_from_argv()
    k = make_client(endpoint)
    r = Runner(NAME)
    stream = unique_name("spate-ct-boto3")
    print(f"{NAME}: endpoint {endpoint}, stream {stream}", flush=True)
    written = []  # dicts: data, pk, shard, seq (in put order)
    st = {}

    def create():
        k.create_stream(StreamName=stream, ShardCount=2)
        r.cleanups.append(("delete stream (if still there)", lambda: delete_stream_quietly(k, stream)))

    def wait_active():
        s = wait_stream_status(k, stream, "ACTIVE")
        check(s["StreamName"] == stream, f"summary StreamName {s['StreamName']!r}")
        check(s.get("OpenShardCount") == 2, f"OpenShardCount {s.get('OpenShardCount')} != 2")
        check(s.get("StreamARN", "").endswith(f":stream/{stream}"), f"StreamARN {s.get('StreamARN')!r}")

    def put_record():
        # binary payload with bytes that are not valid UTF-8, to check base64 round trips
        data = b"\x00\xffspate-record-0-" + stream.encode()
        resp = k.put_record(StreamName=stream, Data=data, PartitionKey="pk-0")
        check(resp.get("ShardId", "").startswith("shardId-"), f"ShardId {resp.get('ShardId')!r}")
        check(resp.get("SequenceNumber", "").isdigit(), f"SequenceNumber {resp.get('SequenceNumber')!r}")
        written.append({"data": data, "pk": "pk-0", "shard": resp["ShardId"], "seq": resp["SequenceNumber"]})

    def put_records():
        batch = [{"Data": f"spate-record-{i}-{stream}".encode() + bytes([i, 0x80 + i]),
                  "PartitionKey": f"pk-{i}"} for i in range(1, 11)]
        resp = k.put_records(StreamName=stream, Records=batch)
        check(resp.get("FailedRecordCount", 0) == 0, f"FailedRecordCount {resp.get('FailedRecordCount')}")
        entries = resp["Records"]
        check(len(entries) == 10, f"{len(entries)} result entries for 10 records")
        for rec, ent in zip(batch, entries):
            check("ErrorCode" not in ent, f"entry error {ent}")
            check(ent.get("ShardId", "").startswith("shardId-"), f"ShardId {ent.get('ShardId')!r}")
            check(ent.get("SequenceNumber", "").isdigit(), f"SequenceNumber {ent.get('SequenceNumber')!r}")
            written.append({"data": rec["Data"], "pk": rec["PartitionKey"], "shard": ent["ShardId"],
                            "seq": ent["SequenceNumber"]})

    def list_shards():
        shards = k.list_shards(StreamName=stream)["Shards"]
        check(len(shards) == 2, f"{len(shards)} shards, expected 2")
        ids = [s["ShardId"] for s in shards]
        check(len(set(ids)) == 2, f"duplicate shard ids {ids}")
        st["shards"] = shards

    def routing():
        # the shard a put reported equals the shard whose hash key range holds MD5(partition key)
        for w in written:
            want = shard_for_key(st["shards"], w["pk"])
            check(w["shard"] == want, f"{w['pk']} put on {w['shard']}, its hash key is in {want}")
        used = {w["shard"] for w in written}
        print(f"  records per shard: { {s: sum(1 for w in written if w['shard'] == s) for s in sorted(used)} }")

    def read_back():
        iters = {}
        for s in st["shards"]:
            iters[s["ShardId"]] = k.get_shard_iterator(StreamName=stream, ShardId=s["ShardId"],
                                                       ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        read = []  # (shard, record)
        for attempt in range(20):
            for sid in list(iters):
                it = iters[sid]
                if it is None:
                    continue
                resp = k.get_records(ShardIterator=it, Limit=1000)
                check("MillisBehindLatest" in resp, "GetRecords response lacks MillisBehindLatest")
                read.extend((sid, rec) for rec in resp["Records"])
                iters[sid] = resp.get("NextShardIterator")
            if len(read) >= len(written):
                break
            time.sleep(0.2)
        print(f"  read {len(read)} records in {attempt + 1} rounds")
        st["read"] = read

    def verify():
        read = st["read"]
        check(len(read) == len(written), f"read {len(read)} records, wrote {len(written)}")
        got = sorted((rec["Data"], rec["PartitionKey"]) for _, rec in read)
        want = sorted((w["data"], w["pk"]) for w in written)
        check(got == want, f"data/partition keys read back differ:\n  got  {got}\n  want {want}")
        by_pk = {w["pk"]: w for w in written}
        for sid, rec in read:
            w = by_pk[rec["PartitionKey"]]
            check(sid == w["shard"], f"{w['pk']} read from {sid}, put reported {w['shard']}")
            check(rec["SequenceNumber"] == w["seq"],
                  f"{w['pk']} read with sequence {rec['SequenceNumber']}, put reported {w['seq']}")
            check(rec.get("ApproximateArrivalTimestamp") is not None, "no ApproximateArrivalTimestamp")
        for sid in {s for s, _ in read}:
            seqs = [int(rec["SequenceNumber"]) for s, rec in read if s == sid]
            check(seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{sid}: sequence numbers not increasing {seqs}")
            put_order = [int(w["seq"]) for w in written if w["shard"] == sid]
            check(seqs == put_order, f"{sid}: read order {seqs} != put order {put_order}")

    def list_streams():
        names, start = [], None
        for _ in range(50):  # bounded pagination
            kw = {"Limit": 100}
            if start:
                kw["ExclusiveStartStreamName"] = start
            resp = k.list_streams(**kw)
            names.extend(resp["StreamNames"])
            if not resp.get("HasMoreStreams") or not resp["StreamNames"]:
                break
            start = resp["StreamNames"][-1]
        check(stream in names, f"{stream} not in ListStreams ({len(names)} names)")

    def describe_stream():
        d = k.describe_stream(StreamName=stream)["StreamDescription"]
        check(d["StreamName"] == stream, f"StreamName {d['StreamName']!r}")
        check(d["StreamStatus"] == "ACTIVE", f"StreamStatus {d['StreamStatus']}")
        check(len(d["Shards"]) == 2, f"{len(d['Shards'])} shards")
        check(sorted(s["ShardId"] for s in d["Shards"]) == sorted(s["ShardId"] for s in st["shards"]),
              "DescribeStream shards differ from ListShards")
        check(d.get("StreamARN", "").endswith(f":stream/{stream}"), f"StreamARN {d.get('StreamARN')!r}")
        check(isinstance(d.get("HasMoreShards"), bool), "HasMoreShards missing")

    def tags():
        k.add_tags_to_stream(StreamName=stream, Tags={"env": "test", "owner": "spate"})
        resp = k.list_tags_for_stream(StreamName=stream)
        got = {t["Key"]: t.get("Value") for t in resp["Tags"]}
        check(got == {"env": "test", "owner": "spate"}, f"tags {got}")
        check(resp.get("HasMoreTags") is False, f"HasMoreTags {resp.get('HasMoreTags')}")

    def missing_stream_error():
        missing = unique_name("spate-ct-missing")
        try:
            k.get_shard_iterator(StreamName=missing, ShardId="shardId-000000000000",
                                 ShardIteratorType="TRIM_HORIZON")
        except ClientError as e:
            check(error_code(e) == "ResourceNotFoundException", f"error code {error_code(e)!r}")
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            check(status == 400, f"HTTP status {status}, expected 400")
            return
        raise StepFailed("GetShardIterator on a missing stream succeeded")

    def delete():
        k.delete_stream(StreamName=stream)
        r.cleanups.clear()
        wait_stream_gone(k, stream)

    r.step("CreateStream (2 shards)", create)
    r.step("wait ACTIVE (DescribeStreamSummary)", wait_active)
    r.step("PutRecord", put_record)
    r.step("PutRecords (10 distinct partition keys)", put_records)
    r.step("ListShards", list_shards)
    r.step("shards match MD5 hash key ranges", routing, fatal=False)
    r.step("GetShardIterator TRIM_HORIZON + GetRecords on each shard", read_back)
    r.step("records read back == records written (data, keys, shards, sequence numbers, order)", verify, fatal=False)
    r.step("ListStreams", list_streams, fatal=False)
    r.step("DescribeStream", describe_stream, fatal=False)
    r.step("AddTagsToStream + ListTagsForStream", tags, fatal=False)
    r.step("GetShardIterator on missing stream -> ResourceNotFoundException", missing_stream_error, fatal=False)
    r.step("DeleteStream then DescribeStreamSummary -> ResourceNotFoundException", delete)
    return r.finish()


if __name__ == "__main__":
    sys.exit(main())
