package atca

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"math/big"
	"os"
	"path/filepath"
	"testing"
)

var testSerial = [5]byte{1, 2, 3, 4, 5}

// lockedChip: both zones locked, a key made in slot 0.
func lockedChip(t *testing.T) *Chip {
	t.Helper()
	c := New(testSerial)
	if err := c.Lock(ZoneConfig); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GenKey(0); err != nil {
		t.Fatal(err)
	}
	if err := c.Lock(ZoneData); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRefusals: each command the datasheet says the chip refuses in a
// given state is refused with the status CryptoAuthLib reports.
func TestRefusals(t *testing.T) {
	digest := sha256.Sum256([]byte("x"))
	tests := []struct {
		name   string
		source string // where the rule comes from
		setup  func(t *testing.T) *Chip
		op     func(c *Chip) error
		want   Status
	}{
		{"GenKey before the config lock", "datasheet: GenKey; cryptoauthlib ATCA_EXECUTION_ERROR",
			func(t *testing.T) *Chip { return New(testSerial) },
			func(c *Chip) error { _, err := c.GenKey(0); return err }, StatusExecutionError},
		{"GetPubKey before the config lock", "datasheet: GenKey mode 0x00",
			func(t *testing.T) *Chip { return New(testSerial) },
			func(c *Chip) error { _, err := c.PublicKey(0); return err }, StatusExecutionError},
		{"GenKey on a data slot", "datasheet: KeyConfig.Private / KeyType",
			func(t *testing.T) *Chip { c := New(testSerial); c.Lock(ZoneConfig); return c },
			func(c *Chip) error { _, err := c.GenKey(9); return err }, StatusExecutionError},
		{"GenKey slot out of range", "16 slots (datasheet); cryptoauthlib ATCA_BAD_PARAM",
			func(t *testing.T) *Chip { c := New(testSerial); c.Lock(ZoneConfig); return c },
			func(c *Chip) error { _, err := c.GenKey(16); return err }, StatusBadParam},
		{"GetPubKey of an empty key slot", "mbedTLS ATCA glue: execution error for a slot never generated",
			func(t *testing.T) *Chip { c := New(testSerial); c.Lock(ZoneConfig); return c },
			func(c *Chip) error { _, err := c.PublicKey(1); return err }, StatusExecutionError},
		{"Sign before the data lock", "datasheet: Sign (data zone must be locked)",
			func(t *testing.T) *Chip {
				c := New(testSerial)
				c.Lock(ZoneConfig)
				if _, err := c.GenKey(0); err != nil {
					t.Fatal(err)
				}
				return c
			},
			func(c *Chip) error { _, err := c.Sign(0, digest[:]); return err }, StatusExecutionError},
		{"Sign with a short digest", "Sign takes a 32-byte message (datasheet)",
			lockedChip, func(c *Chip) error { _, err := c.Sign(0, digest[:31]); return err }, StatusBadParam},
		{"Sign with a data slot", "datasheet: Sign, the key must be a private key",
			lockedChip, func(c *Chip) error { _, err := c.Sign(8, digest[:]); return err }, StatusExecutionError},
		{"read a private key slot", "datasheet: Read, private keys can never be read",
			lockedChip, func(c *Chip) error { _, err := c.ReadSlot(0); return err }, StatusExecutionError},
		{"read the data zone before its lock", "datasheet: Read",
			func(t *testing.T) *Chip { c := New(testSerial); c.Lock(ZoneConfig); return c },
			func(c *Chip) error { _, err := c.ReadSlot(9); return err }, StatusExecutionError},
		{"write the config zone after its lock", "datasheet: Write",
			func(t *testing.T) *Chip { c := New(testSerial); c.Lock(ZoneConfig); return c },
			func(c *Chip) error { cfg := c.Config(); return c.WriteConfig(cfg[:]) }, StatusExecutionError},
		{"write a short config", "mos-wire-formats ATCA.SetConfig: 128 bytes",
			func(t *testing.T) *Chip { return New(testSerial) },
			func(c *Chip) error { return c.WriteConfig(make([]byte, 64)) }, StatusBadParam},
		{"write a data slot after the data lock", "datasheet: Write",
			lockedChip, func(c *Chip) error { return c.WriteSlot(9, []byte{1}) }, StatusExecutionError},
		{"write a private key slot in clear", "datasheet: Write / PrivWrite",
			func(t *testing.T) *Chip { c := New(testSerial); c.Lock(ZoneConfig); return c },
			func(c *Chip) error { return c.WriteSlot(0, []byte{1}) }, StatusExecutionError},
		{"lock the config zone twice", "datasheet: Lock",
			func(t *testing.T) *Chip { c := New(testSerial); c.Lock(ZoneConfig); return c },
			func(c *Chip) error { return c.Lock(ZoneConfig) }, StatusExecutionError},
		{"lock the data zone before the config zone", "datasheet: Lock",
			func(t *testing.T) *Chip { return New(testSerial) },
			func(c *Chip) error { return c.Lock(ZoneData) }, StatusExecutionError},
		{"lock the data zone twice", "datasheet: Lock",
			lockedChip, func(c *Chip) error { return c.Lock(ZoneData) }, StatusExecutionError},
		{"lock zone 2", "datasheet: Lock mode: parse error",
			func(t *testing.T) *Chip { return New(testSerial) },
			func(c *Chip) error { return c.Lock(2) }, StatusParseError},
		{"GenKey after the data lock on a slot that forbids it", "datasheet: SlotConfig.WriteConfig",
			func(t *testing.T) *Chip {
				c := New(testSerial)
				cfg := c.Config()
				binary.LittleEndian.PutUint16(cfg[offSlotConfig+2*3:], 0x0083) // no GenKey after lock
				if err := c.WriteConfig(cfg[:]); err != nil {
					t.Fatal(err)
				}
				c.Lock(ZoneConfig)
				c.Lock(ZoneData)
				return c
			},
			func(c *Chip) error { _, err := c.GenKey(3); return err }, StatusExecutionError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := tt.setup(t)
			err := tt.op(c)
			if err == nil {
				t.Fatalf("accepted; the chip refuses it (%s)", tt.source)
			}
			if got := StatusOf(err); got != tt.want {
				t.Fatalf("status 0x%02x (%v), want 0x%02x (%s)", byte(got), err, byte(tt.want), tt.source)
			}
		})
	}
}

func TestSignVerifiesAndCounts(t *testing.T) {
	c := lockedChip(t)
	raw, err := c.PublicKey(0)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := ParsePublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	digest := sha256.Sum256([]byte("hello"))
	sig, err := c.Sign(0, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		t.Fatal("the signature does not verify with the slot's public key")
	}
	if c.Signs() != 1 {
		t.Fatalf("Signs() = %d, want 1", c.Signs())
	}
}

func TestWriteConfigKeepsReadOnlyBytes(t *testing.T) {
	c := New(testSerial)
	before := c.Config()
	junk := bytes.Repeat([]byte{0xAB}, ConfigSize)
	if err := c.WriteConfig(junk); err != nil {
		t.Fatal(err)
	}
	after := c.Config()
	if !bytes.Equal(after[:16], before[:16]) || !bytes.Equal(after[84:88], before[84:88]) {
		t.Fatalf("serial, revision or lock bytes changed: % x", after[:])
	}
	if after[20] != 0xAB || after[127] != 0xAB {
		t.Fatal("writable bytes were not written")
	}
	if after[offSerial0] != 0x01 || after[offSerial0+1] != 0x23 || after[offSerial1+4] != 0xEE {
		t.Fatalf("serial number % x does not have the ATECC508A's fixed bytes", after[:13])
	}
}

func TestStatePersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "board.flash.atca")
	c, err := Open(path, testSerial)
	if err != nil {
		t.Fatal(err)
	}
	c.Lock(ZoneConfig)
	pub, err := c.GenKey(0)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("state file mode %v, want 0600", st.Mode().Perm())
	}
	c2, err := Open(path, [5]byte{})
	if err != nil {
		t.Fatal(err)
	}
	if !c2.Locked(ZoneConfig) || c2.Locked(ZoneData) {
		t.Fatal("lock state not kept")
	}
	pub2, err := c2.PublicKey(0)
	if err != nil || !bytes.Equal(pub, pub2) {
		t.Fatalf("key not kept: %v", err)
	}
	os.WriteFile(path, []byte(`{"config":"AAAA"}`), 0o600)
	if _, err := Open(path, testSerial); err == nil {
		t.Fatal("a damaged state file was accepted")
	}
}
