#!/usr/bin/env node
// Makes solc-js look like the native solc binary that py-solc-x drives:
// answers `--version` and compiles standard JSON from stdin (`--standard-json`),
// resolving imports such as @openzeppelin/... from node_modules.
"use strict";
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const root = path.resolve(__dirname, "..", "..");
const searchPaths = [root, path.join(root, "node_modules"), path.join(root, "contracts")];

function findImport(importPath) {
  for (const base of searchPaths) {
    const candidate = path.join(base, importPath);
    if (fs.existsSync(candidate)) {
      return { contents: fs.readFileSync(candidate, "utf8") };
    }
  }
  return { error: `File not found: ${importPath} (looked in ${searchPaths.join(", ")})` };
}

const args = process.argv.slice(2);
if (args.includes("--version")) {
  process.stdout.write(`solc, the solidity compiler commandline interface\nVersion: ${solc.version()}\n`);
} else {
  const input = fs.readFileSync(0, "utf8");
  process.stdout.write(solc.compile(input, { import: findImport }));
}
