package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// retried lists the methods that are sent again when a reply does not come
// or comes corrupted: running them twice does no harm. FS.Put is also
// retried, but only by Put, which always gives an offset (an appending
// FS.Put run twice would duplicate data). Everything else (Sys.Reboot,
// FS.Remove, FS.Rename, OTA.*, ATCA.GenKey, ...) is sent once: a second
// run would reboot twice, fail on a file already gone, or make another key.
var retried = map[string]bool{
	"Sys.GetInfo":    true,
	"Sys.SetDebug":   true,
	"Config.Get":     true,
	"Config.Set":     true, // the same values again; a reboot it asks for may happen twice
	"Config.Save":    true,
	"FS.List":        true,
	"FS.ListExt":     true,
	"FS.Get":         true,
	"RPC.List":       true,
	"RPC.Describe":   true,
	"RPC.Ping":       true,
	"Wifi.Scan":      true,
	"OTA.Status":     true,
	"ATCA.GetConfig": true,
	"ATCA.GetPubKey": true,
}

// Retried reports whether Call sends method again after a lost or
// corrupted reply.
func Retried(method string) bool { return retried[method] }

type request struct {
	Src    string      `json:"src"`
	ID     uint64      `json:"id"`
	Method string      `json:"method"`
	Params any         `json:"params,omitempty"`
	Auth   *digestAuth `json:"auth,omitempty"`
}

// newID picks a request id in [2^40, 2^41), as mos does: random, so that
// a late reply to an earlier run of mos is never taken for ours.
func newID() uint64 { return 1<<40 + rand.Uint64N(1<<40) }

// Call sends method with params (nil for none) and decodes the result into
// result (nil to ignore it; a *json.RawMessage keeps it as is). An error
// reply is an *RPCError.
func (c *Client) Call(ctx context.Context, method string, params, result any) error {
	attempts := 1
	if retried[method] {
		attempts = c.opts.Attempts
	}
	return c.call(ctx, method, params, result, attempts)
}

// Errors of one attempt that another attempt may fix.
var (
	errNoReply     = errors.New("no reply")
	errCorrupt     = errors.New("corrupted reply")
	errDeviceReset = errors.New("device restarted")
	errRejected    = errors.New("the firmware dropped a damaged frame")
)

func (c *Client) call(ctx context.Context, method string, params, result any, attempts int) error {
	req := request{Src: "mos", ID: newID(), Method: method, Params: params}
	corrupt := 0
	authTried := false
	for attempt := 1; ; attempt++ {
		req.Auth = c.authFor()
		js, err := asciiJSON(req)
		if err != nil {
			return &ArgError{fmt.Errorf("%s: cannot encode the parameters: %w", method, err)}
		}
		if len(js) > maxRequestJSON {
			return &ArgError{fmt.Errorf("%s: request is %d bytes, over the device's %d-byte frame limit", method, len(js), maxRequestJSON)}
		}
		resp, err := c.roundTrip(ctx, req.ID, js, attempts > 1)
		if err == nil {
			if resp.Error != nil && resp.Error.Code == CodeAuthRequired && c.opts.Username != "" && !authTried {
				// Answer the challenge once; a second 401 is a wrong password.
				if c.learnChallenge(resp.Error.Message) {
					authTried = true
					attempt--
					continue
				}
			}
			return decodeReply(method, resp, result)
		}
		switch {
		case errors.Is(err, errCorrupt):
			corrupt++
		case errors.Is(err, errNoReply), errors.Is(err, errDeviceReset), errors.Is(err, errRejected):
		default:
			return err
		}
		if errors.Is(err, errDeviceReset) {
			if attempt >= attempts {
				return &DeviceResetError{Method: method}
			}
			if herr := c.handshake(ctx); herr != nil {
				return &DeviceResetError{Method: method, Err: herr}
			}
		}
		if attempt >= attempts {
			return &NoReplyError{Method: method, Wait: c.opts.CallTimeout, Attempts: attempts, Corrupt: corrupt}
		}
		c.mu.Lock()
		c.stats.Retries++
		c.mu.Unlock()
		c.debugf("%s: %v; sending it again (attempt %d of %d)", method, err, attempt+1, attempts)
	}
}

// roundTrip sends one frame and waits for the reply with its id. With
// retry, a frame the firmware says it dropped ends the wait at once (it
// cannot tell whose frame it was: a request that is safe to repeat just
// goes again; others wait out their timeout).
func (c *Client) roundTrip(ctx context.Context, id uint64, js []byte, retry bool) (*response, error) {
	if err := c.broken(); err != nil {
		return nil, err
	}
	ch := make(chan reply, 1)
	c.mu.Lock()
	c.pending[id] = ch
	c.stats.Requests++
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
	}()
	booted := c.boot.C()
	var rejected <-chan struct{}
	if retry {
		rejected = c.rejected.C()
	}
	if err := c.w.write(ctx, encodeFrame(js)); err != nil {
		return nil, err
	}
	t := time.NewTimer(c.opts.CallTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		if r.corrupt {
			return nil, errCorrupt
		}
		return r.resp, nil
	case <-booted:
		// The request died with the firmware that received it.
		return nil, errDeviceReset
	case <-rejected:
		return nil, errRejected
	case <-t.C:
		return nil, errNoReply
	case <-c.dead:
		return nil, c.broken()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func decodeReply(method string, r *response, result any) error {
	if r.Error != nil {
		return &RPCError{Method: method, Code: r.Error.Code, Message: r.Error.Message}
	}
	if result == nil {
		return nil
	}
	if err := json.Unmarshal(r.Result, result); err != nil {
		return fmt.Errorf("%s: unexpected reply %s: %w", method, r.Result, err)
	}
	return nil
}

// handshake sends the 0x04 probe every 200 ms until the device echoes it,
// for at most HandshakeTimeout, then the """ mos sends before its first
// frame.
func (c *Client) handshake(ctx context.Context) error {
	start := time.Now()
	deadline := start.Add(c.opts.HandshakeTimeout)
	c.mu.Lock()
	c.recent = nil
	c.mu.Unlock()
	for {
		echoed := c.eot.C()
		if err := c.w.write(ctx, handshakeBytes); err != nil {
			return err
		}
		wait := min(200*time.Millisecond, time.Until(deadline))
		t := time.NewTimer(max(wait, 0))
		select {
		case <-echoed:
			t.Stop()
			return c.w.write(ctx, []byte(delim))
		case <-t.C:
		case <-c.dead:
			t.Stop()
			return c.broken()
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		if !time.Now().Before(deadline) {
			c.mu.Lock()
			recent := append([]string(nil), c.recent...)
			c.mu.Unlock()
			return &NoAnswerError{Port: c.p.Name(), Waited: time.Since(start), Output: recent}
		}
	}
}
