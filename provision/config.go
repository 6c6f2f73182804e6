package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// ConfigGet returns the configuration value at key (a dotted path such as
// "wifi.sta.ssid"), or the whole tree for "", as the device's JSON. An
// unknown key is a *KeyError with suggestions.
func (c *Client) ConfigGet(ctx context.Context, key string) (json.RawMessage, error) {
	var params any
	if key != "" {
		params = map[string]any{"key": key}
	}
	var v json.RawMessage
	err := c.Call(ctx, "Config.Get", params, &v)
	var re *RPCError
	if key != "" && errors.As(err, &re) && re.Code == CodeNotFound {
		// The device only says "invalid config key"; the tree says more.
		if tree, terr := c.configTree(ctx); terr == nil {
			var ke *KeyError
			if _, lerr := lookup(tree, key); errors.As(lerr, &ke) && !ke.Section {
				return nil, ke
			}
		}
	}
	return v, err
}

// configTree fetches the whole configuration, keeping numbers as written
// so that an integer (1) and a double (1.000000) stay apart.
func (c *Client) configTree(ctx context.Context) (map[string]any, error) {
	var raw json.RawMessage
	if err := c.Call(ctx, "Config.Get", nil, &raw); err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree map[string]any
	if err := dec.Decode(&tree); err != nil {
		return nil, fmt.Errorf("Config.Get: the configuration is not a JSON object: %w", err)
	}
	return tree, nil
}

// SetOptions say what happens after Config.Set.
type SetOptions struct {
	Save   bool // write the change to flash (conf9.json)
	Reboot bool // restart the device (and wait for it) to apply it
	// All sends every given key, not only those whose value changes.
	All bool
	// Timeout bounds a tried change (Save and Reboot): sending it, the
	// reboot and its check. 0: 30 s when the check is joining Wi-Fi,
	// else the caller's context alone.
	Timeout time.Duration

	// check replaces the trial's check (JoinWiFi's, with its progress).
	check trialCheck
}

// wifiJoinTimeout is how long joining Wi-Fi may take by default: a reboot
// plus the firmware's own 15 s connect timeout, with room to spare.
const wifiJoinTimeout = 30 * time.Second

// SetResult is what ConfigSet did.
type SetResult struct {
	// Changed holds the keys sent with their new values, typed as the
	// device's tree types them.
	Changed  map[string]any `json:"changed"`
	Saved    bool           `json:"saved"`
	Rebooted bool           `json:"rebooted"`
}

// ConfigSet changes configuration values, as `mos config-set` does: it
// reads the device's tree, checks that every key exists and converts each
// value to its key's type (a string such as "true" or "42" is parsed;
// other Go values must already fit), and sends only what changes, as one
// nested Config.Set. An unknown key or a value of the wrong type fails
// before anything is sent; a value the firmware rejects is a
// *ConfigRejectedError, and the device's settings are unchanged. With
// nothing to change nothing is sent, not even a reboot.
//
// A change that is saved and rebooted is tried first (see trial.go): the
// device reboots with it while its previous settings stay saved; once it
// answers again (and, when the change touches an enabled Wi-Fi station,
// once the station has an IP address) the change is confirmed. A change
// that fails its check is rolled back: the error is a *ChangeFailedError
// that says whether the previous settings are back.
func (c *Client) ConfigSet(ctx context.Context, values map[string]any, o SetOptions) (*SetResult, error) {
	if len(values) == 0 {
		return nil, &ArgError{errors.New("no configuration values to set")}
	}
	tree, err := c.configTree(ctx)
	if err != nil {
		return nil, err
	}
	res := &SetResult{Changed: map[string]any{}}
	diff := map[string]any{}
	for _, key := range slices.Sorted(maps.Keys(values)) {
		cur, err := lookup(tree, key)
		if err != nil {
			return nil, err
		}
		v, err := convert(key, cur, values[key])
		if err != nil {
			return nil, err
		}
		if !o.All && sameValue(cur, v) {
			continue
		}
		res.Changed[key] = v
		setPath(diff, key, v)
	}
	if len(diff) == 0 {
		return res, nil
	}
	if o.Save && o.Reboot {
		prev := map[string]any{}
		for k := range res.Changed {
			prev[k], _ = lookup(tree, k)
		}
		check, timeout, previous := o.check, o.Timeout, ""
		if ssid, ok := staChange(tree, res.Changed); ok {
			previous = stationSettings(tree)
			if check == nil {
				check = c.wifiCheck(ctx, &wifiWatch{ssid: ssid}, nil, time.Now())
			}
			if timeout <= 0 {
				timeout = wifiJoinTimeout
			}
		}
		if err := c.tryChange(ctx, diff, prev, previous, check, timeout); err != nil {
			return nil, err
		}
		res.Saved, res.Rebooted = true, true
		return res, nil
	}
	booted := c.boot.C()
	var setReply struct {
		Saved bool `json:"saved"`
	}
	params := map[string]any{"config": diff, "save": o.Save, "reboot": o.Reboot}
	if err := c.Call(ctx, "Config.Set", params, &setReply); err != nil {
		return nil, rejected(err)
	}
	res.Saved = setReply.Saved
	if o.Save && !setReply.Saved {
		// Older firmware applies Config.Set without saving: save apart.
		var saveReply struct {
			Saved bool `json:"saved"`
		}
		if err := c.Call(ctx, "Config.Save", map[string]any{"reboot": o.Reboot}, &saveReply); err != nil {
			return nil, err
		}
		res.Saved = saveReply.Saved
	}
	if o.Reboot {
		// The firmware restarts 500 ms after its reply.
		if err := c.waitRestart(ctx, booted, 500*time.Millisecond); err != nil {
			return nil, err
		}
		res.Rebooted = true
	}
	return res, nil
}

// lookup finds the current value of a leaf key, or explains why not.
func lookup(tree map[string]any, key string) (any, error) {
	var node any = tree
	for _, part := range strings.Split(key, ".") {
		m, ok := node.(map[string]any)
		if !ok {
			return nil, keyError(tree, key)
		}
		if node, ok = m[part]; !ok {
			return nil, keyError(tree, key)
		}
	}
	if m, ok := node.(map[string]any); ok {
		var some []string
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if _, sub := m[k].(map[string]any); !sub && len(some) < 3 {
				some = append(some, key+"."+k)
			}
		}
		return nil, &KeyError{Key: key, Section: true, Suggestions: some}
	}
	return node, nil
}

func keyError(tree map[string]any, key string) *KeyError {
	return &KeyError{Key: key, Suggestions: suggestKeys(key, leafKeys(tree, ""))}
}

// ConfigKeys lists the dotted key of every value in the device's
// configuration, sorted (what a shell completes `mos config get` with).
func (c *Client) ConfigKeys(ctx context.Context) ([]string, error) {
	tree, err := c.configTree(ctx)
	if err != nil {
		return nil, err
	}
	keys := leafKeys(tree, "")
	slices.Sort(keys)
	return keys, nil
}

// leafKeys lists the dotted paths of every value in the tree.
func leafKeys(tree map[string]any, prefix string) []string {
	var keys []string
	for k, v := range tree {
		if m, ok := v.(map[string]any); ok {
			keys = append(keys, leafKeys(m, prefix+k+".")...)
			continue
		}
		keys = append(keys, prefix+k)
	}
	return keys
}

func setPath(m map[string]any, key string, v any) {
	parts := strings.Split(key, ".")
	for _, p := range parts[:len(parts)-1] {
		sub, ok := m[p].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[p] = sub
		}
		m = sub
	}
	m[parts[len(parts)-1]] = v
}
