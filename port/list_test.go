package port

import (
	"errors"
	"reflect"
	"testing"
)

func fakeEnumerator(t *testing.T, ports []portDetails, err error) {
	t.Helper()
	saved := enumeratePorts
	enumeratePorts = func() ([]portDetails, error) { return ports, err }
	t.Cleanup(func() { enumeratePorts = saved })
}

func TestList(t *testing.T) {
	fakeEnumerator(t, []portDetails{
		{Name: "/dev/ttyUSB1", IsUSB: true, VID: "1A86", PID: "7523", Product: "USB Serial"},
		{Name: "/dev/ttyACM0", IsUSB: true, VID: "303a", PID: "1001", SerialNumber: "F4:12:FA:00:11:22", Product: "USB JTAG/serial debug unit"},
		{Name: "/dev/ttyUSB0", IsUSB: true, VID: "10C4", PID: "EA60", SerialNumber: "0001", Product: "CP2102 USB to UART Bridge Controller"},
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyUSB2", IsUSB: true, VID: "abc", PID: "1"}, // short IDs are padded
		{Name: "/dev/ttyUSB3", IsUSB: true, VID: "zz", PID: "1"},  // unparseable: no IDs
		{Name: ""}, // the enumerator could not name it
	}, nil)

	got, err := List()
	if err != nil {
		t.Fatal(err)
	}
	want := []Info{
		{Name: "/dev/ttyACM0", USB: true, VID: "303a", PID: "1001", SerialNumber: "F4:12:FA:00:11:22", Product: "USB JTAG/serial debug unit", Bridge: "Espressif USB-Serial/JTAG"},
		{Name: "/dev/ttyS0"},
		{Name: "/dev/ttyUSB0", USB: true, VID: "10c4", PID: "ea60", SerialNumber: "0001", Product: "CP2102 USB to UART Bridge Controller", Bridge: "CP210x"},
		{Name: "/dev/ttyUSB1", USB: true, VID: "1a86", PID: "7523", Product: "USB Serial", Bridge: "CH340"},
		{Name: "/dev/ttyUSB2", USB: true, VID: "0abc", PID: "0001"},
		{Name: "/dev/ttyUSB3", USB: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("List() =\n%+v\nwant\n%+v", got, want)
	}
}

func TestListEmpty(t *testing.T) {
	fakeEnumerator(t, nil, nil)
	got, err := List()
	if err != nil {
		t.Fatal(err)
	}
	if got == nil || len(got) != 0 {
		t.Errorf("List() = %#v, want an empty non-nil slice", got)
	}
}

func TestListError(t *testing.T) {
	boom := errors.New("boom")
	fakeEnumerator(t, nil, boom)
	if _, err := List(); !errors.Is(err, boom) {
		t.Errorf("List() error = %v, want it to wrap %v", err, boom)
	}
}

func TestBridgeName(t *testing.T) {
	tests := []struct {
		vid, pid uint16
		want     string
	}{
		{0x10c4, 0xea60, "CP210x"},
		{0x10c4, 0xea70, "CP2105"},
		{0x10c4, 0xea64, "CP2102C"},
		{0x1a86, 0x7523, "CH340"},
		{0x1a86, 0x55d4, "CH9102"},
		{0x0403, 0x6001, "FTDI FT232R"},
		{0x0403, 0x6015, "FTDI FT-X"},
		{0x303a, 0x1001, "Espressif USB-Serial/JTAG"},
		{0x303a, 0x0009, "Espressif USB-OTG (ESP32-S3 ROM)"},
		{0x067b, 0x2303, "PL2303"},
		{0x1234, 0x5678, ""},
		{0x10c4, 0x0000, ""},
	}
	for _, tc := range tests {
		if got := BridgeName(tc.vid, tc.pid); got != tc.want {
			t.Errorf("BridgeName(%04x, %04x) = %q, want %q", tc.vid, tc.pid, got, tc.want)
		}
	}
	if !BridgeHasHWFlowControl(0x10c4, 0xea64) || BridgeHasHWFlowControl(0x10c4, 0xea60) {
		t.Error("only the CP2102C should report hardware flow control")
	}
}

func TestBridgeTableUnique(t *testing.T) {
	seen := map[[2]uint16]bool{}
	for _, b := range bridges {
		id := [2]uint16{b.vid, b.pid}
		if seen[id] {
			t.Errorf("%04x:%04x listed twice", b.vid, b.pid)
		}
		seen[id] = true
		if b.name == "" {
			t.Errorf("%04x:%04x has no name", b.vid, b.pid)
		}
	}
}

// TestListReal runs the platform enumerator: it must not fail, though the
// machine may have no serial ports at all.
func TestListReal(t *testing.T) {
	infos, err := List()
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if infos == nil {
		t.Fatal("List returned nil")
	}
	for _, in := range infos {
		t.Logf("%+v", in)
	}
}
