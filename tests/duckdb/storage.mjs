// storage.mjs: the secretd DuckDB extension in real DuckDB 1.4.4 sessions against a real
// secretd: secrets created with secretctl seen by duckdb_secrets(), which_secret() and
// FlockMTL's lookup (flocklike stands in for FlockMTL); created and dropped from DuckDB and
// seen by secretctl; two DuckDB processes seeing each other's changes; a secretd restart;
// wrong token, reader token, no server and a server that never answers as DuckDB errors
// within bounded time; both load orders; no value in DuckDB's secret directory, its logs,
// any error text or secretd's log. Prints the per-call cost of FlockMTL's lookup.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  requireDuckDB, check, finish, tempDir, removeDir, Server, openSession, leaks,
  SECRETD_EXT, FLOCKLIKE_EXT, SECRETCTL_BIN,
} from './lib.mjs';

const api = requireDuckDB();
const dir = tempDir('secretd-duckdb-');
const secretDir = path.join(dir, 'duckdb_secrets');
const workerSecretDir = path.join(dir, 'worker_secrets');
const values = [];
const errors = [];
const val = (tag) => {
  const v = `${tag}-${randomBytes(12).toString('hex')}`;
  values.push(v);
  return v;
};
const sq = (v) => `'${v.replace(/'/g, "''")}'`;

// Tokens: a reader token for PERMISSION_DENIED (peers with secretd's uid are admin).
const tokensFile = path.join(dir, 'tokens');
const tok = await (async () => {
  const { run } = await import('./lib.mjs');
  const r = await run(SECRETCTL_BIN, ['token', 'new', '--role', 'reader', '--id', 'duckdb-reader',
    '--tokens-file', tokensFile]);
  if (r.code !== 0) throw new Error('token new failed: ' + r.stderr);
  return r.stdout.trim();
})();
const server = new Server(dir, ['--tokens-file', tokensFile]);
let worker;
process.on('exit', () => {
  server.kill();
  if (worker) worker.kill('SIGKILL');
});

try {
  await server.start();

  // --- secretctl creates; a session sees them --------------------------------------
  const openaiKey = val('sk-openai'), azureKey = val('az-key'), ollamaUrl = val('http://ollama');
  let r = await server.ctl(['create', '--type', 'openai', 'api_key=-', 'base_url=https://api.example'],
    { input: openaiKey });
  check('secretctl create __default_openai', r.code === 0, r.stderr);
  r = await server.ctl(['create', '--type', 'azure_llm', '--persistent', 'api_key=-',
    'resource_name=res1', 'api_version=2024-10-21'], { input: azureKey });
  check('secretctl create __default_azure (persistent)', r.code === 0, r.stderr);
  r = await server.ctl(['create', '--type', 'ollama', '--name', 'ol1', '--persistent',
    '--scope', 'ollama://host1/', 'api_url=-'], { input: ollamaUrl });
  check('secretctl create ol1', r.code === 0, r.stderr);

  const s1 = await openSession(api, { secret_directory: secretDir });
  await s1.q('CALL enable_logging(level = \'debug\')');
  await s1.q(`LOAD '${FLOCKLIKE_EXT}'`);
  await s1.q(`LOAD '${SECRETD_EXT}'`);
  await s1.q(`SET secretd_address = '${server.url}'`);
  let rows = await s1.q('SELECT name, type, provider, persistent, storage, scope, secret_string FROM duckdb_secrets() ORDER BY name');
  check('duckdb_secrets lists secretd\'s three secrets', JSON.stringify(rows.map((x) => x.name)) ===
    JSON.stringify(['__default_azure', '__default_openai', 'ol1']), JSON.stringify(rows.map((x) => x.name)));
  check('every row has storage = secretd', rows.every((x) => x.storage === 'secretd'));
  check('persistent mirrors secretd\'s storage', rows.map((x) => x.persistent).join() === 'true,false,true');
  check('scope kept', JSON.stringify(rows[2].scope) === '["ollama://host1/"]', JSON.stringify(rows[2].scope));
  check('redacted as FlockMTL redacts', rows[1].secret_string.includes('api_key=redacted') &&
    rows[1].secret_string.includes('base_url=https://api.example') &&
    rows[0].secret_string.includes('resource_name=redacted') && rows[2].secret_string.includes('api_url=redacted'));
  check('no value in the redacted listing', leaks(JSON.stringify(rows), values).length === 0);

  rows = await s1.q("SELECT * FROM which_secret('openai://gpt-4o', 'openai')");
  check('which_secret finds __default_openai in secretd', rows.length === 1 && rows[0].name === '__default_openai' &&
    rows[0].storage === 'secretd', JSON.stringify(rows));
  rows = await s1.q("SELECT * FROM which_secret('ollama://host1/llama3', 'ollama')");
  check('which_secret uses secretd\'s scopes', rows.length === 1 && rows[0].name === 'ol1', JSON.stringify(rows));
  rows = await s1.q("SELECT * FROM which_secret('ollama://host2/llama3', 'ollama')");
  check('which_secret: no match is no row', rows.length === 0, JSON.stringify(rows));
  // DuckDB looks up its own types (http, s3) in every storage when it reads a file.
  await s1.q("CREATE TEMPORARY SECRET h1 (TYPE http, BEARER_TOKEN 'b')");
  rows = await s1.q("SELECT * FROM which_secret('https://example.com/f.csv', 'http')");
  check('a type secretd does not know: no error, DuckDB\'s own secret found', rows.length === 1 &&
    rows[0].name === 'h1' && rows[0].storage === 'memory', JSON.stringify(rows));
  await s1.q('DROP TEMPORARY SECRET h1');

  const flockGet = async (s, name) => {
    const rr = await s.t(`SELECT key, value, type FROM flocklike_get_secret('${name}') ORDER BY key`);
    if (rr.error) return { error: rr.error };
    return { type: rr.rows[0]?.type, fields: Object.fromEntries(rr.rows.map((x) => [x.key, x.value])) };
  };
  let f = await flockGet(s1, '__default_openai');
  check('FlockMTL lookup __default_openai', f.fields && f.fields.api_key === openaiKey &&
    f.fields.base_url === 'https://api.example', f.error || 'values differ');
  f = await flockGet(s1, '__default_azure_llm');
  check('FlockMTL lookup __default_azure_llm finds secretd\'s __default_azure', f.fields &&
    f.type === 'azure_llm' && f.fields.api_key === azureKey && f.fields.resource_name === 'res1' &&
    f.fields.api_version === '2024-10-21', f.error || 'values differ');
  f = await flockGet(s1, '__default_ollama');
  check('FlockMTL lookup of a missing secret fails as FlockMTL does', f.error && f.error.includes('Secret not found'),
    f.error || 'found');

  // --- DuckDB creates and drops; secretctl sees it ------------------------------------
  const listNames = async () => {
    const l = await server.ctl(['list', '--json']);
    return JSON.parse(l.stdout).rows.map((x) => `${x.name}@${x.storage}`);
  };
  const d1a = val('sk-d1a'), d1b = val('sk-d1b'), d2 = val('http://d2'), az2 = val('az2');
  await s1.q("SET default_secret_storage = 'secretd'");
  await s1.q(`CREATE PERSISTENT SECRET d1 (TYPE openai, API_KEY ${sq(d1a)})`);
  await s1.q(`CREATE SECRET d2 IN secretd (TYPE ollama, API_URL ${sq(d2)}, SCOPE ('ollama://a/', 'ollama://b/'))`);
  let names = await listNames();
  check('CREATE PERSISTENT SECRET lands in secretd\'s sqlcipher', names.includes('d1@sqlcipher'), names.join());
  check('CREATE SECRET ... IN secretd lands in secretd', names.includes('d2@sqlcipher'), names.join());
  r = await server.ctl(['get', 'd2', '--json']);
  let g = JSON.parse(r.stdout).secret;
  check('scope list stored', JSON.stringify(g.scope) === '["ollama://a/","ollama://b/"]', JSON.stringify(g.scope));
  check('value stored byte for byte', g.fields.api_url === d2);
  let e = await s1.t(`CREATE PERSISTENT SECRET d1 (TYPE openai, API_KEY ${sq(d1b)})`);
  errors.push(e.error || '');
  check('duplicate create: secretd\'s ALREADY_EXISTS', e.error && e.error.includes('ALREADY_EXISTS') &&
    e.error.includes("'d1' already exists"), e.error);
  await s1.q(`CREATE PERSISTENT SECRET IF NOT EXISTS d1 (TYPE openai, API_KEY ${sq(d1b)})`);
  g = JSON.parse((await server.ctl(['get', 'd1', '--json'])).stdout).secret;
  check('IF NOT EXISTS leaves the secret', g.fields.api_key === d1a);
  await s1.q(`CREATE OR REPLACE PERSISTENT SECRET d1 (TYPE openai, API_KEY ${sq(d1b)})`);
  g = JSON.parse((await server.ctl(['get', 'd1', '--json'])).stdout).secret;
  check('OR REPLACE replaces it', g.fields.api_key === d1b);
  await s1.q(`CREATE OR REPLACE PERSISTENT SECRET (TYPE azure_llm, API_KEY ${sq(az2)}, RESOURCE_NAME 'r2', API_VERSION 'v2')`);
  g = JSON.parse((await server.ctl(['get', '__default_azure', '--json'])).stdout).secret;
  check('unnamed azure_llm from DuckDB is secretd\'s __default_azure', g.fields.api_key === az2);
  f = await flockGet(s1, '__default_azure_llm');
  check('and FlockMTL finds it', f.fields && f.fields.api_key === az2, f.error || 'values differ');
  e = await s1.t("CREATE TEMPORARY SECRET t1 IN secretd (TYPE openai, API_KEY 'x')");
  check('TEMPORARY ... IN secretd is DuckDB\'s error', e.error && e.error.includes('temporary secrets in a persistent'), e.error);
  e = await s1.t("CREATE PERSISTENT SECRET bad IN secretd (TYPE openai, BASE_URL 'x')");
  check('missing required field', e.error && e.error.includes("Missing required field: 'api_key'"), e.error);

  await s1.q('DROP PERSISTENT SECRET d1 FROM secretd');
  await s1.q('DROP SECRET d2');
  names = await listNames();
  check('DROP ... FROM secretd and DROP SECRET drop in secretd', !names.includes('d1@sqlcipher') &&
    !names.includes('d2@sqlcipher'), names.join());
  await s1.q('DROP SECRET IF EXISTS nope');
  e = await s1.t('DROP SECRET nope');
  check('dropping a missing secret', e.error && e.error.includes("Failed to remove non-existent secret with name 'nope'"), e.error);

  // --- two DuckDB processes ------------------------------------------------------------
  worker = spawn(process.execPath, [path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.mjs')], {
    env: { ...process.env, SECRETD_ADDR: server.url, WORKER_SECRET_DIR: workerSecretDir },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: worker.stdout })[Symbol.asyncIterator]();
  const nextLine = async () => JSON.parse((await lines.next()).value);
  check('worker session ready (SECRETD_ADDR from the environment)', (await nextLine()).ready === true);
  const w = async (sql) => {
    worker.stdin.write(sql.replace(/\n/g, ' ') + '\n');
    return nextLine();
  };
  const shared = val('sk-shared');
  await s1.q(`CREATE PERSISTENT SECRET shared1 IN secretd (TYPE openai, API_KEY ${sq(shared)})`);
  let wr = await w("SELECT key, value FROM flocklike_get_secret('shared1') WHERE key = 'api_key'");
  check('the other process sees a secret created in this one at once', wr.rows && wr.rows[0]?.value === shared,
    wr.error || 'value differs');
  wr = await w('DROP PERSISTENT SECRET shared1 FROM secretd');
  check('the other process drops it', !wr.error, wr.error);
  f = await flockGet(s1, 'shared1');
  check('this process no longer finds it', f.error && f.error.includes('Secret not found'), f.error || 'found');
  rows = await s1.q("SELECT name FROM duckdb_secrets() WHERE name = 'shared1'");
  check('nor lists it', rows.length === 0);
  const live = val('sk-live');
  r = await server.ctl(['create', '--type', 'openai', '--name', 'live1', 'api_key=-'], { input: live });
  wr = await w("SELECT name FROM duckdb_secrets() WHERE name = 'live1'");
  f = await flockGet(s1, 'live1');
  check('a secret created by secretctl reaches both running sessions', wr.rows?.length === 1 &&
    f.fields?.api_key === live, wr.error || f.error || 'not seen');

  // --- benchmark: FlockMTL's lookup through the storage --------------------------------
  await s1.q(`CREATE OR REPLACE PERSISTENT SECRET bench1 IN secretd (TYPE openai, API_KEY ${sq(val('sk-bench'))})`);
  await s1.q("FROM flocklike_bench('bench1', 200)"); // warm-up
  rows = await s1.q("FROM flocklike_bench('bench1', 3000)");
  const nsPerCall = Number(rows[0].ns_per_call);
  console.log(`BENCH GetSecretByName through the secretd storage (ipc, no cache): ` +
    `${(nsPerCall / 1000).toFixed(1)} us per call over ${rows[0].calls} calls`);
  check('benchmark ran', nsPerCall > 0);
  // For scale: the same lookup of a secret in DuckDB's own memory storage, without secretd.
  const sb = await openSession(api, { secret_directory: secretDir });
  await sb.q(`LOAD '${FLOCKLIKE_EXT}'`);
  await sb.q(`CREATE SECRET mem1 (TYPE openai, API_KEY ${sq(val('sk-mem'))})`);
  await sb.q("FROM flocklike_bench('mem1', 1000)");
  rows = await sb.q("FROM flocklike_bench('mem1', 30000)");
  console.log(`BENCH the same lookup of a secret in DuckDB's memory storage, no secretd loaded: ` +
    `${(Number(rows[0].ns_per_call) / 1000).toFixed(1)} us per call`);
  sb.close();

  // --- restart ---------------------------------------------------------------------------
  const stopped = await server.stop();
  check('secretd exits 0 on SIGTERM', stopped.code === 0, JSON.stringify(stopped));
  await s1.q('SET secretd_timeout_ms = 2000');
  e = await s1.t('FROM duckdb_secrets()');
  errors.push(e.error || '');
  check('secretd down: a clear DuckDB error', e.error && e.error.includes('UNAVAILABLE') &&
    e.error.includes(server.url), e.error);
  check('secretd down: bounded (< 8 s)', e.ms < 8000, `${e.ms} ms`);
  await server.start();
  const t0 = Date.now();
  let back;
  while (Date.now() - t0 < 15000) {
    back = await flockGet(s1, '__default_azure_llm');
    if (back.fields) break;
  }
  check('the session recovers after the restart', back.fields?.api_key === az2, back.error);
  console.log(`restart: session served again ${Date.now() - t0} ms after secretd answered`);
  f = await flockGet(s1, '__default_openai');
  check('temporary secrets did not survive the restart; persistent ones did', f.error && f.error.includes('Secret not found'),
    f.error || 'found');

  // --- wrong token, reader token, no server, a server that never answers ----------------
  await s1.q("SET secretd_token = 'sdt_this-token-is-wrong'");
  rows = await s1.q("SELECT current_setting('secretd_token') AS t");
  check('the token setting reads back redacted', rows[0].t === 'redacted', rows[0].t);
  e = await s1.t('FROM duckdb_secrets()');
  errors.push(e.error || '');
  check('wrong token: UNAUTHENTICATED as a DuckDB Permission Error', e.error && e.error.startsWith('Permission Error') &&
    e.error.includes('UNAUTHENTICATED'), e.error);
  await s1.q(`SET secretd_token = '${tok}'`);
  rows = await s1.q('FROM duckdb_secrets()');
  check('reader token lists', rows.length >= 3);
  e = await s1.t("CREATE PERSISTENT SECRET ro IN secretd (TYPE ollama, API_URL 'http://x')");
  errors.push(e.error || '');
  check('reader token cannot create: PERMISSION_DENIED', e.error && e.error.includes('PERMISSION_DENIED'), e.error);
  check('no token in an error', !errors.some((x) => x.includes(tok)));
  await s1.q("SET secretd_token = ''");

  await s1.q(`SET secretd_address = 'ipc://${dir}/nobody-here.sock'`);
  e = await s1.t("FROM flocklike_get_secret('ol1')");
  errors.push(e.error || '');
  check('no server (ipc): UNAVAILABLE', e.error && e.error.includes('UNAVAILABLE'), e.error);
  check('no server (ipc): bounded (< 8 s)', e.ms < 8000, `${e.ms} ms`);
  const hole = net.createServer(() => {}); // accepts and never answers
  await new Promise((res) => hole.listen(0, '127.0.0.1', res));
  await s1.q(`SET secretd_address = 'tcp://127.0.0.1:${hole.address().port}'`);
  await s1.q('SET secretd_timeout_ms = 1500');
  e = await s1.t("SELECT * FROM which_secret('openai://x', 'openai')");
  errors.push(e.error || '');
  // No SP handshake ever completes, so no connection: UNAVAILABLE (secretd.h), not
  // DEADLINE_EXCEEDED.
  check('a server that never answers: UNAVAILABLE, not a hang', e.error && e.error.includes('UNAVAILABLE'), e.error);
  check('... within the timeout (< 6 s)', e.ms < 6000, `${e.ms} ms`);
  console.log(`no server: ipc ${errors.length} errors; black-hole tcp answered in ${e.ms} ms`);
  hole.close();
  // secretd_tls_ca reaches libsecretd: tls+tcp:// without it, and with a missing file.
  await s1.q("SET secretd_address = 'tls+tcp://127.0.0.1:1'");
  e = await s1.t('FROM duckdb_secrets()');
  check('tls+tcp:// without secretd_tls_ca: libsecretd\'s error', e.error && e.error.includes('needs a CA file'), e.error);
  await s1.q(`SET secretd_tls_ca = '${dir}/no-such-ca.pem'`);
  e = await s1.t('FROM duckdb_secrets()');
  check('secretd_tls_ca is used', e.error && e.error.includes('cannot load CA file') && e.error.includes('no-such-ca.pem'), e.error);
  await s1.q("SET secretd_tls_ca = ''");
  await s1.q(`SET secretd_address = '${server.url}'`);
  rows = await s1.q('FROM duckdb_secrets()');
  check('back to the real server', rows.length >= 3);

  // --- load orders -----------------------------------------------------------------------
  const s2 = await openSession(api, { secret_directory: secretDir });
  await s2.q(`LOAD '${SECRETD_EXT}'`);
  await s2.q(`SET secretd_address = '${server.url}'`);
  rows = await s2.q("SELECT type, default_provider FROM duckdb_secret_types() WHERE type IN ('openai', 'ollama', 'azure_llm') ORDER BY type");
  check('LOAD secretd alone registers the three types', rows.map((x) => `${x.type}/${x.default_provider}`).join() ===
    'azure_llm/config,ollama/config,openai/config', JSON.stringify(rows));
  const so = val('http://so');
  await s2.q(`CREATE PERSISTENT SECRET so1 IN secretd (TYPE ollama, API_URL ${sq(so)})`);
  rows = await s2.q("SELECT secret_string FROM duckdb_secrets() WHERE name = 'so1'");
  check('... and creates, lists and redacts with them', rows.length === 1 && rows[0].secret_string.includes('api_url=redacted'));
  e = await s2.t("CREATE PERSISTENT SECRET so2 IN secretd (TYPE azure_llm, API_KEY 'k')");
  check('... with FlockMTL\'s required fields', e.error && e.error.includes("Missing required field: 'resource_name'"), e.error);
  e = await s2.t(`LOAD '${FLOCKLIKE_EXT}'`);
  check('LOAD flock after secretd: DuckDB refuses the second registration of the types',
    e.error && e.error.includes('already registered secret type'), e.error);
  s2.close();
  const s3 = await openSession(api, { secret_directory: secretDir });
  await s3.q(`LOAD '${FLOCKLIKE_EXT}'`);
  await s3.q(`LOAD '${SECRETD_EXT}'`);
  rows = await s3.q("SELECT type, default_provider FROM duckdb_secret_types() WHERE type IN ('openai', 'ollama', 'azure_llm') ORDER BY type");
  check('LOAD flock, then secretd: FlockMTL\'s types are used', rows.map((x) => x.default_provider).join() === 'flock,flock,flock',
    JSON.stringify(rows));
  await s3.q(`SET secretd_address = '${server.url}'`);
  f = await flockGet(s3, 'so1');
  check('... and secretd\'s secrets reach FlockMTL\'s lookup', f.fields?.api_url === so, f.error);
  s3.close();

  // --- no value anywhere it should not be ---------------------------------------------------
  const logs = await s1.q('SELECT type, message FROM duckdb_logs');
  check('DuckDB logged something (the check below is not vacuous)', logs.length > 0, `${logs.length} log rows`);
  // DuckDB's own QueryLog records each statement as typed, so a CREATE SECRET typed with
  // its values is there (DuckDB's doing, and why secretctl is the better way in); nothing
  // else may hold a value: not the lookups, listings, errors or the extension's calls.
  const leaky = logs.filter((x) => leaks(x.message, values).length > 0);
  const notTyped = leaky.filter((x) => !(x.type === 'QueryLog' && /^\s*CREATE\b.*\bSECRET\b/is.test(x.message)));
  check('no value in DuckDB\'s logs but the CREATE SECRET statements typed', notTyped.length === 0,
    `log types holding a value: ${[...new Set(notTyped.map((x) => x.type))].join()}`);
  check('no value in any error text', leaks(errors.join('\n'), values).length === 0);
  const files = [];
  const walk = (d) => {
    let ents = [];
    try { ents = readdirSync(d); } catch { return; }
    for (const n of ents) {
      const p = path.join(d, n);
      if (statSync(p).isDirectory()) walk(p); else files.push(p);
    }
  };
  walk(secretDir);
  walk(workerSecretDir);
  check('nothing in DuckDB\'s secret directories', files.length === 0, files.join());
  check('no value in secretd\'s log', leaks(readFileSync(server.log, 'utf8'), values).length === 0);
  worker.stdin.end();
  s1.close();
  await server.stop();
} catch (err) {
  check('test ran to the end', false, String(err && err.stack || err));
} finally {
  removeDir(dir);
}
finish();
