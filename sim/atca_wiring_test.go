package sim_test

import (
	"path/filepath"
	"testing"

	"github.com/mos-tool/mos/chips"
	"github.com/mos-tool/mos/sim"
	"github.com/mos-tool/mos/sim/atca"
)

// The crypto chip is board hardware: on every sim:// board unless atca=0,
// and kept next to the flash file, so its locks and keys survive like the
// flash does.
func TestCryptoChipOnTheBoard(t *testing.T) {
	for _, tt := range []struct {
		url  string
		want bool
	}{{"sim://esp32", true}, {"sim://esp32?atca=0", false}, {"sim://esp8266?atca=1", true}} {
		cfg, _, err := sim.ParseURL(tt.url)
		if err != nil || cfg.ATCA != tt.want {
			t.Errorf("%s: ATCA %v, %v", tt.url, cfg.ATCA, err)
		}
	}
	c, err := chips.ByKey("esp32")
	if err != nil {
		t.Fatal(err)
	}
	if d, err := sim.New(sim.Config{Chip: c, Fast: true}); err != nil || d.CryptoChip() != nil {
		t.Fatalf("a Config without ATCA got a chip: %v", err)
	} else {
		d.Close()
	}
	flash := filepath.Join(t.TempDir(), "board.flash")
	d, err := sim.New(sim.Config{Chip: c, Fast: true, ATCA: true, FlashFile: flash})
	if err != nil {
		t.Fatal(err)
	}
	chip := d.CryptoChip()
	if chip == nil || chip.Path() != flash+".atca" {
		t.Fatalf("chip %v", chip)
	}
	if err := chip.Lock(atca.ZoneConfig); err != nil {
		t.Fatal(err)
	}
	pub, err := chip.GenKey(0)
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	d, err = sim.New(sim.Config{Chip: c, Fast: true, ATCA: true, FlashFile: flash})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	again, err := d.CryptoChip().PublicKey(0)
	if err != nil || string(again) != string(pub) || !d.CryptoChip().Locked(atca.ZoneConfig) {
		t.Fatalf("the chip did not keep its key and lock: %v", err)
	}
}
