package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/output"
)

// helpTopics are pages that are not commands: `mos help TOPIC` shows them
// and `mos --help` lists them under "Additional help topics" (a cobra
// command without Run and without subcommands is such a topic). Their text
// is plain prose, as the man pages carry it too.
func helpTopics() []*cobra.Command {
	return []*cobra.Command{
		{
			Use:   "port-names",
			Short: "How to name a port: serial devices, rfc2217://, socket://, sim://",
			Long: `Every command that talks to a board takes --port (-p), or MOS_PORT in the
environment. A port is one of:

  /dev/ttyUSB0, /dev/ttyACM0, COM3
      A local serial device, opened exclusively. "serial:///dev/ttyUSB0" is the
      same. "mos ports" lists the ports present and the USB-UART bridge behind
      each (CP210x, CH340/CH9102, FTDI, Espressif USB-Serial/JTAG, ...).

  rfc2217://HOST:PORT
      A serial server speaking RFC 2217 (mos serve, esp_rfc2217_server, ser2net,
      esp-link). Baud rate, DTR and RTS are carried, so the board is reset into
      download mode as on a local port.

  socket://HOST:PORT
      Raw TCP. There are no control lines: mos cannot reset the board, so it
      must be put into download mode by hand (hold BOOT, press and release EN,
      release BOOT) before flashing.

  sim://CHIP[?OPTIONS]
      The virtual device, in-process (see "mos help virtual-device"). CHIP is
      one of: ` + strings.Join(chips.Keys(), ", ") + `.

On Linux, "permission denied" on a serial port usually means the user is not
in the dialout (or uucp) group.`,
		},
		{
			Use:   "reset",
			Short: "How mos puts a board into download mode (--reset) and out of it (--after)",
			Long: `To flash, the chip must start its ROM loader: IO0 (GPIO0) low while EN
(reset) rises. Development boards wire DTR and RTS of their USB-UART bridge to
IO0 and EN through two transistors, so mos can do it by toggling the lines.

--reset takes:
  auto      (default) the classic sequence with a 50 ms then a 550 ms delay,
            after the USB-Serial/JTAG sequence when the port is Espressif's
            native USB. When nothing answers, mos says how to enter download
            mode by hand and keeps listening until --timeout.
  classic   only the DTR/RTS sequence of USB-UART boards.
  usb-jtag  only the sequence of the USB-Serial/JTAG peripheral.
  none      no reset: the board is already in download mode.
  SEQUENCE  your own steps joined by "|": D0/D1 set DTR off/on, R0/R1 set RTS
            off/on, W<ms> waits (W100; W0.5s for seconds), for example
            'D0|R1|W100|D1|R0|W50|D0'.

By hand: hold BOOT (IO0), press and release EN (RST), release BOOT.

--after says what happens when the job is done: hard-reset (default) restarts
the chip so the new firmware runs; stay leaves it in the loader.

Commands that talk to the firmware (config, call, ls, ...) never reset the
board: they release DTR and RTS and talk to what is running.`,
		},
		{
			Use:   "bundles",
			Short: "Firmware bundles: mos zip files, flasher_args.json and ADDR:FILE",
			Long: `mos flash and mos provision write firmware given as:

  BUNDLE.zip
      A Mongoose OS compatible bundle: manifest.json naming the chip and, for
      each part, its file, flash address and SHA-1/SHA-256. "mos fw pack" makes
      one, "mos fw info" shows what is inside and checks it.

  flasher_args.json
      What ESP-IDF's build writes into its build folder (build/flasher_args.json):
      the flash settings and each image's address. Give the file, not the
      folder.

  ADDR:FILE ...
      Raw images and their flash addresses, as esptool takes them, for example
      0x1000:bootloader.bin 0x8000:partitions.bin 0x10000:app.bin. ADDR is
      decimal or 0x hex.

Parts must not overlap: mos fw pack refuses such parts and mos fw info flags
them. A bundle's data partitions (fs, nvs, ...) hold the device's own files
and settings once it runs; mos flash warns before replacing them and
--keep-fs keeps them.`,
		},
		{
			Use:   "exit-codes",
			Short: "What each exit status of mos means",
			Long: "Scripts can rely on these numbers; a code is never renumbered or reused.\n" +
				"With --json, a failure prints {\"error\": {\"message\", \"code\", \"name\", \"hint\"}}\n" +
				"on stdout, where code is the exit status and name its name below.\n\n" +
				exitCodeTable(),
		},
		{
			Use:   "virtual-device",
			Short: "The virtual ESP device behind sim:// ports",
			Long: `A sim:// port is a virtual board in the mos process: the chip's ROM loader,
the flasher stub, NOR flash with datasheet timings, the reset circuit and a
demo firmware speaking Mongoose OS RPC. Every command can be tried on it
without hardware, and "mos sim serve" shares one over the network.

  sim://CHIP?OPTION=VALUE&...

CHIP is one of ` + strings.Join(chips.Keys(), ", ") + `. Options:
  flash=4M               flash size, 256K to 16M
  board=devkit           or slow-en, usb-jtag, no-autoreset: the reset circuit
  flash-file=PATH        keep the flash contents in a file between runs
  download=1             power on with BOOT held (already in download mode)
  mac=aa:bb:cc:dd:ee:ff  the MAC address in its eFuses
  id=NAME                share one device between opens in a process
  timing=typ             or max: datasheet typical or maximum flash times
  noise=RATE             a noisy cable: each byte corrupted or lost with
                         probability RATE
  fast=1                 no wire or flash time (tests only)

The demo firmware joins virtual access points: mos-demo-net (password
demo-pass-1234), an open CoffeeShop and a WPA3 Neighbor.`,
		},
	}
}

// exitCodeTable renders output's table of exit codes, so the help page
// cannot drift from the codes mos uses.
func exitCodeTable() string {
	var b strings.Builder
	for _, c := range output.Codes() {
		fmt.Fprintf(&b, "  %3d  %-20s %s\n", c.Code, c.Name, c.Meaning)
	}
	return strings.TrimRight(b.String(), "\n")
}
