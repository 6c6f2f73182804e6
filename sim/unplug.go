package sim

import "errors"

// ErrUnplugged is what a HostPort's calls return once its device has been
// unplugged, and what Connect returns until it is plugged in again: to the
// host the port has gone away, as a USB serial device does when its cable
// is pulled.
var ErrUnplugged = errors.New("sim: device unplugged")

// Unplug models pulling the board's USB cable: the chip loses power, the
// connected host's reads and writes fail from now on (it must reopen the
// port), and nobody can connect until Replug. The flash keeps its contents.
func (d *Device) Unplug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || d.unplugged {
		return
	}
	d.unplugged = true
	d.haltLocked()
	if h := d.host; h != nil {
		h.unplugged.Store(true)
		h.cancel() // blocked reads and writes return
		d.host = nil
		d.toHost.setDropping(true)
		d.dtr, d.rts = false, false
	}
}

// Replug plugs the cable back in: the chip powers on and boots, and a host
// may connect again.
func (d *Device) Replug() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed || !d.unplugged {
		return
	}
	d.unplugged = false
	d.inReset = false
	d.startLocked(resetPowerOn, false, 0)
}
