package sim

import (
	"runtime"
	"sync"
	"weak"
)

// UARTStats counts what the firmware's UART receiver did since the device
// was created (they survive resets, so a test can read them afterwards).
type UARTStats struct {
	Received uint64 // bytes that entered the RX FIFO
	Lost     uint64 // bytes that arrived while the FIFO was full
	MaxFill  int    // the most bytes the FIFO held at once
	XOFFSent uint64 // flow control: times the firmware asked the host to stop
	XONSent  uint64 // ... and to go on
}

// UARTStats reports the receive side of the firmware's UART. It stays
// zero until a firmware the device runs (the demo) uses the UART.
func (d *Device) UARTStats() UARTStats {
	s := fwStateOf(d)
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.uart
}

// fwState is what the virtual device remembers about its firmware across
// resets: statistics for tests and how the last run ended.
type fwState struct {
	mu   sync.Mutex
	uart UARTStats
	// softReset is the cpu whose firmware restarted itself (Sys.Reboot):
	// when the same cpu boots the firmware again, the reset was software.
	softReset *cpu
}

// fwStates holds a fwState per device without keeping devices alive.
var fwStates sync.Map

func fwStateOf(d *Device) *fwState {
	key := weak.Make(d)
	if v, ok := fwStates.Load(key); ok {
		return v.(*fwState)
	}
	v, loaded := fwStates.LoadOrStore(key, &fwState{})
	if !loaded {
		runtime.AddCleanup(d, func(k weak.Pointer[Device]) { fwStates.Delete(k) }, key)
	}
	return v.(*fwState)
}
