// worker.mjs: a second DuckDB process for storage.mjs. One session with the secretd
// extension loaded (SECRETD_ADDR from the environment); each line on stdin is one SQL
// statement, answered with one JSON line on stdout: {"rows": [...]} or {"error": "..."}.
import { createInterface } from 'node:readline';
import { requireDuckDB, openSession, SECRETD_EXT, FLOCKLIKE_EXT } from './lib.mjs';

const api = requireDuckDB();
const s = await openSession(api, { secret_directory: process.env.WORKER_SECRET_DIR });
await s.q(`LOAD '${FLOCKLIKE_EXT}'`);
await s.q(`LOAD '${SECRETD_EXT}'`);
console.log(JSON.stringify({ ready: true }));
for await (const line of createInterface({ input: process.stdin })) {
  const r = await s.t(line);
  console.log(JSON.stringify(r.error !== undefined ? { error: r.error } : { rows: r.rows }));
}
