// lib.mjs: helpers shared by the DuckDB tests: a real secretd in a private temp dir,
// secretctl runs, DuckDB 1.4.4 sessions through @duckdb/node-api, and counted checks.
// A check that compares secret values prints only what differed (names, field keys),
// never a value. Exit status: 0 all checks passed, 1 a check failed, 77 DuckDB is missing.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, chmodSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const SECRETD_BIN = process.env.SECRETD_BIN;
export const SECRETCTL_BIN = process.env.SECRETCTL_BIN;
export const SECRETD_EXT = process.env.SECRETD_DUCKDB_EXTENSION;
export const FLOCKLIKE_EXT = process.env.FLOCKLIKE_EXTENSION;

// Skip (77), never pass, when DuckDB could not be fetched or the extension not built.
export function requireDuckDB() {
  const mods = process.env.DUCKDB_NODE_MODULES;
  let api;
  try {
    api = createRequire(path.join(mods || '/nonexistent', 'x.js'))('@duckdb/node-api');
  } catch (e) {
    console.log(`SKIP: @duckdb/node-api not found in ${mods} (tools/duckdb-fetch could not reach npm?)`);
    process.exit(77);
  }
  if (!SECRETD_EXT || !FLOCKLIKE_EXT) {
    console.log('SKIP: the secretd DuckDB extension was not built (DuckDB headers/library not found)');
    process.exit(77);
  }
  return api;
}

let checks = 0, failures = 0;
export function check(what, ok, detail = '') {
  checks++;
  if (!ok) {
    failures++;
    console.log(`FAIL: ${what}${detail ? ': ' + detail : ''}`);
  }
  return ok;
}
export function finish() {
  console.log(`${checks} checks, ${failures} failed`);
  process.exit(failures ? 1 : 0);
}

export function tempDir(prefix) {
  const d = mkdtempSync(path.join(tmpdir(), prefix));
  chmodSync(d, 0o700);
  return d;
}

export function removeDir(d) {
  if (!process.env.SECRETD_KEEP_TEST_DIRS) rmSync(d, { recursive: true, force: true });
}

// Run a program; resolves {code, stdout, stderr}. input: written to its stdin.
export function run(bin, args, { input, env } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(bin, args, { env: { ...process.env, ...(env || {}) } });
    let stdout = '', stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    p.on('error', reject);
    p.stdin.on('error', () => {}); // a program that exits without reading its input
    p.on('close', (code) => resolve({ code, stdout, stderr }));
    p.stdin.end(input ?? '');
  });
}

export class Server {
  constructor(dir, extra = []) {
    this.dir = dir;
    this.url = `ipc://${dir}/secretd.sock`;
    this.log = path.join(dir, 'secretd.log');
    this.extra = extra;
    this.proc = null;
  }
  ctl(args, opts = {}) {
    return run(SECRETCTL_BIN, ['--addr', this.url, ...args], opts);
  }
  // Start and wait (bounded) until `secretctl list` answers.
  async start() {
    const { openSync } = await import('node:fs');
    const fd = openSync(this.log, 'a');
    this.proc = spawn(SECRETD_BIN, ['--listen', this.url, '--data-dir', path.join(this.dir, 'data'),
      '--log-level', 'debug', ...this.extra], { stdio: ['ignore', fd, fd] });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, sig) => resolve({ code, sig })));
    const deadline = Date.now() + 30000;
    while (Date.now() < deadline) {
      const r = await this.ctl(['--timeout', '1000', 'list']);
      if (r.code === 0) return;
      if (this.proc.exitCode !== null) throw new Error('secretd exited: ' + readFileSync(this.log, 'utf8').slice(-2000));
      await new Promise((res) => setTimeout(res, 50));
    }
    throw new Error('secretd did not answer within 30 s');
  }
  async stop() {
    this.proc.kill('SIGTERM');
    const r = await this.exited;
    this.proc = null;
    return r;
  }
  kill() {
    if (this.proc) this.proc.kill('SIGKILL');
  }
}

// A DuckDB session: q(sql) resolves to rows (JSON-friendly objects) or throws; t(sql)
// resolves to {rows} or {error, ms}.
export async function openSession(api, options = {}) {
  const inst = await api.DuckDBInstance.create(':memory:', { allow_unsigned_extensions: 'true', ...options });
  const con = await inst.connect();
  const s = {
    inst, con,
    async q(sql) {
      const r = await con.runAndReadAll(sql);
      return r.getRowObjectsJson();
    },
    async t(sql) {
      const t0 = Date.now();
      try {
        return { rows: await s.q(sql), ms: Date.now() - t0 };
      } catch (e) {
        return { error: e.message, ms: Date.now() - t0 };
      }
    },
    close() {
      con.closeSync?.();
      inst.closeSync?.();
    },
  };
  return s;
}

// Whether text holds any of the values (for "no value in logs / errors / files").
export function leaks(text, values) {
  return values.filter((v) => v.length >= 6 && text.includes(v));
}
