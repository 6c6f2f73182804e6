package tmuxtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConsoleESP8266BootText: on a virtual ESP8266 with the demo firmware
// (real wire timing: its ROM prints at 74880 baud, the firmware at 115200),
// `mos console --chip esp8266` shows the ROM's boot text legibly after the
// reset key, then the application's log.
func TestConsoleESP8266BootText(t *testing.T) {
	tmux := needTmux(t)
	bin := buildMos(t)
	dir := t.TempDir()
	flash := filepath.Join(dir, "esp8266.flash")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	fl := exec.CommandContext(ctx, bin, "--port", "sim://esp8266?fast=1&flash-file="+flash, "flash",
		filepath.Join(repoRoot(t), "firmware-images", "esp8266-demo.zip"))
	if out, err := fl.CombinedOutput(); err != nil {
		t.Fatalf("mos flash: %v\n%s", err, out)
	}
	log, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	srv := &server{t: t, bin: bin, addr: freeAddr(t), flash: flash, log: log, chip: "esp8266"}
	srv.start()
	defer srv.stop()

	tm := &term{t: t, tmux: tmux, sock: fmt.Sprintf("mos-console-esp8266-%d", os.Getpid())}
	tm.run("new-session", "-d", "-x", "120", "-y", "40",
		fmt.Sprintf("%s console --chip esp8266 --port rfc2217://%s; sleep 30", bin, srv.addr))
	defer exec.Command(tmux, "-L", tm.sock, "kill-server").Run()
	tm.waitFor("the console to connect", 10*time.Second, func(s string) bool {
		return strings.Contains(lastRow(s), srv.addr) && !strings.Contains(lastRow(s), "connecting")
	})
	// Only the lines looked for, so that they stay on screen.
	tm.keys("F", `rst cause|load 0x4010|Mongoose OS|Init done|^--- `, "Enter")
	tm.keys("R")
	// The log above the status bar: the bar shows the filter, which names
	// the very lines looked for.
	logRows := func(s string) string { return strings.TrimSuffix(strings.TrimRight(s, "\n"), lastRow(s)) }
	s := logRows(tm.waitFor("the ROM's banner, then the application's log", 15*time.Second, func(s string) bool {
		s = logRows(s)
		i := strings.LastIndex(s, "ets Jan  8 2013,rst cause:2, boot mode:(3,6)")
		return i >= 0 && strings.Contains(s[i:], "Init done")
	}))
	i := strings.LastIndex(s, "ets Jan  8 2013,rst cause:2, boot mode:(3,6)")
	// In this order after the banner: the ROM's load line, the note of
	// the move back, the application's log.
	at := i
	for _, want := range []string{"load 0x40100000, len ", "--- following the application at 115200 baud", "Mongoose OS 2.20.0"} {
		j := strings.Index(s[at:], want)
		if j < 0 {
			t.Fatalf("after the banner, no %q in this order:\n%s", want, s)
		}
		at += j
	}
	if !strings.Contains(s[:i], "--- reset: following the ROM boot messages at 74880 baud") {
		t.Errorf("no note of the move to the ROM's rate before the banner:\n%s", s)
	}
	tm.keys("q")
}
