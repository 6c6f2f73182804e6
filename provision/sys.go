package provision

import (
	"context"
	"time"
)

// Info is Sys.GetInfo's answer. Its JSON form is the device's own.
type Info struct {
	ID         string      `json:"id"`
	App        string      `json:"app"`
	FWVersion  string      `json:"fw_version"`
	FWID       string      `json:"fw_id"`
	MGVersion  string      `json:"mg_version,omitempty"`
	MGID       string      `json:"mg_id,omitempty"`
	MAC        string      `json:"mac"`
	Arch       string      `json:"arch"`
	Uptime     int64       `json:"uptime"`
	PublicKey  string      `json:"public_key,omitempty"`
	RAMSize    int64       `json:"ram_size"`
	RAMFree    int64       `json:"ram_free"`
	RAMMinFree int64       `json:"ram_min_free"`
	FSSize     int64       `json:"fs_size"`
	FSFree     int64       `json:"fs_free"`
	WiFi       *WiFiStatus `json:"wifi,omitempty"`
}

// WiFiStatus is the "wifi" object of Sys.GetInfo.
type WiFiStatus struct {
	STAIP  string `json:"sta_ip"`
	APIP   string `json:"ap_ip"`
	Status string `json:"status"` // disconnected, connecting, connected, got ip
	SSID   string `json:"ssid"`
}

// GetInfo asks the firmware who it is and how it is doing.
func (c *Client) GetInfo(ctx context.Context) (*Info, error) {
	var info Info
	if err := c.Call(ctx, "Sys.GetInfo", nil, &info); err != nil {
		return nil, err
	}
	return &info, nil
}

// rebootDelay is the delay asked of Sys.Reboot (also its default).
const rebootDelay = 100 * time.Millisecond

// Reboot restarts the device and returns once its firmware answers again.
func (c *Client) Reboot(ctx context.Context) error {
	booted := c.boot.C()
	err := c.call(ctx, "Sys.Reboot", map[string]any{"delay_ms": rebootDelay.Milliseconds()}, nil, 1)
	if err != nil {
		// A reply lost as the device went down is no failure if it did go
		// down; waitRestart finds out.
		if _, ok := err.(*NoReplyError); !ok {
			if _, ok := err.(*DeviceResetError); !ok {
				return err
			}
		}
	}
	return c.waitRestart(ctx, booted, rebootDelay)
}

// waitRestart waits for a restart the device announced to start in delay,
// then for its firmware to answer. booted is the boot signal from before
// the request, so a restart already seen counts. Without a boot line in
// the log (the log may go to another UART), it waits delay plus a margin.
func (c *Client) waitRestart(ctx context.Context, booted <-chan struct{}, delay time.Duration) error {
	t := time.NewTimer(delay + time.Second)
	defer t.Stop()
	select {
	case <-booted:
	case <-t.C:
	case <-ctx.Done():
		return ctx.Err()
	}
	if err := c.handshake(ctx); err != nil {
		return &DeviceResetError{Method: "reboot", Err: err}
	}
	return nil
}
