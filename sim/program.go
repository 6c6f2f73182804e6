package sim

import (
	"fmt"

	"github.com/mos-tool/mos/fwbundle"
)

// ProgramBundle writes every part of a firmware bundle straight into the
// flash, as a board programmed before it reaches the user would arrive:
// tests and demos that are about the running firmware start from there
// without flashing over the serial line. It takes effect at the next boot.
func (d *Device) ProgramBundle(path string) error {
	b, err := fwbundle.Open(path)
	if err != nil {
		return err
	}
	for _, part := range b.Parts {
		if _, err := d.flash.Program(part.Addr, part.Data); err != nil {
			return fmt.Errorf("part %s: %w", part.Name, err)
		}
	}
	return nil
}
