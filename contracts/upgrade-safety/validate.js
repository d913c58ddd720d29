#!/usr/bin/env node
// Is upgrading from one compiled implementation to another safe? Asked of OpenZeppelin upgrades-core's own
// `validateUpgradeSafety` (what `npx @openzeppelin/upgrades-core validate` runs), offline, on Hardhat-format
// build-info files. Called by vvops/procedures/upgrade_safety.py; plain JSON in, plain JSON out:
//
//   stdin : {"reference": {"build_info": "<file.json>", "contract": "VaultV1" | "path.sol:VaultV1"},
//            "proposed":  {"build_info": "<file.json>", "contract": "VaultV2"},
//            "unsafe_allow": ["constructor", ...]}            (optional; upgrades-core's ValidationOptions)
//   stdout: {"ok": bool, "problems": [{"kind": "storage" | "safety", "message": "..."}], "explain": "..."}
//   exit 0 whenever a verdict was reached (ok or not); exit 2 with one line on stderr when it could not run.
//
// Storage-layout problems are upgrades-core's own (inserted, deleted, renamed, retyped variables, `__gap` misuse,
// ERC-7201 namespaced struct changes, struct/enum changes — compared by meaning, not by AST id); safety problems
// are its checks of the new implementation (constructors, selfdestruct, delegatecall, missing initializer ...).
"use strict";

const fs = require("fs");
const os = require("os");
const path = require("path");

function fail(msg) {
  process.stderr.write(`validate.js: ${msg}\n`);
  process.exit(2);
}

let core;
try {
  core = require(path.join(__dirname, "..", "..", "node_modules", "@openzeppelin", "upgrades-core"));
} catch (e) {
  fail(`@openzeppelin/upgrades-core is not installed (${e.code || e.message}): run \`npm ci\` in the repo root`);
}

function readStdin() {
  try {
    return JSON.parse(fs.readFileSync(0, "utf8"));
  } catch (e) {
    fail(`expected a JSON request on stdin (${e.message})`);
  }
}

const REPO_ROOT = path.join(__dirname, "..", "..");

// Each side in its own directory (upgrades-core takes directories; short names must be unique). A build-info whose
// input lacks the sources the compiler pulled in through imports (solc-js with an import callback) gets them from
// the repo or node_modules, since upgrades-core reads source locations from the input.
function stage(root, name, file) {
  if (!file || !fs.existsSync(file)) fail(`build-info file not found: ${file}`);
  const dir = path.join(root, name);
  fs.mkdirSync(dir);
  let info;
  try {
    info = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    fail(`${file} is not a JSON build-info file (${e.message})`);
  }
  const sources = (info.input && info.input.sources) || {};
  let completed = false;
  for (const unit of Object.keys((info.output && info.output.sources) || {})) {
    if (sources[unit] && sources[unit].content !== undefined) continue;
    const found = [REPO_ROOT, path.join(REPO_ROOT, "node_modules")].map((b) => path.join(b, unit)).find(fs.existsSync);
    if (!found) fail(`${file} lacks the source of ${unit} and it is not in the repo or node_modules`);
    sources[unit] = { content: fs.readFileSync(found, "utf8") };
    completed = true;
  }
  const target = path.join(dir, "build-info.json");
  if (completed) fs.writeFileSync(target, JSON.stringify(info));
  else fs.symlinkSync(path.resolve(file), target);
  return dir;
}

// One problem per block of upgrades-core's own explanation (blocks are separated by blank lines; continuation
// lines of a block, indented, stay with it).
function blocks(text) {
  return text
    .split(/\n\s*\n/)
    .map((b) => b.replace(/\s+$/g, "").replace(/^\s+/, ""))
    .filter((b) => b.length > 0)
    .map((b) => b.split("\n").map((l) => l.trim()).join(" ").replace(/\s+>\s+/g, " — "));
}

async function main() {
  const req = readStdin();
  if (!req.reference || !req.proposed) fail('the request needs "reference" and "proposed"');
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "vv-upgrade-safety-"));
  try {
    const proposedDir = stage(root, "proposed", req.proposed.build_info);
    const referenceDir = stage(root, "reference", req.reference.build_info);
    const opts = {};
    if (Array.isArray(req.unsafe_allow) && req.unsafe_allow.length) opts.unsafeAllow = req.unsafe_allow;
    let report;
    try {
      report = await core.validateUpgradeSafety(proposedDir, req.proposed.contract, `reference:${req.reference.contract}`,
                                                opts, [referenceDir]);
    } catch (e) {
      fail(String(e.message || e).split("\n")[0]);
    }
    const problems = [];
    for (const r of report.upgradeableContractReports) {
      if (!r.standaloneReport.ok) {
        for (const m of blocks(r.standaloneReport.explain(false))) problems.push({ kind: "safety", message: m });
      }
      if (r.storageLayoutReport && !r.storageLayoutReport.ok) {
        for (const m of blocks(r.storageLayoutReport.explain(false))) problems.push({ kind: "storage", message: m });
      }
    }
    process.stdout.write(JSON.stringify({ ok: report.ok, problems, explain: report.explain(false) }) + "\n");
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}

main().catch((e) => fail(String((e && e.message) || e).split("\n")[0]));
