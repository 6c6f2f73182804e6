package fwimage

import "testing"

func TestFlashCodes(t *testing.T) {
	const K, M = 1 << 10, 1 << 20
	for _, tc := range []struct {
		chip  string
		bytes int
		code  uint8
	}{
		{"esp8266", 256 * K, 1},
		{"esp8266", 512 * K, 0},
		{"esp8266", 1 * M, 2},
		{"esp8266", 2 * M, 3},
		{"esp8266", 4 * M, 4},
		{"esp8266", 8 * M, 8},
		{"esp8266", 16 * M, 9},
		{"esp32", 1 * M, 0},
		{"esp32", 4 * M, 2},
		{"esp32s3", 16 * M, 4},
		{"esp32c3", 128 * M, 7},
		{"esp32c6", 8 * M, 3},
	} {
		c := chip(t, tc.chip)
		if got, err := SizeCode(c, tc.bytes); err != nil || got != tc.code {
			t.Errorf("SizeCode(%s, %d) = %d, %v; want %d", tc.chip, tc.bytes, got, err, tc.code)
		}
		if got, err := SizeFromCode(c, tc.code); err != nil || got != tc.bytes {
			t.Errorf("SizeFromCode(%s, %d) = %d, %v; want %d", tc.chip, tc.code, got, err, tc.bytes)
		}
	}
	esp8266, esp32 := chip(t, "esp8266"), chip(t, "esp32")
	if n, _ := SizeFromCode(esp8266, 6); n != 4*M {
		t.Errorf("4MB-c1 = %d", n)
	}
	for _, bad := range []struct {
		chip  string
		bytes int
	}{{"esp32", 512 * K}, {"esp8266", 32 * M}, {"esp32", 3 * M}} {
		if _, err := SizeCode(chip(t, bad.chip), bad.bytes); err == nil {
			t.Errorf("SizeCode(%s, %d) accepted", bad.chip, bad.bytes)
		}
	}
	if _, err := SizeFromCode(esp32, 8); err == nil {
		t.Error("esp32 size code 8 accepted")
	}
	if _, err := SizeFromCode(esp8266, 7); err == nil {
		t.Error("esp8266 size code 7 accepted")
	}
	for name, want := range map[string]uint8{"4MB": 4, "4m": 4, "2MB-c1": 5, "2mb-C1": 5, "256KB": 1, "512k": 0} {
		if got, err := SizeCodeByName(esp8266, name); err != nil || got != want {
			t.Errorf("SizeCodeByName(esp8266, %q) = %d, %v; want %d", name, got, err, want)
		}
	}
	if _, err := SizeCodeByName(esp32, "2MB-c1"); err == nil {
		t.Error("esp32 2MB-c1 accepted")
	}
}

func TestFreqAndModeCodes(t *testing.T) {
	for _, tc := range []struct {
		chip, name string
		code       uint8
		back       string // FreqName(code), when it differs from name
	}{
		{"esp8266", "40m", 0x0, ""},
		{"esp8266", "26m", 0x1, ""},
		{"esp8266", "20m", 0x2, ""},
		{"esp8266", "80m", 0xF, ""},
		{"esp32", "80m", 0xF, ""},
		{"esp32s3", "40m", 0x0, ""},
		{"esp32c6", "80m", 0x0, "40m"}, // ROM divider quirk: 80m is written as 0
		{"esp32c6", "40m", 0x0, ""},
		{"esp32c6", "20m", 0x2, ""},
	} {
		c := chip(t, tc.chip)
		got, err := FreqCode(c, tc.name)
		if err != nil || got != tc.code {
			t.Errorf("FreqCode(%s, %s) = %x, %v; want %x", tc.chip, tc.name, got, err, tc.code)
		}
		back := tc.back
		if back == "" {
			back = tc.name
		}
		if n, err := FreqName(c, tc.code); err != nil || n != back {
			t.Errorf("FreqName(%s, %x) = %s, %v; want %s", tc.chip, tc.code, n, err, back)
		}
	}
	if _, err := FreqCode(chip(t, "esp32c6"), "26m"); err == nil {
		t.Error("esp32c6 26m accepted")
	}
	if _, err := FreqName(chip(t, "esp32"), 3); err == nil {
		t.Error("freq code 3 accepted")
	}
	for i, m := range []string{"qio", "qout", "dio", "dout"} {
		if c, err := ModeCode(m); err != nil || c != uint8(i) {
			t.Errorf("ModeCode(%s) = %d, %v", m, c, err)
		}
		if n, err := ModeName(uint8(i)); err != nil || n != m {
			t.Errorf("ModeName(%d) = %s, %v", i, n, err)
		}
	}
	if _, err := ModeCode("fastread"); err == nil {
		t.Error("unknown mode accepted")
	}
	if _, err := ModeName(4); err == nil {
		t.Error("mode 4 accepted")
	}
}
