// Module customization hooks (Node's loader thread): append each resolved URL, once, to the log file, after the
// process id (several processes may share one file).
import fs from "node:fs";

const log = process.env.PASSERELLE_TEST_MODULE_LOG;
const seen = new Set();

export async function resolve(specifier, context, next) {
  const result = await next(specifier, context);
  if (log && !seen.has(result.url)) {
    seen.add(result.url);
    fs.appendFileSync(log, `${process.pid}\t${result.url}\n`);
  }
  return result;
}
