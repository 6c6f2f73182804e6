package demofw

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// The demo firmware's system configuration, as Mongoose OS keeps it: a
// typed schema with compiled-in defaults (level 0), optional overlays
// conf1.json..conf8.json (vendor levels) and the user level conf9.json,
// each a partial tree merged over the ones below.

const (
	userLevel = 9 // conf9.json: what Config.Set changes by default
	maxLevel  = 9
)

// sysConfig is the configuration in RAM: the schema's defaults and the
// values each level sets. It is shared by the RPC loop and the goroutines
// that log (debug.level), hence the lock.
type sysConfig struct {
	schema []cfgKey
	index  map[string]int  // leaf path -> schema position
	inner  map[string]bool // paths of subtrees ("wifi", "wifi.sta")
	mac    [6]byte

	mu     sync.RWMutex
	levels [maxLevel + 1]map[string]any // 1..9 used
}

func newSysConfig(chipKey string, mac [6]byte) *sysConfig {
	c := &sysConfig{schema: configSchema(chipKey), index: map[string]int{}, inner: map[string]bool{}, mac: mac}
	for i, k := range c.schema {
		c.index[k.path] = i
		for p := k.path; strings.Contains(p, "."); {
			p = p[:strings.LastIndexByte(p, '.')]
			c.inner[p] = true
		}
	}
	for l := 1; l <= maxLevel; l++ {
		c.levels[l] = map[string]any{}
	}
	return c
}

// value is a key's effective value taking levels 0..upto into account.
func (c *sysConfig) value(path string, upto int) any {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.valueLocked(path, upto)
}

func (c *sysConfig) valueLocked(path string, upto int) any {
	v := c.schema[c.index[path]].def
	for l := 1; l <= upto; l++ {
		if lv, ok := c.levels[l][path]; ok {
			v = lv
		}
	}
	if s, ok := v.(string); ok && macPlaceholderKeys[path] {
		v = expandMAC(s, c.mac)
	}
	return v
}

func (c *sysConfig) Bool(path string) bool     { b, _ := c.value(path, maxLevel).(bool); return b }
func (c *sysConfig) Int(path string) int       { n, _ := c.value(path, maxLevel).(int64); return int(n) }
func (c *sysConfig) String(path string) string { s, _ := c.value(path, maxLevel).(string); return s }

// configError is a failed Config.Get/Set: code and message as Mongoose OS
// answers them.
type configError struct {
	code int
	msg  string
}

func (e *configError) Error() string { return e.msg }

// render prints the subtree or scalar at key ("" = everything) as
// Config.Get does: compact, schema order, doubles as %f.
func (c *sysConfig) render(key string, upto int) ([]byte, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if i, ok := c.index[key]; ok {
		var b bytes.Buffer
		writeConfigValue(&b, c.schema[i].typ, c.valueLocked(key, upto))
		return b.Bytes(), nil
	}
	if key != "" && !c.inner[key] {
		return nil, &configError{404, "invalid config key"}
	}
	var leaves []treeLeaf
	for _, k := range c.schema {
		if rel, ok := under(k.path, key); ok {
			leaves = append(leaves, treeLeaf{rel, k.typ, c.valueLocked(k.path, upto)})
		}
	}
	var b bytes.Buffer
	writeTree(&b, leaves, "")
	return b.Bytes(), nil
}

// under reports whether path lies in the subtree key, and its path there.
func under(path, key string) (string, bool) {
	if key == "" {
		return path, true
	}
	if rest, ok := strings.CutPrefix(path, key+"."); ok {
		return rest, true
	}
	return "", false
}

type treeLeaf struct {
	path string // relative to the tree being printed
	typ  cfgType
	val  any
}

// writeTree prints leaves as nested objects. indent "" prints compactly
// (Config.Get); a non-empty indent pretty-prints (conf9.json) with that
// string as the current line's indentation unit.
func writeTree(b *bytes.Buffer, leaves []treeLeaf, indent string) {
	writeTreeAt(b, leaves, indent, 1)
}

func writeTreeAt(b *bytes.Buffer, leaves []treeLeaf, indent string, depth int) {
	pretty := indent != ""
	b.WriteByte('{')
	for i := 0; i < len(leaves); {
		head, _, nested := strings.Cut(leaves[i].path, ".")
		j := i + 1
		for j < len(leaves) && firstSegment(leaves[j].path) == head {
			j++
		}
		if i > 0 {
			b.WriteByte(',')
		}
		if pretty {
			b.WriteString("\n" + strings.Repeat(indent, depth))
		}
		writeJSONString(b, head)
		b.WriteByte(':')
		if pretty {
			b.WriteByte(' ')
		}
		if nested {
			sub := make([]treeLeaf, 0, j-i)
			for _, l := range leaves[i:j] {
				_, rest, _ := strings.Cut(l.path, ".")
				sub = append(sub, treeLeaf{rest, l.typ, l.val})
			}
			writeTreeAt(b, sub, indent, depth+1)
		} else {
			writeConfigValue(b, leaves[i].typ, leaves[i].val)
		}
		i = j
	}
	if pretty && len(leaves) > 0 {
		b.WriteString("\n" + strings.Repeat(indent, depth-1))
	}
	b.WriteByte('}')
}

func firstSegment(p string) string {
	head, _, _ := strings.Cut(p, ".")
	return head
}

func writeConfigValue(b *bytes.Buffer, t cfgType, v any) {
	switch t {
	case cfgBool:
		b.WriteString(strconv.FormatBool(v.(bool)))
	case cfgInt:
		b.WriteString(strconv.FormatInt(v.(int64), 10))
	case cfgDouble:
		fmt.Fprintf(b, "%f", v.(float64))
	default:
		writeJSONString(b, v.(string))
	}
}

// parseSet reads a Config.Set tree (nested objects, as mos sends it) into
// typed leaf values. Nothing is applied: one bad key refuses the whole set.
func (c *sysConfig) parseSet(prefix string, raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return nil, &configError{400, "invalid config value: " + err.Error()}
	}
	out := map[string]any{}
	if err := c.collect(prefix, tree, out); err != nil {
		return nil, err
	}
	return out, nil
}

func (c *sysConfig) collect(path string, v any, out map[string]any) error {
	if i, ok := c.index[path]; ok {
		val, ok := typedValue(c.schema[i].typ, v)
		if !ok {
			return &configError{400, fmt.Sprintf("invalid config value: %s (want %s, got %s)", path, c.schema[i].typ, jsonKind(v))}
		}
		out[path] = val
		return nil
	}
	if path != "" && !c.inner[path] {
		return &configError{404, "invalid config key: " + path}
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return &configError{400, fmt.Sprintf("invalid config value: %s (want an object, got %s)", strings.TrimPrefix(path, "."), jsonKind(v))}
	}
	names := make([]string, 0, len(obj))
	for k := range obj {
		names = append(names, k)
	}
	slices.Sort(names) // the same error for the same request
	for _, k := range names {
		sub := k
		if path != "" {
			sub = path + "." + k
		}
		if err := c.collect(sub, obj[k], out); err != nil {
			return err
		}
	}
	return nil
}

func typedValue(t cfgType, v any) (any, bool) {
	switch t {
	case cfgBool:
		b, ok := v.(bool)
		return b, ok
	case cfgInt:
		n, ok := v.(json.Number)
		if !ok {
			return nil, false
		}
		i, err := strconv.ParseInt(string(n), 10, 32) // C int on the device
		return i, err == nil
	case cfgDouble:
		n, ok := v.(json.Number)
		if !ok {
			return nil, false
		}
		f, err := n.Float64()
		return f, err == nil
	default:
		s, ok := v.(string)
		return s, ok
	}
}

func jsonKind(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case bool:
		return "bool"
	case json.Number:
		if _, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return "int"
		}
		return "number"
	case string:
		return "string"
	case map[string]any:
		return "object"
	}
	return "array"
}

// set merges vals into level. A value equal to what the levels below give
// is dropped from the level, so that saving keeps only real changes.
func (c *sysConfig) set(level int, vals map[string]any) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, v := range vals {
		if rawValueBelow(c, k, level) == v {
			delete(c.levels[level], k)
			continue
		}
		c.levels[level][k] = v
	}
}

// rawValueBelow is the value levels 0..level-1 give, before placeholder
// expansion, so that "esp32_??????" set by a user counts as the default.
func rawValueBelow(c *sysConfig, path string, level int) any {
	v := c.schema[c.index[path]].def
	for l := 1; l < level; l++ {
		if lv, ok := c.levels[l][path]; ok {
			v = lv
		}
	}
	return v
}

// levelFile is what saving level writes to confN.json: pretty-printed with
// a 2-space indent, only the values that differ from the levels below.
func (c *sysConfig) levelFile(level int) []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var leaves []treeLeaf
	for _, k := range c.schema {
		if v, ok := c.levels[level][k.path]; ok && v != rawValueBelow(c, k.path, level) {
			leaves = append(leaves, treeLeaf{k.path, k.typ, v})
		}
	}
	var b bytes.Buffer
	writeTree(&b, leaves, "  ")
	b.WriteByte('\n')
	return b.Bytes()
}

// load reads a level's file. Unknown keys and values of the wrong type are
// skipped, as the firmware does with a file from another build; the first
// problem is returned for the log.
func (c *sysConfig) load(level int, data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return err
	}
	vals := map[string]any{}
	var first error
	var walk func(path string, v any)
	walk = func(path string, v any) {
		if obj, ok := v.(map[string]any); ok && (path == "" || c.inner[path]) {
			for k, sub := range obj {
				p := k
				if path != "" {
					p = path + "." + k
				}
				walk(p, sub)
			}
			return
		}
		i, ok := c.index[path]
		if !ok {
			if first == nil {
				first = fmt.Errorf("unknown key %s", path)
			}
			return
		}
		if val, ok := typedValue(c.schema[i].typ, v); ok {
			vals[path] = val
		} else if first == nil {
			first = fmt.Errorf("%s: want %s", path, c.schema[i].typ)
		}
	}
	walk("", tree)
	c.mu.Lock()
	c.levels[level] = vals
	c.mu.Unlock()
	return first
}

func levelFileName(level int) string { return fmt.Sprintf("conf%d.json", level) }

// writeJSONString writes s as a JSON string without Go's HTML escaping,
// as the device's printf-style JSON writer does.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode's newline
}

// validate checks the configuration that merging vals into level would
// give, with the checks the firmware's libraries register: Mongoose OS runs
// them when it saves (mgos_sys_config_save); the demo runs them before it
// merges anything, so a rejected Config.Set changes neither RAM nor flash.
func (c *sysConfig) validate(level int, vals map[string]any) error {
	c.mu.RLock()
	defer c.mu.RUnlock()
	get := func(path string) any {
		v := c.schema[c.index[path]].def
		for l := 1; l <= maxLevel; l++ {
			if nv, ok := vals[path]; ok && l == level {
				v = nv
			} else if lv, ok := c.levels[l][path]; ok {
				v = lv
			}
		}
		return v
	}
	for _, check := range configChecks {
		if msg := check(get); msg != "" {
			return &configError{400, "invalid config value: " + msg}
		}
	}
	return nil
}

// configChecks are the validators of the libraries the demo is built
// with. The Wi-Fi library's (mongoose-os-libs/wifi, mgos_wifi.c:
// mgos_wifi_validate_sta_cfg and mgos_wifi_validate_ap_cfg) check an
// enabled station's and access point's SSID (1 to 31 chars) and password
// (none, or 8 to 63 chars), with these messages.
var configChecks = []func(get func(string) any) string{
	wifiCheck("wifi.sta", "STA"), wifiCheck("wifi.sta1", "STA"), wifiCheck("wifi.sta2", "STA"),
	wifiCheck("wifi.ap", "AP"),
}

func wifiCheck(prefix, what string) func(get func(string) any) string {
	return func(get func(string) any) string {
		if on, _ := get(prefix + ".enable").(bool); !on {
			return ""
		}
		ssid, _ := get(prefix + ".ssid").(string)
		pass, _ := get(prefix + ".pass").(string)
		if len(ssid) < 1 || len(ssid) > 31 {
			return fmt.Sprintf("%s SSID must be between 1 and 31 chars", what)
		}
		if pass != "" && (len(pass) < 8 || len(pass) > 63) {
			return fmt.Sprintf("%s password must be between 8 and 63 chars", what)
		}
		return ""
	}
}
