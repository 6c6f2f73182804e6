package flasher

import (
	"context"
	"time"

	"github.com/mos-tool/mos/slip"
)

// answers reports whether the device still answers at all, after a
// command whose reply was lost. It sends a SYNC: the ROM loaders and both
// flasher stubs answer it eight times (esp-flasher-stub's s_sync; esptool
// reads all eight), so on a noisy line one answer gets through. The SYNC
// goes after a lone frame delimiter, which ends whatever garbled frame the
// device may still be in (RFC 1055 suggests the same against line noise),
// and is sent twice before silence is taken to mean the device is gone
// (reset into its app, unplugged). The answers are drained, so that none
// is taken for a later reply.
func (l *Loader) answers(ctx context.Context) bool {
	for attempt := 0; attempt < 2 && ctx.Err() == nil; attempt++ {
		l.Flush()
		if _, err := l.Port().Write([]byte{slip.End}); err != nil {
			return false
		}
		if err := l.Send(OpSync, syncPayload, 0); err != nil {
			return false
		}
		_, err := l.ReadResponse(ctx, OpSync, DefaultTimeout)
		l.drain(ctx)
		// a stub answers SYNC with the error of a failed write instead (it
		// reports such an error with the next command): that is an answer
		if err == nil || err != errTimeout && ctx.Err() == nil {
			return true
		}
	}
	return false
}

// endRead gets a stub out of a READ_FLASH that went wrong on the way. The
// stub waits for an acknowledgement after each packet and leaves the read
// on one that is not 4 bytes long (esp-flasher-stub's
// s_read_flash_post_process), so it is sent a 1-byte frame: without it the
// next command would be taken for that acknowledgement and lost. A stub
// that was not reading answers the frame as a bad command, or ignores it;
// whatever comes back is drained.
func (l *Loader) endRead(ctx context.Context) {
	_, _ = l.Port().Write(slip.Encode(nil, []byte{0}))
	l.drain(ctx)
}

// drain reads frames until none has come for 100 ms, then drops what is
// left of a partial one.
func (l *Loader) drain(ctx context.Context) {
	for ctx.Err() == nil {
		if _, err := l.ReadFrame(ctx, 100*time.Millisecond); err != nil {
			break
		}
	}
	l.Flush()
}
