package fwbundle

import (
	"bytes"
	"encoding/json"
	"testing"
)

func TestNumber(t *testing.T) {
	tests := []struct {
		in   string
		want uint32
		ok   bool
	}{
		{`4096`, 4096, true},
		{`"0x10000"`, 0x10000, true},
		{`"0X1F"`, 0x1F, true},
		{`"65536"`, 65536, true},
		{`0`, 0, true},
		{`4294967295`, 0xFFFFFFFF, true},
		{`4294967296`, 0, false},
		{`-1`, 0, false},
		{`1.5`, 0, false},
		{`"0xZZ"`, 0, false},
		{`"ten"`, 0, false},
		{`true`, 0, false},
	}
	for _, tt := range tests {
		var n Number
		err := json.Unmarshal([]byte(tt.in), &n)
		if (err == nil) != tt.ok || (tt.ok && uint32(n) != tt.want) {
			t.Errorf("%s: got %d, %v; want %d, ok=%v", tt.in, n, err, tt.want, tt.ok)
		}
	}
}

// Unknown keys survive a read and a write, and writing is stable.
func TestManifestRoundTrip(t *testing.T) {
	in := `{"name": "demo", "platform": "esp32", "version": "1.0", "build_id": "x", "build_timestamp": "2024-01-02T03:04:05Z",
	  "custom": {"a": [1, 2]},
	  "parts": {
	    "boot": {"type": "boot", "addr": "0x1000", "src": "b.bin", "size": 3, "encrypt": true, "update": false, "cs_sha1": "ab"},
	    "nvs": {"type": "nvs", "ptn": "nvs", "fill": 255, "size": 16384, "flash": false}}}`
	m, err := ParseManifest([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	boot, nvs := m.Parts["boot"], m.Parts["nvs"]
	if m.Name != "demo" || boot.Addr != 0x1000 || boot.Src != "b.bin" || boot.CSSHA1 != "ab" || !boot.Flashed() {
		t.Errorf("boot %+v", boot)
	}
	if nvs.Fill == nil || *nvs.Fill != 255 || nvs.Flashed() || nvs.Ptn != "nvs" {
		t.Errorf("nvs %+v", nvs)
	}
	if string(m.Extra["custom"]) != `{"a": [1, 2]}` || string(boot.Extra["encrypt"]) != "true" || string(boot.Extra["update"]) != "false" {
		t.Errorf("extras lost: %s %v", m.Extra, boot.Extra)
	}
	out1, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m2, err := ParseManifest(out1)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := m2.Encode()
	if !bytes.Equal(out1, out2) {
		t.Errorf("not stable:\n%s\n%s", out1, out2)
	}
	for _, want := range []string{`"encrypt": true`, `"custom": {`, `"addr": 4096`, `"flash": false`, `"fill": 255`} {
		if !bytes.Contains(out1, []byte(want)) {
			t.Errorf("output lacks %s:\n%s", want, out1)
		}
	}
}

func TestManifestErrors(t *testing.T) {
	for _, in := range []string{
		`[]`,
		`{"parts": {"a": null}}`,
		`{"parts": {"a": {"addr": "zz"}}}`,
		`{"parts": {"a": {"fill": 256}}}`,
		`{"name": 5}`,
		`{"parts": []}`,
		`not json`,
	} {
		if _, err := ParseManifest([]byte(in)); err == nil {
			t.Errorf("%s: no error", in)
		}
	}
}
