package fwimage

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

const (
	AppDescMagic = 0xABCD5432 // esp_app_desc_t.magic_word
	AppDescLen   = 256        // sizeof(esp_app_desc_t)
	// AppDescOffset is the descriptor's file offset in an app image: the
	// first segment's data, after the 24-byte header and its 8-byte
	// segment header.
	AppDescOffset = headerLen + extHeaderLen + segHeaderLen
)

// AppDesc is ESP-IDF's application description (esp_app_desc_t), which
// starts the first segment of an ESP32-family app image. Strings are
// NUL-padded C strings in fixed-size fields.
type AppDesc struct {
	SecureVersion uint32   // anti-rollback version
	Version       string   // 32 bytes: application version
	ProjectName   string   // 32 bytes
	Time          string   // 16 bytes: build time, "12:34:56"
	Date          string   // 16 bytes: build date, "Jan  2 2025"
	IDFVersion    string   // 32 bytes
	ELFSHA256     [32]byte // SHA-256 of the ELF file
	// Added in ESP-IDF v5.x; zero in images of older versions.
	MinEfuseBlkRevFull uint16 // major*100 + minor
	MaxEfuseBlkRevFull uint16
	MMUPageSize        uint8 // log2 of the MMU page size
}

// Field offsets inside esp_app_desc_t.
const (
	adSecureVersion = 4
	adVersion       = 16 // after magic, secure_version, reserv1[2]
	adProjectName   = 48
	adTime          = 80
	adDate          = 96
	adIDFVersion    = 112
	adELFSHA256     = 144
	adMinEfuseRev   = 176
	adMaxEfuseRev   = 178
	adMMUPageSize   = 180
)

// ParseAppDesc reads a descriptor from the start of b.
func ParseAppDesc(b []byte) (*AppDesc, error) {
	if len(b) < AppDescLen {
		return nil, fmt.Errorf("%w: app descriptor needs %d bytes, have %d", ErrTruncated, AppDescLen, len(b))
	}
	if m := le32(b); m != AppDescMagic {
		return nil, fmt.Errorf("%w: app descriptor 0x%08x", ErrBadMagic, m)
	}
	d := &AppDesc{
		SecureVersion:      le32(b[adSecureVersion:]),
		Version:            cString(b[adVersion:adProjectName]),
		ProjectName:        cString(b[adProjectName:adTime]),
		Time:               cString(b[adTime:adDate]),
		Date:               cString(b[adDate:adIDFVersion]),
		IDFVersion:         cString(b[adIDFVersion:adELFSHA256]),
		MinEfuseBlkRevFull: le16(b[adMinEfuseRev:]),
		MaxEfuseBlkRevFull: le16(b[adMaxEfuseRev:]),
		MMUPageSize:        b[adMMUPageSize],
	}
	copy(d.ELFSHA256[:], b[adELFSHA256:adMinEfuseRev])
	return d, nil
}

// Encode returns the 256-byte descriptor. A string may fill its field
// completely (no terminating NUL), as ESP-IDF's strncpy allows.
func (d *AppDesc) Encode() ([]byte, error) {
	b := make([]byte, AppDescLen)
	le := binary.LittleEndian
	le.PutUint32(b, AppDescMagic)
	le.PutUint32(b[adSecureVersion:], d.SecureVersion)
	for _, f := range []struct {
		name, s    string
		start, end int
	}{
		{"version", d.Version, adVersion, adProjectName},
		{"project name", d.ProjectName, adProjectName, adTime},
		{"time", d.Time, adTime, adDate},
		{"date", d.Date, adDate, adIDFVersion},
		{"IDF version", d.IDFVersion, adIDFVersion, adELFSHA256},
	} {
		if len(f.s) > f.end-f.start || bytes.IndexByte([]byte(f.s), 0) >= 0 {
			return nil, fmt.Errorf("fwimage: app descriptor %s %q: longer than %d bytes or contains NUL", f.name, f.s, f.end-f.start)
		}
		copy(b[f.start:f.end], f.s)
	}
	copy(b[adELFSHA256:], d.ELFSHA256[:])
	le.PutUint16(b[adMinEfuseRev:], d.MinEfuseBlkRevFull)
	le.PutUint16(b[adMaxEfuseRev:], d.MaxEfuseBlkRevFull)
	b[adMMUPageSize] = d.MMUPageSize
	return b, nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
