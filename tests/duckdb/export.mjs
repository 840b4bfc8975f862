// export.mjs: `secretctl export --duckdb` output executed by a real DuckDB 1.4.4 session
// with FlockMTL's types registered (flocklike), and DuckDB's resulting secrets compared
// field by field with secretd's: names that are keywords (every keyword of
// duckdb_keywords()), upper-case, digits first, quotes, non-ASCII; values with quotes,
// backslashes, newlines, semicolons and comment markers; scope lists; all three types;
// default names (secretd's __default_azure must become DuckDB's __default_azure_llm); a
// name held by both storages; --type, NAME..., --load. Executed statement by statement and
// as one script (what duckdb -init and con.execute(script) do). The secretd extension is not
// loaded here: this is the snapshot path for any DuckDB.
import { randomBytes } from 'node:crypto';
import {
  requireDuckDB, check, finish, tempDir, removeDir, Server, openSession, leaks, FLOCKLIKE_EXT,
} from './lib.mjs';

const api = requireDuckDB();
const dir = tempDir('secretd-export-');
const server = new Server(dir);
process.on('exit', () => server.kill());
const values = [];
const v = (s) => {
  const x = `${s}${randomBytes(6).toString('hex')}`;
  values.push(x);
  return x;
};

// [name or null (default), type, persistent, {field: value}, [scope...] or null]
const cases = [
  [null, 'openai', false, { api_key: v("sk-'quoted'\\back\\\\slash-"), base_url: "https://x/';--" }, null],
  [null, 'ollama', true, { api_url: v('http://o"d\'q"/') }, ['ollama://a/', "ollama://b'/", 'ollama://c,d/']],
  [null, 'azure_llm', true, { api_key: v('az\nnewline\ttab-'), resource_name: "r'n", api_version: '2024;10' }, null],
  ['select', 'openai', false, { api_key: v('k-select-') }, null],
  ['secret', 'ollama', true, { api_url: v('u-secret-') }, ['']],
  ['type', 'azure_llm', false, { api_key: v('$$dollar$$'), resource_name: 'r', api_version: 'v' }, ['azure_llm://x/']],
  ['MixedCase', 'openai', true, { api_key: v('k-mixed-'), base_url: '' }, null],
  ['9lives', 'openai', false, { api_key: v('k-9-') }, null],
  ['a b', 'ollama', false, { api_url: v('u-space-') }, null],
  ['we"ird', 'openai', false, { api_key: v('k-weird-') }, null],
  ["it's", 'openai', false, { api_key: v('k-apos-') }, null],
  ['ключ😀', 'ollama', true, { api_url: v('юникод-😀-') }, ['ollama://ключ/']],
  ['__default_azure_llm_not', 'azure_llm', false, { api_key: v('k-nd-'), resource_name: 'r', api_version: 'v' }, null],
  ['__default_openai_x', 'openai', false, { api_key: v('k-ndx-') }, null],
  // __default_azure as an openai secret is not the azure default: exported under its name.
  ['twin', 'openai', false, { api_key: v('k-twin-mem-') }, null],
  ['twin', 'openai', true, { api_key: v('k-twin-db-') }, null],
];

try {
  await server.start();
  for (const [name, type, persistent, fields, scope] of cases) {
    const args = ['create', '--type', type];
    if (name !== null) args.push('--name', name);
    if (persistent) args.push('--persistent');
    for (const s of scope || []) args.push('--scope', s);
    // Values through files/stdin, never argv: one on stdin, the rest from files.
    const input = [];
    for (const [k, val] of Object.entries(fields)) {
      args.push(`${k}=-`);
      input.push(val);
      break;
    }
    const rest = Object.entries(fields).slice(1);
    const { writeFileSync } = await import('node:fs');
    rest.forEach(([k, val], i) => {
      const p = `${dir}/f-${values.length}-${i}`;
      writeFileSync(p, val);
      args.push(`${k}=@${p}`);
    });
    const r = await server.ctl(args, { input: input[0] });
    check(`create ${name ?? '(default ' + type + ')'}`, r.code === 0, r.stderr);
  }
  // Every DuckDB keyword as a secret name (through `secretctl sql`, names double-quoted).
  const s0 = await openSession(api);
  const keywords = (await s0.q('SELECT keyword_name FROM duckdb_keywords() ORDER BY 1')).map((x) => x.keyword_name);
  s0.close();
  const script = keywords.map((k) => `CREATE SECRET IF NOT EXISTS "${k}" (TYPE ollama, API_URL 'http://kw/${k}');`).join('\n');
  let r = await server.ctl(['sql'], { input: script });
  check(`create ${keywords.length} secrets named after DuckDB's keywords`, r.code === 0, r.stderr.slice(0, 300));

  // secretd's view: every secret with its values (admin: same uid).
  const list = JSON.parse((await server.ctl(['list', '--json'])).stdout).rows;
  const want = new Map(); // DuckDB name -> secretd secret
  // One `secretctl sql` run reads them all: GET SECRET "name" FROM storage, one per line.
  const gets = list.map((row) => `GET SECRET "${row.name.replace(/"/g, '""')}" FROM ${row.storage};`).join('\n');
  r = await server.ctl(['sql', '--json'], { input: gets });
  const got = r.stdout.trim().split('\n').map((l) => JSON.parse(l));
  check('secretd answers a GET for every listed secret', r.code === 0 && got.length === list.length &&
    got.every((x) => x.status === 'OK'), r.stderr);
  for (const { secret: g } of got) {
    const dflt = { openai: '__default_openai', ollama: '__default_ollama', azure_llm: '__default_azure' }[g.type];
    const duckName = g.name === dflt ? `__default_${g.type}` : g.name.toLowerCase();
    if (want.has(duckName) && want.get(duckName).storage === 'memory') continue; // memory wins
    want.set(duckName, g);
  }

  r = await server.ctl(['export', '--duckdb', '--load', 'none']);
  check('export exits 0', r.code === 0, r.stderr);
  const out = r.stdout;
  check('every statement is TEMPORARY and has no PROVIDER', out.split(';\n').filter((x) => x.trim()).every(
    (x) => x.startsWith('CREATE OR REPLACE TEMPORARY SECRET ') && !/PROVIDER/i.test(x.replace(/'(?:[^']|'')*'/g, "''"))));
  check('"twin" (in both storages) is exported once', (out.match(/SECRET twin /g) || []).length === 1);

  const compare = async (s, how) => {
    const rows = await s.q('SELECT name, type, provider, persistent, storage, scope FROM duckdb_secrets() ORDER BY name');
    const got = new Map(rows.map((x) => [x.name, x]));
    const missing = [...want.keys()].filter((n) => !got.has(n));
    const extra = [...got.keys()].filter((n) => !want.has(n));
    check(`${how}: the same names as secretd`, missing.length === 0 && extra.length === 0,
      `missing ${JSON.stringify(missing.slice(0, 10))} extra ${JSON.stringify(extra.slice(0, 10))}`);
    let bad = [];
    for (const [n, g] of want) {
      const d = got.get(n);
      if (!d) continue;
      if (d.type !== g.type) bad.push(`${n}: type`);
      if (d.persistent !== false || d.storage !== 'memory') bad.push(`${n}: not temporary`);
      if (d.provider !== 'flock') bad.push(`${n}: provider ${d.provider}`);
      if (JSON.stringify(d.scope) !== JSON.stringify(g.scope)) bad.push(`${n}: scope`);
      const kv = await s.q(`SELECT key, value FROM flocklike_get_secret('${n.replace(/'/g, "''")}')`);
      const dk = Object.fromEntries(kv.map((x) => [x.key, x.value]));
      const keys = new Set([...Object.keys(dk), ...Object.keys(g.fields)]);
      for (const k of keys) if (dk[k] !== g.fields[k]) bad.push(`${n}: field ${k}`);
    }
    check(`${how}: type, scope and every field value equal secretd's (${want.size} secrets)`, bad.length === 0,
      bad.slice(0, 20).join('; '));
  };

  // One statement at a time (as a driver would).
  let s = await openSession(api);
  await s.q(`LOAD '${FLOCKLIKE_EXT}'`);
  // Split at ';' outside '...' and "..." (a value may hold ';', newlines and quotes).
  const stmts = [];
  let start = 0, quote = null;
  for (let i = 0; i < out.length; i++) {
    const c = out[i];
    if (quote) {
      if (c === quote) quote = out[i + 1] === quote ? (i++, quote) : null;
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === ';') {
      stmts.push(out.slice(start, i + 1).trim());
      start = i + 1;
    }
  }
  check('the output ends with a complete statement', out.slice(start).trim() === '' && quote === null);
  let failed = [];
  for (const st of stmts) {
    const e = await s.t(st);
    if (e.error) failed.push(e.error.split('\n')[0]);
  }
  check('every exported statement runs', failed.length === 0, failed.slice(0, 5).join(' | '));
  check('no value in DuckDB\'s errors', leaks(failed.join('\n'), values).length === 0);
  await compare(s, 'statement by statement');
  s.close();

  // The whole output as one script, after --load none (duckdb -init, con.execute(script)).
  s = await openSession(api);
  await s.q(`LOAD '${FLOCKLIKE_EXT}'`);
  await s.q(out);
  await compare(s, 'as one script');
  // __default_azure is FlockMTL's __default_azure_llm.
  const az = await s.q("SELECT key, value FROM flocklike_get_secret('__default_azure_llm') WHERE key = 'api_key'");
  check('secretd\'s __default_azure is found by FlockMTL\'s __default_azure_llm lookup', az.length === 1 &&
    az[0].value === cases[2][3].api_key);
  s.close();

  // --type, NAME..., --load.
  r = await server.ctl(['export', '--duckdb', '--type', 'azure_llm']);
  const azLines = r.stdout.trim().split(';\n').filter((x) => x);
  check('--type azure_llm: only azure_llm secrets', r.code === 0 && azLines.every((x) => x.includes('(TYPE azure_llm')) &&
    azLines.length === [...want.values()].filter((g) => g.type === 'azure_llm').length, `${azLines.length}`);
  r = await server.ctl(['export', '--duckdb', '--load', 'flock', 'select', 'MIXEDCASE']);
  check('NAME... and --load flock', r.code === 0 && r.stdout.startsWith('LOAD flock;\n') &&
    r.stdout.includes('SECRET "select" (') && r.stdout.includes('SECRET mixedcase (') &&
    r.stdout.trim().split('\n').length === 3, r.stderr);
  r = await server.ctl(['export', '--duckdb', '--load', 'flockmtl', 'secret']);
  check('--load flockmtl', r.stdout.startsWith('LOAD flockmtl;\n'));
  r = await server.ctl(['export', '--duckdb', 'select', 'nobody']);
  check('an unknown NAME: exit 1, nothing on stdout, no value on stderr', r.code === 1 && r.stdout === '' &&
    r.stderr.includes("no secret named 'nobody'") && leaks(r.stderr, values).length === 0, r.stderr);
  r = await server.ctl(['export']);
  check('export without --duckdb is a usage error', r.code === 2);
  r = await server.ctl(['export', '--duckdb', '--load', 'sqlite']);
  check('--load with an unknown extension is a usage error', r.code === 2);
  await server.stop();
} catch (err) {
  check('test ran to the end', false, String(err && err.stack || err));
} finally {
  removeDir(dir);
}
finish();
