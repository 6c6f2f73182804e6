package fwbundle

import (
	"bytes"
	"context"
	"crypto/md5"
	"errors"
	"testing"

	"github.com/mos-tool/mos/fwimage"
)

// fakeFlash is a board's flash as a plan sees it.
type fakeFlash []byte

func (f fakeFlash) FlashMD5(_ context.Context, addr uint32, size int) ([16]byte, error) {
	return md5.Sum(f[addr : int(addr)+size]), nil
}

func blankFlash(n int) fakeFlash { return fakeFlash(bytes.Repeat([]byte{0xFF}, n)) }

func TestPlanDataPartitions(t *testing.T) {
	b, err := Open("../firmware-images/esp32-demo.zip")
	if err != nil {
		t.Fatal(err)
	}
	c := chip(t, "esp32")
	const size = 4 << 20
	fs, nvs := b.Part("fs"), b.Part("nvs")
	copy(fs.Data, "the bundle's file system image") // the demo's is empty (0xFF)
	used := blankFlash(size)
	copy(used[fs.Addr:], "the device's own files")
	same := blankFlash(size)
	copy(same[fs.Addr:], fs.Data)
	copy(same[nvs.Addr:], nvs.Data)
	copy(same[nvs.Addr:], "settings") // nvs differs, fs is the bundle's

	tests := []struct {
		name      string
		dev       FlashSummer
		keep      bool
		want      map[string]string // part -> DataState
		wantWrite []string
		replaced  []string
	}{
		{"blank board", blankFlash(size), false,
			map[string]string{"fs": DataBlank, "nvs": DataSame}, []string{"boot", "pt", "nvs", "app", "fs"}, nil},
		{"board with files", used, false,
			map[string]string{"fs": DataReplaced, "nvs": DataSame}, []string{"boot", "pt", "nvs", "app", "fs"}, []string{"fs"}},
		{"board with settings", same, false,
			map[string]string{"fs": DataSame, "nvs": DataReplaced}, []string{"boot", "pt", "nvs", "app", "fs"}, []string{"nvs"}},
		{"no MD5 (ESP8266 ROM)", nil, false,
			map[string]string{"fs": DataUnknown, "nvs": DataUnknown}, []string{"boot", "pt", "nvs", "app", "fs"}, []string{"nvs", "fs"}},
		{"keep", used, true,
			map[string]string{"fs": DataKept, "nvs": DataSame}, []string{"boot", "pt", "nvs", "app"}, nil},
		{"keep on a blank board: nothing to keep", blankFlash(size), true,
			map[string]string{"fs": DataBlank, "nvs": DataSame}, []string{"boot", "pt", "nvs", "app", "fs"}, nil},
		{"keep without MD5: kept, as it cannot be told", nil, true,
			map[string]string{"fs": DataKept, "nvs": DataKept}, []string{"boot", "pt", "app"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			plan, err := b.Plan(context.Background(), c, size, tt.dev, PlanOptions{KeepData: tt.keep})
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			states := map[string]string{}
			for _, p := range plan.Write {
				names = append(names, p.Name)
				if p.DataState != "" {
					states[p.Name] = p.DataState
				}
			}
			for _, p := range plan.Kept {
				states[p.Name] = p.DataState
			}
			if !equal(names, tt.wantWrite) {
				t.Errorf("writes %v, want %v", names, tt.wantWrite)
			}
			if len(states) != len(tt.want) {
				t.Errorf("data states %v, want %v", states, tt.want)
			}
			for k, v := range tt.want {
				if states[k] != v {
					t.Errorf("%s: state %q, want %q", k, states[k], v)
				}
			}
			var replaced []string
			for _, p := range plan.Replaced() {
				replaced = append(replaced, p.Name)
			}
			if !equal(replaced, tt.replaced) {
				t.Errorf("replaced %v, want %v", replaced, tt.replaced)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// The otadata partition selects the app to boot; it is not the device's
// data and is always written. A custom data partition is the device's.
func TestPlanPartitionTableDecides(t *testing.T) {
	c := chip(t, "esp32")
	pt := &fwimage.PartitionTable{HasMD5: true, Partitions: []fwimage.Partition{
		{Label: "otadata", Type: fwimage.PartTypeData, SubType: fwimage.PartSubDataOTA, Offset: 0xD000, Size: 0x2000},
		{Label: "calib", Type: fwimage.PartTypeData, SubType: 0x40, Offset: 0xF000, Size: 0x1000},
		{Label: "factory", Type: fwimage.PartTypeApp, SubType: fwimage.PartSubAppFactory, Offset: 0x10000, Size: 0x10000},
	}}
	raw, err := pt.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b := &Bundle{Parts: []Part{ // ADDR:FILE: no types, the table decides
		{Name: "pt", Addr: 0x8000, Data: raw, Flash: true},
		{Name: "ota", Addr: 0xD000, Data: make([]byte, 0x2000), Flash: true},
		{Name: "cal", Addr: 0xF000, Data: []byte("calibration"), Flash: true},
		{Name: "app", Addr: 0x10000, Data: []byte("app"), Flash: true},
	}}
	plan, err := b.Plan(context.Background(), c, 4<<20, nil, PlanOptions{KeepData: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Kept) != 1 || plan.Kept[0].Name != "cal" || plan.Kept[0].Partition != "calib" {
		t.Fatalf("kept %+v, want only cal (partition calib)", plan.Kept)
	}
	if len(plan.Write) != 3 {
		t.Fatalf("writes %+v", plan.Write)
	}
}

func TestPlanFlashParams(t *testing.T) {
	c := chip(t, "esp32")
	boot := testImage(t, "esp32")
	b := &Bundle{Platform: "esp32", Parts: []Part{{Name: "boot", Type: "boot", Addr: 0x1000, Data: boot, Flash: true}}}
	tests := []struct {
		name    string
		params  fwimage.FlashParams
		fromArg fwimage.FlashParams // the bundle's own settings
		patched bool
		hdr     [2]byte // bytes 2 and 3
		errKind string  // FlashParamError field
	}{
		{"keep", fwimage.FlashParams{Mode: "keep", Size: "keep", Freq: "keep"}, fwimage.FlashParams{}, false, [2]byte{boot[2], boot[3]}, ""},
		{"flags", fwimage.FlashParams{Mode: "dout", Size: "detect", Freq: "80m"}, fwimage.FlashParams{}, true, [2]byte{3, 0x2F}, ""},
		{"bundle settings", fwimage.FlashParams{Mode: "keep"}, fwimage.FlashParams{Mode: "qio", Size: "2MB", Freq: "20m"}, true, [2]byte{0, 0x12}, ""},
		{"flag beats bundle", fwimage.FlashParams{Mode: "dio"}, fwimage.FlashParams{Mode: "qio"}, false, [2]byte{boot[2], boot[3]}, ""},
		{"size not for this chip", fwimage.FlashParams{Size: "2MB-c1"}, fwimage.FlashParams{}, false, [2]byte{}, "size"},
		{"freq not for this chip", fwimage.FlashParams{Freq: "48m"}, fwimage.FlashParams{}, false, [2]byte{}, "freq"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bb := *b
			bb.FlashMode, bb.FlashSize, bb.FlashFreq = tt.fromArg.Mode, tt.fromArg.Size, tt.fromArg.Freq
			plan, err := bb.Plan(context.Background(), c, 4<<20, nil, PlanOptions{Params: tt.params})
			if tt.errKind != "" {
				var pe *fwimage.FlashParamError
				if !errors.As(err, &pe) || pe.Field != tt.errKind {
					t.Fatalf("err %v, want a FlashParamError on %s", err, tt.errKind)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			w := plan.Write[0]
			if w.Patched != tt.patched || [2]byte{w.Data[2], w.Data[3]} != tt.hdr {
				t.Fatalf("patched %v, header % x; want %v, % x", w.Patched, w.Data[2:4], tt.patched, tt.hdr)
			}
			img, err := fwimage.ParseFor(c, w.Data)
			if err != nil || img.Verify() != nil {
				t.Fatalf("patched image no longer verifies: %v", err)
			}
		})
	}
}

// Parts of a build own the slack to their sectors' end; ADDR:FILE pairs do
// not, so the flasher keeps the bytes around them.
func TestPlanOwnsSectors(t *testing.T) {
	c := chip(t, "esp32")
	built, err := Open("../firmware-images/esp32-demo.zip")
	if err != nil {
		t.Fatal(err)
	}
	pairs := &Bundle{Parts: []Part{{Name: "four.bin", Addr: 0x1004, Data: []byte("four"), Flash: true}}}
	for _, tc := range []struct {
		name string
		b    *Bundle
		want bool
	}{{"bundle", built, true}, {"ADDR:FILE", pairs, false}} {
		plan, err := tc.b.Plan(context.Background(), c, 4<<20, blankFlash(4<<20), PlanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range plan.Write {
			if w.OwnsSectors != tc.want {
				t.Errorf("%s: part %s OwnsSectors = %v, want %v", tc.name, w.Name, w.OwnsSectors, tc.want)
			}
		}
	}
}
