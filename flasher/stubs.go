package flasher

import (
	"embed"
	"encoding/base64"
	"encoding/json"
	"fmt"

	"github.com/mos-tool/mos/chips"
)

// Espressif's flasher stub images, vendored unchanged (see stubs/README.md).
//
//go:embed stubs/*.json
var stubFiles embed.FS

// Stub is a flasher stub program for one chip.
type Stub struct {
	Entry     uint32
	TextStart uint32
	Text      []byte
	DataStart uint32
	Data      []byte
}

// StubFor returns the stub image for a chip.
func StubFor(c *chips.Chip) (*Stub, error) {
	raw, err := stubFiles.ReadFile("stubs/" + c.Key + ".json")
	if err != nil {
		return nil, fmt.Errorf("no flasher stub for %s", c.Name)
	}
	var j struct {
		Entry     uint32 `json:"entry"`
		Text      string `json:"text"`
		TextStart uint32 `json:"text_start"`
		Data      string `json:"data"`
		DataStart uint32 `json:"data_start"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		return nil, fmt.Errorf("stub for %s: %w", c.Name, err)
	}
	s := &Stub{Entry: j.Entry, TextStart: j.TextStart, DataStart: j.DataStart}
	if s.Text, err = base64.StdEncoding.DecodeString(j.Text); err != nil {
		return nil, fmt.Errorf("stub for %s: text: %w", c.Name, err)
	}
	if s.Data, err = base64.StdEncoding.DecodeString(j.Data); err != nil {
		return nil, fmt.Errorf("stub for %s: data: %w", c.Name, err)
	}
	return s, nil
}
