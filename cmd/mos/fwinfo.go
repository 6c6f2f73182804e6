package main

import (
	"bytes"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/fwbundle"
	"github.com/mos-tool/mos/fwimage"
	"github.com/mos-tool/mos/output"
)

func newFwInfoCmd(a *app) *cobra.Command {
	var chip string
	cmd := &cobra.Command{
		Use:   "info FILE",
		Short: "Describe a firmware bundle, image or partition table",
		Long: "Describe a firmware bundle (its manifest and parts, each checked against its\n" +
			"checksums), an ESP image (chip, entry, flash settings, segments, app descriptor,\n" +
			"checksum and SHA-256), a partition table binary, or ESP-IDF's flasher_args.json.",
		Example: "  mos fw info firmware-images/esp32-demo.zip\n  mos fw info --json build/app.bin",
		Args:    usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			var c *chips.Chip
			if chip != "" {
				var err error
				if c, err = chips.ByKey(chip); err != nil {
					return usageErr(cmd, err)
				}
			}
			res, err := describeFile(args[0], c)
			if err != nil {
				return err
			}
			return a.out.Print(res)
		},
	}
	cmd.Flags().StringVar(&chip, "chip", "", "read images as this chip's (default: what the file says)")
	return cmd
}

// fwInfoResult is the JSON of `mos fw info`; field names are a contract.
type fwInfoResult struct {
	Kind           string           `json:"kind"` // bundle, flasher_args, image, partition_table
	File           string           `json:"file"`
	Manifest       *manifestSummary `json:"manifest,omitempty"`
	Platform       string           `json:"platform,omitempty"`
	FlashMode      string           `json:"flash_mode,omitempty"` // flasher_args.json's settings
	FlashSize      string           `json:"flash_size,omitempty"`
	FlashFreq      string           `json:"flash_freq,omitempty"`
	Parts          []partInfo       `json:"parts,omitempty"`
	Image          *imageInfo       `json:"image,omitempty"`
	PartitionTable *ptInfo          `json:"partition_table,omitempty"`
	// Overlaps names parts to flash that would overwrite each other: such
	// a bundle cannot be flashed as it is.
	Overlaps []string `json:"overlaps,omitempty"`
}

type manifestSummary struct {
	Name           string `json:"name"`
	Platform       string `json:"platform"`
	Version        string `json:"version"`
	BuildID        string `json:"build_id"`
	BuildTimestamp string `json:"build_timestamp"`
	Description    string `json:"description,omitempty"`
}

// partInfo is a part as it will be flashed (partition names resolved).
type partInfo struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Addr   uint32 `json:"addr"`
	Size   int    `json:"size"`
	Source string `json:"source"`
	Ptn    string `json:"ptn,omitempty"`
	Flash  bool   `json:"flash"`
	SHA1   string `json:"sha1"`
	SHA256 string `json:"sha256"`
	// Checksums: "ok" when the manifest's matched (a bundle opens only
	// then), "none" when it has none, "" for inputs without a manifest.
	Checksums      string     `json:"checksums,omitempty"`
	Image          *imageInfo `json:"image,omitempty"`
	PartitionTable *ptInfo    `json:"partition_table,omitempty"`
}

type imageInfo struct {
	Format       string        `json:"format"` // esp32 (the ESP32 family), esp8266-v1, esp8266-v2
	Chip         string        `json:"chip"`
	ChipID       int           `json:"chip_id"` // -1: ESP8266
	Entry        uint32        `json:"entry"`
	FlashMode    string        `json:"flash_mode"`
	FlashSize    string        `json:"flash_size"`
	FlashFreq    string        `json:"flash_freq"`
	Segments     []segmentInfo `json:"segments"`
	Length       int           `json:"length"`
	HashAppended bool          `json:"hash_appended"`
	HashOK       *bool         `json:"hash_ok,omitempty"`
	Valid        bool          `json:"valid"` // checksum, digest and structure as a loader checks them
	Error        string        `json:"error,omitempty"`
	AppDesc      *appDescInfo  `json:"app_desc,omitempty"`
}

type segmentInfo struct {
	Addr   uint32 `json:"addr"`
	Offset int    `json:"offset"` // of the data in the image
	Size   int    `json:"size"`
}

type appDescInfo struct {
	ProjectName   string `json:"project_name"`
	Version       string `json:"version"`
	Date          string `json:"date"`
	Time          string `json:"time"`
	IDFVersion    string `json:"idf_ver"`
	SecureVersion uint32 `json:"secure_version"`
	ELFSHA256     string `json:"app_elf_sha256"`
}

type ptInfo struct {
	HasMD5     bool        `json:"md5"`
	Partitions []partEntry `json:"partitions"`
	Error      string      `json:"error,omitempty"`
}

type partEntry struct {
	Label   string `json:"label"`
	Type    string `json:"type"`
	SubType string `json:"subtype"`
	Offset  uint32 `json:"offset"`
	Size    uint32 `json:"size"`
	Flags   uint32 `json:"flags"`
}

// describeFile tells what a file is by its content, not its name.
func describeFile(name string, chip *chips.Chip) (fwInfoResult, error) {
	st, err := os.Stat(name)
	if err != nil {
		return fwInfoResult{}, &fwbundle.Error{Kind: fwbundle.ErrMissingSrc, File: name, Cause: errors.Unwrap(err)}
	}
	if st.Size() > fwbundle.MaxTotalSize {
		return fwInfoResult{}, &fwbundle.Error{Kind: fwbundle.ErrTooLarge, File: name, Detail: fmt.Sprintf("%d bytes", st.Size())}
	}
	data, err := os.ReadFile(name)
	if err != nil {
		return fwInfoResult{}, &fwbundle.Error{Kind: fwbundle.ErrMissingSrc, File: name, Cause: errors.Unwrap(err)}
	}
	switch {
	case bytes.HasPrefix(data, []byte("PK")):
		b, err := fwbundle.Read(bytes.NewReader(data), int64(len(data)), name)
		if err != nil {
			return fwInfoResult{}, err
		}
		return describeBundle("bundle", b, chip), nil
	case len(data) > 0 && (data[0] == fwimage.MagicV1 || data[0] == fwimage.MagicV2):
		return fwInfoResult{Kind: "image", File: name, Image: describeImage(data, chip)}, nil
	case bytes.HasPrefix(data, []byte{0xAA, 0x50}):
		return fwInfoResult{Kind: "partition_table", File: name, PartitionTable: describeTable(data)}, nil
	case strings.EqualFold(filepath.Ext(name), ".json"):
		b, err := fwbundle.ParseFlasherArgs(name)
		if err != nil {
			return fwInfoResult{}, err
		}
		return describeBundle("flasher_args", b, chip), nil
	}
	return fwInfoResult{}, output.WithHint(output.WithExitCode(
		fmt.Errorf("%s is not a firmware bundle, ESP image, partition table or flasher_args.json", name),
		output.ExitBadInput), "raw data can still be flashed as ADDR:FILE")
}

func describeBundle(kind string, b *fwbundle.Bundle, chip *chips.Chip) fwInfoResult {
	r := fwInfoResult{Kind: kind, File: b.Source, Platform: b.Platform,
		FlashMode: b.FlashMode, FlashSize: b.FlashSize, FlashFreq: b.FlashFreq, Parts: []partInfo{}}
	if m := b.Manifest; m != nil {
		r.Manifest = &manifestSummary{m.Name, m.Platform, m.Version, m.BuildID, m.BuildTimestamp, m.Description}
	}
	if chip == nil && b.Platform != "" {
		chip, _ = chips.ByKey(b.Platform)
	}
	for _, p := range b.Parts {
		s1, s256 := sha1Hex(p.Data), sha256.Sum256(p.Data)
		pi := partInfo{Name: p.Name, Type: p.Type, Addr: p.Addr, Size: len(p.Data), Source: p.Source,
			Flash: p.Flash, SHA1: s1, SHA256: hex.EncodeToString(s256[:])}
		if mp := p.Manifest; mp != nil {
			pi.Ptn = mp.Ptn
			pi.Checksums = "none"
			if mp.CSSHA1 != "" || mp.CSSHA256 != "" {
				pi.Checksums = "ok"
			}
			if mp.Fill != nil {
				pi.Checksums = "" // a fill has nothing to check
			}
		}
		switch {
		case p.Type == "pt" || bytes.HasPrefix(p.Data, []byte{0xAA, 0x50}):
			pi.PartitionTable = describeTable(p.Data)
		case len(p.Data) > 0 && (p.Data[0] == fwimage.MagicV1 || p.Data[0] == fwimage.MagicV2) && !isFill(p):
			pi.Image = describeImage(p.Data, chip)
		}
		r.Parts = append(r.Parts, pi)
	}
	for _, o := range b.Overlaps() {
		r.Overlaps = append(r.Overlaps, o.String())
	}
	return r
}

func isFill(p fwbundle.Part) bool { return p.Manifest != nil && p.Manifest.Fill != nil }

func sha1Hex(b []byte) string {
	s := sha1.Sum(b)
	return hex.EncodeToString(s[:])
}

func describeImage(data []byte, chip *chips.Chip) *imageInfo {
	var img *fwimage.Image
	var err error
	if chip != nil {
		img, err = fwimage.ParseFor(chip, data)
	} else {
		img, err = fwimage.Parse(data)
	}
	if err != nil {
		return &imageInfo{Error: err.Error(), Segments: []segmentInfo{}}
	}
	ic := imageChip(img)
	info := &imageInfo{
		Format: "esp32", ChipID: img.ChipID, Entry: img.Entry, Length: img.Length,
		HashAppended: img.HashAppended, Segments: []segmentInfo{},
	}
	switch {
	case img.V2 != nil:
		info.Format = "esp8266-v2"
	case img.IsESP8266():
		info.Format = "esp8266-v1"
	}
	info.Chip = fmt.Sprintf("unknown (chip id %d)", img.ChipID)
	if ic != nil {
		info.Chip = ic.Name
	}
	info.FlashMode, _ = fwimage.ModeName(img.FlashMode)
	info.FlashSize, info.FlashFreq = sizeAndFreq(ic, img)
	for _, s := range img.Segments {
		info.Segments = append(info.Segments, segmentInfo{Addr: s.Addr, Offset: s.FileOffset, Size: len(s.Data)})
	}
	if err := img.Verify(); err != nil {
		info.Error = err.Error()
	} else {
		info.Valid = true
	}
	if img.HashAppended {
		raw := img.Bytes()
		ok := sha256.Sum256(raw[:len(raw)-sha256.Size]) == img.SHA256
		info.HashOK = &ok
	}
	if d := img.AppDesc; d != nil {
		info.AppDesc = &appDescInfo{d.ProjectName, d.Version, d.Date, d.Time, d.IDFVersion, d.SecureVersion, hex.EncodeToString(d.ELFSHA256[:])}
	}
	return info
}

// imageChip is the chip an image says it is for, nil when unknown.
func imageChip(img *fwimage.Image) *chips.Chip {
	if img.IsESP8266() {
		c, _ := chips.ByKey("esp8266")
		return c
	}
	return chips.ByImageChipID(img.ChipID)
}

// sizeAndFreq names the header's flash size and frequency codes, or shows
// the raw codes when the chip or code is unknown.
func sizeAndFreq(c *chips.Chip, img *fwimage.Image) (string, string) {
	size := fmt.Sprintf("code 0x%x", img.FlashSizeCode)
	freq := fmt.Sprintf("code 0x%x", img.FlashFreqCode)
	if c == nil {
		return size, freq
	}
	for _, s := range fwimage.FlashSizes(c) {
		if s.Code == img.FlashSizeCode {
			size = s.Name
			break
		}
	}
	if f, err := fwimage.FreqName(c, img.FlashFreqCode); err == nil {
		freq = f
	}
	return size, freq
}

func describeTable(data []byte) *ptInfo {
	info := &ptInfo{Partitions: []partEntry{}}
	t, err := fwimage.ParsePartitionTable(data)
	if err != nil {
		info.Error = err.Error()
		return info
	}
	info.HasMD5 = t.HasMD5
	for _, p := range t.Partitions {
		info.Partitions = append(info.Partitions, partEntry{p.Label, p.TypeName(), p.SubTypeName(), p.Offset, p.Size, p.Flags})
	}
	return info
}

func (r fwInfoResult) Data() any { return r }

func (r fwInfoResult) Text() string {
	var b strings.Builder
	switch r.Kind {
	case "image":
		fmt.Fprintf(&b, "%s: ", r.File)
		writeImage(&b, r.Image, "")
		return b.String()
	case "partition_table":
		fmt.Fprintf(&b, "%s: ", r.File)
		writeTable(&b, r.PartitionTable, "")
		return b.String()
	}
	if r.Kind == "bundle" {
		fmt.Fprintf(&b, "Bundle:    %s\n", r.File)
	} else {
		fmt.Fprintf(&b, "Build:     %s (ESP-IDF flasher_args.json)\n", r.File)
	}
	if m := r.Manifest; m != nil {
		fmt.Fprintf(&b, "Firmware:  %s\n", dash(strings.TrimSpace(m.Name+" "+m.Version)))
		if m.BuildID != "" || m.BuildTimestamp != "" {
			fmt.Fprintf(&b, "Build:     %s\n", strings.TrimSpace(m.BuildID+" "+m.BuildTimestamp))
		}
		if m.Description != "" {
			fmt.Fprintf(&b, "About:     %s\n", m.Description)
		}
	}
	fmt.Fprintf(&b, "Platform:  %s\n", dash(r.Platform))
	if r.FlashMode != "" || r.FlashSize != "" || r.FlashFreq != "" {
		fmt.Fprintf(&b, "Flash:     %s %s %s\n", r.FlashMode, r.FlashSize, r.FlashFreq)
	}
	b.WriteString("\n")
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PART\tTYPE\tADDR\tSIZE\tSOURCE\tCHECKSUMS\tSHA-256")
	for _, p := range r.Parts {
		addr := fmt.Sprintf("0x%06x", p.Addr)
		if p.Ptn != "" {
			addr += " (" + p.Ptn + ")"
		}
		flash := ""
		if !p.Flash {
			flash = " (not flashed)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s%s\t%s\t%s\n", p.Name, dash(p.Type), addr, p.Size,
			filepath.Base(p.Source), flash, dash(p.Checksums), short(p.SHA256))
	}
	tw.Flush()
	for _, o := range r.Overlaps {
		fmt.Fprintf(&b, "OVERLAP: %s: mos flash refuses this bundle\n", o)
	}
	for _, p := range r.Parts {
		switch {
		case p.Image != nil:
			fmt.Fprintf(&b, "\n%s: ", p.Name)
			writeImage(&b, p.Image, "  ")
		case p.PartitionTable != nil:
			fmt.Fprintf(&b, "\n%s: ", p.Name)
			writeTable(&b, p.PartitionTable, "  ")
		}
	}
	return b.String()
}

func writeImage(b *strings.Builder, im *imageInfo, indent string) {
	if im.Format == "" {
		fmt.Fprintf(b, "not a valid image: %s\n", im.Error)
		return
	}
	status := "valid"
	if !im.Valid {
		status = "INVALID: " + im.Error
	}
	if im.HashOK != nil && *im.HashOK {
		status += ", SHA-256 ok"
	}
	fmt.Fprintf(b, "%s image (%s), entry 0x%08x, %s %s %s, %d segments, %d bytes, %s\n",
		im.Chip, im.Format, im.Entry, im.FlashMode, im.FlashSize, im.FlashFreq, len(im.Segments), im.Length, status)
	if d := im.AppDesc; d != nil {
		fmt.Fprintf(b, "%sapp %q %s, built %s %s, ESP-IDF %s, ELF SHA-256 %s\n",
			indent, d.ProjectName, d.Version, d.Date, d.Time, d.IDFVersion, short(d.ELFSHA256))
	}
	for i, s := range im.Segments {
		fmt.Fprintf(b, "%ssegment %d: load 0x%08x, %6d bytes, file offset 0x%05x\n", indent, i, s.Addr, s.Size, s.Offset)
	}
}

func writeTable(b *strings.Builder, t *ptInfo, indent string) {
	if t.Error != "" {
		fmt.Fprintf(b, "partition table, INVALID: %s\n", t.Error)
		return
	}
	md5 := "no MD5 row"
	if t.HasMD5 {
		md5 = "MD5 ok"
	}
	fmt.Fprintf(b, "partition table, %d partitions, %s\n", len(t.Partitions), md5)
	tw := tabwriter.NewWriter(b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "%sLABEL\tTYPE\tSUBTYPE\tOFFSET\tSIZE\n", indent)
	for _, p := range t.Partitions {
		fmt.Fprintf(tw, "%s%s\t%s\t%s\t0x%06x\t0x%06x\n", indent, p.Label, p.Type, p.SubType, p.Offset, p.Size)
	}
	tw.Flush()
}
