// Package stubs holds Espressif's flasher stub images (vendored data, see
// README.md), so that the host that uploads them and the virtual device
// that recognises them read the same files.
package stubs

import (
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

//go:embed *.json
var files embed.FS

// Image is a flasher stub program for one chip.
type Image struct {
	Entry     uint32
	TextStart uint32
	Text      []byte
	DataStart uint32
	Data      []byte
}

// ForChip returns the stub image for a chip key (esp32, esp8266, ...).
func ForChip(key string) (*Image, error) {
	raw, err := files.ReadFile(key + ".json")
	if err != nil {
		return nil, fmt.Errorf("no flasher stub for %s", key)
	}
	var j struct {
		Entry     uint32 `json:"entry"`
		Text      string `json:"text"`
		TextStart uint32 `json:"text_start"`
		Data      string `json:"data"`
		DataStart uint32 `json:"data_start"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("stub for %s: %w", key, err)
	}
	s := &Image{Entry: j.Entry, TextStart: j.TextStart, DataStart: j.DataStart}
	if s.Text, err = base64.StdEncoding.DecodeString(j.Text); err != nil {
		return nil, fmt.Errorf("stub for %s: text: %w", key, err)
	}
	if s.Data, err = base64.StdEncoding.DecodeString(j.Data); err != nil {
		return nil, fmt.Errorf("stub for %s: data: %w", key, err)
	}
	return s, nil
}
