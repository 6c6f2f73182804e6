package fwbundle

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Manifest is a bundle's manifest.json. Keys this package does not know
// (fs_size, encrypt, update, ...) are kept in Extra and written back, so
// that reading and re-packing a bundle loses nothing.
type Manifest struct {
	Name           string
	Platform       string // "esp32"; bundles for other platforms are read but refused by Validate
	Version        string
	BuildID        string
	BuildTimestamp string // RFC 3339
	Description    string
	Parts          map[string]*ManifestPart // keyed by part name
	Extra          map[string]json.RawMessage
}

// ManifestPart is one entry of the manifest's "parts".
type ManifestPart struct {
	Type     string
	Src      string // zip entry (matched by base name, as mos does); "" for fill parts
	Addr     Number
	Size     Number // src length, or the region a fill covers
	Fill     *uint8 // fill byte; nil when the part has a src
	Flash    *bool  // nil means true
	CSSHA1   string // lowercase hex of src
	CSSHA256 string
	Ptn      string // ESP32: partition label, resolved through the "pt" part
	Extra    map[string]json.RawMessage
}

// Flashed reports whether the manifest asks for the part to be written
// (the "flash" key, true when absent).
func (p *ManifestPart) Flashed() bool { return p.Flash == nil || *p.Flash }

// Number is a uint32 in a manifest. mos writes numbers; hand-written
// manifests often say "0x10000", so a string in C syntax is read too.
type Number uint32

func (n *Number) UnmarshalJSON(b []byte) error {
	var s string
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	} else {
		s = string(b)
	}
	v, err := ParseAddr(s)
	if err != nil {
		return err
	}
	*n = Number(v)
	return nil
}

// ParseAddr reads an address or size: decimal, or hexadecimal with 0x.
func ParseAddr(s string) (uint32, error) {
	s = strings.TrimSpace(s)
	base := 10
	if len(s) > 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s, base = s[2:], 16
	}
	v, err := strconv.ParseUint(s, base, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not an address (decimal, or hex with 0x) below 4 GiB", s)
	}
	return uint32(v), nil
}

// ParseManifest reads manifest.json.
func ParseManifest(data []byte) (*Manifest, error) {
	m := &Manifest{}
	if err := json.Unmarshal(data, m); err != nil {
		return nil, err
	}
	return m, nil
}

// field is one known key: where its value goes.
type field struct {
	key  string
	dst  any
	omit func() bool // true: leave the key out when writing
}

func (m *Manifest) fields() []field {
	empty := func(s *string) func() bool { return func() bool { return *s == "" } }
	return []field{
		{"name", &m.Name, empty(&m.Name)},
		{"platform", &m.Platform, empty(&m.Platform)},
		{"version", &m.Version, empty(&m.Version)},
		{"build_id", &m.BuildID, empty(&m.BuildID)},
		{"build_timestamp", &m.BuildTimestamp, empty(&m.BuildTimestamp)},
		{"description", &m.Description, empty(&m.Description)},
		{"parts", &m.Parts, func() bool { return false }},
	}
}

func (p *ManifestPart) fields() []field {
	empty := func(s *string) func() bool { return func() bool { return *s == "" } }
	return []field{
		{"type", &p.Type, empty(&p.Type)},
		{"src", &p.Src, empty(&p.Src)},
		// addr is always written: 0 is a real address (the ESP8266 image).
		{"addr", &p.Addr, func() bool { return false }},
		{"size", &p.Size, func() bool { return p.Size == 0 }},
		{"fill", &p.Fill, func() bool { return p.Fill == nil }},
		{"flash", &p.Flash, func() bool { return p.Flash == nil }},
		{"cs_sha1", &p.CSSHA1, empty(&p.CSSHA1)},
		{"cs_sha256", &p.CSSHA256, empty(&p.CSSHA256)},
		{"ptn", &p.Ptn, empty(&p.Ptn)},
	}
}

// decodeObject fills the known fields from a JSON object and returns the
// other keys.
func decodeObject(b []byte, fs []field) (map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return nil, errors.New("not a JSON object")
	}
	for _, f := range fs {
		v, ok := raw[f.key]
		if !ok {
			continue
		}
		delete(raw, f.key)
		if string(v) == "null" {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return nil, fmt.Errorf("%q: %w", f.key, err)
		}
	}
	if len(raw) == 0 {
		return nil, nil
	}
	return raw, nil
}

// encodeObject writes the known fields and extra as one object. Keys come
// out sorted (encoding/json sorts map keys), so the same manifest always
// encodes to the same bytes.
func encodeObject(fs []field, extra map[string]json.RawMessage) ([]byte, error) {
	out := make(map[string]json.RawMessage, len(fs)+len(extra))
	for k, v := range extra {
		out[k] = v
	}
	for _, f := range fs {
		if f.omit() {
			continue
		}
		b, err := json.Marshal(f.dst)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", f.key, err)
		}
		out[f.key] = b
	}
	return json.Marshal(out)
}

func (m *Manifest) UnmarshalJSON(b []byte) error {
	extra, err := decodeObject(b, m.fields())
	if err != nil {
		return err
	}
	m.Extra = extra
	for name, p := range m.Parts {
		if p == nil {
			return fmt.Errorf("part %q is null", name)
		}
	}
	return nil
}

func (m *Manifest) MarshalJSON() ([]byte, error) {
	c := *m
	if c.Parts == nil {
		c.Parts = map[string]*ManifestPart{} // {} rather than null
	}
	return encodeObject(c.fields(), c.Extra)
}

func (p *ManifestPart) UnmarshalJSON(b []byte) error {
	extra, err := decodeObject(b, p.fields())
	if err != nil {
		return err
	}
	p.Extra = extra
	return nil
}

func (p *ManifestPart) MarshalJSON() ([]byte, error) {
	return encodeObject(p.fields(), p.Extra)
}

// Encode returns the manifest as written into a bundle: indented JSON with
// sorted keys and a final newline.
func (m *Manifest) Encode() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return nil, err
	}
	out.WriteByte('\n')
	return out.Bytes(), nil
}
