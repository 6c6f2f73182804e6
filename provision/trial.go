package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Trying a change before keeping it. A device that was online must not be
// left offline by settings that do not work, so a change that is saved
// and applied by a reboot is first saved to be used once (Config.Set with
// try_once: Mongoose OS writes conf9.json.try, loads it at the next boot
// instead of conf9.json and deletes it). The device reboots with it; when
// the change works, Config.Save confirms it; when it does not, the device
// is brought back to its previous settings, which a reboot restores since
// the trial file is gone. Firmware that settles a trial itself (the demo
// reverts and restarts when its station cannot connect) is waited for
// first; Mongoose OS without that is rebooted.

// How long a rollback may take: the device's own restart, or a reboot we
// ask for, and its firmware answering again.
const (
	selfRevertWait = 3 * time.Second
	rollbackTime   = 30 * time.Second
)

// trialCheck decides whether the settings on trial work. It runs once the
// device answers after the reboot; lines are the console lines since
// before the change was sent, for the checks that read the log. It
// reports whether it saw the device restart after a failure (a firmware
// that reverts by itself).
type trialCheck func(ctx context.Context, lines <-chan string) (restarted bool, err error)

// tryChange sends diff on trial, reboots, runs check (nil: the device
// answering again is enough) and confirms or rolls back. prev holds the
// changed keys' values before the change, as the device's tree had them;
// previous names them for the error ("" when there is nothing to say).
// timeout bounds sending, rebooting and checking (0: ctx alone).
func (c *Client) tryChange(ctx context.Context, diff, prev map[string]any, previous string, check trialCheck, timeout time.Duration) error {
	lines, stop := c.subscribeLog()
	defer stop()
	tctx := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		tctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	booted := c.boot.C()
	var reply struct {
		Saved bool `json:"saved"`
	}
	params := map[string]any{"config": diff, "save": true, "try_once": true, "reboot": true}
	if err := c.Call(tctx, "Config.Set", params, &reply); err != nil {
		return rejected(err)
	}
	if !reply.Saved {
		// Older firmware applies Config.Set without saving: save apart.
		if err := c.Call(tctx, "Config.Save", map[string]any{"try_once": true, "reboot": true}, &reply); err != nil {
			return err
		}
	}
	// The firmware restarts 500 ms after its reply.
	err := c.waitRestart(tctx, booted, 500*time.Millisecond)
	restarted := false
	if err == nil && check != nil {
		restarted, err = check(tctx, lines)
	} else if err != nil {
		// the lines so far are the trial boot's; a restart that reverts
		// comes after them
		drainLines(lines)
	}
	if err == nil {
		if err := c.Call(tctx, "Config.Save", map[string]any{}, nil); err != nil {
			return fmt.Errorf("the new settings work, but confirming them failed: %w; the device goes back to its previous settings at its next reboot", err)
		}
		return nil
	}
	if ctx.Err() != nil {
		// Interrupted: the trial is left to the next reboot.
		return &ChangeFailedError{Err: err, RollbackErr: ctx.Err()}
	}
	return c.rollBack(ctx, lines, restarted, prev, previous, err)
}

func drainLines(lines <-chan string) {
	for {
		select {
		case <-lines:
		default:
			return
		}
	}
}

// rollBack brings the device back to its previous settings after cause
// and says whether that worked.
// A boot line in lines, or restarted, says the firmware reverted by
// itself; else, after selfRevertWait, the device is rebooted.
func (c *Client) rollBack(ctx context.Context, lines <-chan string, restarted bool, prev map[string]any, previous string, cause error) error {
	ctx, cancel := context.WithTimeout(ctx, rollbackTime)
	defer cancel()
	e := &ChangeFailedError{Err: cause, Previous: previous}
	t := time.NewTimer(selfRevertWait)
	defer t.Stop()
	rebooted := false
	for !restarted && !rebooted && e.RollbackErr == nil {
		select {
		case line := <-lines:
			restarted = isBootLine(line)
		case <-t.C:
			// Reboot returns once the firmware answers again
			sent := time.Now()
			if e.RollbackErr = c.Reboot(ctx); e.RollbackErr == nil {
				e.RollbackErr = c.checkRestarted(ctx, sent)
			}
			rebooted = true
		case <-ctx.Done():
			e.RollbackErr = ctx.Err()
		}
	}
	if restarted {
		seen := make(chan struct{})
		close(seen)
		e.RollbackErr = c.waitRestart(ctx, seen, 0)
	}
	if e.RollbackErr != nil {
		return e
	}
	tree, err := c.configTree(ctx)
	if err != nil {
		e.RollbackErr = err
		return e
	}
	e.Restored = true
	for k, v := range prev {
		if now, err := lookup(tree, k); err != nil || now != v {
			e.Restored = false
		}
	}
	return e
}

// ChangeFailedError is a configuration change that was tried and did not
// work (Err says why). The device was brought back to its previous
// settings (Restored), or RollbackErr says why that did not happen. It
// unwraps to Err, so the failure's own exit code and hint apply.
type ChangeFailedError struct {
	Err         error
	Previous    string // the previous settings, when they can be named
	Restored    bool
	RollbackErr error
}

func (e *ChangeFailedError) Error() string {
	switch {
	case e.Restored && e.Previous != "":
		return fmt.Sprintf("%v; the previous settings were restored (%s)", e.Err, e.Previous)
	case e.Restored:
		return fmt.Sprintf("%v; the previous settings were restored", e.Err)
	case e.RollbackErr != nil && errors.Is(e.RollbackErr, context.Canceled):
		return fmt.Sprintf("%v; the new settings are on trial: the device goes back to its previous settings at its next reboot", e.Err)
	case e.RollbackErr != nil:
		return fmt.Sprintf("%v; restoring the previous settings failed (%v): the device goes back to them at its next reboot", e.Err, e.RollbackErr)
	}
	return fmt.Sprintf("%v; the device kept the new settings: its firmware does not try settings once (try_once)", e.Err)
}

func (e *ChangeFailedError) Unwrap() error { return e.Err }

// ConfigRejectedError is a change the firmware refused (a value its
// validators reject): nothing was applied or saved.
type ConfigRejectedError struct {
	Err *RPCError
}

func (e *ConfigRejectedError) Error() string {
	return fmt.Sprintf("the device rejected the change: %s; its settings are unchanged", strings.TrimPrefix(e.Err.Message, "invalid config value: "))
}

func (e *ConfigRejectedError) Unwrap() error { return e.Err }
func (e *ConfigRejectedError) Hint() string {
	return "correct the value and run the command again"
}

// rejected turns Config.Set's "bad argument" reply into a
// ConfigRejectedError: Mongoose OS refuses the whole set then.
func rejected(err error) error {
	var re *RPCError
	if errors.As(err, &re) && re.Code == CodeBadRequest {
		return &ConfigRejectedError{Err: re}
	}
	return err
}

// wifiCheck is the trial check of new station settings: the station gets
// an IP address, or the reason it cannot is the failure.
// parent is the caller's context: running out of the check's own time is
// a Wi-Fi timeout only while parent lives.
func (c *Client) wifiCheck(parent context.Context, w *wifiWatch, status func(string), start time.Time) trialCheck {
	return func(ctx context.Context, lines <-chan string) (bool, error) {
		if status != nil {
			status(fmt.Sprintf("waiting for the device to join %q", w.ssid))
		}
		return c.watchWiFi(parent, ctx, w, lines, start)
	}
}

// checkRestarted makes sure the device restarted since sent: a Reboot
// whose reply was lost and after which no boot line was seen (the log
// may go to another UART) succeeds without knowing. An uptime longer
// than the time since then means it did not.
func (c *Client) checkRestarted(ctx context.Context, sent time.Time) error {
	info, err := c.GetInfo(ctx)
	if err != nil {
		return err
	}
	if up := time.Duration(info.Uptime) * time.Second; up > time.Since(sent)+time.Second {
		return fmt.Errorf("the device did not restart (up %v)", up)
	}
	return nil
}

// staChange reports whether a change touches the Wi-Fi station and
// leaves it enabled, and the network it then joins.
func staChange(tree, changed map[string]any) (string, bool) {
	touched := false
	for k := range changed {
		touched = touched || strings.HasPrefix(k, "wifi.sta.")
	}
	value := func(k string) any {
		if v, ok := changed[k]; ok {
			return v
		}
		v, _ := lookup(tree, k)
		return v
	}
	ssid, _ := value("wifi.sta.ssid").(string)
	on, _ := value("wifi.sta.enable").(bool)
	return ssid, touched && on && ssid != ""
}

// stationSettings names the station settings of tree.
func stationSettings(tree map[string]any) string {
	ssid, _ := lookup(tree, "wifi.sta.ssid")
	on, _ := lookup(tree, "wifi.sta.enable")
	if s, _ := ssid.(string); on == true && s != "" {
		return fmt.Sprintf("Wi-Fi network %q", s)
	}
	return "Wi-Fi station off"
}
