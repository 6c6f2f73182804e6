#!/usr/bin/env node
// improv-judge.mjs: run the Improv Wi-Fi project's own serial client, the
// npm package improv-wifi-serial-sdk (unmodified), headless against a
// serial port reached over RFC 2217, and provision Wi-Fi with it. mos's Go
// tests use it to judge the virtual device's Improv firmware with a client
// mos did not write; it works against any RFC 2217 server.
//
//   node --import ./improv-hooks.mjs improv-judge.mjs --port HOST:PORT \
//        --ssid SSID --pass PASSWORD [--wrong-pass PASSWORD] [--no-scan] \
//        [--out FILE.json] [--trace] [--timeout S]
//
// (improv-hooks.mjs lets Node load the package's dist files, see there.)
//
// Steps, with the package's headless class ImprovSerial (dist/serial.js),
// which wants an open port:
//   open the port at 115200 (no DTR/RTS change: the chip keeps running);
//   initialize(): the current state (re-asked every second) and the device
//   info; scan(); with --wrong-pass, provision(ssid, wrong) must reject
//   with the device's "unable to connect" error state; provision(ssid,
//   pass) must resolve, with the device's URL in nextUrl and the state
//   "provisioned"; requestCurrentState() must say so again, with the URL;
//   close().
//
// A JSON summary goes to stdout (and to --out); the SDK's log goes to
// stderr with --trace. Exit status 0 only if every step did what the
// Improv specification says it should.

import { readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { parseArgs } from "node:util";
import { ImprovSerial } from "improv-wifi-serial-sdk/dist/serial.js";
import { ERROR_MSGS, ImprovSerialCurrentState } from "improv-wifi-serial-sdk/dist/const.js";
import { RFC2217SerialPort } from "./rfc2217-serialport.mjs";

const BAUD = 115200;

function usage(msg) {
  process.stderr.write(
    (msg ? `improv-judge: ${msg}\n` : "") +
      "usage: node --import ./improv-hooks.mjs improv-judge.mjs --port HOST:PORT --ssid SSID --pass PASSWORD [--wrong-pass PASSWORD] [--no-scan] [--out JSON] [--trace] [--timeout S]\n",
  );
  process.exit(2);
}

let opts;
try {
  opts = parseArgs({
    options: {
      port: { type: "string" },
      ssid: { type: "string" },
      pass: { type: "string" },
      "wrong-pass": { type: "string" },
      "no-scan": { type: "boolean", default: false },
      out: { type: "string" },
      trace: { type: "boolean", default: false },
      timeout: { type: "string", default: "60" },
    },
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
for (const k of ["port", "ssid", "pass"]) if (opts[k] === undefined) usage(`--${k} is required`);
const m = /^(.+):(\d+)$/.exec(opts.port);
if (!m) usage(`bad --port ${opts.port} (want HOST:PORT)`);

const require = createRequire(import.meta.url);
const sdkVersion = JSON.parse(readFileSync(require.resolve("improv-wifi-serial-sdk/package.json"), "utf8")).version;

const stateName = (s) => (s === undefined ? null : (ImprovSerialCurrentState[s] ?? `0x${s.toString(16)}`));

const result = {
  ok: false,
  sdkVersion,
  info: null,
  stateAfterInit: null,
  scan: null,
  wrongPass: null,
  provision: null,
  currentState: null,
  steps: [],
  warnings: [],
  totalMs: 0,
  error: null,
};

// After a failed initialize() the SDK leaves a command promise that
// rejects some 30 s later with nobody listening; a device error can do
// the same. Node would end the process on such a rejection: record it.
process.on("unhandledRejection", (reason) => {
  result.warnings.push(`unhandled rejection: ${reason instanceof Error ? reason.message : String(reason)}`);
});

const logger = {
  log: (...a) => opts.trace && console.error("[improv]", ...a),
  debug: (...a) => opts.trace && console.error("[improv:debug]", ...a),
  error: (...a) => console.error("[improv:error]", ...a),
};

const t0 = Date.now();
async function step(name, f) {
  const t = Date.now();
  try {
    return await f();
  } finally {
    result.steps.push({ step: name, ms: Date.now() - t });
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

function finish(code) {
  result.totalMs = Date.now() - t0;
  const json = JSON.stringify(result, null, 2) + "\n";
  if (opts.out) writeFileSync(opts.out, json);
  // exit at once: the SDK's own timers (30 s command timeouts) would
  // otherwise keep Node alive
  process.stdout.write(json, () => process.exit(code));
}

const deadline = setTimeout(() => {
  result.error = `timed out after ${opts.timeout} s`;
  finish(1);
}, Number(opts.timeout) * 1000);
deadline.unref();

const port = new RFC2217SerialPort({
  host: m[1],
  port: Number(m[2]),
  trace: opts.trace ? (l) => console.error("[rfc2217]", l) : null,
});
let improv;
try {
  await step("open", () => port.open({ baudRate: BAUD }));
  improv = new ImprovSerial(port, logger);

  const info = await step("initialize", () => improv.initialize(5000));
  result.info = info;
  result.stateAfterInit = stateName(improv.state);
  check(info && info.firmware && info.version && info.chipFamily && info.name, `incomplete device info ${JSON.stringify(info)}`);
  check(improv.state === ImprovSerialCurrentState.READY, `state after initialize ${result.stateAfterInit}, want READY (authorized)`);

  if (!opts["no-scan"]) {
    result.scan = await step("scan", () => improv.scan(15000));
    check(result.scan.some((n) => n.name === opts.ssid), `scan does not list ${opts.ssid}: ${JSON.stringify(result.scan)}`);
  }

  if (opts["wrong-pass"] !== undefined) {
    const w = { rejected: false, reason: null, error: null, state: null };
    result.wrongPass = w;
    await step("provision-wrong-pass", async () => {
      try {
        await improv.provision(opts.ssid, opts["wrong-pass"], 20000);
      } catch (e) {
        w.rejected = true;
        w.reason = e instanceof Error ? e.message : String(e);
      }
    });
    w.error = improv.error;
    w.errorName = ERROR_MSGS[improv.error] ?? null;
    w.state = stateName(improv.state);
    check(w.rejected, "provision with a wrong password resolved");
    check(improv.error === 3, `error state ${improv.error} after a wrong password, want 3 (UNABLE_TO_CONNECT)`);
    check(improv.state === ImprovSerialCurrentState.READY, `state ${w.state} after a wrong password, want READY`);
  }

  const p = { nextUrl: null, state: null };
  result.provision = p;
  await step("provision", () => improv.provision(opts.ssid, opts.pass, 20000));
  p.nextUrl = improv.nextUrl ?? null;
  p.state = stateName(improv.state);
  check(improv.state === ImprovSerialCurrentState.PROVISIONED, `state ${p.state} after provisioning, want PROVISIONED`);
  check(typeof p.nextUrl === "string" && /^https?:\/\//.test(p.nextUrl), `no device URL after provisioning: ${p.nextUrl}`);

  const c = { nextUrl: null, state: null };
  result.currentState = c;
  improv.nextUrl = undefined;
  await step("request-current-state", () => improv.requestCurrentState(5000));
  c.nextUrl = improv.nextUrl ?? null;
  c.state = stateName(improv.state);
  check(improv.state === ImprovSerialCurrentState.PROVISIONED && c.nextUrl === p.nextUrl,
    `current state ${c.state} ${c.nextUrl}, want PROVISIONED ${p.nextUrl}`);

  await step("close", async () => {
    await improv.close();
    await port.close();
  });
  result.ok = true;
} catch (e) {
  result.error = e instanceof Error ? e.message : String(e);
  try {
    await port.close();
  } catch {
    // the reader may still hold the stream; the process ends anyway
  }
}
finish(result.ok ? 0 : 1);
