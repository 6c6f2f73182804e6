package serve

import (
	"context"
	"sync"
	"time"

	"github.com/mos-tool/mos/flasher"
	"github.com/mos-tool/mos/port"
)

// enLow is how long the download-mode reset holds EN low: esptool's
// ClassicReset and UnixTightReset (esptool/reset.py) wait 100 ms.
const enLow = 100 * time.Millisecond

// maxIO0Hold bounds how long IO0 stays low after EN is released while the
// client has not released DTR yet: enough for esptool's and mos's longest
// reset delay (550 ms, for boards with a slow EN circuit), short enough
// that a client holding DTR does not keep the strapping pin low for good.
const maxIO0Hold = 2 * time.Second

// espLines applies a client's DTR/RTS changes the way Espressif's
// esp_rfc2217_server does (esp_rfc2217_server/esp_port_manager.py), so that
// esptool (`rfc2217://HOST:PORT?ign_set_control`), esptool-js and mos reset
// the board through a network:
//
//   - DTR asserted starts a download-mode reset, played here: EN low for
//     100 ms, then EN released with IO0 held low; the rest of the client's
//     sequence (RTS released, DTR released) is absorbed;
//   - RTS released, after the client had asserted it, outside such a
//     sequence, is a hard reset: an EN pulse of 100 ms (esptool's
//     HardReset);
//   - RTS asserted alone changes nothing: EN is only driven by the
//     sequences played here.
//
// Refinements over Espressif's server, all about changes that cross the
// network late:
//   - IO0 is released ResetDelay after EN, or when the client's DTR
//     release arrives if that is later (at most maxIO0Hold): the client's
//     own delay between its DTR assertion and release (esptool and mos
//     retry with 550 ms for boards whose EN rises slowly) carries over,
//     while a release that arrives early cannot cut the sequence short;
//   - a hard reset needs RTS to go from asserted to released in the
//     client's view, so the final (DTR off, RTS off) of esptool-js's
//     classic reset, where RTS was already off, does not reset the chip a
//     second time.
//
// Each SET-CONTROL is answered with the value the client asked for, so
// clients that wait for answers (pyserial without ign_set_control, Web
// Serial bridges) carry on.
type espLines struct {
	plainLines // baud changes and purges go through as they come
	s          *Server

	mu          sync.Mutex
	dtr, rts    bool          // the lines as the client last set them
	download    bool          // a download-mode reset started; DTR not yet released
	dtrReleased chan struct{} // closed when the client releases DTR after that start
	playing     int           // sequences started and not yet finished

	seq sync.Mutex // one sequence on the port at a time, in order
	wg  sync.WaitGroup
}

func newESPLines(s *Server) *espLines { return &espLines{plainLines: plainLines{s.p}, s: s} }

func (l *espLines) SetDTR(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dtr = on
	if on {
		if !l.download {
			l.download = true
			released := make(chan struct{})
			l.dtrReleased = released
			l.playLocked("download-mode", func(p port.Port) error { return l.downloadReset(p, released) })
		}
		return nil
	}
	if l.download {
		l.download = false
		close(l.dtrReleased)
	}
	if l.playing > 0 {
		return nil // the sequence releases IO0 at its own time
	}
	return port.IgnoreNoLines(l.s.p.SetDTR(false))
}

func (l *espLines) SetRTS(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.rts
	l.rts = on
	if !on && was && !l.download {
		hard := flasher.HardReset()
		l.playLocked("hard-reset", func(p port.Port) error { return hard.Run(context.Background(), p) })
	}
	return nil
}

// downloadReset resets the chip into its ROM loader through the
// auto-reset circuit (DTR drives IO0, RTS drives EN, cross-coupled).
func (l *espLines) downloadReset(p port.Port, released <-chan struct{}) error {
	// EN low with IO0 high, then EN released while IO0 is low. DTR goes
	// first in the release: the state between, both asserted, holds both
	// pins high for microseconds, well within EN's RC delay.
	steps := []func() error{
		func() error { return p.SetDTR(false) },
		func() error { return p.SetRTS(true) },
		func() error { time.Sleep(enLow); return nil },
		func() error { return p.SetDTR(true) },
		func() error { return p.SetRTS(false) },
	}
	for _, step := range steps {
		if err := step(); err != nil {
			p.SetDTR(false)
			p.SetRTS(false)
			return err
		}
	}
	time.Sleep(l.s.opts.ResetDelay)
	select {
	case <-released:
	case <-time.After(maxIO0Hold - l.s.opts.ResetDelay):
	}
	return p.SetDTR(false)
}

// playLocked runs a sequence on the port in the background, after any
// sequence started before it. It is not cancelled: a sequence cut short
// could leave EN low; the longest takes enLow plus maxIO0Hold.
func (l *espLines) playLocked(name string, run func(port.Port) error) {
	l.playing++
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.seq.Lock()
		l.s.debug("playing the %s sequence on the port", name)
		err := run(l.s.p)
		l.seq.Unlock()
		if err != nil {
			l.s.log("%s reset on %s failed: %v", name, l.s.p.Name(), err)
		}
		l.mu.Lock()
		l.playing--
		l.mu.Unlock()
	}()
}

// finish ends a download-mode reset's wait for the client (who has gone)
// and waits for the sequences to end.
func (l *espLines) finish() {
	l.mu.Lock()
	if l.download {
		l.download = false
		close(l.dtrReleased)
	}
	l.mu.Unlock()
	l.wg.Wait()
}
