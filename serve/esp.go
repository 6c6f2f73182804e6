package serve

import (
	"context"
	"sync"

	"github.com/mos-tool/mos/flasher"
)

// espLines applies a client's DTR/RTS changes the way Espressif's
// esp_rfc2217_server does (esp_rfc2217_server/esp_port_manager.py), so that
// esptool (`rfc2217://HOST:PORT?ign_set_control`), esptool-js and mos reset
// the board through a network:
//
//   - DTR asserted starts a download-mode reset, played here with esptool's
//     timing (EN low 100 ms, then EN released with IO0 low for ResetDelay);
//     the rest of the client's sequence (RTS released, DTR released) is
//     absorbed until the client releases DTR;
//   - RTS released, after the client had asserted it, outside such a
//     sequence, is a hard reset: an EN pulse of 100 ms (esptool's
//     HardReset);
//   - RTS asserted alone changes nothing: EN is only driven by the
//     sequences played here.
//
// Two refinements over Espressif's server, both about changes that cross
// the network late: a DTR release that arrives while a reset is being
// played does not cut the played sequence short (it releases IO0 itself,
// on time), and a hard reset needs RTS to go from asserted to released in
// the client's view, so the final (DTR off, RTS off) of esptool-js's
// classic reset, where RTS was already off, does not reset the chip a
// second time.
//
// Each SET-CONTROL is answered with the value the client asked for, so
// clients that wait for answers (pyserial without ign_set_control, Web
// Serial bridges) carry on.
type espLines struct {
	s *Server

	mu       sync.Mutex
	dtr, rts bool // the lines as the client last set them
	download bool // a download-mode reset started; DTR not yet released
	playing  int  // sequences started and not yet finished

	seq sync.Mutex // one sequence on the port at a time, in order
	wg  sync.WaitGroup
}

func newESPLines(s *Server) *espLines { return &espLines{s: s} }

func (l *espLines) SetBaud(baud int) error { return l.s.p.SetBaudRate(baud) }

func (l *espLines) Purge(rx, tx bool) error {
	if rx {
		return l.s.p.ResetInputBuffer()
	}
	return nil
}

func (l *espLines) SetDTR(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dtr = on
	if on {
		if !l.download {
			l.download = true
			l.playLocked(flasher.ClassicReset(l.s.opts.ResetDelay))
		}
		return nil
	}
	l.download = false
	if l.playing > 0 {
		return nil // the sequence releases IO0 at its own time
	}
	return ignoreNoLines(l.s.p.SetDTR(false))
}

func (l *espLines) SetRTS(on bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	was := l.rts
	l.rts = on
	if !on && was && !l.download {
		l.playLocked(flasher.HardReset())
	}
	return nil
}

// playLocked runs seq on the port in the background, after any sequence
// started before it.
func (l *espLines) playLocked(seq flasher.ResetSequence) {
	l.playing++
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		l.seq.Lock()
		l.s.debug("playing the %s sequence on the port", seq.Name)
		// Not cancelled: a sequence cut short could leave EN low. The
		// longest takes 100 ms plus the reset delay.
		err := seq.Run(context.Background(), l.s.p)
		l.seq.Unlock()
		if err != nil {
			l.s.log("%s reset on %s failed: %v", seq.Name, l.s.p.Name(), err)
		}
		l.mu.Lock()
		l.playing--
		l.mu.Unlock()
	}()
}

func (l *espLines) finish() { l.wg.Wait() }
