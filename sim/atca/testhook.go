package atca

// PrivateScalarForTest returns the private key in slot as the 32-byte
// big-endian scalar, or nil when the slot holds no key.
//
// For tests only. It is not a chip command: the ATECC508A has none that
// returns a private key, the firmware model never calls this, and nothing
// outside _test.go files may. It exists because a test that proves the
// key never reaches the host (in any file, log or output) must know the
// secret it searches for, and such tests live in other packages (the
// command line's end-to-end tests), which cannot see an export_test.go
// hook of this package.
func PrivateScalarForTest(c *Chip, slot int) []byte {
	if slot < 0 || slot >= NumSlots {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := c.keys[slot]
	if k == nil {
		return nil
	}
	b := make([]byte, 32)
	k.D.FillBytes(b)
	return b
}
