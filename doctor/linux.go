package doctor

import (
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/mos-tool/mos/port"
)

// UdevRuleName is the file name of the udev rule mos ships (packaging/udev).
// It sorts before systemd's 73-seat-late.rules, which applies the uaccess
// tag, as a rule setting TAG+="uaccess" must.
const UdevRuleName = "70-mos-esp.rules"

// udevDirs are where udev reads rules from, in its own order of precedence.
var udevDirs = []string{"etc/udev/rules.d", "run/udev/rules.d", "usr/lib/udev/rules.d", "lib/udev/rules.d"}

// bridgeDrivers are the Linux kernel drivers of the USB-UART bridges, by the
// name port.BridgeName gives them, for the modprobe fix. Sources: the
// kernel's drivers/usb/serial (cp210x.c, ch341.c, ftdi_sio.c, pl2303.c) and
// drivers/usb/class/cdc-acm.c (CH343/CH9102 and Espressif's USB-Serial/JTAG
// are CDC-ACM devices).
var bridgeDrivers = map[string]string{
	"CP210x": "cp210x", "CP2102C": "cp210x", "CP2105": "cp210x", "CP2108": "cp210x",
	"CH340": "ch341", "CH341": "ch341", "CH343": "cdc_acm", "CH9102": "cdc_acm",
	"FTDI FT232R": "ftdi_sio", "FTDI FT2232": "ftdi_sio", "FTDI FT4232H": "ftdi_sio",
	"FTDI FT232H": "ftdi_sio", "FTDI FT-X": "ftdi_sio",
	"Espressif USB-Serial/JTAG": "cdc_acm", "Espressif USB-OTG (ESP32-S2 ROM)": "cdc_acm",
	"Espressif USB-OTG (ESP32-S3 ROM)": "cdc_acm", "PL2303": "pl2303",
}

// usbBridge is a known USB-UART bridge found in sysfs.
type usbBridge struct {
	dev      string // sysfs device name: "1-1.2"
	vid, pid string
	name     string   // port.BridgeName
	product  string   // the device's own product string
	drivers  []string // drivers bound to its interfaces
	ttys     []string // tty devices under its interfaces: "ttyUSB0"
}

func (b usbBridge) subject() string {
	s := fmt.Sprintf("USB %s %s (%s:%s)", b.dev, b.name, b.vid, b.pid)
	return s
}

const usbDevices = "sys/bus/usb/devices"

// findBridges lists the known USB-UART bridges in sysfs: each USB device
// whose idVendor:idProduct is in the port package's table, with the drivers
// bound to its interfaces ("driver" links in the interface directories) and
// its tty children (ttyUSB* directly under a usb-serial interface, or
// tty/ttyACM* under a cdc_acm one).
func findBridges(root fs.FS) []usbBridge {
	entries, err := fs.ReadDir(root, usbDevices)
	if err != nil {
		return nil
	}
	var out []usbBridge
	for _, e := range entries {
		dev := e.Name()
		if strings.Contains(dev, ":") || strings.HasPrefix(dev, "usb") {
			continue // an interface, or a root hub
		}
		dir := path.Join(usbDevices, dev)
		vid, pid := readTrim(root, dir+"/idVendor"), readTrim(root, dir+"/idProduct")
		v, err1 := strconv.ParseUint(vid, 16, 16)
		p, err2 := strconv.ParseUint(pid, 16, 16)
		if err1 != nil || err2 != nil {
			continue
		}
		name := port.BridgeName(uint16(v), uint16(p))
		if name == "" {
			continue
		}
		b := usbBridge{dev: dev, vid: vid, pid: pid, name: name, product: readTrim(root, dir+"/product")}
		for _, ie := range entries {
			if !strings.HasPrefix(ie.Name(), dev+":") {
				continue
			}
			idir := path.Join(usbDevices, ie.Name())
			if l, err := fs.ReadLink(root, idir+"/driver"); err == nil {
				b.drivers = append(b.drivers, path.Base(l))
			}
			b.ttys = append(b.ttys, ttyChildren(root, idir)...)
		}
		slices.Sort(b.ttys)
		out = append(out, b)
	}
	return out
}

func ttyChildren(root fs.FS, idir string) []string {
	var ttys []string
	for _, d := range []string{idir, idir + "/tty"} {
		es, _ := fs.ReadDir(root, d)
		for _, e := range es {
			if n := e.Name(); strings.HasPrefix(n, "tty") && n != "tty" {
				ttys = append(ttys, n)
			}
		}
	}
	return ttys
}

// process is a running process as /proc shows it.
type process struct {
	pid  int
	comm string
}

// processes lists /proc's numeric entries with their comm.
func processes(root fs.FS) []process {
	es, err := fs.ReadDir(root, "proc")
	if err != nil {
		return nil
	}
	var ps []process
	for _, e := range es {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ps = append(ps, process{pid, readTrim(root, "proc/"+e.Name()+"/comm")})
	}
	return ps
}

func running(ps []process, comm string) []process {
	var out []process
	for _, p := range ps {
		if p.comm == comm {
			out = append(out, p)
		}
	}
	return out
}

// self is the pid of the process reading /proc (its "self" link).
func self(root fs.FS) int {
	l, err := fs.ReadLink(root, "proc/self")
	if err != nil {
		return -1
	}
	pid, err := strconv.Atoi(path.Base(l))
	if err != nil {
		return -1
	}
	return pid
}

// holders finds the processes with dev open, by reading every
// /proc/PID/fd/* link. Processes whose fd directory cannot be read (another
// user's, without root) are counted in hidden.
func holders(root fs.FS, ps []process, dev string, me int) (found []process, hidden int) {
	for _, p := range ps {
		if p.pid == me {
			continue
		}
		dir := fmt.Sprintf("proc/%d/fd", p.pid)
		fds, err := fs.ReadDir(root, dir)
		if err != nil {
			hidden++
			continue
		}
		for _, fd := range fds {
			if l, err := fs.ReadLink(root, dir+"/"+fd.Name()); err == nil && l == dev {
				found = append(found, p)
				break
			}
		}
	}
	return found, hidden
}

// udevRuleInstalled reports where mos's udev rule is installed, or "".
func udevRuleInstalled(root fs.FS) string {
	for _, d := range udevDirs {
		if _, err := fs.Stat(root, d+"/"+UdevRuleName); err == nil {
			return "/" + d + "/" + UdevRuleName
		}
	}
	return ""
}

// brlttyRuleFor returns the brltty udev rule file that matches vid:pid, or
// "". brltty's rules name its USB braille displays by ENV{PRODUCT}
// ("1a86/7523/*") or by ATTRS{idVendor}/ATTRS{idProduct}; the CH340's IDs
// are among them because a braille display uses that chip.
func brlttyRuleFor(root fs.FS, vid, pid string) string {
	for _, d := range udevDirs {
		es, _ := fs.ReadDir(root, d)
		for _, e := range es {
			if !strings.Contains(e.Name(), "brltty") {
				continue
			}
			b, err := fs.ReadFile(root, d+"/"+e.Name())
			if err != nil {
				continue
			}
			s := strings.ToLower(string(b))
			product := strings.TrimLeft(vid, "0") + "/" + strings.TrimLeft(pid, "0") + "/"
			if strings.Contains(s, product) ||
				(strings.Contains(s, `idvendor}=="`+vid+`"`) && strings.Contains(s, `idproduct}=="`+pid+`"`)) {
				return "/" + d + "/" + e.Name()
			}
		}
	}
	return ""
}

const brlttyFix = "if no braille display is used: sudo apt remove brltty (Debian/Ubuntu) or sudo dnf remove brltty; " +
	"otherwise stop it claiming serial bridges: sudo systemctl mask brltty-udev.service && sudo systemctl stop brltty-udev.service brltty.service; " +
	"then unplug and replug the board"

func checkLinux(r *Report, env Env) {
	root := env.Root
	ps := processes(root)
	bridges := findBridges(root)
	rule := udevRuleInstalled(root)
	brltty := running(ps, "brltty")

	if len(bridges) == 0 {
		st := Warning
		if env.Port != "" && !strings.HasPrefix(env.Port, "/dev/") {
			st = Info // the board is elsewhere: a network port or the virtual device
		}
		r.add(Finding{Check: "usb", Status: st,
			Summary: "no USB-UART bridge of an ESP board is connected",
			Detail:  "looked for the USB IDs of CP210x, CH340/CH9102, FTDI, PL2303 and Espressif USB bridges in /sys/bus/usb/devices",
			Fix:     "plug the board in with a data cable (many USB cables carry power only), then run mos doctor again"})
	}

	var ttys []string
	for _, b := range bridges {
		checkBridgeDriver(r, root, b, brltty)
		checkHub(r, root, b)
		for _, t := range b.ttys {
			ttys = append(ttys, "/dev/"+t)
		}
	}
	if p := env.Port; strings.HasPrefix(p, "/dev/") && !slices.Contains(ttys, p) {
		ttys = append(ttys, p)
	}

	if mm := running(ps, "ModemManager"); len(mm) > 0 && len(bridges) > 0 {
		f := Finding{Check: "modemmanager", Status: OK,
			Summary: "ModemManager is running; mos's udev rule tells it to leave the ESP bridges alone",
			Detail:  "rule found at " + rule}
		if rule == "" {
			f = Finding{Check: "modemmanager", Status: Warning,
				Summary: "ModemManager is running and may probe the board's port",
				Detail: "ModemManager sends AT commands to new serial ports for some seconds after they appear; " +
					"a flash started then fails to sync or the port is busy",
				Fix: "install mos's udev rule (it sets ID_MM_DEVICE_IGNORE for the ESP bridges; see README, \"udev rule\"), " +
					"or if no modem is used: sudo systemctl disable --now ModemManager"}
		}
		r.add(f)
	}

	me := self(root)
	for _, t := range ttys {
		checkPermission(r, env, t, rule, t != env.Port)
		found, hidden := holders(root, ps, t, me)
		for _, h := range found {
			fix := fmt.Sprintf("close %s, or end it: kill %d", h.comm, h.pid)
			switch h.comm {
			case "ModemManager":
				fix = "sudo systemctl stop ModemManager, and install mos's udev rule so it leaves the port alone"
			case "brltty":
				fix = brlttyFix
			}
			r.add(Finding{Check: "holder", Subject: t, Status: Problem,
				Summary: fmt.Sprintf("%s is open in %s (pid %d)", t, h.comm, h.pid),
				Detail:  "mos opens the port exclusively, as esptool does; two programs on one port garble each other",
				Fix:     fix})
		}
		if len(found) == 0 {
			f := Finding{Check: "holder", Subject: t, Status: OK, Summary: "no other process has " + t + " open"}
			if hidden > 0 {
				f.Detail = fmt.Sprintf("%d processes of other users could not be inspected; run as root to check them too", hidden)
			}
			r.add(f)
		}
	}
}

func checkBridgeDriver(r *Report, root fs.FS, b usbBridge, brltty []process) {
	if len(b.ttys) > 0 {
		r.add(Finding{Check: "driver", Subject: b.subject(), Status: OK,
			Summary: fmt.Sprintf("%s is bound to %s and appears as %s", b.name, strings.Join(b.drivers, ", "), "/dev/"+strings.Join(b.ttys, ", /dev/"))})
		if rf := brlttyRuleFor(root, b.vid, b.pid); rf != "" && b.name == "CH340" {
			r.add(Finding{Check: "brltty", Subject: b.subject(), Status: Warning,
				Summary: "brltty's udev rules claim this CH340's USB ID",
				Detail:  rf + " matches " + b.vid + ":" + b.pid + "; brltty may take the port away the next time the board is plugged in",
				Fix:     brlttyFix})
		}
		return
	}
	if slices.Contains(b.drivers, "usbfs") {
		f := Finding{Check: "brltty", Subject: b.subject(), Status: Problem,
			Summary: fmt.Sprintf("%s has no serial port: a program claimed the USB device directly (usbfs)", b.name),
			Detail:  "the interface's driver is usbfs, so the kernel's serial driver was unbound from it",
			Fix:     "find the program with: sudo lsof /dev/bus/usb/*/*, and stop it"}
		rf := brlttyRuleFor(root, b.vid, b.pid)
		if len(brltty) > 0 || rf != "" {
			f.Summary = fmt.Sprintf("brltty took the %s: it thinks the board is a braille display", b.name)
			f.Detail = "the interface is claimed through usbfs"
			if rf != "" {
				f.Detail += "; " + rf + " matches " + b.vid + ":" + b.pid
			}
			if len(brltty) > 0 {
				f.Detail += fmt.Sprintf("; brltty is running (pid %d)", brltty[0].pid)
			}
			f.Fix = brlttyFix
		}
		r.add(f)
		return
	}
	mod := bridgeDrivers[b.name]
	f := Finding{Check: "driver", Subject: b.subject(), Status: Problem,
		Summary: fmt.Sprintf("%s found but no driver is bound to it, so there is no serial port", b.name),
		Detail:  "none of the device's interfaces in /sys/bus/usb/devices has a driver link or a tty"}
	if len(b.drivers) > 0 {
		f.Summary = fmt.Sprintf("%s is bound to %s but has no serial port", b.name, strings.Join(b.drivers, ", "))
		f.Detail = "the interfaces have drivers but no ttyUSB/ttyACM child"
	}
	if mod != "" {
		f.Fix = fmt.Sprintf("load the driver: sudo modprobe %s (if it is missing, install your distribution's extra kernel modules, e.g. linux-modules-extra-$(uname -r) on Ubuntu), then replug the board", mod)
	} else {
		f.Fix = "check dmesg after replugging the board for why the kernel did not bind a driver"
	}
	r.add(f)
}

// checkHub is a heuristic: a board behind a bus-powered hub. What it
// checks: the bridge's sysfs name (a "." means a port of a hub that is not
// the computer's root hub, "1-1.2" is port 2 of the hub at "1-1") and that
// hub's bmAttributes (bit 6, 0x40, set means self-powered; USB 2.0
// specification, table 9-10). An ESP32 draws current peaks at boot and when
// the radio starts, and the reset that DTR/RTS cause restarts it; a hub
// powered only by its own upstream port may not supply that, so the board
// browns out and resets, or drops off USB, during the reset into download
// mode.
func checkHub(r *Report, root fs.FS, b usbBridge) {
	i := strings.LastIndex(b.dev, ".")
	if i < 0 {
		return
	}
	hub := b.dev[:i]
	dir := path.Join(usbDevices, hub)
	attr, err := strconv.ParseUint(readTrim(root, dir+"/bmAttributes"), 16, 8)
	if err != nil {
		return
	}
	desc := hub
	if p := readTrim(root, dir+"/product"); p != "" {
		desc += " (" + p + ")"
	}
	detail := "checked: the bridge's USB path " + b.dev + " (behind hub " + hub + ") and the hub's bmAttributes self-powered bit (0x40)"
	if attr&0x40 != 0 {
		r.add(Finding{Check: "hub", Subject: b.subject(), Status: OK,
			Summary: "the board is behind a self-powered hub " + desc, Detail: detail})
		return
	}
	r.add(Finding{Check: "hub", Subject: b.subject(), Status: Warning,
		Summary: "the board is behind a bus-powered USB hub " + desc,
		Detail: detail + "; an ESP32's current peaks at boot and Wi-Fi start, and the reset DTR/RTS cause, " +
			"can brown it out behind such a hub: it resets again or drops off USB while mos connects",
		Fix: "if connecting fails or the port disappears, plug the board into the computer directly or into a hub with its own power supply"})
}

// checkPermission tells whether the user may open dev and, when not, why
// and what to do: join the group that owns the device (read from its owner
// and /etc/group), log in again when already listed there, or install the
// udev rule that gives the desktop user access.
func checkPermission(r *Report, env Env, dev, rule string, inSysfs bool) {
	root := env.Root
	fi, err := fs.Stat(root, rel(dev))
	if err != nil {
		f := Finding{Check: "permission", Subject: dev, Status: Problem,
			Summary: dev + " does not exist",
			Detail:  "sysfs lists the port but /dev has no node for it: udev did not create it",
			Fix:     "replug the board; if the node is still missing, check that systemd-udevd runs: systemctl status systemd-udevd"}
		if !inSysfs {
			f.Detail = "--port names a device that is not there"
			f.Fix = "run mos ports to list the ports present and pass one of them to --port"
		}
		r.add(f)
		return
	}
	if env.Access == nil {
		return
	}
	aerr := env.Access(dev)
	if aerr == nil {
		r.add(Finding{Check: "permission", Subject: dev, Status: OK, Summary: "you may open " + dev})
		return
	}
	group := ""
	if o, ok := ownerOf(fi); ok {
		group = groupName(root, o.GID)
	}
	if group == "" {
		group = "dialout"
	}
	user := currentUser(root)
	f := Finding{Check: "permission", Subject: dev, Status: Problem,
		Summary: fmt.Sprintf("you may not open %s (%v)", dev, aerr),
		Detail:  fmt.Sprintf("%s belongs to group %s (mode %v)", dev, group, fi.Mode().Perm())}
	who := user
	if who == "" {
		who = "$USER"
	}
	switch {
	case user != "" && groupListed(root, group, user) && !procInGroup(root, group):
		f.Detail += fmt.Sprintf("; %s is listed in group %s, but this login session started before that", user, group)
		f.Fix = fmt.Sprintf("log out and back in (or run: newgrp %s) so the session gets group %s", group, group)
	case rule != "":
		f.Detail += "; mos's udev rule is installed at " + rule + ", but it gives access only to a user logged in at the machine's seat (not over SSH)"
		f.Fix = fmt.Sprintf("sudo usermod -aG %s %s, then log out and back in", group, who)
	default:
		f.Fix = fmt.Sprintf("install mos's udev rule (from the .deb/.rpm, or copy %s from the release archive to /etc/udev/rules.d/, then: sudo udevadm control --reload && sudo udevadm trigger) and replug the board; "+
			"or join the group: sudo usermod -aG %s %s, then log out and back in", UdevRuleName, group, who)
	}
	r.add(f)
}

// Owner is a file's owner; tests put it in fstest.MapFile.Sys, and the real
// filesystem's *syscall.Stat_t is read by ownerOf in owner_unix.go.
type Owner struct{ UID, GID int }

// currentUser reads the real uid from /proc/self/status and its name from
// /etc/passwd.
func currentUser(root fs.FS) string {
	uid := -1
	for _, line := range strings.Split(readTrim(root, "proc/self/status"), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				uid, _ = strconv.Atoi(f[0])
			}
		}
	}
	for _, line := range strings.Split(readTrim(root, "etc/passwd"), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 2 && f[2] == strconv.Itoa(uid) {
			return f[0]
		}
	}
	return ""
}

// groupEntry returns /etc/group's fields for a group name or gid.
func groupEntry(root fs.FS, match func(f []string) bool) []string {
	for _, line := range strings.Split(readTrim(root, "etc/group"), "\n") {
		f := strings.Split(line, ":")
		if len(f) >= 4 && match(f) {
			return f
		}
	}
	return nil
}

func groupName(root fs.FS, gid int) string {
	f := groupEntry(root, func(f []string) bool { return f[2] == strconv.Itoa(gid) })
	if f == nil {
		return ""
	}
	return f[0]
}

func groupListed(root fs.FS, group, user string) bool {
	f := groupEntry(root, func(f []string) bool { return f[0] == group })
	return f != nil && slices.Contains(strings.Split(f[3], ","), user)
}

// procInGroup reports whether this process has the group (the "Groups:"
// line of /proc/self/status holds the supplementary gids of the session).
func procInGroup(root fs.FS, group string) bool {
	f := groupEntry(root, func(f []string) bool { return f[0] == group })
	if f == nil {
		return false
	}
	for _, line := range strings.Split(readTrim(root, "proc/self/status"), "\n") {
		if rest, ok := strings.CutPrefix(line, "Groups:"); ok {
			return slices.Contains(strings.Fields(rest), f[2])
		}
	}
	return false
}
