package provision

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// WiFiJoiner gives a device Wi-Fi credentials and reports whether it got
// on the network. *Client does it over RPC (Config.Set and the log); a
// device without RPC firmware can do it another way (Improv over serial)
// behind the same interface and the same errors.
type WiFiJoiner interface {
	JoinWiFi(ctx context.Context, ssid, pass string, o WiFiOptions) (*WiFiResult, error)
}

// WiFiOptions tune JoinWiFi.
type WiFiOptions struct {
	// Timeout bounds the whole operation, reboot included (default 30 s).
	Timeout time.Duration
	// Status receives notes on progress ("rebooting", "connecting").
	Status func(msg string)
}

// WiFiResult is a successful join.
type WiFiResult struct {
	SSID    string        `json:"ssid"`
	IP      string        `json:"ip"`
	Elapsed time.Duration `json:"-"`
}

var _ WiFiJoiner = (*Client)(nil)

// How often the device is asked for its Wi-Fi status while the log is
// watched. Not more often: the firmware mutes its log while it sends a
// reply, so each poll may swallow the line that says why a connection
// failed.
const wifiPoll = 2 * time.Second

// Disconnect reasons of the ESP Wi-Fi drivers that settle the matter.
const (
	reasonNoAPFound        = 201
	reasonAuthFail         = 202
	reasonHandshakeTimeout = 204
	reason4WayTimeout      = 15 // WPA2 with a wrong key usually ends here
)

var (
	reasonRE = regexp.MustCompile(`(?i)wifi.*reason:? *(\d+)`)
	ipRE     = regexp.MustCompile(`\b(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})\b`)
)

// CheckWiFi checks a network name and password against what a Wi-Fi
// station can be given (IEEE 802.11: an SSID is 1 to 32 bytes; a WPA
// passphrase at most 63 characters, or a 64-digit hex key), so that a
// command can refuse them before it touches the board.
func CheckWiFi(ssid, pass string) error {
	if len(ssid) == 0 || len(ssid) > 32 {
		return &ArgError{fmt.Errorf("Wi-Fi network name %q: must be 1 to 32 bytes", ssid)}
	}
	if len(pass) > 64 {
		return &ArgError{errors.New("Wi-Fi password: at most 64 characters")}
	}
	return nil
}

// JoinWiFi does what `mos wifi` does: Config.Set of wifi.sta.enable true,
// ssid, pass and wifi.ap.enable false, saved on trial, with a reboot.
// Then it watches the log and polls Sys.GetInfo until the station has an
// IP address (success: the settings are confirmed) or the driver reports
// why it cannot connect: reason 202 (and 15, 204) is a wrong password, 201
// a network not found. A failure rolls the device back to its previous
// settings; the error is then a *ChangeFailedError around the *WiFiError.
// o.Timeout bounds the change, reboot and join (default 30 s); the
// rollback has its own time.
func (c *Client) JoinWiFi(ctx context.Context, ssid, pass string, o WiFiOptions) (*WiFiResult, error) {
	if err := CheckWiFi(ssid, pass); err != nil {
		return nil, err
	}
	status := func(msg string) {
		if o.Status != nil {
			o.Status(msg)
		}
	}
	start := time.Now()
	w := &wifiWatch{ssid: ssid}
	status("setting the Wi-Fi credentials (on trial until the device is online) and rebooting")
	_, err := c.ConfigSet(ctx, map[string]any{
		"wifi.sta.enable": true,
		"wifi.sta.ssid":   ssid,
		"wifi.sta.pass":   pass,
		"wifi.ap.enable":  false,
	}, SetOptions{Save: true, Reboot: true, All: true, Timeout: o.Timeout, check: c.wifiCheck(ctx, w, status, start)})
	if err != nil {
		return nil, err
	}
	return &WiFiResult{SSID: ssid, IP: w.ip, Elapsed: time.Since(start)}, nil
}

// watchWiFi watches the log and polls Sys.GetInfo until the station has
// an IP address or the driver says why it cannot connect. Lines logged
// before the reboot belong to the old settings and are ignored.
func (c *Client) watchWiFi(parent, ctx context.Context, w *wifiWatch, lines <-chan string, start time.Time) (bool, error) {
	// Whatever the log said since the reboot is news; with no boot line
	// seen at all (the log goes elsewhere), everything from now on is.
	w.drain(lines)
	w.booted = true
	tick := time.NewTicker(wifiPoll)
	defer tick.Stop()
	for w.err == nil && w.ip == "" {
		select {
		case line := <-lines:
			w.see(line)
		case <-tick.C:
			info, err := c.GetInfo(ctx)
			if err != nil {
				// the log may have said why meanwhile (a firmware that
				// reverts restarts right after the failure)
				if w.drain(lines); w.err != nil {
					return w.restarted, w.err
				}
				return false, w.timeoutOr(parent, ctx, err, start)
			}
			w.seeInfo(info)
		case <-ctx.Done():
			return false, w.timeoutOr(parent, ctx, ctx.Err(), start)
		}
	}
	return w.restarted, w.err
}

// wifiWatch reads the log and status for the outcome of a join.
type wifiWatch struct {
	ssid   string
	booted bool // lines from now on are about the new settings
	ip     string
	reason int    // last disconnect reason seen
	status string // last status from Sys.GetInfo
	err    error
	// restarted: the device restarted after the outcome was seen
	restarted bool
}

func (w *wifiWatch) drain(lines <-chan string) {
	for {
		select {
		case l := <-lines:
			w.see(l)
		default:
			return
		}
	}
}

func (w *wifiWatch) see(line string) {
	if w.err != nil || w.ip != "" {
		// decided; a restart after a failure is the firmware reverting
		w.restarted = w.restarted || isBootLine(line)
		return
	}
	if isBootLine(line) {
		w.booted = true
		w.reason, w.ip, w.err = 0, "", nil
		return
	}
	if !w.booted {
		return
	}
	if m := reasonRE.FindStringSubmatch(line); m != nil {
		w.reason, _ = strconv.Atoi(m[1])
		switch w.reason {
		case reasonNoAPFound:
			w.err = &WiFiError{SSID: w.ssid, Reason: w.reason, Err: ErrWiFiNotFound}
		case reasonAuthFail, reasonHandshakeTimeout, reason4WayTimeout:
			w.err = &WiFiError{SSID: w.ssid, Reason: w.reason, Err: ErrWiFiWrongPassword}
		}
		return
	}
	lower := strings.ToLower(line)
	if strings.Contains(lower, "wifi sta") && (strings.Contains(lower, "ready") || strings.Contains(lower, "got ip")) {
		if m := ipRE.FindStringSubmatch(line); m != nil && m[1] != "0.0.0.0" {
			w.ip = m[1]
		}
	}
}

func (w *wifiWatch) seeInfo(info *Info) {
	if info.WiFi == nil {
		return
	}
	w.status = info.WiFi.Status
	if w.status == "got ip" && info.WiFi.STAIP != "" && w.err == nil {
		w.ip = info.WiFi.STAIP
	}
}

// timeoutOr turns running out of the join's own time into a WiFiError;
// other failures (the caller's cancel, a device gone) pass as they are.
func (w *wifiWatch) timeoutOr(parent, wctx context.Context, err error, start time.Time) error {
	if parent.Err() == nil && wctx.Err() != nil {
		return &WiFiError{SSID: w.ssid, Reason: w.reason, Status: w.status, Waited: time.Since(start), Err: ErrWiFiTimeout}
	}
	return err
}
