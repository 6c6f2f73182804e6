package flasher

import (
	"fmt"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/flasher/stubs"
)

// Stub is a flasher stub program for one chip: Espressif's images,
// vendored unchanged in flasher/stubs (see its README.md).
type Stub = stubs.Image

// StubFor returns the stub image for a chip.
func StubFor(c *chips.Chip) (*Stub, error) {
	s, err := stubs.ForChip(c.Key)
	if err != nil {
		return nil, fmt.Errorf("no flasher stub for %s", c.Name)
	}
	return s, nil
}
