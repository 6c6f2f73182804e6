#!/usr/bin/env node
// esptooljs-write.mjs: the esptool-js side of `make bench`. It flashes one
// image the way esptool-js's own flow does (connect with the classic
// DTR/RTS reset, runStub, changeBaud, writeFlash compressed with MD5
// verification) over RFC 2217 and prints, as JSON on stdout, how long
// that took from opening the port to the verified write, with the steps.
//
//   node bench/esptooljs-write.mjs --port HOST:PORT --baud N --image FILE --addr N
//
// It uses the esptool-js and the RFC 2217 Web Serial imitation pinned and
// installed for the interop tests (interop/node, `make interop-deps`).
// Checking the flash contents is left to the caller, who owns the device.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ESPLoader, Transport } from "../interop/node/node_modules/esptool-js/lib/index.js";
import { RFC2217SerialPort } from "../interop/node/rfc2217-serialport.mjs";

const ROM_BAUD = 115200;

// esptool-js logs through console.log and its terminal: keep stdout for JSON.
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);
const terminal = {
  clean() {},
  write(s) {
    process.stderr.write(String(s));
  },
  writeLine(s) {
    process.stderr.write(String(s) + "\n");
  },
};

const { values: opts } = parseArgs({
  options: {
    port: { type: "string" },
    baud: { type: "string", default: String(ROM_BAUD) },
    image: { type: "string" },
    addr: { type: "string", default: "0x10000" },
  },
  strict: true,
});
if (!opts.port || !opts.image) {
  process.stderr.write("usage: node esptooljs-write.mjs --port HOST:PORT --baud N --image FILE --addr N\n");
  process.exit(2);
}
const [, host, tcpPort] = /^(.*):(\d+)$/.exec(opts.port) ?? [];
const baud = Number(opts.baud);
const address = Number(opts.addr); // Number() reads 0x... as hex

const result = { ok: false, totalMs: 0, steps: [], error: null };
const data = new Uint8Array(readFileSync(opts.image));
const serial = new RFC2217SerialPort({ host, port: Number(tcpPort) });
const transport = new Transport(serial, false);
const loader = new ESPLoader({ transport, baudrate: baud, romBaudrate: ROM_BAUD, terminal });

// Mark the phases inside writeFlash (compression, blocks, MD5) by wrapping
// the loader methods it calls; the library itself is not changed.
const t0 = performance.now();
let last = t0;
const mark = (step) => {
  const now = performance.now();
  result.steps.push({ step, ms: Math.round(now - last) });
  last = now;
};
const wrap = (name, before) => {
  const orig = loader[name].bind(loader);
  loader[name] = async (...a) => {
    before();
    return orig(...a);
  };
};
wrap("flashDeflBegin", () => mark("compress (host)"));
wrap("flashMd5sum", () => mark("write blocks"));

try {
  await loader.connect("default_reset", 7, true);
  mark("connect");
  await loader.runStub();
  mark("stub upload");
  if (baud !== ROM_BAUD) {
    await loader.changeBaud();
    mark("change baud");
  }
  if (loader.baudrate !== baud) throw new Error(`esptool-js fell back to ${loader.baudrate} baud`);
  await loader.writeFlash({
    fileArray: [{ data, address }],
    flashSize: "keep",
    flashMode: "keep",
    flashFreq: "keep",
    eraseAll: false,
    compress: true,
    calculateMD5Hash: (img) => createHash("md5").update(img).digest("hex"),
  });
  mark("verify MD5");
  result.totalMs = Math.round(performance.now() - t0);
  result.ok = true;
  await loader.after("hard_reset", false);
} catch (e) {
  result.error = e && e.message ? e.message : String(e);
  process.stderr.write(`esptooljs-write: ${e && e.stack ? e.stack : e}\n`);
}
try {
  await transport.disconnect();
} catch {
  // the result is what matters
}
process.stdout.write(JSON.stringify(result) + "\n", () => process.exit(result.ok ? 0 : 1));
