// Package atca models a Microchip ATECC508A crypto-authentication chip as
// it sits on a board next to the ESP chip (I2C address 0x60): a 128-byte
// configuration zone and a data zone of 16 slots, each zone locked once
// and for ever; P-256 private keys made inside the chip (GenKey) that no
// command can read; public keys computed from them; ECDSA signatures over
// a 32-byte digest.
//
// The model follows the ATECC508A datasheet (Microchip DS20005927A, "ATECC508A
// Complete Data Sheet"; rules below name the command whose description
// states them; the config zone offsets are also in mos-wire-formats'
// ATCA section as Mongoose OS used them) and reports
// failures with the status codes of Microchip's CryptoAuthLib
// (lib/atca_status.h), which is what firmware sees and prints. It covers
// what Mongoose OS's atca library and mos use: Read/Write of the
// configuration zone, Lock, GenKey, public key computation and Sign. It
// does not model the I2C wire, the watchdog, MAC/CheckMac, ECDH or the
// encrypted Read/Write.
//
// A chip is board hardware: one value per board, shared by every boot of
// the firmware. New keeps its state in memory; Open also keeps it in a file
// (the chip's EEPROM), written 0600 after every change. That file holds
// the private keys as the silicon does: it belongs to the virtual board,
// like its flash file, and nothing on the chip's command interface ever
// returns it.
package atca

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"sync"
)

// Status is a CryptoAuthLib status code (lib/atca_status.h), as returned
// by the atcab_* calls the firmware makes.
type Status byte

// The status codes the model returns. The chip itself answers 0x0F
// ("execution error": the command is valid but not allowed in the chip's
// state; the datasheet's status codes) or 0x03 ("parse error": bad
// opcode or parameters); CryptoAuthLib turns those into the codes below.
const (
	StatusSuccess        Status = 0x00 // ATCA_SUCCESS
	StatusParseError     Status = 0xD2 // ATCA_PARSE_ERROR: chip status 0x03
	StatusBadParam       Status = 0xE2 // ATCA_BAD_PARAM: refused by the library before sending
	StatusExecutionError Status = 0xF4 // ATCA_EXECUTION_ERROR: chip status 0x0F
)

// Error is a refused or failed chip command.
type Error struct {
	Op     string // what was asked, e.g. "GenKey slot 0"
	Status Status
	Why    string // which rule of the chip refused it
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s: 0x%02x (%s)", e.Op, byte(e.Status), e.Why)
}

// StatusOf returns the chip status of err, or StatusExecutionError for an
// error that did not come from the chip.
func StatusOf(err error) Status {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return StatusExecutionError
}

// Zone numbers as the Lock command and Mongoose OS's ATCA.LockZone take them.
const (
	ZoneConfig = 0
	ZoneData   = 1
)

// Configuration zone layout (datasheet, "Configuration Zone" map).
const (
	ConfigSize = 128
	NumSlots   = 16

	offSerial0     = 0  // SN[0:4]
	offRevision    = 4  // RevNum[4]
	offSerial1     = 8  // SN[4:9]
	offI2CEnable   = 14 // bit 0: 1 = I2C interface
	offI2CAddress  = 16 // 8-bit I2C address (0xC0: 7-bit 0x60)
	offSlotConfig  = 20 // SlotConfig[16], little-endian 16-bit
	offLockValue   = 86 // data zone lock: 0x55 unlocked, 0x00 locked
	offLockConfig  = 87 // config zone lock: same values
	offKeyConfig   = 96 // KeyConfig[16], little-endian 16-bit
	lockedByte     = 0x00
	unlockedByte   = 0x55
	firstWritable  = 16 // bytes 0-15 are read-only ("Write access: Never")
	userExtraStart = 84 // UserExtra, Selector, LockValue, LockConfig: written by
	userExtraEnd   = 88 // UpdateExtra and Lock only, never by Write (datasheet)

	// KeyConfig bits (datasheet, "KeyConfig").
	keyConfigPrivate = 1 << 0 // the slot holds an ECC private key
	keyTypeShift     = 2      // KeyType bits 2-4
	keyTypeMask      = 7 << keyTypeShift
	keyTypeP256      = 4 // "P256 NIST ECC key"
	// SlotConfig bit 13 (WriteConfig bit 1) for a private key slot: GenKey
	// may make a new key after the data zone is locked (datasheet, SlotConfig).
	slotConfigGenKeyAfterLock = 1 << 13
)

// The revision the model reports: bytes 4-7 of an ATECC508A read 00 00 50 00
// (datasheet, RevNum); a value >= 0x6000 would be an ATECC608A.
var revision508A = [4]byte{0x00, 0x00, 0x50, 0x00}

// Chip is one ATECC508A.
type Chip struct {
	mu     sync.Mutex
	config [ConfigSize]byte
	keys   [NumSlots]*ecdsa.PrivateKey // private keys made by GenKey
	data   [NumSlots][]byte            // other slots' contents (Write before data lock)
	path   string                      // where the state is kept ("": memory only)
	signs  int                         // Sign commands that produced a signature
	random io.Reader
}

// New makes a chip in its factory state: configuration unlocked, the
// serial number taken from serial (the chip's nine bytes SN[0..8] are
// 01 23 xx xx xx xx xx xx EE on every ATECC508A).
func New(serial [5]byte) *Chip {
	c := &Chip{random: rand.Reader}
	c.factory(serial)
	return c
}

// Open returns the chip whose state is kept in path, creating it in its
// factory state (serial as New) when the file does not exist.
func Open(path string, serial [5]byte) (*Chip, error) {
	c := New(serial)
	c.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return c, c.saveLocked()
	}
	if err != nil {
		return nil, fmt.Errorf("atca: reading the chip state: %w", err)
	}
	if err := c.unmarshal(b); err != nil {
		return nil, fmt.Errorf("atca: %s: %w (delete it to start from a factory-new chip)", path, err)
	}
	return c, nil
}

// factory fills the configuration zone as our factory image: serial and
// revision, I2C at 0xC0, slots 0-7 P-256 private keys whose key GenKey may
// renew after the data lock (SlotConfig 0x2083, KeyConfig 0x0033, the
// layout of Microchip's "standard TLS" examples for slot 0), slots 8-15
// data slots (SlotConfig 0x0000, KeyConfig 0x003C), both zones unlocked.
func (c *Chip) factory(serial [5]byte) {
	c.config = [ConfigSize]byte{}
	cfg := c.config[:]
	copy(cfg[offSerial0:], []byte{0x01, 0x23, serial[0], serial[1]})
	copy(cfg[offRevision:], revision508A[:])
	copy(cfg[offSerial1:], []byte{serial[2], serial[3], serial[4], 0x00, 0xEE})
	cfg[offSerial1+3] = serial[0] ^ serial[4] // SN[7], any value
	cfg[offI2CEnable] = 0x01
	cfg[offI2CAddress] = 0xC0
	for s := range NumSlots {
		sc, kc := uint16(0x2083), uint16(0x0033)
		if s >= 8 {
			sc, kc = 0x0000, 0x003C
		}
		binary.LittleEndian.PutUint16(cfg[offSlotConfig+2*s:], sc)
		binary.LittleEndian.PutUint16(cfg[offKeyConfig+2*s:], kc)
	}
	cfg[offLockValue] = unlockedByte
	cfg[offLockConfig] = unlockedByte
}

// Path is the file the chip's state is kept in ("": memory only).
func (c *Chip) Path() string { return c.path }

// Config returns the 128 bytes of the configuration zone. Reading it is
// always allowed (datasheet: "Read access: Always").
func (c *Chip) Config() [ConfigSize]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.config
}

// Locked reports whether a zone is locked.
func (c *Chip) Locked(zone int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lockedLocked(zone)
}

func (c *Chip) lockedLocked(zone int) bool {
	if zone == ZoneConfig {
		return c.config[offLockConfig] != unlockedByte
	}
	return c.config[offLockValue] != unlockedByte
}

// WriteConfig writes the configuration zone as CryptoAuthLib's
// atcab_write_config_zone does: bytes 16-83 and 88-127 of cfg; bytes 0-15
// (serial, revision: never writable) and 84-87 (UserExtra, Selector, the
// lock bytes: changed only by UpdateExtra and Lock) are left as they are.
// Refused once the configuration zone is locked (datasheet, Write:
// "If the Configuration zone is locked, ... the Write command returns an
// error").
func (c *Chip) WriteConfig(cfg []byte) error {
	if len(cfg) != ConfigSize {
		return &Error{"Write config", StatusBadParam, fmt.Sprintf("expected %d bytes, got %d", ConfigSize, len(cfg))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lockedLocked(ZoneConfig) {
		return &Error{"Write config", StatusExecutionError, "the configuration zone is locked"}
	}
	copy(c.config[firstWritable:userExtraStart], cfg[firstWritable:userExtraStart])
	copy(c.config[userExtraEnd:], cfg[userExtraEnd:])
	return c.saveLocked()
}

// Lock locks a zone for ever (datasheet, Lock). The data zone can only
// be locked after the configuration zone; a zone cannot be locked twice.
// The model takes the no-CRC form of the command (Mode bit 7), which is
// what Mongoose OS's ATCA.LockZone sends.
func (c *Chip) Lock(zone int) error {
	op := fmt.Sprintf("Lock zone %d", zone)
	if zone != ZoneConfig && zone != ZoneData {
		return &Error{op, StatusParseError, "no such zone"}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lockedLocked(zone) {
		return &Error{op, StatusExecutionError, "the zone is already locked"}
	}
	if zone == ZoneData && !c.lockedLocked(ZoneConfig) {
		return &Error{op, StatusExecutionError, "the configuration zone must be locked first"}
	}
	if zone == ZoneConfig {
		c.config[offLockConfig] = lockedByte
	} else {
		c.config[offLockValue] = lockedByte
	}
	return c.saveLocked()
}

func (c *Chip) slotConfig(slot int) uint16 {
	return binary.LittleEndian.Uint16(c.config[offSlotConfig+2*slot:])
}

func (c *Chip) keyConfig(slot int) uint16 {
	return binary.LittleEndian.Uint16(c.config[offKeyConfig+2*slot:])
}

func (c *Chip) isP256Private(slot int) bool {
	kc := c.keyConfig(slot)
	return kc&keyConfigPrivate != 0 && (kc&keyTypeMask)>>keyTypeShift == keyTypeP256
}

func checkSlot(op string, slot int) error {
	if slot < 0 || slot >= NumSlots {
		return &Error{op, StatusBadParam, fmt.Sprintf("slot %d out of range 0..%d", slot, NumSlots-1)}
	}
	return nil
}

// GenKey makes a new P-256 private key inside the chip in slot and returns
// its public key as 64 bytes X||Y (datasheet, GenKey mode 0x04). The
// private key never leaves the chip. Refused when the configuration zone
// is unlocked (the chip cannot know the slot is a key slot), when the slot
// is not configured as a P-256 private key (KeyConfig.Private, KeyType 4),
// and after the data lock unless the slot's SlotConfig allows GenKey then
// (WriteConfig bit 13).
func (c *Chip) GenKey(slot int) ([]byte, error) {
	op := fmt.Sprintf("GenKey slot %d", slot)
	if err := checkSlot(op, slot); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.lockedLocked(ZoneConfig):
		return nil, &Error{op, StatusExecutionError, "the configuration zone is not locked"}
	case !c.isP256Private(slot):
		return nil, &Error{op, StatusExecutionError, "the slot is not configured as a P-256 private key (KeyConfig)"}
	case c.lockedLocked(ZoneData) && c.slotConfig(slot)&slotConfigGenKeyAfterLock == 0:
		return nil, &Error{op, StatusExecutionError, "the slot's SlotConfig does not allow GenKey after the data lock"}
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), c.random)
	if err != nil {
		return nil, &Error{op, StatusExecutionError, "random number generator failed"}
	}
	old := c.keys[slot]
	c.keys[slot] = k
	if err := c.saveLocked(); err != nil {
		c.keys[slot] = old
		return nil, err
	}
	return RawPublicKey(&k.PublicKey), nil
}

// PublicKey computes the public key of the private key in slot (GenKey
// mode 0x00), 64 bytes X||Y. Refused before the
// configuration lock, for a slot that is not a P-256 private key slot,
// and for a key slot that holds no key yet (the chip would compute a
// public key from whatever bytes the slot holds; a slot GenKey never
// filled holds no valid key, and CryptoAuthLib reports an execution
// error, which Mongoose OS's mbedTLS glue also relies on).
func (c *Chip) PublicKey(slot int) ([]byte, error) {
	op := fmt.Sprintf("GenKey (public) slot %d", slot)
	if err := checkSlot(op, slot); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.lockedLocked(ZoneConfig):
		return nil, &Error{op, StatusExecutionError, "the configuration zone is not locked"}
	case !c.isP256Private(slot):
		return nil, &Error{op, StatusExecutionError, "the slot is not configured as a P-256 private key (KeyConfig)"}
	case c.keys[slot] == nil:
		return nil, &Error{op, StatusExecutionError, "the slot holds no key (GenKey first)"}
	}
	return RawPublicKey(&c.keys[slot].PublicKey), nil
}

// Sign signs a 32-byte digest with the private key in slot (datasheet,
// Sign, external message mode) and returns R||S, 64 bytes. Refused unless
// both zones are locked (Sign needs the data zone locked) and
// the slot holds a P-256 private key.
func (c *Chip) Sign(slot int, digest []byte) ([]byte, error) {
	op := fmt.Sprintf("Sign slot %d", slot)
	if err := checkSlot(op, slot); err != nil {
		return nil, err
	}
	if len(digest) != 32 {
		return nil, &Error{op, StatusBadParam, fmt.Sprintf("the digest must be 32 bytes, got %d", len(digest))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.lockedLocked(ZoneConfig) || !c.lockedLocked(ZoneData):
		return nil, &Error{op, StatusExecutionError, "both zones must be locked"}
	case !c.isP256Private(slot):
		return nil, &Error{op, StatusExecutionError, "the slot is not configured as a P-256 private key (KeyConfig)"}
	case c.keys[slot] == nil:
		return nil, &Error{op, StatusExecutionError, "the slot holds no key (GenKey first)"}
	}
	r, s, err := ecdsa.Sign(c.random, c.keys[slot], digest)
	if err != nil {
		return nil, &Error{op, StatusExecutionError, "signing failed"}
	}
	c.signs++
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

// Signs counts the signatures the chip has made since it was built or
// opened (for tests that prove signing went through the chip).
func (c *Chip) Signs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.signs
}

// ReadSlot reads a data-zone slot (datasheet, Read). The data zone
// cannot be read before it is locked, and a slot whose KeyConfig marks a
// private key can never be read ("private keys can never be read",
// IsSecret).
func (c *Chip) ReadSlot(slot int) ([]byte, error) {
	op := fmt.Sprintf("Read slot %d", slot)
	if err := checkSlot(op, slot); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.lockedLocked(ZoneData):
		return nil, &Error{op, StatusExecutionError, "the data zone is not locked"}
	case c.keyConfig(slot)&keyConfigPrivate != 0:
		return nil, &Error{op, StatusExecutionError, "the slot holds a private key, which can never be read"}
	}
	out := make([]byte, slotSize(slot))
	copy(out, c.data[slot])
	return out, nil
}

// WriteSlot writes a data-zone slot in clear text, which the chip allows
// only before the data zone is locked and after the configuration lock
// (datasheet, Write); a private key slot is never written in clear
// (PrivWrite, not modelled).
func (c *Chip) WriteSlot(slot int, data []byte) error {
	op := fmt.Sprintf("Write slot %d", slot)
	if err := checkSlot(op, slot); err != nil {
		return err
	}
	if len(data) > slotSize(slot) {
		return &Error{op, StatusBadParam, fmt.Sprintf("slot %d holds %d bytes, got %d", slot, slotSize(slot), len(data))}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case !c.lockedLocked(ZoneConfig):
		return &Error{op, StatusExecutionError, "the configuration zone is not locked"}
	case c.lockedLocked(ZoneData):
		return &Error{op, StatusExecutionError, "the data zone is locked"}
	case c.keyConfig(slot)&keyConfigPrivate != 0:
		return &Error{op, StatusExecutionError, "a private key slot is not written in clear text"}
	}
	c.data[slot] = append([]byte(nil), data...)
	return c.saveLocked()
}

// slotSize: slots 0-7 hold 36 bytes, 8 holds 416, 9-15 hold 72 (datasheet).
func slotSize(slot int) int {
	switch {
	case slot < 8:
		return 36
	case slot == 8:
		return 416
	}
	return 72
}

// RawPublicKey encodes k as the chip sends a public key, 64 bytes X||Y
// (the inverse of ParsePublicKey).
func RawPublicKey(k *ecdsa.PublicKey) []byte {
	out := make([]byte, 64)
	k.X.FillBytes(out[:32])
	k.Y.FillBytes(out[32:])
	return out
}

// ParsePublicKey reads the chip's 64-byte X||Y public key.
func ParsePublicKey(raw []byte) (*ecdsa.PublicKey, error) {
	if len(raw) != 64 {
		return nil, fmt.Errorf("atca: a public key is 64 bytes (X||Y), got %d", len(raw))
	}
	x, y := new(big.Int).SetBytes(raw[:32]), new(big.Int).SetBytes(raw[32:])
	if !elliptic.P256().IsOnCurve(x, y) {
		return nil, errors.New("atca: the public key is not a point on P-256")
	}
	return &ecdsa.PublicKey{Curve: elliptic.P256(), X: x, Y: y}, nil
}

// state is the chip's EEPROM as kept in its file.
type state struct {
	Config []byte            `json:"config"`
	Keys   map[int][]byte    `json:"keys,omitempty"` // slot -> private scalar
	Data   map[int][]byte    `json:"data,omitempty"`
	Check  [sha256.Size]byte `json:"check"`
}

func (c *Chip) saveLocked() error {
	if c.path == "" {
		return nil
	}
	st := state{Config: c.config[:], Keys: map[int][]byte{}, Data: map[int][]byte{}}
	for i, k := range c.keys {
		if k != nil {
			b := make([]byte, 32)
			k.D.FillBytes(b)
			st.Keys[i] = b
		}
	}
	for i, d := range c.data {
		if d != nil {
			st.Data[i] = d
		}
	}
	st.Check = sha256.Sum256(st.Config)
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	tmp := c.path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("atca: saving the chip state: %w", err)
	}
	if err := os.Rename(tmp, c.path); err != nil {
		return fmt.Errorf("atca: saving the chip state: %w", err)
	}
	return nil
}

func (c *Chip) unmarshal(b []byte) error {
	var st state
	if err := json.Unmarshal(b, &st); err != nil {
		return fmt.Errorf("not a chip state file: %w", err)
	}
	if len(st.Config) != ConfigSize || sha256.Sum256(st.Config) != st.Check {
		return errors.New("the chip state is damaged")
	}
	copy(c.config[:], st.Config)
	for i, d := range st.Keys {
		if i < 0 || i >= NumSlots || len(d) != 32 {
			return errors.New("the chip state is damaged")
		}
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		if err != nil {
			return fmt.Errorf("the chip state is damaged: %w", err)
		}
		c.keys[i] = k
	}
	for i, d := range st.Data {
		if i < 0 || i >= NumSlots {
			return errors.New("the chip state is damaged")
		}
		c.data[i] = d
	}
	return nil
}

// StatePath is where a board whose flash is kept in flashFile keeps its
// crypto chip.
func StatePath(flashFile string) string {
	return filepath.Clean(flashFile) + ".atca"
}
