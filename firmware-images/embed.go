// Package firmwareimages carries the demo firmware bundles inside the mos
// binary: the embedded default that `mos provision` flashes when no
// firmware is named, so one command takes a blank board (or the virtual
// device) to a configured one with nothing else to download.
package firmwareimages

import (
	"bytes"
	"embed"
	"fmt"

	"github.com/mos-tool/mos/fwbundle"
)

//go:embed *-demo.zip
var bundles embed.FS

// Demo returns the demo bundle for a chip ("esp32", "esp32c3", ...).
func Demo(chipKey string) (*fwbundle.Bundle, error) {
	name := chipKey + "-demo.zip"
	data, err := bundles.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("no embedded demo firmware for %s (there is one for esp8266, esp32 and esp32c3): name a bundle", chipKey)
	}
	return fwbundle.Read(bytes.NewReader(data), int64(len(data)), "embedded:"+name)
}
