// `node --import <this file>`: records every module the process resolves into the file named by
// PASSERELLE_TEST_MODULE_LOG, one `pid<TAB>URL` per line (test/e2e/serving-path.test.ts reads it).
import { register } from "node:module";

register("./hooks.mjs", import.meta.url);
