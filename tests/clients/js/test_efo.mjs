// Real-client test: enhanced fan-out with @aws-sdk/client-kinesis v3 over its DEFAULT handler
// (NodeHttp2Handler: HTTP/2 with prior knowledge to an http:// endpoint). SubscribeToShard is an
// AWS event stream on an HTTP/2 stream. Usage: node test_efo.mjs ENDPOINT
import { randomBytes } from 'node:crypto';
import {
  KinesisClient, CreateStreamCommand, DescribeStreamSummaryCommand, PutRecordCommand,
  RegisterStreamConsumerCommand, DescribeStreamConsumerCommand, SubscribeToShardCommand,
  DeregisterStreamConsumerCommand, DeleteStreamCommand,
} from '@aws-sdk/client-kinesis';

const NAME = 'js-efo';
const endpoint = process.argv[2];
if (!endpoint) { console.error('usage: node test_efo.mjs ENDPOINT'); process.exit(2); }
const watchdog = setTimeout(() => { console.log(`FAIL ${NAME}: exceeded 60 s`); process.exit(1); }, 60_000);
const client = new KinesisClient({
  endpoint, region: 'us-east-1', credentials: { accessKeyId: 'A', secretAccessKey: 's' }, maxAttempts: 2,
});
const check = (cond, msg) => { if (!cond) throw new Error(msg); };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const stream = `spate-ct-js-efo-${Date.now()}-${randomBytes(4).toString('hex')}`;
let passed = 0;
async function step(name, fn) {
  const t0 = Date.now();
  try { await fn(); passed++; console.log(`PASS ${NAME}: ${name} (${((Date.now() - t0) / 1000).toFixed(2)}s)`); }
  catch (e) { console.log(`FAIL ${NAME}: ${name}: ${e?.name ?? ''} ${e?.message ?? e}`); await cleanup(); process.exit(1); }
}
let consumerArn;
async function cleanup() {
  try { if (consumerArn) await client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerArn })); } catch {}
  try { await client.send(new DeleteStreamCommand({ StreamName: stream, EnforceConsumerDeletion: true })); } catch {}
}

check(client.config.requestHandler?.constructor?.name === 'NodeHttp2Handler'
  || typeof client.config.requestHandler === 'function', 'default handler expected');
let streamArn;
await step('CreateStream (1 shard) + wait ACTIVE', async () => {
  await client.send(new CreateStreamCommand({ StreamName: stream, ShardCount: 1 }));
  for (let i = 0; i < 100; i++) {
    const s = (await client.send(new DescribeStreamSummaryCommand({ StreamName: stream }))).StreamDescriptionSummary;
    if (s.StreamStatus === 'ACTIVE') { streamArn = s.StreamARN; return; }
    await sleep(100);
  }
  throw new Error('not ACTIVE');
});
await step('RegisterStreamConsumer + wait ACTIVE', async () => {
  const c = (await client.send(new RegisterStreamConsumerCommand({ StreamARN: streamArn, ConsumerName: 'js' }))).Consumer;
  consumerArn = c.ConsumerARN;
  for (let i = 0; i < 100; i++) {
    const d = (await client.send(new DescribeStreamConsumerCommand({ ConsumerARN: consumerArn }))).ConsumerDescription;
    if (d.ConsumerStatus === 'ACTIVE') return;
    await sleep(100);
  }
  throw new Error('consumer not ACTIVE');
});
await step('SubscribeToShard over HTTP/2: records put after subscribing arrive in order', async () => {
  const out = await client.send(new SubscribeToShardCommand({
    ConsumerARN: consumerArn, ShardId: 'shardId-000000000000', StartingPosition: { Type: 'LATEST' },
  }));
  const want = [];
  for (let i = 0; i < 5; i++) {
    const data = `js-efo-${i}`;
    await client.send(new PutRecordCommand({ StreamName: stream, PartitionKey: 'k', Data: Buffer.from(data) }));
    want.push(data);
  }
  const got = [];
  const deadline = Date.now() + 15_000;
  for await (const event of out.EventStream) {
    if (event.SubscribeToShardEvent) {
      for (const r of event.SubscribeToShardEvent.Records) got.push(Buffer.from(r.Data).toString());
    }
    if (got.length >= want.length || Date.now() > deadline) break;
  }
  check(JSON.stringify(got) === JSON.stringify(want), `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
});
await step('DeregisterStreamConsumer + DeleteStream', async () => {
  await client.send(new DeregisterStreamConsumerCommand({ ConsumerARN: consumerArn }));
  consumerArn = undefined;
  await client.send(new DeleteStreamCommand({ StreamName: stream }));
});
console.log(`PASS ${NAME} (${passed} steps passed)`);
clearTimeout(watchdog);
client.destroy();
process.exit(0);
