#!/usr/bin/env node
// judge.mjs: run Espressif's esptool-js (the npm package, unmodified) headless
// against a serial port reached over RFC 2217, flash an image and check it.
// mos's Go tests use it to prove that the virtual device is faithful enough
// for a tool mos did not write; it works against any RFC 2217 server.
//
//   node judge.mjs --port HOST:PORT --chip esp32 --baud 921600 \
//                  --image FILE --addr 0x10000 [--no-stub] [--out FILE.json]
//
// Steps, as esptool-js's own ESPLoader.main() and writeFlash() do them:
//   connect (classic DTR/RTS reset, SYNC), detect the chip, read its
//   description, crystal and MAC;
//   stub path: upload the flasher stub, change baud to --baud, read the
//   flash ID, writeFlash (compressed, MD5-verified by esptool-js), read the
//   image back and compare;
//   --no-stub: SPI_ATTACH and flash ID with the ROM, writeFlash through the
//   ROM, check the ROM's MD5 (32 ASCII hex characters, which esptool-js's
//   flashMd5sum hex-encodes once more), then upload the stub and read back.
//   Finally esptool-js's hard reset (which in 0.7 only releases RTS) and an
//   RTS pulse of our own, so that the chip leaves the loader and boots; the
//   first bytes it prints at its boot baud are captured as bootLog.
//
// A JSON summary goes to stdout (and to --out); esptool-js's log, and with
// --trace its packet trace, go to stderr. Exit status 0 only if every check
// passed.

import { createHash } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { ESPLoader, Transport } from "esptool-js";
import { RFC2217SerialPort } from "./rfc2217-serialport.mjs";

const ROM_BAUD = 115200;

// esptool-js prints its trace with console.log: keep stdout for the JSON.
console.log = (...a) => console.error(...a);
console.info = (...a) => console.error(...a);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const hex = (n, w = 0) => "0x" + (n >>> 0).toString(16).padStart(w, "0");
const norm = (s) => String(s).toLowerCase().replace(/[^a-z0-9]/g, "");
const md5hex = (b) => createHash("md5").update(b).digest("hex");

function usage(msg) {
  process.stderr.write(
    (msg ? `judge: ${msg}\n` : "") +
      "usage: node judge.mjs --port HOST:PORT --chip NAME --baud N --image FILE --addr N [--no-stub | --read-only] [--out JSON] [--trace] [--timeout S]\n",
  );
  process.exit(2);
}

function parseNumber(s, what) {
  const n = /^0x/i.test(s) ? parseInt(s.slice(2), 16) : parseInt(s, 10);
  if (!Number.isFinite(n) || n < 0 || String(s).trim() === "") usage(`bad ${what} ${s}`);
  return n;
}

let opts;
try {
  opts = parseArgs({
    options: {
      port: { type: "string" },
      chip: { type: "string" },
      baud: { type: "string", default: String(ROM_BAUD) },
      image: { type: "string" },
      addr: { type: "string" },
      "no-stub": { type: "boolean", default: false },
      // read-only: the image is already on flash (written by mos flash);
      // esptool-js only reads it back and compares.
      "read-only": { type: "boolean", default: false },
      out: { type: "string" },
      trace: { type: "boolean", default: false },
      timeout: { type: "string", default: "150" },
    },
    strict: true,
  }).values;
} catch (e) {
  usage(e.message);
}
for (const k of ["port", "chip", "image", "addr"]) if (!opts[k]) usage(`--${k} is required`);
const m = /^(.*):(\d+)$/.exec(opts.port);
if (!m) usage(`bad --port ${opts.port} (want HOST:PORT)`);
const host = m[1].replace(/^\[|\]$/g, "");
const tcpPort = parseInt(m[2], 10);
const baud = parseNumber(opts.baud, "--baud");
const address = parseNumber(opts.addr, "--addr");
const noStub = opts["no-stub"];
const readOnly = opts["read-only"];
const timeoutMs = parseNumber(opts.timeout, "--timeout") * 1000;

const result = {
  ok: false,
  judge: "esptool-js",
  esptoolJsVersion: null,
  port: opts.port,
  expectChip: opts.chip,
  path: noStub ? "rom" : "stub",
  chip: null,
  chipDescription: null,
  features: null,
  crystalMHz: null,
  mac: null,
  flashId: null,
  flashIdAsIs: null,
  flashSize: null,
  address,
  size: 0,
  baud: null,
  wrote: 0,
  md5: null,
  flashMd5: null,
  md5ok: false,
  readbackEqual: false,
  bootLog: null,
  steps: [],
  warnings: [],
  error: null,
};

function finish(code) {
  const json = JSON.stringify(result, null, 2) + "\n";
  if (opts.out) writeFileSync(opts.out, json);
  process.stdout.write(json, () => process.exit(code));
}

const watchdog = setTimeout(() => {
  result.error = `judge timed out after ${timeoutMs / 1000} s (last step: ${result.steps.at(-1)?.step ?? "none"})`;
  finish(1);
}, timeoutMs);
watchdog.unref();

try {
  const pkg = JSON.parse(readFileSync(new URL("./node_modules/esptool-js/package.json", import.meta.url)));
  result.esptoolJsVersion = pkg.version;
} catch {
  // reported as null
}

// What esptool-js writes to its "terminal" goes to stderr.
const terminal = {
  clean() {},
  write(s) {
    process.stderr.write(String(s));
  },
  writeLine(s) {
    process.stderr.write(String(s) + "\n");
  },
};

const t0 = Date.now();
async function step(name, fn) {
  const t = Date.now();
  process.stderr.write(`judge: == ${name}\n`);
  try {
    return await fn();
  } finally {
    result.steps.push({ step: name, ms: Date.now() - t });
  }
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

/**
 * esptool-js's flashMd5sum returns toHex(reply data). A stub answers with
 * 16 raw bytes (-> 32 hex chars, the digest); a ROM answers with the digest
 * as 32 ASCII hex characters (-> 64 hex chars): decode that layer.
 */
function digestFromMd5sum(s) {
  if (/^[0-9a-f]{32}$/.test(s)) return s;
  if (/^[0-9a-f]{64}$/.test(s)) {
    const ascii = Buffer.from(s, "hex").toString("latin1");
    if (/^[0-9a-fA-F]{32}$/.test(ascii)) return ascii; // case kept: esptool compares case-sensitively
  }
  throw new Error(`unexpected SPI_FLASH_MD5 answer ${s}`);
}

const serial = new RFC2217SerialPort({
  host,
  port: tcpPort,
  trace: opts.trace ? (msg) => process.stderr.write(`rfc2217: ${msg}\n`) : null,
});
const transport = new Transport(serial, opts.trace);
let connected = false;

async function run() {
  const file = new Uint8Array(readFileSync(opts.image));
  check(file.length > 0, `${opts.image} is empty`);
  // writeFlash pads to 4 bytes with 0xFF; check against what it writes.
  const padded = new Uint8Array(Math.ceil(file.length / 4) * 4).fill(0xff);
  padded.set(file);
  result.size = padded.length;
  result.md5 = md5hex(padded);

  const loader = new ESPLoader({
    transport,
    baudrate: baud,
    romBaudrate: ROM_BAUD,
    terminal,
    debugLogging: opts.trace,
    enableTracing: opts.trace,
  });

  await step("connect", async () => {
    await loader.connect("default_reset", 7, true);
    connected = true;
  });
  result.chip = loader.chip.CHIP_NAME;
  check(norm(result.chip) === norm(opts.chip), `detected ${result.chip}, expected ${opts.chip}`);
  const isESP8266 = result.chip === "ESP8266";

  await step("chip info", async () => {
    result.chipDescription = await loader.chip.getChipDescription(loader);
    result.features = await loader.chip.getChipFeatures(loader);
    result.crystalMHz = await loader.chip.getCrystalFreq(loader);
    result.mac = await loader.chip.readMac(loader);
    if (typeof loader.chip.postConnect === "function") await loader.chip.postConnect(loader);
  });
  check(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(result.mac), `bad MAC ${result.mac}`);

  const readFlashId = async () => {
    let id = (await loader.readFlashId()) >>> 0;
    result.flashIdAsIs = hex(id, 6);
    if (isESP8266 && loader.DETECTED_FLASH_SIZES[(id >> 16) & 0xff] === undefined) {
      // esptool-js 0.7 bug, not the device's: ESP8266ROM sets
      // SPI_MOSI_DLEN_OFFS = 0 (esptool.py: None), so runSpiflashCommand
      // takes the ESP32 branch, writes the MISO bit length to base + 0
      // (SPI_CMD) and never sets SPI_USER1, where the ESP8266 keeps it. The
      // RDID then clocks in as many bits as USER1 happens to hold (reset
      // value 0: one bit). Read it again with USER1 set as esptool.py sets
      // it (MISO bit length 24 - 1 in bits 16:8), through the same call.
      const usr1 = loader.chip.SPI_REG_BASE + loader.chip.SPI_USR1_OFFS;
      const old = (await loader.readReg(usr1)) >>> 0;
      await loader.writeReg(usr1, (24 - 1) << 8);
      id = (await loader.readFlashId()) >>> 0;
      await loader.writeReg(usr1, old);
      result.warnings.push(
        `esptool-js 0.7 read the ESP8266 flash ID as ${result.flashIdAsIs} (SPI_USER1 MISO length left unset, ` +
          `it was ${hex(old)}); with SPI_USER1 set as esptool.py does: ${hex(id, 6)}`,
      );
    }
    result.flashId = hex(id, 6);
    result.flashSize = loader.DETECTED_FLASH_SIZES[(id >> 16) & 0xff] ?? null;
    check(id !== 0xffffff && id !== 0, `flash ID ${hex(id)}: no flash chip answered`);
    check(result.flashSize !== null, `flash ID ${hex(id)}: unknown capacity byte`);
  };
  const changeBaud = async () => {
    if (baud !== ROM_BAUD) {
      await step(`change baud to ${baud}`, () => loader.changeBaud());
    }
    result.baud = loader.baudrate;
    check(result.baud === baud, `esptool-js fell back to ${result.baud} baud`);
    check(serial.baudRate === baud, `port is at ${serial.baudRate} baud, expected ${baud}`);
  };
  const readBack = async () => {
    const data = await step("read flash", () => loader.readFlash(address, padded.length));
    let firstDiff = -1;
    for (let i = 0; i < padded.length; i++) {
      if (data[i] !== padded[i]) {
        firstDiff = i;
        break;
      }
    }
    result.readbackEqual = data.length === padded.length && firstDiff < 0;
    check(
      result.readbackEqual,
      firstDiff >= 0
        ? `read back differs at ${hex(address + firstDiff)}: ${hex(data[firstDiff], 2)}, wrote ${hex(padded[firstDiff], 2)}`
        : `read back ${data.length} bytes, expected ${padded.length}`,
    );
  };

  if (!noStub) {
    await step("run stub", () => loader.runStub());
    check(loader.IS_STUB, "esptool-js did not start its stub");
    await changeBaud();
    await step("flash id", readFlashId);
    if (readOnly) {
      result.flashMd5 = digestFromMd5sum(await step("md5", () => loader.flashMd5sum(address, padded.length)));
      result.md5ok = result.flashMd5 === result.md5;
      check(result.md5ok, `flash MD5 ${result.flashMd5}, file MD5 ${result.md5}`);
      await readBack();
    }
  }
  if (!noStub && !readOnly) {
    await step("write flash", () =>
      loader.writeFlash({
        fileArray: [{ data: file, address }],
        flashSize: "keep",
        flashMode: "keep",
        flashFreq: "keep",
        eraseAll: false,
        compress: true,
        calculateMD5Hash: (img) => md5hex(img),
      }),
    );
    result.wrote = padded.length;
    // writeFlash threw if the stub's MD5 differed; ask once more for the report.
    result.flashMd5 = digestFromMd5sum(await step("md5", () => loader.flashMd5sum(address, padded.length)));
    result.md5ok = result.flashMd5 === result.md5;
    check(result.md5ok, `flash MD5 ${result.flashMd5}, file MD5 ${result.md5}`);
    await readBack();
  } else if (noStub) {
    await changeBaud(); // the ESP32-family ROMs know CHANGE_BAUDRATE (old = 0)
    if (!isESP8266) {
      // esptool attaches the SPI flash before using it from the ROM;
      // esptool-js leaves that to its caller (its stub attaches by itself).
      await step("spi attach", () => loader.flashSpiAttach(0));
    }
    await step("flash id", readFlashId);
    // esptool-js 0.7 keeps FLASH_WRITE_SIZE = 0x4000 with a ROM; the ESP32
    // ROM answers FLASH_BEGIN/FLASH_DEFL_BEGIN with a block size above
    // 0x1800 with 01 05 (measured on Espressif's ESP32 emulator). Use the
    // block size esptool uses with ROMs (ESPLoader.FLASH_WRITE_SIZE, 0x400).
    if (loader.FLASH_WRITE_SIZE > 0x400) {
      result.warnings.push(
        `esptool-js 0.7 would send ${hex(loader.FLASH_WRITE_SIZE)}-byte blocks to the ROM, ` +
          "which refuses more than 0x1800; using esptool's 0x400",
      );
      loader.FLASH_WRITE_SIZE = 0x400;
    }
    // The ESP8266 ROM has no deflate and no MD5: plain blocks, MD5 by stub.
    await step("write flash (ROM)", () =>
      loader.writeFlash({
        fileArray: [{ data: file, address }],
        flashSize: "keep",
        flashMode: "keep",
        flashFreq: "keep",
        eraseAll: false,
        compress: !isESP8266,
        // not calculateMD5Hash: esptool-js would compare the digest with the
        // hex encoding of the ROM's ASCII answer and always fail
      }),
    );
    result.wrote = padded.length;
    if (!isESP8266) {
      result.flashMd5 = digestFromMd5sum(await step("md5 (ROM)", () => loader.flashMd5sum(address, padded.length)));
      result.md5ok = result.flashMd5 === result.md5;
      check(result.md5ok, `ROM flash MD5 ${result.flashMd5}, file MD5 ${result.md5}`);
    }
    await step("run stub", () => loader.runStub());
    check(loader.IS_STUB, "esptool-js did not start its stub");
    if (isESP8266) {
      result.flashMd5 = digestFromMd5sum(await step("md5", () => loader.flashMd5sum(address, padded.length)));
      result.md5ok = result.flashMd5 === result.md5;
      check(result.md5ok, `flash MD5 ${result.flashMd5}, file MD5 ${result.md5}`);
    }
    await readBack();
  }

  await step("hard reset", async () => {
    await loader.after("hard_reset", false);
    // esptool-js 0.7 only releases RTS there; pulse EN ourselves. Its
    // Transport.setSignals() records DTR only when asserting it, so after
    // the classic reset it still believes DTR is on, and setRTS() re-sends
    // that: the lines are now DTR on, RTS off (IO0 low). With DTR on, RTS on
    // would change nothing on the auto-reset circuit, so release DTR first.
    // The ROM prints its banner at the boot baud: listen at that rate.
    await serial.setBaudRate(isESP8266 ? 74880 : ROM_BAUD);
    await transport.setDTR(false);
    transport.flushInput();
    await transport.setRTS(true);
    await sleep(100);
    await transport.setRTS(false);
    await sleep(isESP8266 ? 300 : 500);
    result.bootLog = Buffer.from(transport.peek()).toString("latin1").slice(0, 4000);
  });
  result.ok = true;
}

let code = 1;
try {
  await run();
  code = 0;
} catch (e) {
  result.error = e && e.message ? e.message : String(e);
  process.stderr.write(`judge: FAILED: ${e && e.stack ? e.stack : e}\n`);
}
result.totalMs = Date.now() - t0;
try {
  if (connected || serial.readable) await transport.disconnect();
} catch (e) {
  process.stderr.write(`judge: disconnect: ${e}\n`);
}
finish(code);
