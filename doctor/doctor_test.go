package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/mos-tool/mos/output"
	"github.com/mos-tool/mos/port"
)

// machine builds a fake Linux root: sysfs USB devices, /proc, /dev and /etc.
type machine struct {
	fs     fstest.MapFS
	access map[string]error // by /dev path; missing means allowed
}

func newMachine() *machine {
	m := &machine{fs: fstest.MapFS{
		"etc/passwd":                        {Data: []byte("root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/bash\n")},
		"etc/group":                         {Data: []byte("root:x:0:\ndialout:x:20:\nuucp:x:14:\nalice:x:1000:\n")},
		"proc/self":                         {Data: []byte("100"), Mode: fs.ModeSymlink},
		"proc/100/comm":                     {Data: []byte("mos\n")},
		"proc/100/fd/0":                     {Data: []byte("/dev/pts/0"), Mode: fs.ModeSymlink},
		"proc/100/status":                   {Data: []byte("Name:\tmos\nUid:\t1000\t1000\t1000\t1000\nGroups:\t1000 \n")},
		"sys/bus/usb/devices/usb1/idVendor": {Data: []byte("1d6b\n")},
	}, access: map[string]error{}}
	m.fs["proc/self/status"] = m.fs["proc/100/status"]
	return m
}

// bridge adds a USB device with one interface. driver "" means none bound;
// tty "" means no tty child; an "ACM" tty sits under tty/ as cdc_acm's do.
func (m *machine) bridge(dev, vid, pid, driver, tty string) *machine {
	real := "sys/devices/pci0000:00/usb1/" + dev
	m.fs["sys/bus/usb/devices/"+dev] = &fstest.MapFile{Data: []byte("../../../devices/pci0000:00/usb1/" + dev), Mode: fs.ModeSymlink}
	m.fs["sys/bus/usb/devices/"+dev+":1.0"] = &fstest.MapFile{Data: []byte("../../../devices/pci0000:00/usb1/" + dev + "/" + dev + ":1.0"), Mode: fs.ModeSymlink}
	m.fs[real+"/idVendor"] = &fstest.MapFile{Data: []byte(vid + "\n")}
	m.fs[real+"/idProduct"] = &fstest.MapFile{Data: []byte(pid + "\n")}
	m.fs[real+"/product"] = &fstest.MapFile{Data: []byte("USB serial\n")}
	intf := real + "/" + dev + ":1.0"
	m.fs[intf+"/bInterfaceNumber"] = &fstest.MapFile{Data: []byte("00\n")}
	if driver != "" {
		m.fs[intf+"/driver"] = &fstest.MapFile{Data: []byte("../../../../../bus/usb/drivers/" + driver), Mode: fs.ModeSymlink}
	}
	if tty != "" {
		if strings.HasPrefix(tty, "ttyACM") {
			m.fs[intf+"/tty/"+tty+"/dev"] = &fstest.MapFile{Data: []byte("166:0\n")}
		} else {
			m.fs[intf+"/"+tty+"/port_number"] = &fstest.MapFile{Data: []byte("0\n")}
		}
		m.fs["dev/"+tty] = &fstest.MapFile{Mode: fs.ModeDevice | fs.ModeCharDevice | 0o660, Sys: Owner{UID: 0, GID: 20}}
	}
	return m
}

func (m *machine) hub(dev, bmAttributes string) *machine {
	real := "sys/devices/pci0000:00/usb1/" + dev
	m.fs["sys/bus/usb/devices/"+dev] = &fstest.MapFile{Data: []byte("../../../devices/pci0000:00/usb1/" + dev), Mode: fs.ModeSymlink}
	m.fs[real+"/idVendor"] = &fstest.MapFile{Data: []byte("05e3\n")}
	m.fs[real+"/idProduct"] = &fstest.MapFile{Data: []byte("0608\n")}
	m.fs[real+"/product"] = &fstest.MapFile{Data: []byte("USB2.0 Hub\n")}
	m.fs[real+"/bmAttributes"] = &fstest.MapFile{Data: []byte(bmAttributes + "\n")}
	return m
}

// process adds a running process holding the given files open.
func (m *machine) process(pid int, comm string, open ...string) *machine {
	m.fs[fmt.Sprintf("proc/%d/comm", pid)] = &fstest.MapFile{Data: []byte(comm + "\n")}
	m.fs[fmt.Sprintf("proc/%d/fd/0", pid)] = &fstest.MapFile{Data: []byte("/dev/null"), Mode: fs.ModeSymlink}
	for i, f := range open {
		m.fs[fmt.Sprintf("proc/%d/fd/%d", pid, i+3)] = &fstest.MapFile{Data: []byte(f), Mode: fs.ModeSymlink}
	}
	return m
}

// otherUsersProcess adds a process whose fd directory cannot be read.
func (m *machine) otherUsersProcess(pid int) *machine {
	m.fs[fmt.Sprintf("proc/%d/comm", pid)] = &fstest.MapFile{Data: []byte("sshd\n")}
	return m
}

func (m *machine) file(name, data string) *machine {
	m.fs[name] = &fstest.MapFile{Data: []byte(data)}
	return m
}

func (m *machine) denied(dev string) *machine {
	m.access[dev] = fs.ErrPermission
	return m
}

// setDevGroup changes the group owning a /dev node.
func (m *machine) setDevGroup(tty string, gid int) *machine {
	m.fs["dev/"+tty].Sys = Owner{UID: 0, GID: gid}
	return m
}

func (m *machine) env() Env {
	return Env{GOOS: "linux", Root: m.fs, Access: func(p string) error { return m.access[p] }}
}

// want is one expected finding: its check, subject (if not ""), status, and
// words its summary and fix must contain.
type want struct {
	check, subject string
	status         Status
	summary, fix   []string
}

func find(r *Report, w want) (Finding, bool) {
	for _, f := range r.Findings {
		if f.Check == w.check && (w.subject == "" || f.Subject == w.subject) {
			return f, true
		}
	}
	return Finding{}, false
}

func TestLinuxChecks(t *testing.T) {
	const brlttyRules = `ACTION=="add", SUBSYSTEM=="usb", ENV{PRODUCT}=="1a86/7523/*", ENV{BRLTTY_BRAILLE_DRIVER}="bm", GOTO="brltty_usb_run"` + "\n"
	tests := []struct {
		name     string
		m        *machine
		port     string // --port
		problems int
		want     []want
		absent   []string // checks that must not appear
	}{{
		name: "healthy CP210x",
		m:    newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0"),
		want: []want{
			{check: "driver", status: OK, summary: []string{"CP210x", "cp210x", "/dev/ttyUSB0"}},
			{check: "permission", subject: "/dev/ttyUSB0", status: OK},
			{check: "holder", subject: "/dev/ttyUSB0", status: OK},
		},
		absent: []string{"hub", "modemmanager", "brltty", "usb"},
	}, {
		name: "Espressif USB-Serial/JTAG as ttyACM",
		m:    newMachine().bridge("3-2", "303a", "1001", "cdc_acm", "ttyACM0"),
		want: []want{{check: "driver", status: OK, summary: []string{"Espressif USB-Serial/JTAG", "/dev/ttyACM0"}}},
	}, {
		name:     "not in dialout",
		m:        newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0").denied("/dev/ttyUSB0"),
		problems: 1,
		want: []want{{check: "permission", subject: "/dev/ttyUSB0", status: Problem,
			summary: []string{"may not open /dev/ttyUSB0"},
			fix:     []string{"sudo usermod -aG dialout alice", "log out and back in", UdevRuleName, "udevadm trigger"}}},
	}, {
		name: "in dialout since this login",
		m: newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0").denied("/dev/ttyUSB0").
			file("etc/group", "root:x:0:\ndialout:x:20:bob,alice\nalice:x:1000:\n"),
		problems: 1,
		want:     []want{{check: "permission", status: Problem, fix: []string{"log out and back in", "newgrp dialout"}}},
	}, {
		name: "Arch: uucp owns the port, udev rule installed but over SSH",
		m: newMachine().bridge("1-1", "1a86", "7523", "ch341", "ttyUSB0").denied("/dev/ttyUSB0").setDevGroup("ttyUSB0", 14).
			file("usr/lib/udev/rules.d/"+UdevRuleName, "# mos\n"),
		problems: 1,
		want:     []want{{check: "permission", status: Problem, fix: []string{"sudo usermod -aG uucp alice"}}},
	}, {
		name: "brltty claims a CH340",
		m: newMachine().bridge("1-1", "1a86", "7523", "usbfs", "").process(812, "brltty").
			file("usr/lib/udev/rules.d/85-brltty.rules", brlttyRules),
		problems: 1,
		want: []want{{check: "brltty", status: Problem,
			summary: []string{"brltty took the CH340"},
			fix:     []string{"apt remove brltty", "systemctl mask brltty-udev.service"}}},
		absent: []string{"permission", "holder"},
	}, {
		name: "brltty rule matches a CH340 that still has its port",
		m: newMachine().bridge("1-1", "1a86", "7523", "ch341", "ttyUSB0").
			file("lib/udev/rules.d/85-brltty.rules", brlttyRules),
		want: []want{{check: "brltty", status: Warning, fix: []string{"brltty"}}},
	}, {
		name:     "something else claimed the device through usbfs",
		m:        newMachine().bridge("1-1", "10c4", "ea60", "usbfs", ""),
		problems: 1,
		want:     []want{{check: "brltty", status: Problem, summary: []string{"usbfs"}, fix: []string{"lsof"}}},
	}, {
		name:     "CH9102 without a driver",
		m:        newMachine().bridge("1-4", "1a86", "55d4", "", ""),
		problems: 1,
		want: []want{{check: "driver", subject: "USB 1-4 CH9102 (1a86:55d4)", status: Problem,
			summary: []string{"no driver"}, fix: []string{"sudo modprobe cdc_acm"}}},
	}, {
		name:     "CH340 without a driver",
		m:        newMachine().bridge("1-4", "1a86", "7523", "", ""),
		problems: 1,
		want:     []want{{check: "driver", status: Problem, fix: []string{"sudo modprobe ch341"}}},
	}, {
		name: "port held by screen, and by mos itself (ignored)",
		m: newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0").
			process(4242, "screen", "/dev/pts/3", "/dev/ttyUSB0").process(100, "mos", "/dev/ttyUSB0"),
		problems: 1,
		want: []want{{check: "holder", subject: "/dev/ttyUSB0", status: Problem,
			summary: []string{"open in screen (pid 4242)"}, fix: []string{"kill 4242"}}},
	}, {
		name: "port held by ModemManager",
		m: newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0").
			process(600, "ModemManager", "/dev/ttyUSB0"),
		problems: 1,
		want: []want{
			{check: "holder", status: Problem, summary: []string{"ModemManager"}, fix: []string{"systemctl stop ModemManager"}},
			{check: "modemmanager", status: Warning, fix: []string{"ID_MM_DEVICE_IGNORE", "systemctl disable --now ModemManager"}},
		},
	}, {
		name: "ModemManager running, mos rule installed",
		m: newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0").process(600, "ModemManager").
			file("etc/udev/rules.d/"+UdevRuleName, "#\n"),
		want: []want{{check: "modemmanager", status: OK}},
	}, {
		name: "other users' processes cannot be inspected",
		m:    newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0").otherUsersProcess(1),
		want: []want{{check: "holder", status: OK}},
	}, {
		name: "behind a bus-powered hub",
		m:    newMachine().hub("1-1", "a0").bridge("1-1.3", "10c4", "ea60", "cp210x", "ttyUSB0"),
		want: []want{{check: "hub", status: Warning,
			summary: []string{"bus-powered", "1-1 (USB2.0 Hub)"}, fix: []string{"hub with its own power supply"}}},
	}, {
		name: "behind a self-powered hub",
		m:    newMachine().hub("1-1", "e0").bridge("1-1.3", "10c4", "ea60", "cp210x", "ttyUSB0"),
		want: []want{{check: "hub", status: OK}},
	}, {
		name: "no board",
		m:    newMachine(),
		want: []want{{check: "usb", status: Warning, fix: []string{"data cable"}}},
	}, {
		name: "unknown USB device is not a board",
		m:    newMachine().hub("1-1", "e0"),
		want: []want{{check: "usb", status: Warning}},
	}, {
		name: "sysfs lists the port but /dev has no node",
		m: func() *machine {
			m := newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0")
			delete(m.fs, "dev/ttyUSB0")
			return m
		}(),
		problems: 1,
		want:     []want{{check: "permission", status: Problem, summary: []string{"does not exist"}}},
	}, {
		name:     "--port names a device that is not there",
		m:        newMachine().bridge("1-1", "10c4", "ea60", "cp210x", "ttyUSB0"),
		port:     "/dev/ttyUSB7",
		problems: 1,
		want: []want{
			{check: "permission", subject: "/dev/ttyUSB7", status: Problem, fix: []string{"mos ports"}},
			{check: "permission", subject: "/dev/ttyUSB0", status: OK},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := tt.m.env()
			env.Port = tt.port
			r, err := Run(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			if got := r.Problems(); got != tt.problems {
				t.Errorf("%d problems, want %d: %+v", got, tt.problems, r.Findings)
			}
			for _, w := range tt.want {
				f, ok := find(r, w)
				if !ok {
					t.Errorf("no %q finding for %q in %+v", w.check, w.subject, r.Findings)
					continue
				}
				if f.Status != w.status {
					t.Errorf("%s: status %s, want %s (%+v)", w.check, f.Status, w.status, f)
				}
				for _, s := range w.summary {
					if !strings.Contains(f.Summary, s) {
						t.Errorf("%s: summary %q lacks %q", w.check, f.Summary, s)
					}
				}
				for _, s := range w.fix {
					if !strings.Contains(f.Fix, s) {
						t.Errorf("%s: fix %q lacks %q", w.check, f.Fix, s)
					}
				}
			}
			for _, c := range tt.absent {
				if f, ok := find(r, want{check: c}); ok {
					t.Errorf("unexpected %q finding: %+v", c, f)
				}
			}
		})
	}
}

func TestOtherOS(t *testing.T) {
	r, err := Run(context.Background(), Env{GOOS: "darwin"})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Findings) != 1 || r.Findings[0].Status != Skipped || r.Problems() != 0 {
		t.Fatalf("findings %+v, want one skipped", r.Findings)
	}
}

func TestBootBaud(t *testing.T) {
	tests := []struct {
		name    string
		port    string
		status  Status
		summary string
	}{
		{"ESP32 prints at 115200", "sim://esp32?fast=1", OK, "readable at 115200"},
		{"ESP32-C3 prints at 115200", "sim://esp32c3?fast=1", OK, "readable at 115200"},
		{"ESP8266 ROM prints at 74880", "sim://esp8266?fast=1", Info, "74880"},
		{"board without auto-reset prints nothing", "sim://esp32?fast=1&board=no-autoreset&download=1", Problem, "printed nothing"},
		{"no port given", "", Skipped, "give --port"},
		{"port that cannot be opened", "sim://esp99", Problem, "could not open"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			env := Env{GOOS: "plan9", Port: tt.port, Open: port.Open, Listen: 300 * time.Millisecond}
			r, err := Run(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			f, ok := find(r, want{check: "boot-baud"})
			if !ok {
				t.Fatalf("no boot-baud finding: %+v", r.Findings)
			}
			if f.Status != tt.status || !strings.Contains(f.Summary, tt.summary) {
				t.Errorf("got %s %q, want %s containing %q", f.Status, f.Summary, tt.status, tt.summary)
			}
		})
	}
}

func TestReadable(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"ets Jun  8 2016 00:22:57\r\n", true},
		{"ESP-ROM:esp32c3-api1-20210207\r\n", true},
		{"I (31) boot: ESP-IDF v5.1 2nd stage bootloader\r\n", true},
		{"hello world from the app, plain text\r\n", true},
		{"\x00\xe0\x80\xfc\x1c\x9e\x92\xe2\x80\x0c\xfe\x1c\x02\x9c\xec\x80\xf2\x1f", false},
		{"ok", false}, // too short to tell
	}
	for _, tt := range tests {
		if got := readable([]byte(tt.in)); got != tt.want {
			t.Errorf("readable(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestToolchain(t *testing.T) {
	const gomod = "module github.com/mos-tool/mos\n\ngo 1.26.8\n"
	versions := map[string]string{
		"go": "go version go1.26.8 linux/amd64", "node": "v20.11.0", "npm": "10.2.4", "git": "git version 2.39.5",
	}
	tests := []struct {
		name     string
		dir      string
		override map[string]string // "" means missing
		problems []string          // checks expected to be problems
		none     bool              // no toolchain findings at all
	}{
		{name: "all present", dir: "/home/alice/mos/flasher"},
		{name: "outside the source tree", dir: "/home/alice", none: true},
		{name: "old Go", dir: "/home/alice/mos", override: map[string]string{"go": "go version go1.22.1 linux/amd64"}, problems: []string{"toolchain-go"}},
		{name: "old Node, no npm", dir: "/home/alice/mos", override: map[string]string{"node": "v18.19.0", "npm": ""}, problems: []string{"toolchain-node", "toolchain-npm"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := fstest.MapFS{
				"home/alice/mos/go.mod":       {Data: []byte(gomod)},
				"home/alice/mos/flasher/x.go": {Data: []byte("package flasher\n")},
				"home/alice/other/go.mod":     {Data: []byte("module example.com/other\n")},
			}
			env := Env{GOOS: "plan9", Root: root, SourceDir: tt.dir,
				Run: func(_ context.Context, name string, _ ...string) (string, error) {
					v := versions[name]
					if o, ok := tt.override[name]; ok {
						v = o
					}
					if v == "" {
						return "", errors.New("executable file not found in $PATH")
					}
					return v, nil
				}}
			r, err := Run(context.Background(), env)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			n := 0
			for _, f := range r.Findings {
				if strings.HasPrefix(f.Check, "toolchain-") {
					n++
					if f.Status == Problem {
						got = append(got, f.Check)
						if f.Fix == "" {
							t.Errorf("%s: problem without a fix", f.Check)
						}
					}
				}
			}
			if tt.none != (n == 0) {
				t.Errorf("%d toolchain findings (none expected: %v)", n, tt.none)
			}
			if strings.Join(got, ",") != strings.Join(tt.problems, ",") {
				t.Errorf("problems %v, want %v: %+v", got, tt.problems, r.Findings)
			}
		})
	}
}

func TestProblemsFoundExitCode(t *testing.T) {
	err := &ProblemsFound{N: 2}
	if c := output.ExitCode(err); c != output.ExitFailure {
		t.Errorf("exit code %d, want %d", c, output.ExitFailure)
	}
	if output.Hint(err) == "" || err.Error() != "mos doctor found 2 problems" {
		t.Errorf("error %q, hint %q", err.Error(), output.Hint(err))
	}
}
