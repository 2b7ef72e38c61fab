// Real-client test: @aws-sdk/client-kinesis v3 against a Kinesis endpoint (Spate).
// Usage: node test.mjs ENDPOINT
//
// The client is built WITHOUT a requestHandler: in Node its default is NodeHttp2Handler, which speaks
// HTTP/2 with prior knowledge (h2c) to an http:// endpoint. That is what this test is for.
//
// DEBUGGING AID ONLY: SPATE_TEST_HTTP1=1 swaps in NodeHttpHandler (HTTP/1.1), e.g. to check this
// script's logic against an HTTP/1.1-only peer such as kinesalite. run.sh never sets it, and a run
// with it set does not test what this test is for.
import { createHash, randomBytes } from 'node:crypto';
import {
  KinesisClient,
  CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordCommand, PutRecordsCommand,
  ListShardsCommand, GetShardIteratorCommand, GetRecordsCommand, ListStreamsCommand,
  DescribeStreamCommand, AddTagsToStreamCommand, ListTagsForStreamCommand, DeleteStreamCommand,
} from '@aws-sdk/client-kinesis';

const NAME = 'js';
const TOTAL_TIMEOUT_MS = 240_000;

const endpoint = process.argv[2];
if (!endpoint || process.argv.length !== 3) {
  console.error('usage: node test.mjs ENDPOINT (e.g. http://127.0.0.1:4567)');
  process.exit(2);
}

// Bound the whole run: a hung HTTP/2 session must fail the test, not hang CI.
const watchdog = setTimeout(() => {
  console.log(`FAIL ${NAME}: whole test exceeded ${TOTAL_TIMEOUT_MS / 1000} s`);
  process.exit(1);
}, TOTAL_TIMEOUT_MS);

const http1 = process.env.SPATE_TEST_HTTP1 === '1';
const config = {
  endpoint,
  region: 'us-east-1',
  // explicit dummy credentials: no credential chain (no instance metadata lookups, no ~/.aws)
  credentials: { accessKeyId: 'A', secretAccessKey: 's' },
  maxAttempts: 2,
};
if (http1) {
  const { NodeHttpHandler } = await import('@smithy/node-http-handler');
  config.requestHandler = new NodeHttpHandler({ connectionTimeout: 5000, requestTimeout: 30000 });
  console.log('WARNING js: SPATE_TEST_HTTP1=1 -> NodeHttpHandler (HTTP/1.1). Debugging aid only: '
    + 'this run does NOT test the default HTTP/2 handler.');
}
const client = new KinesisClient(config);

class StepFailed extends Error {}
function check(cond, msg) { if (!cond) throw new StepFailed(msg); }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const errName = (e) => e?.name ?? e?.Code ?? String(e);

let failed = false; // some step failed
let stopped = false; // a fatal step failed: skip the rest
let passed = 0;
const cleanups = [];

// A failed step fails the client; after a failed fatal step (the default) the next steps are skipped.
async function step(name, fn, { fatal = true } = {}) {
  if (stopped) { console.log(`SKIP ${NAME}: ${name}`); return undefined; }
  const t0 = performance.now();
  const dt = () => ((performance.now() - t0) / 1000).toFixed(2);
  try {
    const v = await fn();
    passed += 1;
    console.log(`PASS ${NAME}: ${name} (${dt()}s)`);
    return v;
  } catch (e) {
    failed = true;
    if (fatal) stopped = true;
    if (e instanceof StepFailed) {
      console.log(`FAIL ${NAME}: ${name} (${dt()}s): ${e.message}`);
    } else {
      const status = e?.$metadata?.httpStatusCode;
      const code = e?.code ? ` [${e.code}]` : '';
      console.log(`FAIL ${NAME}: ${name} (${dt()}s): ${errName(e)}${code}${status ? ` (HTTP ${status})` : ''}: ${e?.message}`);
      if (!e?.$metadata) console.log(e?.stack ?? e);
    }
    return undefined;
  }
}

function uniqueName(prefix) {
  return `${prefix}-${Math.floor(Date.now() / 1000)}-${randomBytes(5).toString('hex')}`;
}

// Kinesis routing: the 128-bit MD5 of the UTF-8 partition key, as an integer.
function hashKey(pk) { return BigInt('0x' + createHash('md5').update(pk, 'utf8').digest('hex')); }
function shardForKey(shards, pk) {
  const h = hashKey(pk);
  const s = shards.find((x) => BigInt(x.HashKeyRange.StartingHashKey) <= h && h <= BigInt(x.HashKeyRange.EndingHashKey));
  return s?.ShardId;
}

async function waitStatus(stream, want, tries = 100, delayMs = 200) {
  let last;
  for (let i = 0; i < tries; i++) {
    const s = (await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
    last = s.StreamStatus;
    if (last === want) return s;
    await sleep(delayMs);
  }
  throw new StepFailed(`stream ${stream} not ${want} after ${tries} tries (last status ${last})`);
}

async function waitGone(stream, tries = 100, delayMs = 200) {
  for (let i = 0; i < tries; i++) {
    let s;
    try {
      s = (await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
    } catch (e) {
      check(errName(e) === 'ResourceNotFoundException', `expected ResourceNotFoundException, got ${errName(e)}: ${e.message}`);
      return;
    }
    check(s.StreamStatus === 'DELETING', `after DeleteStream the stream is ${s.StreamStatus}, expected DELETING or gone`);
    await sleep(delayMs);
  }
  throw new StepFailed(`stream ${stream} still DELETING after ${tries} tries`);
}

const hex = (u8) => Buffer.from(u8).toString('hex');
const stream = uniqueName('spate-ct-js');
console.log(`${NAME}: endpoint ${endpoint}, stream ${stream}`);
const written = []; // {data: Buffer, pk, shard, seq} in put order
let shards = [];
let read = []; // {shard, rec}

if (!http1) {
  await step('client uses its default handler, NodeHttp2Handler (HTTP/2 prior knowledge)', async () => {
    const h = client.config.requestHandler;
    const name = h?.constructor?.name;
    check(name === 'NodeHttp2Handler', `default request handler is ${name}`);
  });
}

await step('CreateStream (2 shards)', async () => {
  await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 2 }));
  cleanups.push(['delete stream (if still there)', async () => {
    for (let i = 0; i < 25; i++) { // bounded wait while the stream is still CREATING
      try { await client.send(new DeleteStreamCommand({ StreamName: stream })); return; } catch (e) {
        if (errName(e) === 'ResourceNotFoundException') return;
        if (errName(e) !== 'ResourceInUseException') throw e;
      }
      await sleep(200);
    }
    throw new Error('stream still in use after 25 tries');
  }]);
});

await step('wait ACTIVE (DescribeStreamSummary)', async () => {
  const s = await waitStatus(stream, 'ACTIVE');
  check(s.StreamName === stream, `summary StreamName ${s.StreamName}`);
  check(s.OpenShardCount === 2, `OpenShardCount ${s.OpenShardCount} != 2`);
  check((s.StreamARN ?? '').endsWith(`:stream/${stream}`), `StreamARN ${s.StreamARN}`);
});

await step('PutRecord', async () => {
  const data = Buffer.concat([Buffer.from([0x00, 0xff]), Buffer.from(`spate-record-0-${stream}`)]);
  const r = await client.send(new PutRecordCommand({ StreamName: stream, Data: data, PartitionKey: 'pk-0' }));
  check((r.ShardId ?? '').startsWith('shardId-'), `ShardId ${r.ShardId}`);
  check(/^\d+$/.test(r.SequenceNumber ?? ''), `SequenceNumber ${r.SequenceNumber}`);
  written.push({ data, pk: 'pk-0', shard: r.ShardId, seq: r.SequenceNumber });
});

await step('PutRecords (10 distinct partition keys)', async () => {
  const batch = [];
  for (let i = 1; i <= 10; i++) {
    batch.push({
      Data: Buffer.concat([Buffer.from(`spate-record-${i}-${stream}`), Buffer.from([i, 0x80 + i])]),
      PartitionKey: `pk-${i}`,
    });
  }
  const r = await client.send(new PutRecordsCommand({ StreamName: stream, Records: batch }));
  check((r.FailedRecordCount ?? 0) === 0, `FailedRecordCount ${r.FailedRecordCount}`);
  check(r.Records.length === 10, `${r.Records.length} result entries for 10 records`);
  r.Records.forEach((ent, i) => {
    check(!ent.ErrorCode, `entry error ${JSON.stringify(ent)}`);
    check((ent.ShardId ?? '').startsWith('shardId-'), `ShardId ${ent.ShardId}`);
    check(/^\d+$/.test(ent.SequenceNumber ?? ''), `SequenceNumber ${ent.SequenceNumber}`);
    written.push({ data: Buffer.from(batch[i].Data), pk: batch[i].PartitionKey, shard: ent.ShardId, seq: ent.SequenceNumber });
  });
});

await step('ListShards', async () => {
  shards = (await client.send(new ListShardsCommand({ StreamName: stream }))).Shards;
  check(shards.length === 2, `${shards.length} shards, expected 2`);
  check(new Set(shards.map((s) => s.ShardId)).size === 2, 'duplicate shard ids');
});

await step('shards match MD5 hash key ranges', async () => {
  for (const w of written) {
    const want = shardForKey(shards, w.pk);
    check(w.shard === want, `${w.pk} put on ${w.shard}, its hash key is in ${want}`);
  }
}, { fatal: false });

await step('GetShardIterator TRIM_HORIZON + GetRecords on each shard', async () => {
  const iters = new Map();
  for (const s of shards) {
    const r = await client.send(new GetShardIteratorCommand({ StreamName: stream, ShardId: s.ShardId, ShardIteratorType: 'TRIM_HORIZON' }));
    iters.set(s.ShardId, r.ShardIterator);
  }
  let rounds = 0;
  for (let attempt = 0; attempt < 20; attempt++) {
    rounds += 1;
    for (const [sid, it] of iters) {
      if (!it) continue;
      const r = await client.send(new GetRecordsCommand({ ShardIterator: it, Limit: 1000 }));
      check(r.MillisBehindLatest !== undefined, 'GetRecords response lacks MillisBehindLatest');
      for (const rec of r.Records) read.push({ shard: sid, rec });
      iters.set(sid, r.NextShardIterator);
    }
    if (read.length >= written.length) break;
    await sleep(200);
  }
  console.log(`  read ${read.length} records in ${rounds} rounds`);
});

await step('records read back == records written (data, keys, shards, sequence numbers, order)', async () => {
  check(read.length === written.length, `read ${read.length} records, wrote ${written.length}`);
  const got = read.map(({ rec }) => `${hex(rec.Data)}|${rec.PartitionKey}`).sort();
  const want = written.map((w) => `${hex(w.data)}|${w.pk}`).sort();
  check(JSON.stringify(got) === JSON.stringify(want), `data/partition keys read back differ:\n  got  ${got}\n  want ${want}`);
  const byPk = new Map(written.map((w) => [w.pk, w]));
  for (const { shard, rec } of read) {
    const w = byPk.get(rec.PartitionKey);
    check(shard === w.shard, `${w.pk} read from ${shard}, put reported ${w.shard}`);
    check(rec.SequenceNumber === w.seq, `${w.pk} read with sequence ${rec.SequenceNumber}, put reported ${w.seq}`);
    check(rec.ApproximateArrivalTimestamp instanceof Date, 'ApproximateArrivalTimestamp is not a Date');
  }
  for (const sid of new Set(read.map((x) => x.shard))) {
    const seqs = read.filter((x) => x.shard === sid).map((x) => BigInt(x.rec.SequenceNumber));
    const order = written.filter((w) => w.shard === sid).map((w) => BigInt(w.seq));
    for (let i = 1; i < seqs.length; i++) check(seqs[i - 1] < seqs[i], `${sid}: sequence numbers not increasing ${seqs}`);
    check(seqs.join() === order.join(), `${sid}: read order ${seqs} != put order ${order}`);
  }
}, { fatal: false });

await step('ListStreams', async () => {
  const names = [];
  let start;
  for (let i = 0; i < 50; i++) { // bounded pagination
    const r = await client.send(new ListStreamsCommand({ Limit: 100, ExclusiveStartStreamName: start }));
    names.push(...r.StreamNames);
    if (!r.HasMoreStreams || r.StreamNames.length === 0) break;
    start = r.StreamNames[r.StreamNames.length - 1];
  }
  check(names.includes(stream), `${stream} not in ListStreams (${names.length} names)`);
}, { fatal: false });

await step('DescribeStream', async () => {
  const d = (await client.send(new DescribeStreamCommand({ StreamName: stream }))).StreamDescription;
  check(d.StreamName === stream, `StreamName ${d.StreamName}`);
  check(d.StreamStatus === 'ACTIVE', `StreamStatus ${d.StreamStatus}`);
  check(d.Shards.length === 2, `${d.Shards.length} shards`);
  check(JSON.stringify(d.Shards.map((s) => s.ShardId).sort()) === JSON.stringify(shards.map((s) => s.ShardId).sort()),
    'DescribeStream shards differ from ListShards');
  check((d.StreamARN ?? '').endsWith(`:stream/${stream}`), `StreamARN ${d.StreamARN}`);
  check(typeof d.HasMoreShards === 'boolean', 'HasMoreShards missing');
}, { fatal: false });

await step('AddTagsToStream + ListTagsForStream', async () => {
  await client.send(new AddTagsToStreamCommand({ StreamName: stream, Tags: { env: 'test', owner: 'spate' } }));
  const r = await client.send(new ListTagsForStreamCommand({ StreamName: stream }));
  const got = JSON.stringify(r.Tags.map((t) => [t.Key, t.Value]).sort());
  check(got === JSON.stringify([['env', 'test'], ['owner', 'spate']]), `tags ${got}`);
  check(r.HasMoreTags === false, `HasMoreTags ${r.HasMoreTags}`);
}, { fatal: false });

await step('GetShardIterator on missing stream -> ResourceNotFoundException', async () => {
  const missing = uniqueName('spate-ct-missing');
  try {
    await client.send(new GetShardIteratorCommand({ StreamName: missing, ShardId: 'shardId-000000000000', ShardIteratorType: 'TRIM_HORIZON' }));
  } catch (e) {
    check(e.name === 'ResourceNotFoundException', `error name ${e.name}: ${e.message}`);
    check(e.$metadata?.httpStatusCode === 400, `HTTP status ${e.$metadata?.httpStatusCode}, expected 400`);
    return;
  }
  throw new StepFailed('GetShardIterator on a missing stream succeeded');
}, { fatal: false });

await step('DeleteStream then DescribeStreamSummary -> ResourceNotFoundException', async () => {
  await client.send(new DeleteStreamCommand({ StreamName: stream }));
  cleanups.length = 0;
  await waitGone(stream);
});

for (const [name, fn] of cleanups.reverse()) {
  try { await fn(); console.log(`cleanup ${NAME}: ${name}: done`); } catch (e) {
    console.log(`cleanup ${NAME}: ${name}: ignored ${errName(e)}: ${e?.message}`);
  }
}
client.destroy();
clearTimeout(watchdog);
console.log(`${failed ? 'FAIL' : 'PASS'} ${NAME} (${passed} steps passed)${http1 ? ' [SPATE_TEST_HTTP1=1 debugging run]' : ''}`);
process.exitCode = failed ? 1 : 0;
