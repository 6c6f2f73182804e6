package atca

import (
	"bytes"
	"crypto/elliptic"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrivateScalarForTest: the hook returns the scalar of the slot's
// public key, nothing for an empty or invalid slot, and no code outside
// tests calls it (the chip's private keys never leave it in real use).
func TestPrivateScalarForTest(t *testing.T) {
	c := lockedChip(t)
	pub, err := c.PublicKey(0)
	if err != nil {
		t.Fatal(err)
	}
	d := PrivateScalarForTest(c, 0)
	x, y := elliptic.P256().ScalarBaseMult(d)
	got := make([]byte, 64)
	x.FillBytes(got[:32])
	y.FillBytes(got[32:])
	if len(d) != 32 || !bytes.Equal(got, pub) {
		t.Fatalf("the scalar does not belong to slot 0's public key")
	}
	for _, slot := range []int{1, -1, NumSlots} {
		if d := PrivateScalarForTest(c, slot); d != nil {
			t.Errorf("slot %d: got a key", slot)
		}
	}

	root := filepath.Join("..", "..")
	err = filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") || p == filepath.Join(root, "sim", "atca", "testhook.go") {
			return err
		}
		b, err := os.ReadFile(p)
		if err == nil && bytes.Contains(b, []byte("PrivateScalarForTest")) {
			t.Errorf("%s calls PrivateScalarForTest outside a test", p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
