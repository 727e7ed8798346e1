#!/usr/bin/env node
// Offline HCL checks for scripts/tf-check.sh, on HashiCorp's own Go HCL library compiled to
// WebAssembly (npm @cdktn/hcl-tools = hclwrite.Format, the formatter behind `terraform fmt`;
// @cdktn/hcl2json = the HCL parser). NODE_PATH must point at their node_modules.
//
//   node hcl-tools.js --out DIR FILE...   parse each FILE (syntax errors fail) and write its
//                                         canonical formatting to DIR/FILE
//   node hcl-tools.js --write FILE...     parse, then rewrite each FILE in place if it differs
//
// Exit: 0 all parsed, 1 a syntax error (reported per file on stderr), 2 usage or tool failure.
"use strict";
const fs = require("fs");
const path = require("path");

async function main(argv) {
  let out = null;
  let write = false;
  const files = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--out") out = argv[++i];
    else if (argv[i] === "--write") write = true;
    else files.push(argv[i]);
  }
  if ((out === null) === !write || files.length === 0) {
    process.stderr.write("usage: hcl-tools.js (--out DIR | --write) FILE...\n");
    return 2;
  }
  const { format } = require("@cdktn/hcl-tools");
  const { parse } = require("@cdktn/hcl2json");
  let bad = 0;
  for (const file of files) {
    const src = fs.readFileSync(file, "utf8");
    try {
      await parse(path.basename(file), src);
    } catch (e) {
      process.stderr.write(`${file}: ${String(e.message || e).replace(/^Error: /, "")}\n`);
      bad++;
      continue;
    }
    const formatted = await format(src);
    if (write) {
      if (formatted !== src) {
        fs.writeFileSync(file, formatted);
        process.stdout.write(`formatted ${file}\n`);
      }
    } else {
      const dest = path.join(out, file);
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      fs.writeFileSync(dest, formatted);
    }
  }
  return bad ? 1 : 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e) => {
    process.stderr.write(`hcl-tools.js: ${e && e.stack ? e.stack : e}\n`);
    process.exit(2);
  },
);
