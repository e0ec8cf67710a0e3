#!/usr/bin/env node
// The `tollgate` command runs the JavaScript that `npm install` compiled into dist/ (the `prepare`
// script): starting through tsx cost about a second and 60 MB on every run.
try {
  await import("../dist/bin/main.js");
} catch (err) {
  if (err?.code !== "ERR_MODULE_NOT_FOUND" || !String(err.message).includes("dist/bin/main.js")) throw err;
  process.stderr.write("tollgate: dist/ is missing: build it with `npm run build` (npm install does it too)\n");
  process.exitCode = 1;
}
